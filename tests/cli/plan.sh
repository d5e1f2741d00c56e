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
# --cache-type-k auto (the default) sizes MLA's latent cache in bf16 where no GPU computes and
# in f32 where one does.
kv_gb() { "$STRATA" plan --model "$WORK/tiny" --profile "$1" --json "${@:2}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kv_cache"]["gb"])'; }
[ "$(kv_gb cpu-only-128gb)" = "$(kv_gb cpu-only-128gb -ctk bf16)" ] || { echo "FAIL: auto is not bf16 without a GPU"; exit 1; }
[ "$(kv_gb rtx4090-256gb)" = "$(kv_gb rtx4090-256gb -ctk f32)" ] || { echo "FAIL: auto is not f32 with a GPU"; exit 1; }
echo "ok: -ctk auto sizes the cache in bf16 without a GPU, f32 with one"
# V4 the same (its window ring and compressed rows; the compressors' blocks and the indexer's rows stay f32).
v4_kv() { "$STRATA" plan --config "$DATA/deepseek-v4-flash.json" --weight-type fp4 --profile cpu-only-128gb --json "$@" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["kv_cache"]["gb"])'; }
v4_auto=$(v4_kv) v4_bf16=$(v4_kv -ctk bf16) v4_f32=$(v4_kv -ctk f32)
[ "$v4_auto" = "$v4_bf16" ] || { echo "FAIL: V4: auto ($v4_auto GB) is not bf16 ($v4_bf16 GB) without a GPU"; exit 1; }
python3 -c "import sys; sys.exit(0 if $v4_bf16 < 0.7 * $v4_f32 else 1)" || { echo "FAIL: V4 bf16 cache $v4_bf16 GB vs f32 $v4_f32 GB"; exit 1; }
echo "ok: V4's cache at 4096 tokens: $v4_f32 GB f32, $v4_bf16 GB bf16 (auto without a GPU)"
# Plan and run tell the same story: the same flags give the same expert tiers, the same
# predicted decode and the same reserved context (the model's own, here 1024, not 4096) —
# also where a tight DRAM budget sends experts to NVMe.
for budget in 0.00085G 0.00105G; do
  flags=(--profile rtx4090-256gb --vram-budget 0 --dram-budget "$budget" -ctk f32)
  "$STRATA" run --model "$WORK/tiny" -p Hi -n 1 "${flags[@]}" 2>"$WORK/run.err" >/dev/null || { cat "$WORK/run.err"; exit 1; }
  ran=$(sed -n 's/^placement on [^:]*: routed experts \([0-9]*\) gpu \/ \([0-9]*\) dram \/ \([0-9]*\) nvme;.*predicted decode \([0-9.]*\) tokens.*/\1 \2 \3 \4/p' "$WORK/run.err")
  [ -n "$ran" ] || { echo "FAIL: run printed no placement line"; cat "$WORK/run.err"; exit 1; }
  planned=$("$STRATA" plan --model "$WORK/tiny" "${flags[@]}" --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
n = {t: sum(1 for e in j["experts"] if e[2] == t) for t in ("gpu", "dram", "nvme")}
assert j["kv_cache"]["context"] == 1024, j["kv_cache"]
print(n["gpu"], n["dram"], n["nvme"], "%.2f" % j["predicted_decode_tokens_per_s"])')
  [ "$ran" = "$planned" ] || { echo "FAIL: --dram-budget $budget: run placed '$ran', plan '$planned'"; exit 1; }
  echo "ok: plan and run agree at --dram-budget $budget: $ran"
done
