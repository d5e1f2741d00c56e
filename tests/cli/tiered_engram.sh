#!/usr/bin/env bash
# Engram tables placed by the planner on a box whose DRAM budget leaves no room for them: the
# run pages the NVMe-tier tables through the Engram row cache (reserved out of the budget) and
# says so per table. The logits must equal those of the unconstrained run, for a placement from
# --profile and from a plan file; with a roomy budget the tables stay memory-mapped.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
PROFILES=$(cd "$(dirname "$0")/../.." && pwd)/profiles
sed 's/"dram_headroom_gb": 12/"dram_headroom_gb": 0/' "$PROFILES/cpu-only-128gb.json" >"$WORK/box.json"
TOKENS=1,17,200,33,4,91,300,7,12,250
for spec in "deepseek_v3 bf16" "deepseek_v4 fp4"; do
  read -r arch dtype <<<"$spec"
  m="$WORK/$arch"
  "$STRATA" make-tiny --arch "$arch" --engram --dtype "$dtype" --tokenizer generated --out "$m" >/dev/null
  "$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --out "$WORK/free.npy" 2>/dev/null
  "$STRATA" plan --model "$m" --profile "$WORK/box.json" --json --context 64 >"$WORK/full.json"
  # DRAM for what every token reads and the two caches (0.03 MiB experts, 0.06 MiB Engram),
  # less than a table beside them: routed experts and gathered tables leave DRAM.
  budget=$(/usr/bin/python3 - "$WORK/full.json" "$m/model.safetensors" <<'PY'
import json, struct, sys
j = json.load(open(sys.argv[1]))
with open(sys.argv[2], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
tables = {name for name, _ in j["tables"]}
gathered = sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in h.items() if k in tables)
fixed = j["weights_gb"]["dram"] * 1e9 - j["weights_gb_by_class"]["routed_expert"]["dram"] * 1e9 - gathered
print((fixed + j["kv_cache"]["gb"] * 1e9 + (0.03 + 0.06) * 2**20 + 1000) / 1e9)
PY
)
  "$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --out "$WORK/tiered.npy" --profile "$WORK/box.json" \
    --dram-budget "$budget" --context 64 --expert-cache-mb 0.03 --engram-cache-mb 0.06 2>"$WORK/err.txt"
  grep -q "placement of Engram tables: layer 1 nvme, Engram cache 61.44 KiB for the 1 on NVMe" "$WORK/err.txt" \
    || { echo "FAIL: $arch: the table is not placed on NVMe"; cat "$WORK/err.txt"; exit 1; }
  grep -q "^engram tables: layer 1 nvme (paged through a 61.44 KiB DRAM cache)" "$WORK/err.txt" \
    || { echo "FAIL: $arch: no per-table tier in the summary"; cat "$WORK/err.txt"; exit 1; }
  grep -q "^engram cache: [1-9][0-9]* row reads" "$WORK/err.txt" || { echo "FAIL: $arch: rows not read through the cache"; cat "$WORK/err.txt"; exit 1; }
  # plan, given the flags run got, reserves the same caches and places the same way.
  "$STRATA" plan --model "$m" --profile "$WORK/box.json" --json --context 64 \
    --dram-budget "$budget" --expert-cache-mb 0.03 --engram-cache-mb 0.06 >"$WORK/$arch-plan.json"
  "$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --out "$WORK/file.npy" --placement "$WORK/$arch-plan.json" \
    --expert-cache-mb 0.03 --engram-cache-mb 0.06 2>"$WORK/err.txt"
  grep -q "^engram tables: layer 1 nvme (paged" "$WORK/err.txt" || { echo "FAIL: $arch: plan file ignored"; cat "$WORK/err.txt"; exit 1; }
  "$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --out "$WORK/roomy.npy" --profile "$WORK/box.json" \
    --context 64 2>"$WORK/err.txt"
  grep -q "^engram tables: layer 1 dram (memory-mapped)" "$WORK/err.txt" || { echo "FAIL: $arch: roomy: $(cat "$WORK/err.txt")"; exit 1; }
  /usr/bin/python3 - "$WORK" "$arch" <<'PY'
import sys, numpy as np
w, arch = sys.argv[1], sys.argv[2]
free = np.load(f"{w}/free.npy")
for name in ("tiered", "file", "roomy"):
    got = np.load(f"{w}/{name}.npy")
    assert got.shape == free.shape and np.array_equal(got, free), f"{arch}: {name} placement changed the logits"
print(f"ok: {arch}: logits with Engram tables on NVMe and in DRAM equal the unconstrained run")
PY
done
# A plan file with the table on NVMe but no Engram cache: refused with the flag to give.
"$STRATA" logits -v --model "$WORK/deepseek_v3" --tokens "$TOKENS" --out "$WORK/x.npy" --placement "$WORK/deepseek_v3-plan.json" \
  --expert-cache-mb 0.03 2>"$WORK/err.txt" && { echo "FAIL: NVMe tables with no cache accepted"; exit 1; }
grep -q "Engram table(s) on NVMe but gives them no DRAM cache (--engram-cache-mb)" "$WORK/err.txt" \
  || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
echo "ok: tiered engram"
