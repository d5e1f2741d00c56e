#!/usr/bin/env bash
# --gpu: the plan's GPU tier on the simulated GPU gives the logits of the all-CPU run bit for
# bit (V3, V3.2, V4, Engram; HF and GGUF; with some experts streamed from NVMe through the
# cache); run and logits say what the device holds and how the work overlapped; what the build
# cannot run, a device too small and flags without their companions are refused by name.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
TOKENS=1,17,200,33,4,91,300,7
# Every run names its cache: the default (auto) keeps MLA's latent cache in bf16 with --gpu none
# and in f32 where a GPU computes, whose attention reads f32 rows.
strata_f32() { "$STRATA" "$@" -ctk f32; }
fail() { echo "FAIL: $*"; [ -f "$WORK/err.txt" ] && cat "$WORK/err.txt"; exit 1; }

# A placement with every third expert on each tier, the plan's other tensors as planned.
split_placement() {  # plan.json -> placement.json
  python3 - "$1" "$2" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["experts"] = [[l, e, ["gpu", "dram", "nvme"][e % 3]] for l, e, _ in p["experts"]]
json.dump(p, open(sys.argv[2], "w"))
PY
}

for spec in "deepseek_v3 hf bf16" "deepseek_v32 gguf q4_k" "deepseek_v4 hf fp4" "deepseek_v3 hf bf16 --engram"; do
  set -- $spec
  arch=$1 fmt=$2 dtype=$3 extra=${4:-}
  m="$WORK/$arch-$fmt$extra"
  [ "$fmt" = gguf ] && m="$m.gguf"
  "$STRATA" make-tiny --arch "$arch" --format "$fmt" --dtype "$dtype" $extra --tokenizer generated --out "$m" >/dev/null
  "$STRATA" plan --model "$m" --profile rtx4090-256gb --json >"$WORK/plan.json"
  split_placement "$WORK/plan.json" "$WORK/placement.json"
  for gpu in none sim; do
    strata_f32 logits --model "$m" --tokens "$TOKENS" --decode --placement "$WORK/placement.json" --expert-cache-mb 1 \
      --gpu $gpu --out "$WORK/$gpu.npy" 2>"$WORK/err.txt" || fail "$spec --gpu $gpu"
  done
  cmp -s "$WORK/none.npy" "$WORK/sim.npy" || fail "$spec: --gpu sim changed the logits"
  grep -q "device sim-gpu0: holds .*routed experts .*shared experts" "$WORK/err.txt" || fail "$spec: no device line"
  grep -q "devices: sim-gpu0 busy .* in all .*(overlap" "$WORK/err.txt" || fail "$spec: no overlap line"
  grep -Eq "^step workspace on sim-gpu0: .* reserved, at most .* in use$" "$WORK/err.txt" || fail "$spec: no workspace line"
  # The profile's own plan: the GPU tier runs on the device (sim) or is re-planned (none).
  strata_f32 logits --model "$m" --tokens "$TOKENS" --profile rtx4090-256gb --gpu sim --out "$WORK/psim.npy" \
    2>"$WORK/err.txt" || fail "$spec --profile --gpu sim"
  strata_f32 logits --model "$m" --tokens "$TOKENS" --profile rtx4090-256gb --gpu none --out "$WORK/pnone.npy" \
    2>"$WORK/err.txt" || fail "$spec --profile --gpu none"
  grep -q "re-planned onto DRAM and NVMe" "$WORK/err.txt" || fail "$spec: --gpu none did not say the GPU tier was re-planned"
  cmp -s "$WORK/psim.npy" "$WORK/pnone.npy" || fail "$spec: the profile's GPU tier on the device changed the logits"
  if [ "$arch-$fmt$extra" = deepseek_v3-hf ]; then cp "$WORK/placement.json" "$WORK/v3-placement.json"; fi
done

m="$WORK/deepseek_v3-hf"
# Prefill offload: DRAM experts with 2+ tokens of the prompt copied to the device for the step,
# the same logits; said, and counted at the end. A GPU budget too small for the KV cache keeps
# the attention (and so the KV cache) off the device.
LONG=1,17,200,33,4,91,300,7,5,6,7,8
strata_f32 logits --model "$m" --tokens "$LONG" --profile rtx4090-256gb --vram-budget 0.0002G --gpu none \
  --out "$WORK/onone.npy" 2>"$WORK/err.txt" || fail "offload baseline"
strata_f32 logits --model "$m" --tokens "$LONG" --profile rtx4090-256gb --vram-budget 0.0002G --gpu sim --offload-batch 2 \
  --out "$WORK/osim.npy" 2>"$WORK/err.txt" || fail "--offload-batch 2"
cmp -s "$WORK/onone.npy" "$WORK/osim.npy" || fail "prefill offload changed the logits"
grep -q "^prefill offload: [1-9][0-9]* expert passes .* copied to sim-gpu0" "$WORK/err.txt" || fail "no offload line"
grep -q "note: prefill offload: .* 2+ tokens" "$WORK/err.txt" || fail "no offload note"
grep -q "note: the GPU budget cannot hold the step workspace" "$WORK/err.txt" || fail "no note on the workspace"
strata_f32 logits --model "$m" --tokens "$LONG" --gpu none --offload-batch 2 --out "$WORK/x.npy" 2>"$WORK/err.txt" ||
  fail "--offload-batch without a device"
grep -q "has no GPU device to offload to" "$WORK/err.txt" || fail "--offload-batch without a device not said"
# Placed on the GPU but no GPU: said, and run from DRAM.
strata_f32 logits --model "$m" --tokens "$TOKENS" --placement "$WORK/v3-placement.json" --expert-cache-mb 1 --gpu none \
  --out "$WORK/x.npy" 2>"$WORK/err.txt" || fail "GPU-tier experts with --gpu none"
