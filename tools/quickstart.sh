#!/usr/bin/env bash
# The main job on the embedded default: set up, build, generate a tiny DeepSeek-V3 model
# (HF layout, the real tokenizer when installed), show what it is made of, and generate
# text with it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
TINY=build/models/tiny-v3
[ -f "$TINY/config.json" ] || build/bin/strata make-tiny --arch deepseek_v3 --out "$TINY"
build/bin/strata inspect "$TINY"
echo
echo "strata run --model $TINY --prompt 'The capital of France is' -n 32"
build/bin/strata run --model "$TINY" --prompt "The capital of France is" -n 32
