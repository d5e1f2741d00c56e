#!/usr/bin/env bash
# strata's logits against the independent NumPy reference (tests/reference/deepseek_v3.py)
# on tiny DeepSeek-V3 and V3.2 models in every HF storage type, prefill and decode.
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
TOKENS=5,300,17,42,99,7,128,64,3,250,11,480
for arch in deepseek_v3 deepseek_v32; do
  for dtype in f32 bf16 fp8 fp4; do
    model=$WORK/$arch-$dtype
    "$STRATA" make-tiny --arch "$arch" --dtype "$dtype" --tokenizer generated --seed 11 --out "$model" >/dev/null
    "$PY" "$HERE/reference/deepseek_v3.py" "$model" --tokens "$TOKENS" --out "$model/ref.npy"
    for mode in prefill decode; do
      "$STRATA" logits --model "$model" --tokens "$TOKENS" --$mode --out "$model/$mode.npy"
      "$PY" - "$model/ref.npy" "$model/$mode.npy" "$arch $dtype $mode" <<'PYEOF'
import sys
import numpy as np
ref, got = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
assert ref.shape == got.shape, (ref.shape, got.shape)
nmse = ((ref - got) ** 2).mean() / (ref ** 2).mean()
print(f"{sys.argv[3]:<28} NMSE vs NumPy reference {nmse:.2e}")
if not nmse < 1e-6:
    sys.exit(f"FAIL: {sys.argv[3]}: NMSE {nmse:.3e} >= 1e-6")
PYEOF
    done
  done
done
