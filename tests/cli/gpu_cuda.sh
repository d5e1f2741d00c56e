#!/usr/bin/env bash
# --gpu cuda:0 runs the plan's GPU tier on a CUDA device: the logits stay within NMSE 1e-6 of
# the all-CPU run (V3, V3.2, V4, Engram; HF and GGUF, a lattice i-quant too; experts split
# GPU/DRAM/NVMe, and the profile's own plan), prefill and decode agree on the device, and the
# device lines name it.
# The bound: the device computes in f32 as the CPU does, in another summation order, and a
# tiny random model's logits move by about 1e-10 of their energy for that; 1e-6 leaves room for
# an FP8/FP4 activation round trip that rounds one value the other way. Every run is
# --exact-dot: the CPU's default products round activations to int8 (or BF16), the device's do
# not, and that alone moves these logits by 1e-5 to 1e-2. Skipped (77) where the
# build has no CUDA or the machine no CUDA device.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
TOKENS=1,17,200,33,4,91,300,7
fail() { echo "FAIL: $*"; [ -f "$WORK/err.txt" ] && cat "$WORK/err.txt"; exit 1; }

"$STRATA" make-tiny --arch deepseek_v3 --format hf --dtype bf16 --tokenizer generated --out "$WORK/probe" >/dev/null
if ! "$STRATA" logits --model "$WORK/probe" --tokens 1,2 --gpu cuda:0 --out "$WORK/probe.npy" 2>"$WORK/err.txt"; then
  if grep -q -e "no CUDA" -e "CUDA device" -e "cudaGetDeviceCount" "$WORK/err.txt"; then
    echo "skipped: $(tail -1 "$WORK/err.txt")"
    exit 77
  fi
  fail "--gpu cuda:0 on a tiny model"
fi

nmse() {  # a.npy b.npy bound label
  python3 - "$@" <<'PY' || exit 1
import sys, numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
e = float(((a - b) ** 2).sum() / max((a ** 2).sum(), 1e-30))
print(f"  {sys.argv[4]}: NMSE {e:.3g}")
sys.exit(0 if a.shape == b.shape and np.isfinite(b).all() and e < float(sys.argv[3]) else 1)
PY
}

split_placement() {  # plan.json -> placement.json
  python3 - "$1" "$2" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["experts"] = [[l, e, ["gpu", "dram", "nvme"][e % 3]] for l, e, _ in p["experts"]]
json.dump(p, open(sys.argv[2], "w"))
PY
}

# The lattice i-quant needs rows of 256: its model is wider.
WIDE="--set hidden_size=256 --set moe_intermediate_size=256 --set intermediate_size=256"
for spec in "deepseek_v3 hf bf16" "deepseek_v3 gguf q4_k" "deepseek_v32 gguf q8_0" "deepseek_v32 hf fp8" \
            "deepseek_v4 hf fp4" "deepseek_v3 hf bf16 --engram" "deepseek_v3 gguf iq2_xxs $WIDE"; do
  set -- $spec
  arch=$1 fmt=$2 dtype=$3 extra="${*:4}"
  m="$WORK/$arch-$fmt-$dtype${4:-}"
  [ "$fmt" = gguf ] && m="$m.gguf"
  "$STRATA" make-tiny --arch "$arch" --format "$fmt" --dtype "$dtype" $extra --tokenizer generated --out "$m" >/dev/null
  "$STRATA" plan --model "$m" --profile rtx4090-256gb --json >"$WORK/plan.json"
  split_placement "$WORK/plan.json" "$WORK/placement.json"
  for gpu in none cuda:0; do
    for mode in prefill decode; do
      flag=""
      [ $mode = decode ] && flag=--decode
      "$STRATA" logits --model "$m" --tokens "$TOKENS" $flag --exact-dot --placement "$WORK/placement.json" --expert-cache-mb 1 \
        --gpu $gpu --out "$WORK/$gpu-$mode.npy" 2>"$WORK/err.txt" || fail "$spec --gpu $gpu $mode"
    done
  done
  grep -q "device cuda:0: holds .*routed experts" "$WORK/err.txt" || fail "$spec: no device line"
  nmse "$WORK/none-prefill.npy" "$WORK/cuda:0-prefill.npy" 1e-6 "$spec prefill, cuda:0 vs none" || fail "$spec prefill"
  nmse "$WORK/none-decode.npy" "$WORK/cuda:0-decode.npy" 1e-6 "$spec decode, cuda:0 vs none" || fail "$spec decode"
  nmse "$WORK/cuda:0-prefill.npy" "$WORK/cuda:0-decode.npy" 1e-6 "$spec on cuda:0, prefill vs decode" ||
    fail "$spec: prefill and decode differ on the device"
  "$STRATA" logits --model "$m" --tokens "$TOKENS" --exact-dot --profile rtx4090-256gb --gpu cuda:0 --out "$WORK/p.npy" \
    2>"$WORK/err.txt" || fail "$spec --profile --gpu cuda:0"
  nmse "$WORK/none-prefill.npy" "$WORK/p.npy" 1e-6 "$spec, the profile's plan on cuda:0" || fail "$spec profile plan"
done

# A bf16 KV cache (-ctk bf16) read and written by the device's attention: the CPU's logits over
# the same rounded cache.
for m in "$WORK/deepseek_v3-hf-bf16" "$WORK/deepseek_v32-hf-fp8" "$WORK/deepseek_v4-hf-fp4"; do
  for gpu in none cuda:0; do
    "$STRATA" logits --model "$m" --tokens "$TOKENS" --decode --exact-dot -ctk bf16 --profile rtx4090-256gb \
      --gpu $gpu --out "$WORK/bf16-$gpu.npy" 2>"$WORK/err.txt" || fail "$m -ctk bf16 --gpu $gpu"
  done
  nmse "$WORK/bf16-none.npy" "$WORK/bf16-cuda:0.npy" 1e-6 "$m -ctk bf16, cuda:0 vs none" || fail "$m bf16 cache"
done

# --cuda-graphs: each layer's decode attention launched as one CUDA graph (updated in place
# from token to token) gives the eager launches' logits.
for m in "$WORK/deepseek_v3-hf-bf16" "$WORK/deepseek_v32-hf-fp8"; do
  for graphs in "" --cuda-graphs; do
    "$STRATA" logits --model "$m" --tokens "$TOKENS" --decode --exact-dot --profile rtx4090-256gb --gpu cuda:0 $graphs \
      -v --out "$WORK/g$graphs.npy" 2>"$WORK/err.txt" || fail "$m $graphs"
  done
  grep -q "cuda graphs on cuda:0: [1-9][0-9]* launched" "$WORK/err.txt" || fail "$m: no graphs launched"
  nmse "$WORK/g.npy" "$WORK/g--cuda-graphs.npy" 1e-10 "$m --cuda-graphs vs eager" || fail "$m --cuda-graphs"
done

# Text: greedy generation on the device gives the CPU's tokens.
m="$WORK/deepseek_v3-hf-bf16"
for gpu in none cuda:0; do
  "$STRATA" run --model "$m" --prompt "Hello" -n 16 --temp 0 --exact-dot --profile rtx4090-256gb --gpu $gpu >"$WORK/$gpu.txt" \
    2>"$WORK/err.txt" || fail "run --gpu $gpu"
done
cmp -s "$WORK/none.txt" "$WORK/cuda:0.txt" || { diff "$WORK/none.txt" "$WORK/cuda:0.txt"; fail "greedy text differs on the device"; }
grep -q "devices: cuda:0 busy" "$WORK/err.txt" || fail "no busy line for cuda:0"
echo "gpu_cuda: all passed"
