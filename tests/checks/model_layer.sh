#!/usr/bin/env bash
# The model files compose; the devices compute. runtime/model/ may use the CPU kernels' data
# types (weight views and types, RoPE tables, router and mHC parameters, the compute nodes
# experts live on, per-thread scratch, function references) but calls no kernel itself: every
# product, norm, attention core, routing and mixing step goes through a device's Ops
# (runtime/backend/ops.h), so a device other than the CPU can run it.
#   model_layer.sh SOURCE_DIR
set -euo pipefail
cd "$1"
fail=0
allowed='cpu-kernels/(weight_view|weight_type|rope|router|mhc|compute_arena|function_ref|scratch)\.h'
while IFS= read -r line; do
  echo "FAIL: $line (a kernel header in a model file: call the device's Ops)"
  fail=1
done < <(grep -nE '#include "cpu-kernels/' runtime/model/*.h runtime/model/*.cpp | grep -vE "$allowed" || true)
# Free calls of kernel functions (the Ops members are called as ops.f(...) / ops->f(...)).
kernels='linear|linear_rows|linear_t_rows|linear_pair|rms_norm|layer_norm|dequantize_rows|dequantize_row_ref|mla_attention|sink_attention|index_topk|index_pick|compress_pool|hc_pre|hc_post|hc_head|route_token|route_token_fixed|hadamard|fp8_qdq|fp4_qdq|softmax|swiglu|swiglu_limited|dot_f32|axpy_f32|sinkhorn'
while IFS= read -r line; do
  echo "FAIL: $line (a kernel called directly from a model file)"
  fail=1
done < <(grep -nP "(?<![.>\w:])($kernels)\s*\(" runtime/model/*.cpp | grep -vP '^\S+:\d+:\s*//' || true)
[ "$fail" = 0 ] && echo "model layer: OK (runtime/model calls the CPU kernels only through a device's Ops)"
exit "$fail"
