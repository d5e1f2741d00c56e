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
# Every id of an eos_token_id list ends generation (config.json or generation_config.json):
# the token greedy decoding picks first (the argmax of the prompt's last logits), listed after
# the EOS, stops it right there.
ids=$("$STRATA" tokenize --model "$WORK/v3" --text "The quick brown fox" | tr -d '[] ')
"$STRATA" logits --model "$WORK/v3" --tokens "507,$ids" --out "$WORK/first.npy" >/dev/null 2>&1
id=$(python3 - "$WORK/first.npy" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<H", b[8:10])[0]
shape = eval(b[10:10 + n].decode().split("'shape':")[1].split(")")[0] + ")")
last = struct.unpack("<%df" % shape[-1], b[10 + n + 4 * shape[-1] * (shape[0] - 1):])
print(max(range(len(last)), key=lambda i: (last[i], -i)))
PY
)
for where in config.json generation_config.json; do
  rm -rf "$WORK/eos" && cp -r "$WORK/v3" "$WORK/eos"
  python3 - "$WORK/eos/$where" "$id" <<'PY'
import json, os, sys
c = json.load(open(sys.argv[1])) if os.path.exists(sys.argv[1]) else {}
c["eos_token_id"] = [508, int(sys.argv[2])]
json.dump(c, open(sys.argv[1], "w"))
PY
  out=$("$STRATA" run --model "$WORK/eos" --prompt "The quick brown fox" -n 12 --json 2>/dev/null)
  python3 -c 'import json, sys; r = json.loads(sys.argv[1]); assert (r["stop_reason"], r["generated_tokens"], r["text"]) == ("eos", 1, ""), r' "$out" \
    || { echo "FAIL: eos_token_id [508, $id] in $where did not stop generation: $out"; exit 1; }
done
echo "ok: every eos_token_id stops generation"
# Errors are named.
if "$STRATA" run --model "$WORK/v3" --prompt "x" --top-p 1.5 2>/dev/null; then echo "FAIL: top-p 1.5 accepted"; exit 1; fi
if out=$("$STRATA" logits --model "$WORK/v3" --tokens 1,x --out "$WORK/x.npy" 2>&1); then echo "FAIL: bad ids accepted"; exit 1; fi
grep -q "'x' is not a token id" <<<"$out" || { echo "FAIL: unclear error: $out"; exit 1; }
echo "ok: errors"
