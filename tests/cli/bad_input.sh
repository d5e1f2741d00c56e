#!/usr/bin/env bash
# Bad input gives exit status 1 and a message naming the culprit — never a crash.
set -uo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"

expect_error() {  # needle, command...
  local needle=$1
  shift
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ $rc -ne 1 ]; then
    echo "FAIL: '$*' exited $rc (want 1): $out"
    exit 1
  fi
  if ! grep -qF -- "$needle" <<<"$out"; then
    echo "FAIL: '$*' said '$out' (want it to name '$needle')"
    exit 1
  fi
  echo "ok: $needle"
}

"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/m" >/dev/null || exit 1
"$STRATA" make-tiny --arch deepseek_v3 --format gguf --dtype q8_0 --tokenizer generated --out "$WORK/m.gguf" >/dev/null || exit 1

expect_error "$WORK/nowhere" "$STRATA" inspect "$WORK/nowhere"

cp -r "$WORK/m" "$WORK/truncated"
truncate -s 5000 "$WORK/truncated/model.safetensors"
expect_error "model.safetensors" "$STRATA" inspect "$WORK/truncated"

cp -r "$WORK/m" "$WORK/noconfig" && rm "$WORK/noconfig/config.json"
expect_error "config.json" "$STRATA" inspect "$WORK/noconfig"

cp -r "$WORK/m" "$WORK/badjson" && echo '{"model_type": "deepseek_v3",' >"$WORK/badjson/config.json"
expect_error "config.json" "$STRATA" inspect "$WORK/badjson"

cp -r "$WORK/m" "$WORK/notok" && rm "$WORK/notok/tokenizer.json"
expect_error "tokenizer.json" "$STRATA" tokenize --model "$WORK/notok" --text hi

cp "$WORK/m.gguf" "$WORK/badmagic.gguf" && printf 'GGUX' | dd of="$WORK/badmagic.gguf" conv=notrunc 2>/dev/null
expect_error "badmagic.gguf" "$STRATA" inspect "$WORK/badmagic.gguf"

cp "$WORK/m.gguf" "$WORK/short.gguf" && truncate -s 100000 "$WORK/short.gguf"
expect_error "short.gguf" "$STRATA" inspect "$WORK/short.gguf"

expect_error "not a token id" "$STRATA" detokenize --model "$WORK/m" --ids 1,x,3
expect_error "dtype" "$STRATA" make-tiny --arch deepseek_v3 --dtype q4_k --out "$WORK/x"
