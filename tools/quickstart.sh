#!/usr/bin/env bash
# The main job on the embedded default: set up, build, generate a tiny DeepSeek-V3 model
# (HF layout, the real tokenizer when installed), show what it is made of, generate text with
# it, and generate again with its routed experts streamed from disk through a DRAM cache
# smaller than they are (io_uring + O_DIRECT), printing where every expert byte came from.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
TINY=build/models/tiny-v3
[ -f "$TINY/config.json" ] || build/bin/strata make-tiny --arch deepseek_v3 --out "$TINY"
build/bin/strata inspect "$TINY"
echo
echo "strata run --model $TINY --prompt 'The capital of France is' -n 32"
build/bin/strata run --model "$TINY" --prompt "The capital of France is" -n 32
echo
echo "strata run --model $TINY --prompt 'The capital of France is' -n 32 --expert-cache-mb 0.1"
build/bin/strata run --model "$TINY" --prompt "The capital of France is" -n 32 --expert-cache-mb 0.1
