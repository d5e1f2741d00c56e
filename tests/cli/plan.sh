#!/usr/bin/env bash
# strata plan on the full-size configs (no weights) and on a tiny model; refusal is explained.
set -euo pipefail
STRATA=$1
WORK=$2
DATA=$(cd "$(dirname "$0")/.." && pwd)/data/configs
rm -rf "$WORK" && mkdir -p "$WORK"
for spec in "deepseek-v3-671b fp8" "deepseek-v3-671b q4_k" "deepseek-v4-flash fp4" "deepseek-v4-pro fp4"; do
  read -r cfg type <<<"$spec"
  out=$("$STRATA" plan --config "$DATA/$cfg.json" --weight-type "$type" --profile rtx4090-256gb --svg "$WORK/$cfg.svg")
  grep -q "predicted decode .* tokens/s" <<<"$out" || { echo "FAIL: $cfg: no prediction"; echo "$out"; exit 1; }
  /usr/bin/python3 "$(dirname "$0")/check_svg.py" "$WORK/$cfg.svg" 64 >/dev/null || exit 1
  echo "ok: $cfg $type: $(grep 'predicted decode' <<<"$out")"
done
"$STRATA" plan --config "$DATA/deepseek-v4-pro.json" --weight-type fp4 --profile rtx4090-256gb | grep "stream from NVMe" >/dev/null \
  || { echo "FAIL: V4-Pro FP4 must say it needs NVMe"; exit 1; }
if out=$("$STRATA" plan --config "$DATA/deepseek-v3-671b.json" --weight-type fp8 --profile cpu-only-128gb --dram-budget 8 2>&1); then
  echo "FAIL: 8 GB of DRAM accepted for V3"; exit 1
fi
grep -q "cannot run on cpu-only-128gb" <<<"$out" || { echo "FAIL: unclear refusal: $out"; exit 1; }
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/tiny" >/dev/null
"$STRATA" plan --model "$WORK/tiny" --profile cpu-only-128gb --json | python3 -c \
  'import json,sys; j=json.load(sys.stdin); assert j["weights_gb"]["gpu"] == 0; assert len(j["experts"]) == 2 * 8; print("ok: tiny model plan")'
