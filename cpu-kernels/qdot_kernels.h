// Integer dot kernels (qdot.h), one table per instruction set; raw pointers only, so nothing
// compiled with wider instructions is shared across levels. xq/xd/xs/xds are an ActQ8's arrays
// (q, d, s, ds) from the row's first column; n is the row length.
#pragma once

#include <cstdint>

namespace strata::kern {

using QDotFn = float (*)(const uint8_t* blocks, const int8_t* xq, const float* xd, const int16_t* xs,
                         const float* xds, int64_t n);

struct QDotKernels {
  QDotFn q8_0, q4_0, q4_k, q5_k, q6_k;
  // MXFP4: n / 2 packed bytes and n / 32 E8M0 scales; xq in ActQ8::qp's pair order.
  float (*mxfp4)(const uint8_t* packed, const uint8_t* e8m0, const int8_t* xq, const float* xd, int64_t n);
};

const QDotKernels& qdot_kernels_scalar();
const QDotKernels& qdot_kernels_avx2();
const QDotKernels& qdot_kernels_vnni();  // AVX-512 VNNI on 256-bit vectors

}  // namespace strata::kern