grep -q "experts .* puts on the GPU run from DRAM on the CPU (--gpu none)" "$WORK/err.txt" || fail "GPU-tier experts on the CPU not said"
expect_error() {  # pattern, args...
  local pattern=$1
  shift
  if strata_f32 logits --model "$m" --tokens "$TOKENS" --out "$WORK/x.npy" "$@" 2>"$WORK/err.txt"; then fail "accepted: $*"; fi
  grep -q -- "$pattern" "$WORK/err.txt" || fail "$* did not say '$pattern'"
}
expect_error "; --gpu sim runs the plan.s GPU tier on a simulated device" --gpu cuda:7
expect_error "'gpu0' is not one of auto, none, sim, cuda:N" --gpu gpu0
expect_error "--sim-throttle paces the simulated GPU" --sim-throttle --gpu sim
expect_error "--cuda-graphs captures a CUDA device's work: give --gpu cuda:N" --cuda-graphs --gpu sim
python3 - "$WORK/v3-placement.json" "$WORK/small.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["budget_gb"]["gpu"] = 0.00001
json.dump(p, open(sys.argv[2], "w"))
PY
expect_error "sim-gpu0: the output head needs .* of its" --placement "$WORK/small.json" --expert-cache-mb 1 --gpu sim
# Throttled to the profile's rates, a generation still gives the same tokens.
strata_f32 run --model "$m" -p "Hello there" -n 4 --profile rtx4090-256gb --gpu sim --sim-throttle >"$WORK/a.txt" 2>"$WORK/err.txt" ||
  fail "--sim-throttle run"
strata_f32 run --model "$m" -p "Hello there" -n 4 --gpu none >"$WORK/b.txt" 2>/dev/null
cmp -s "$WORK/a.txt" "$WORK/b.txt" || fail "--gpu sim --sim-throttle generated other tokens"
# llama.cpp's -ngl / --cpu-moe shape the plan: what the device holds follows them, the logits do not.
strata_f32 logits --model "$m" --tokens "$TOKENS" --profile rtx4090-256gb --gpu sim -ngl 0 --out "$WORK/n0.npy" \
  2>"$WORK/err.txt" || fail "-ngl 0"
grep -q "device sim-gpu0: holds nothing" "$WORK/err.txt" || fail "-ngl 0 left something on the GPU"
strata_f32 logits --model "$m" --tokens "$TOKENS" --profile rtx4090-256gb --gpu sim -cmoe --out "$WORK/cm.npy" \
  2>"$WORK/err.txt" || fail "-cmoe"
grep "device sim-gpu0: holds" "$WORK/err.txt" | grep -q "shared experts" || fail "-cmoe: no device line"
if grep "device sim-gpu0: holds" "$WORK/err.txt" | grep -q "routed experts"; then fail "-cmoe left routed experts on the GPU"; fi
strata_f32 logits --model "$m" --tokens "$TOKENS" --gpu none --out "$WORK/cpu.npy" 2>/dev/null
cmp -s "$WORK/n0.npy" "$WORK/cpu.npy" && cmp -s "$WORK/cm.npy" "$WORK/cpu.npy" || fail "-ngl / -cmoe changed the logits"
# The default cache (auto) where the GPU computes is the f32 one.
"$STRATA" logits --model "$m" --tokens "$TOKENS" --profile rtx4090-256gb --gpu sim -cmoe --out "$WORK/auto.npy" \
  2>"$WORK/err.txt" || fail "-ctk auto with --gpu sim"
cmp -s "$WORK/cm.npy" "$WORK/auto.npy" || fail "-ctk auto with --gpu sim is not the f32 cache"
# serve --gpu sim: /metrics gives each device's busy time, its copies and the MoE overlap.
# The log exists before the server starts: the port poll below reads it at once.
: >"$WORK/serve.log"
"$STRATA" serve --model "$m" --port 0 --profile rtx4090-256gb --gpu sim 2>"$WORK/serve.log" &
SPID=$!
trap 'kill -9 $SPID 2>/dev/null || true' EXIT
PORT=
for _ in $(seq 1 300); do
  PORT=$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' "$WORK/serve.log")
  [ -n "$PORT" ] && break
  kill -0 "$SPID" 2>/dev/null || fail "serve --gpu sim exited: $(cat "$WORK/serve.log")"
  sleep 0.1
done
[ -n "$PORT" ] || fail "serve --gpu sim did not start"
curl -sf "http://127.0.0.1:$PORT/v1/completions" -d '{"prompt":"Hello","max_tokens":4,"temperature":0}' >/dev/null ||
  fail "a completion with --gpu sim"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" || fail "/metrics"
kill -TERM "$SPID"; wait "$SPID" || true
for pat in 'strata_device_busy_seconds_total{device="cpu"} [0-9.e-]*$' \
  'strata_device_busy_seconds_total{device="sim-gpu0"} [0-9.e-]*$' 'strata_device_bytes_total{device="sim-gpu0",direction="in"} [1-9]' \
  'strata_moe_overlap_ratio [0-9.e-]*$' 'strata_moe_device_seconds_total [0-9.e-]*$'; do
  grep -q "$pat" "$WORK/metrics.txt" || fail "/metrics has no line like $pat: $(cat "$WORK/metrics.txt")"
done
grep -q 'strata_device_busy_seconds_total{device="sim-gpu0"} 0$' "$WORK/metrics.txt" && fail "the device's busy time stayed 0"
echo "gpu sim: OK"
