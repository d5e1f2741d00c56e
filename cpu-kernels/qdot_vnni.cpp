// Integer dot kernels, AVX-512 VNNI on 256-bit vectors (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni as well as AVX2; chosen only when CPUID reports VNNI).
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/iq_unpack.h"
#include "cpu-kernels/prefetch.h"
#include "cpu-kernels/qdot_kernels.h"

#define STRATA_QDOT_VNNI 1

namespace strata::kern {
namespace {

#include "cpu-kernels/qdot_z.inc"

}  // namespace

const QDotKernels& qdot_kernels_vnni() {
  return kQDotTable;
}

}  // namespace strata::kern
