#!/usr/bin/env bash
# The compute options of a model run: --threads / --pin-threads change where the products run,
# never their results; --exact-dot changes the small-batch products of integer/FP4 weights from
# the integer dot to widened f32 weights (different numbers, same tokens' shapes).
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
TOKENS=1,17,200,33,4,91,300,7
m="$WORK/v3"
"$STRATA" make-tiny --arch deepseek_v3 --dtype fp4 --tokenizer generated --out "$m" >/dev/null
"$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --out "$WORK/default.npy" 2>/dev/null
"$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --threads 1 --pin-threads --out "$WORK/pinned.npy" \
  2>"$WORK/err.txt"
grep -q "compute: 1 threads, each pinned to one hardware thread" "$WORK/err.txt" || { echo "FAIL: no compute line"; cat "$WORK/err.txt"; exit 1; }
cmp -s "$WORK/default.npy" "$WORK/pinned.npy" || { echo "FAIL: one pinned thread changed the logits"; exit 1; }
grep -q "products at decode: mxfp4 by integer dot" "$WORK/err.txt" || { echo "FAIL: no products line"; cat "$WORK/err.txt"; exit 1; }
"$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --numa-split --out "$WORK/split.npy" 2>"$WORK/err.txt"
nodes=$(python3 -c 'import glob; print(len(glob.glob("/sys/devices/system/node/node[0-9]*")) or 1)')
if [ "$nodes" = 1 ]; then
  grep -q "compute: .*one NUMA node: nothing to split" "$WORK/err.txt" || { echo "FAIL: --numa-split on one node not reported"; cat "$WORK/err.txt"; exit 1; }
fi
cmp -s "$WORK/default.npy" "$WORK/split.npy" || { echo "FAIL: --numa-split changed the logits"; exit 1; }
"$STRATA" logits -v --model "$m" --tokens "$TOKENS" --decode --exact-dot --out "$WORK/exact.npy" 2>"$WORK/err.txt"
grep -q "products at decode: mxfp4 widened to f32" "$WORK/err.txt" || { echo "FAIL: --exact-dot not reported"; cat "$WORK/err.txt"; exit 1; }
grep -q "products in batches of 16+ tokens: oneDNN f32 GEMM (--exact-dot)" "$WORK/err.txt" ||
  { echo "FAIL: --exact-dot's batched products not reported"; cat "$WORK/err.txt"; exit 1; }
if cmp -s "$WORK/default.npy" "$WORK/exact.npy"; then
  echo "FAIL: --exact-dot gave the integer dot's logits"
  exit 1
fi
if "$STRATA" logits -v --model "$m" --tokens "$TOKENS" --threads 0 --out "$WORK/x.npy" 2>"$WORK/err.txt"; then
  echo "FAIL: --threads 0 accepted"
  exit 1
fi
# --repack: the CPU's Q4_K matrices in its tiled layout, said with -v (experts) and a note (the rest); the logits
# those of the stored rows up to the tiles' rounding; experts read through the cache stay as stored.
q="$WORK/q4k"
"$STRATA" make-tiny --arch deepseek_v3 --dtype q4_k --format gguf --tokenizer generated --set hidden_size=256 \
  --set moe_intermediate_size=256 --out "$q" >/dev/null
"$STRATA" logits --model "$q" --tokens "$TOKENS" --decode --out "$WORK/stored.npy" 2>/dev/null
"$STRATA" logits -v --model "$q" --tokens "$TOKENS" --decode --repack --out "$WORK/repacked.npy" 2>"$WORK/err.txt"
if grep -q "note: --repack: nothing repacked: at this CPU's kernel level" "$WORK/err.txt"; then
  # Where the tiles of the layout do not pay (AVX2, scalar: STRATA_CPU_LEVEL), nothing is repacked.
  cmp -s "$WORK/stored.npy" "$WORK/repacked.npy" || { echo "FAIL: --repack that repacks nothing changed the logits"; exit 1; }
  echo "  (--repack repacks nothing at this kernel level: its layout's checks skipped)"
else
grep -q "experts: .* K-quant (Q2_K to Q6_K) matrices repacked into 16-row tiles" "$WORK/err.txt" ||
  { echo "FAIL: --repack not reported"; cat "$WORK/err.txt"; exit 1; }
grep -q "note: --repack: .* matrices of attention, dense and shared FFNs and the output head" "$WORK/err.txt" ||
  { echo "FAIL: the dense matrices' repacking not reported"; cat "$WORK/err.txt"; exit 1; }
"$STRATA" logits -v --model "$q" --tokens "$TOKENS" --decode --repack --expert-cache-mb 64 --out "$WORK/cached.npy" \
  2>"$WORK/err.txt"
grep -q -- "--repack: no Q2_K / Q4_K / Q5_K matrix of whole 16-row tiles fixed in DRAM" "$WORK/err.txt" ||
  { echo "FAIL: --repack over the cache not reported"; cat "$WORK/err.txt"; exit 1; }
