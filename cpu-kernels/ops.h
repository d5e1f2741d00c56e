// Element-wise and per-row ops of the DeepSeek forward pass on f32 rows. Reductions accumulate
// in f32 except where noted; each op is tested against an f64 reference.
#pragma once

#include <cstdint>

namespace strata {

// y = x / sqrt(mean(x²) + eps) * w over rows of `dim` (x and y may alias). Sum in f64.
void rms_norm(const float* x, const float* w, float* y, int64_t n_rows, int64_t dim, float eps);
// y = (x - mean) / sqrt(var + eps) * w + b (LayerNorm with affine). Sums in f64.
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n_rows, int64_t dim, float eps);
// out[i] = silu(gate[i]) * up[i] (gate and out may be the same array). The exponentials, here
// and in softmax, come from exp_f32 (row_dequant.h: glibc's vector expf, within 4 ulp of
// std::exp); sigmoid() is the scalar std::exp form.
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// Softmax of a row in place (max-subtracted, the sum in f64); -inf entries get 0. A row of only
// -inf is left 0.
void softmax(float* x, int64_t n);
float sigmoid(float x);
// Normalized fast Walsh-Hadamard transform of a row (Sylvester order), scaled by dim^-1/2;
// dim a power of two (std::invalid_argument otherwise).
void hadamard(float* x, int64_t dim);
// FP8 E4M3 quantize-then-dequantize of a row in blocks of `block` (the last may be shorter):
// scale = amax/448 per block, rounded up to a power of two when pow2_scale (UE8M0 scales).
void fp8_qdq(float* x, int64_t dim, int64_t block, bool pow2_scale);
// FP4 E2M1 quantize-then-dequantize in blocks of `block` (the last may be shorter): scale =
// 2^ceil(log2(max(amax, 6·2^-126) / 6)) per block, values rounded to the E2M1 grid (nearest,
// ties to even) after clamping to ±6.
void fp4_qdq(float* x, int64_t dim, int64_t block);
// SwiGLU with DeepSeek-V4's clamp (limit > 0): out = silu(min(gate, limit)) · clamp(up, ±limit);
// limit <= 0 is the plain swiglu.
void swiglu_limited(const float* gate, const float* up, float* out, int64_t n, float limit);

}  // namespace strata
