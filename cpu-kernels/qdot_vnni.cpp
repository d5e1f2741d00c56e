// Integer dot kernels, AVX-512 VNNI on 256-bit vectors (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni as well as AVX2; chosen only when CPUID reports VNNI).
#include <immintrin.h>

#include <cstring>

#include "cpu-kernels/qdot_kernels.h"

namespace strata::kern {
namespace {

#include "cpu-kernels/qdot_rows.inc"

}  // namespace

const QDotKernels& qdot_kernels_vnni() {
  static const QDotKernels k = {q8_0, q4_0, q45_k<false>, q45_k<true>, q6_k, mxfp4};
  return k;
}

}  // namespace strata::kern
