#!/usr/bin/env bash
# strata profile on a tiny model (experts read through a small DRAM cache): the hotness file
# adds up, the heat map is drawn, and strata plan puts the hottest experts in the faster tier.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/tiny" >/dev/null
printf 'the quick brown fox\n\nhello hello hello\njumps over the lazy dog again and again\n' >"$WORK/prompts.txt"
"$STRATA" profile --model "$WORK/tiny" --prompts "$WORK/prompts.txt" -n 8 --out "$WORK/hot.json" --svg "$WORK/heat.svg" \
  --expert-cache-mb 0.05 >"$WORK/out.txt" 2>"$WORK/err.txt"
grep -q "half of all expert activations" "$WORK/out.txt" || { echo "FAIL: no summary"; cat "$WORK/out.txt"; exit 1; }
grep -q "expert cache: .* hits" "$WORK/err.txt" || { echo "FAIL: no cache statistics"; cat "$WORK/err.txt"; exit 1; }
/usr/bin/python3 "$(dirname "$0")/check_svg.py" "$WORK/heat.svg" 64 || exit 1
python3 - "$WORK/hot.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
layers = {l: t for l, t in h["layers"]}
assert layers, "no MoE layers"
for l, t in layers.items():
    p = sum(x[2] for x in h["experts"] if x[0] == l)
    c = sum(x[2] for x in h["counts"] if x[0] == l)
    assert abs(p - 2) < 1e-9, f"layer {l}: probabilities sum to {p}, not top-k 2"
    assert c == 2 * t, f"layer {l}: {c} activations for {t} tokens"
    assert t == h["tokens"], (t, h["tokens"])
print(f"ok: hotness of {h['tokens']} tokens over layers {sorted(layers)}")
PY
# A box with room for only part of the experts in DRAM: the hottest must be the ones kept there.
PROFILES=$(cd "$(dirname "$0")/../.." && pwd)/profiles
sed 's/"dram_headroom_gb": 12/"dram_headroom_gb": 0/' "$PROFILES/cpu-only-128gb.json" >"$WORK/box.json"
"$STRATA" plan --model "$WORK/tiny" --profile "$WORK/box.json" --json --context 16 >"$WORK/full.json"
budget=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); w=j["weights_gb"]["dram"]; e=j["weights_gb_by_class"]["routed_expert"]["dram"]
print(w - e / 2 + j["kv_cache"]["gb"])' "$WORK/full.json")  # room for half of the experts
"$STRATA" plan --model "$WORK/tiny" --profile "$WORK/box.json" --hotness "$WORK/hot.json" --json --context 16 \
  --dram-budget "$budget" >"$WORK/plan.json" || { echo "FAIL: plan with hotness"; exit 1; }
python3 - "$WORK/hot.json" "$WORK/plan.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
prob = {(l, e): q for l, e, q in h["experts"]}
tier = {(l, e): t for l, e, t in p["experts"]}
dram = [prob[k] for k, t in tier.items() if t == "dram"]
nvme = [prob[k] for k, t in tier.items() if t == "nvme"]
assert dram and nvme, f"expected a DRAM/NVMe split, got {len(dram)} / {len(nvme)}"
assert min(dram) >= max(nvme), f"a colder expert in DRAM ({min(dram)}) than on NVMe ({max(nvme)})"
print(f"ok: plan keeps the {len(dram)} hottest experts in DRAM, {len(nvme)} on NVMe")
PY
printf 'x\n' >"$WORK/bad.json"
if "$STRATA" plan --model "$WORK/tiny" --profile cpu-only-128gb --hotness "$WORK/bad.json" 2>"$WORK/err.txt"; then
  echo "FAIL: bad hotness file accepted"; exit 1
fi
grep -q "bad.json: invalid JSON" "$WORK/err.txt" || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
: >"$WORK/empty.txt"
if "$STRATA" profile --model "$WORK/tiny" --prompts "$WORK/empty.txt" --out "$WORK/x.json" 2>"$WORK/err.txt"; then
  echo "FAIL: empty prompts file accepted"; exit 1
fi
grep -q "empty.txt: no prompts" "$WORK/err.txt" || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
echo "ok: profile"
