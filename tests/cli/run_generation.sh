#!/usr/bin/env bash
# strata run on tiny V3 / V3.2 models in HF and GGUF form: text comes out, greedy decoding
# is deterministic, seeded sampling repeats, and the timing lines are printed.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/v3" >/dev/null
"$STRATA" make-tiny --arch deepseek_v32 --dtype fp8 --tokenizer generated --out "$WORK/v32" >/dev/null
"$STRATA" make-tiny --arch deepseek_v3 --format gguf --dtype q8_0 --tokenizer generated --out "$WORK/v3.gguf" >/dev/null
"$STRATA" make-tiny --arch deepseek_v32 --format gguf --dtype q8_0 --tokenizer generated --out "$WORK/v32.gguf" >/dev/null
for m in v3 v32 v3.gguf v32.gguf; do
  a=$("$STRATA" run --model "$WORK/$m" --prompt "The quick brown fox" -n 12 2>"$WORK/$m.err")
  b=$("$STRATA" run --model "$WORK/$m" --prompt "The quick brown fox" -n 12 2>/dev/null)
  [ -n "$a" ] || { echo "FAIL: $m produced no text"; exit 1; }
  [ "$a" = "$b" ] || { echo "FAIL: $m greedy output differs between runs"; exit 1; }
  grep -q "prefill: .* tokens/s" "$WORK/$m.err" || { echo "FAIL: $m printed no prefill rate"; cat "$WORK/$m.err"; exit 1; }
  grep -q "decode: .* tokens/s" "$WORK/$m.err" || { echo "FAIL: $m printed no decode rate"; cat "$WORK/$m.err"; exit 1; }
  s1=$("$STRATA" run --model "$WORK/$m" --prompt "Hello" -n 12 --temp 0.8 --top-p 0.9 --top-k 40 --seed 5 2>/dev/null)
  s2=$("$STRATA" run --model "$WORK/$m" --prompt "Hello" -n 12 --temp 0.8 --top-p 0.9 --top-k 40 --seed 5 2>/dev/null)
  [ "$s1" = "$s2" ] || { echo "FAIL: $m seeded sampling differs between runs"; exit 1; }
  echo "ok: $m: $(tail -1 "$WORK/$m.err")"
done
# Errors are named.
if "$STRATA" run --model "$WORK/v3" --prompt "x" --top-p 1.5 2>/dev/null; then echo "FAIL: top-p 1.5 accepted"; exit 1; fi
if out=$("$STRATA" logits --model "$WORK/v3" --tokens 1,x --out "$WORK/x.npy" 2>&1); then echo "FAIL: bad ids accepted"; exit 1; fi
grep -q "'x' is not a token id" <<<"$out" || { echo "FAIL: unclear error: $out"; exit 1; }
echo "ok: errors"
