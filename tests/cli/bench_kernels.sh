#!/usr/bin/env bash
# strata bench kernels runs on this CPU (whatever its ISA and oneDNN's support for it) and
# prints the JSON rows the README documents. Figures are not judged here.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
"$STRATA" bench kernels --json --types q8_0,mxfp4 --batch 1,8 --shapes v4 >"$WORK/k.json"
python3 - "$WORK/k.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["dram_read_gb_per_s"] > 0 and j["onednn_gemm_gflop_per_s"] > 0, j
assert j["onednn_gemm_type"] in ("bf16", "f32"), j
rows = j["rows"]
assert len(rows) == 2 * 2 * 2, len(rows)
for r in rows:
    for k in ("type", "shape", "batch", "us", "gb_per_s", "gflop_per_s", "ratio"):
        assert k in r, (k, r)
    assert r["us"] > 0 and r["ratio"] > 0, r
print(f"ok: bench kernels ({j['dispatch']}, oneDNN {j['onednn_gemm_type']})")
PY
