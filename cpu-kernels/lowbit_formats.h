// Scalar dequantizers and reference quantizers of the lower-bit GGUF block formats: Q4_1,
// Q5_0, Q5_1, Q2_K, Q3_K, IQ4_NL, IQ4_XS and the lattice i-quants IQ1_S, IQ1_M, IQ2_XXS,
// IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S (block_layouts.h, iq_unpack.h). dequant.h / quantize.h dispatch
// here; these are the ground truth of any faster kernel for the types.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu-kernels/weight_type.h"

namespace strata {

// n elements (whole blocks) of one of the types above into dst; false for any other type.
bool dequantize_lowbit_ref(WeightType t, const void* src, float* dst, int64_t n);

// n elements (whole blocks) quantized to one of the types above (simple max-abs / min-max
// scale searches, each value rounded to its nearest level); false for any other type.
bool quantize_lowbit_ref(WeightType t, const float* src, int64_t n, std::vector<uint8_t>& out);

// Whether t is one of the lattice i-quants (a codebook point per 8 or 4 elements).
bool is_lattice_iq(WeightType t);
// Their reference quantizers (iq_quantize.cpp); false for any other type.
bool quantize_iq_ref(WeightType t, const float* src, int64_t n, std::vector<uint8_t>& out);

}  // namespace strata
