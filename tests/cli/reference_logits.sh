#!/usr/bin/env bash
# strata's logits against the independent NumPy references (tests/reference/deepseek_v3.py,
# tests/reference/deepseek_v4.py) on tiny DeepSeek-V3, V3.2, V4 and Engram models in every HF
# storage type: prefill, token-by-token decode and (V4) chunks of 5 through the caches. The
# comparisons run with --exact-dot (weights widened to f32); the last checks measure the
# default integer dot (int8 activations against FP4 weights) against the same reference (V3;
# on V4's tiny model a near-tie in its routing flips an expert, tests/unit/model covers it).
set -euo pipefail
STRATA=$1
WORK=$2
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3  # Debian's python3 with python3-numpy (tools/setup.sh installs it)
rm -rf "$WORK" && mkdir -p "$WORK"
if ! "$PY" -c "import numpy" 2>/dev/null; then
  echo "FAIL: $PY has no numpy (apt-get install python3-numpy)"
  exit 1
fi
# 20 tokens: past the tiny V4 window (8) and several compressed blocks of ratio 4 and 8.
TOKENS=5,300,17,42,99,7,128,64,3,250,11,480,33,2,77,150,9,61,400,12

compare() {  # ref got label [bound]
  "$PY" - "$1" "$2" "$3" "${4:-1e-6}" <<'PYEOF'
import sys
import numpy as np
ref, got = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
assert ref.shape == got.shape, (ref.shape, got.shape)
nmse = ((ref - got) ** 2).mean() / (ref ** 2).mean()
bound = float(sys.argv[4])
print(f"{sys.argv[3]:<40} NMSE vs NumPy reference {nmse:.2e}")
if not nmse < bound:
    sys.exit(f"FAIL: {sys.argv[3]}: NMSE {nmse:.3e} >= {bound:g}")
PYEOF
}

check() {  # arch dtype reference [--engram] [extra strata/reference flag] [dot: exact|int]
  local arch=$1 dtype=$2 ref=$3 engram=${4:-} flag=${5:-} dot=${6:-exact}
  local dot_flag=--exact-dot bound=1e-6
  # The integer dot's error: int8 activations, about 1e-4 NMSE per product (cpu-kernels/qdot.h).
  [ "$dot" = int ] && dot_flag= bound=1e-3
  # V4's own FP8/FP4 quantize-dequantize steps round to a coarse grid: where strata and NumPy
  # (summing in other orders) land a value on either side of a rounding tie, the one grid step
  # stays in the caches and the later positions differ by up to ~1e-4 (README, Correctness).
  # Those models are also compared without the steps (--no-act-quant on both sides) at 1e-6.
  [ "$arch" = deepseek_v4 ] && [ -z "$flag" ] && [ "$dtype" != f32 ] && bound=1e-4
  local model=$WORK/$arch$engram-$dtype
  [ -d "$model" ] || "$STRATA" make-tiny --arch "$arch" $engram --dtype "$dtype" --tokenizer generated --seed 11 \
    --out "$model" >/dev/null
  "$PY" "$HERE/reference/$ref" "$model" --tokens "$TOKENS" $flag --out "$model/ref$flag.npy"
  local modes="--prefill --decode"
  [ "$arch" = deepseek_v4 ] && modes="$modes --chunk=5"
  for mode in $modes; do
    # The references keep an f32 cache: -ctk f32 (the default bf16 latent cache of a CPU run is
    # held to its rounding of the f32 one in compute_options.sh).
    "$STRATA" logits --model "$model" --tokens "$TOKENS" $mode $flag $dot_flag -ctk f32 --out "$model/got.npy"
    compare "$model/ref$flag.npy" "$model/got.npy" "$arch $engram $dtype $mode $flag ${dot_flag:-(int dot)}" "$bound"
  done
}

for arch in deepseek_v3 deepseek_v32; do
  for dtype in f32 bf16 fp8 fp4; do check $arch $dtype deepseek_v3.py; done
done
for dtype in f32 bf16 fp8 fp4; do check deepseek_v4 $dtype deepseek_v4.py; done
check deepseek_v4 f32 deepseek_v4.py "" --no-act-quant
check deepseek_v4 f32 deepseek_v4.py --engram
check deepseek_v4 fp4 deepseek_v4.py --engram
for dtype in bf16 fp8 fp4; do check deepseek_v4 $dtype deepseek_v4.py "" --no-act-quant; done
check deepseek_v4 fp4 deepseek_v4.py --engram --no-act-quant
check deepseek_v3 f32 deepseek_v3.py --engram
check deepseek_v3 bf16 deepseek_v3.py --engram
check deepseek_v3 fp4 deepseek_v3.py "" "" int
