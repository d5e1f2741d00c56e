#!/usr/bin/env bash
# A weight file truncated while a run reads it: the run ends with exit 1 and the file named —
# never a signal, never an output computed from it. Memory-mapped path (SIGBUS, caught and
# named) and expert-cache path (reads that come back short).
set -uo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
TOKENS=$(seq 1 6000 | awk "{print \$1 % 500}" | paste -sd,)

check() {  # label, rc, stderr file, output file
  local label=$1 rc=$2 err=$3 out=$4
  if [ "$rc" -eq 0 ]; then
    echo "SKIP: $label: the run finished before the file was cut (machine too fast for this size)"
    return
  fi
  if [ "$rc" -gt 127 ]; then echo "FAIL: $label: killed by signal $((rc - 128)): $(tail -2 "$err")"; exit 1; fi
  grep -q "model.safetensors" "$err" || { echo "FAIL: $label: the file is not named: $(tail -3 "$err")"; exit 1; }
  [ ! -e "$out" ] || { echo "FAIL: $label: an output was written from a cut file"; exit 1; }
  echo "ok: $label: $(grep 'strata: error' "$err" | head -1 | cut -c1-160)"
}

for mode in mapped cache; do
  m="$WORK/$mode"
  "$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --set hidden_size=1024 --set moe_intermediate_size=512 \
    --set intermediate_size=2048 --set num_hidden_layers=4 --set max_position_embeddings=8192 --out "$m" >/dev/null || exit 1
  extra=()
  [ "$mode" = cache ] && extra=(--expert-cache-mb 8)
  "$STRATA" logits --model "$m" --tokens "$TOKENS" --decode --out "$WORK/$mode.npy" "${extra[@]}" \
    >/dev/null 2>"$WORK/$mode.err" &
  pid=$!
  sleep 1
  truncate -s 100000 "$m/model.safetensors"
  wait "$pid"
  check "$mode" $? "$WORK/$mode.err" "$WORK/$mode.npy"
done
