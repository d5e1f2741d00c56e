// Integer dot kernels, AVX2 + FMA + F16C (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/iq_unpack.h"
#include "cpu-kernels/prefetch.h"
#include "cpu-kernels/qdot_kernels.h"

namespace strata::kern {
namespace {

#include "cpu-kernels/qdot_tiles_avx2.inc"
#include "cpu-kernels/qdot_rows.inc"

}  // namespace

const QDotKernels& qdot_kernels_avx2() {
  return kQDotTable;
}

}  // namespace strata::kern
