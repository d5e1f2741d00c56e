#!/usr/bin/env bash
# The main job on the embedded default: set up, build, generate a tiny DeepSeek-V3 model
# (HF layout, the real tokenizer when installed) and inspect it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
TINY=build/models/tiny-v3
[ -f "$TINY/config.json" ] || build/bin/strata make-tiny --arch deepseek_v3 --out "$TINY"
build/bin/strata inspect "$TINY"
