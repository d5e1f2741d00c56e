#!/usr/bin/env bash
# make-tiny writes every architecture and layout; inspect's byte totals add up to the files.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"

check_sum() {  # model path, expected file bytes
  local json total
  json=$("$STRATA" inspect "$1" --json)
  total=$(python3 -c 'import json,sys; s=json.load(sys.stdin); \
assert sum(s["bytes_by_class"].values()) == s["tensor_bytes"], "classes"; \
assert sum(s["bytes_by_type"].values()) == s["tensor_bytes"], "types"; \
assert s["tensor_bytes"] + s["header_bytes"] == s["file_bytes"]; print(s["file_bytes"])' <<<"$json")
  if [ "$total" != "$2" ]; then
    echo "FAIL: inspect $1 reports $total file bytes, the files hold $2"
    exit 1
  fi
  echo "ok: $1 ($total bytes)"
}

for arch in deepseek_v3 deepseek_v32; do
  for dtype in bf16 fp8; do
    out=$WORK/$arch-$dtype
    "$STRATA" make-tiny --arch "$arch" --dtype "$dtype" --tokenizer generated --out "$out" >/dev/null
    check_sum "$out" "$(cat "$out"/*.safetensors | wc -c)"
  done
done

# V4 (FP8 attention + FP4 experts as published) and Engram on both families.
for spec in "deepseek_v4 bf16" "deepseek_v4 fp4" "deepseek_v3 bf16 --engram" "deepseek_v4 fp4 --engram"; do
  read -r arch dtype engram <<<"$spec"
  out=$WORK/$arch-$dtype${engram:+-engram}
  "$STRATA" make-tiny --arch "$arch" --dtype "$dtype" $engram --tokenizer generated --out "$out" >/dev/null
  check_sum "$out" "$(cat "$out"/*.safetensors | wc -c)"
done

out=$WORK/v3-sharded
"$STRATA" make-tiny --arch deepseek_v3 --shards 3 --tokenizer generated --out "$out" >/dev/null
[ -f "$out/model.safetensors.index.json" ] || { echo "FAIL: no index for shards"; exit 1; }
check_sum "$out" "$(cat "$out"/*.safetensors | wc -c)"

for dtype in q8_0 q4_k bf16; do
  out=$WORK/v3-$dtype.gguf
  "$STRATA" make-tiny --arch deepseek_v3 --format gguf --dtype "$dtype" --tokenizer generated --out "$out" >/dev/null
  check_sum "$out" "$(wc -c <"$out")"
done

# Same seed, same bytes.
"$STRATA" make-tiny --arch deepseek_v3 --seed 7 --tokenizer generated --out "$WORK/a" >/dev/null
"$STRATA" make-tiny --arch deepseek_v3 --seed 7 --tokenizer generated --out "$WORK/b" >/dev/null
cmp "$WORK/a/model.safetensors" "$WORK/b/model.safetensors"
echo "ok: deterministic"

# tokenize / detokenize round trip through the CLI.
ids=$("$STRATA" tokenize --model "$WORK/deepseek_v3-bf16" --text "Hello, world 123")
text=$("$STRATA" detokenize --model "$WORK/deepseek_v3-bf16" --ids "$(tr -d '[] ' <<<"$ids")")
[ "$text" = "Hello, world 123" ] || { echo "FAIL: round trip gave '$text'"; exit 1; }
echo "ok: tokenize round trip"
