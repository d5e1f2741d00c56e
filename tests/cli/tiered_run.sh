#!/usr/bin/env bash
# Experts placed by the planner on a box whose DRAM holds only part of them: DRAM-tier experts
# are read into DRAM at load, the rest stream from disk through a small cache. The logits must
# equal those of the unconstrained run, for a placement from --profile and from a plan file.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
PROFILES=$(cd "$(dirname "$0")/../.." && pwd)/profiles
# The box pins its compute threads and asks for a NUMA split (one node here: nothing to split).
sed -e 's/"dram_headroom_gb": 12/"dram_headroom_gb": 0/' \
  -e 's/"numa_policy": "local"}/"numa_policy": "local", "pin_threads": true, "numa_split": true}/' \
  "$PROFILES/cpu-only-128gb.json" >"$WORK/box.json"
grep -q '"numa_split": true' "$WORK/box.json" || { echo "FAIL: the test profile was not edited"; exit 1; }
TOKENS=1,17,200,33,4,91,300,7,12,250
for spec in "deepseek_v3 bf16" "deepseek_v4 fp4"; do
  read -r arch dtype <<<"$spec"
  m="$WORK/$arch"
  "$STRATA" make-tiny --arch "$arch" --dtype "$dtype" --tokenizer generated --out "$m" >/dev/null
  "$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --out "$WORK/free.npy" 2>/dev/null
  "$STRATA" plan --model "$m" --profile "$WORK/box.json" --json --context 64 >"$WORK/full.json"
  # DRAM for everything but half of the routed experts, plus the 0.03 MiB cache.
  budget=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); w=j["weights_gb"]["dram"]; e=j["weights_gb_by_class"]["routed_expert"]["dram"]
print(w - e / 2 + j["kv_cache"]["gb"] + 0.03 * 2**20 / 1e9)' "$WORK/full.json")
  "$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --out "$WORK/tiered.npy" --profile "$WORK/box.json" \
    --dram-budget "$budget" --context 64 --expert-cache-mb 0.03 2>"$WORK/err.txt"
  grep -q "placement on cpu-only-128gb: routed experts 0 gpu / [1-9][0-9]* dram / [1-9][0-9]* nvme" "$WORK/err.txt" \
    || { echo "FAIL: $arch: expected a DRAM/NVMe split"; cat "$WORK/err.txt"; exit 1; }
  grep -q "expert traffic per token: .* read from disk" "$WORK/err.txt" || { echo "FAIL: no traffic line"; cat "$WORK/err.txt"; exit 1; }
  grep -q "^compute: [0-9]* threads, each pinned to one hardware thread" "$WORK/err.txt" \
    || { echo "FAIL: $arch: the profile's cpu.pin_threads was not applied"; cat "$WORK/err.txt"; exit 1; }
  grep -q "^host memory: NUMA policy local (first touch) on [1-9]" "$WORK/err.txt" \
    || { echo "FAIL: $arch: the profile's NUMA policy is not in the summary"; cat "$WORK/err.txt"; exit 1; }
  grep -q "expert cache .* (predicted hit rate [0-9.]*%)" "$WORK/err.txt" \
    || { echo "FAIL: $arch: no predicted cache hit rate"; cat "$WORK/err.txt"; exit 1; }
  "$STRATA" plan --model "$m" --profile "$WORK/box.json" --json --context 64 --dram-budget "$budget" >"$WORK/plan.json"
  "$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --out "$WORK/file.npy" --placement "$WORK/plan.json" \
    --expert-cache-mb 0.03 --expert-io-pread 2>/dev/null
  /usr/bin/python3 - "$WORK" "$arch" <<'PY'  # Debian's python3 with python3-numpy
import sys, numpy as np
w, arch = sys.argv[1], sys.argv[2]
free = np.load(f"{w}/free.npy")
for name in ("tiered", "file"):
    got = np.load(f"{w}/{name}.npy")
    assert got.shape == free.shape and np.array_equal(got, free), f"{arch}: {name} placement changed the logits"
print(f"ok: {arch}: logits of both tiered runs equal the unconstrained run")
PY
done
m="$WORK/deepseek_v3"
"$STRATA" run -v --model "$m" --prompt "hello" -n 4 --profile "$WORK/box.json" --dram-budget 0.0000001 >/dev/null 2>"$WORK/err.txt" \
  && { echo "FAIL: a budget below the cache accepted"; exit 1; }
grep -q "leaves nothing beside an expert cache" "$WORK/err.txt" || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
"$STRATA" run -v --model "$m" --prompt "hello" -n 4 --profile "$WORK/box.json" --dram-budget 2X >/dev/null 2>"$WORK/err.txt" \
  && { echo "FAIL: a bad size accepted"; exit 1; }
grep -q "'2X' is not a size" "$WORK/err.txt" || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
# The profile's NUMA policy reaches the run; a bad one is refused naming the file and key.
sed 's/"numa_policy": "local"/"numa_policy": "bind", "numa_node": 0/' "$WORK/box.json" >"$WORK/bind.json"
"$STRATA" run -v --model "$m" --prompt "hello" -n 2 --profile "$WORK/bind.json" --context 64 >/dev/null 2>"$WORK/err.txt"
grep -q "^host memory: NUMA policy bind to node 0" "$WORK/err.txt" || { echo "FAIL: bind policy not used: $(cat "$WORK/err.txt")"; exit 1; }
grep -q "^decode: predicted [0-9.]* tokens/s by the plan, measured [0-9.]*" "$WORK/err.txt" \
  || { echo "FAIL: no predicted vs measured: $(cat "$WORK/err.txt")"; exit 1; }
sed 's/"numa_policy": "local"/"numa_policy": "spread"/' "$WORK/box.json" >"$WORK/spread.json"
"$STRATA" run -v --model "$m" --prompt "hello" -n 2 --profile "$WORK/spread.json" >/dev/null 2>"$WORK/err.txt" \
  && { echo "FAIL: an unknown NUMA policy accepted"; exit 1; }
grep -q "spread.json: key 'cpu.numa_policy': must be interleave, bind or local" "$WORK/err.txt" \
  || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
echo '{"experts": [[0, 0, "dram"]]}' >"$WORK/bad.json"  # layer 0 of the tiny V3 is dense
"$STRATA" run -v --model "$m" --prompt "hello" -n 4 --placement "$WORK/bad.json" >/dev/null 2>"$WORK/err.txt" \
  && { echo "FAIL: a placement of a dense layer accepted"; exit 1; }
grep -q "bad.json: 'experts' entry \[0,0,\"dram\"\]" "$WORK/err.txt" || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
echo "ok: tiered run"