/usr/bin/python3 - "$WORK/stored.npy" "$WORK/repacked.npy" "$WORK/cached.npy" <<'PY'  # Debian's python3 with python3-numpy
import sys, numpy as np
a = np.load(sys.argv[1])
for f in sys.argv[2:]:
    b = np.load(f)
    nmse = float(((a - b) ** 2).sum() / (a ** 2).sum())
    assert a.shape == b.shape and nmse < 1e-3, (f, a.shape, b.shape, nmse)
PY
fi
# --cache-type-k bf16 (-ctk): the latent cache in bf16 rows; logits within its rounding of the
# f32 cache's, prefill and decode agreeing; auto (the default) is bf16 with --gpu none; a type
# it does not have refused by name; the plan sizes the cache at half.
"$STRATA" logits --model "$q" --tokens "$TOKENS" --decode -ctk bf16 --out "$WORK/bf16_decode.npy" 2>/dev/null
"$STRATA" logits --model "$q" --tokens "$TOKENS" --prefill --cache-type-k bf16 --out "$WORK/bf16_prefill.npy" 2>/dev/null
"$STRATA" logits --model "$q" --tokens "$TOKENS" --decode -ctk f32 --out "$WORK/f32_decode.npy" 2>/dev/null
"$STRATA" logits --model "$q" --tokens "$TOKENS" --decode --out "$WORK/auto_decode.npy" 2>/dev/null
cmp -s "$WORK/auto_decode.npy" "$WORK/bf16_decode.npy" || { echo "FAIL: -ctk auto (the default) is not bf16 with --gpu none"; exit 1; }
/usr/bin/python3 - "$WORK" <<'PY'
import sys, numpy as np
w = sys.argv[1]
f32, dec, pre = (np.load(f"{w}/{n}.npy") for n in ("f32_decode", "bf16_decode", "bf16_prefill"))
nmse = lambda a, b: float(((a - b) ** 2).sum() / (a ** 2).sum())
assert 0 < nmse(f32, dec) < 1e-3, ("bf16 cache vs f32", nmse(f32, dec))
assert nmse(pre, dec) < 1e-3, ("bf16 prefill vs decode", nmse(pre, dec))
PY
if "$STRATA" logits --model "$q" --tokens "$TOKENS" -ctk q8_0 --out "$WORK/x.npy" 2>"$WORK/err.txt"; then
  echo "FAIL: -ctk q8_0 accepted"; exit 1
fi
grep -q "cache-type-k: q8_0 not in {auto,f32,bf16}" "$WORK/err.txt" || { echo "FAIL: unclear -ctk error"; cat "$WORK/err.txt"; exit 1; }
kv() { "$STRATA" plan --model "$q" --profile cpu-only-128gb --json "$@" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["kv_cache"]["gb"])'; }
f32_kv=$(kv -ctk f32) bf16_kv=$(kv -ctk bf16)
/usr/bin/python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); assert a > 0 and abs(b - a / 2) < 1e-9, (a, b)" \
  "$f32_kv" "$bf16_kv" || { echo "FAIL: plan's KV with bf16 $bf16_kv GB against $f32_kv"; exit 1; }
# V4: the window ring and compressed rows in bf16 the same way (auto: bf16 with --gpu none), named by run -v.
v4="$WORK/v4"
"$STRATA" make-tiny --arch deepseek_v4 --tokenizer generated --out "$v4" >/dev/null
"$STRATA" logits -v --model "$v4" --tokens "$TOKENS" --decode --out "$WORK/v4_auto.npy" 2>"$WORK/err.txt"
grep -q "KV cache (window and compressed keys): bf16 rows (--cache-type-k auto)" "$WORK/err.txt" \
  || { echo "FAIL: run -v does not name V4's cache"; cat "$WORK/err.txt"; exit 1; }
"$STRATA" logits --model "$v4" --tokens "$TOKENS" --decode -ctk bf16 --out "$WORK/v4_bf16.npy" 2>/dev/null
"$STRATA" logits --model "$v4" --tokens "$TOKENS" --decode -ctk f32 --out "$WORK/v4_f32.npy" 2>/dev/null
cmp -s "$WORK/v4_auto.npy" "$WORK/v4_bf16.npy" || { echo "FAIL: V4: -ctk auto is not bf16 with --gpu none"; exit 1; }
/usr/bin/python3 - "$WORK" <<'PY'
import sys, numpy as np
w = sys.argv[1]
a, b = np.load(f"{w}/v4_f32.npy"), np.load(f"{w}/v4_bf16.npy")
nmse = float(((a - b) ** 2).sum() / (a ** 2).sum())
assert 0 < nmse < 1e-3, ("V4 bf16 cache vs f32", nmse)
PY
echo "compute options: OK"
