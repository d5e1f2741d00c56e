// AVX2's integer-dot tiles on AVX-VNNI (compiled with -mavx2 -mfma -mf16c -mavxvnni; chosen only
// when CPUID reports AVX-VNNI): VEX-encoded vpdpbusd on 256-bit vectors, as CPUs without AVX-512
// have it (Intel's Alder Lake and later client cores). One instruction a dword of 8 rows, summing
// in int32 (Q8_0 and the IQ4 types need no signed detour). The rest of the table is AVX2's.
#include <immintrin.h>

#include <cstring>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/prefetch.h"
#include "cpu-kernels/qdot_kernels.h"

#define STRATA_QDOT_AVXVNNI 1

namespace strata::kern {
namespace {

#include "cpu-kernels/qdot_tiles_avx2.inc"

QDotKernels with_vnni_tiles(QDotKernels k) {
  k.q4_k_tiles = qa_rows<QtQ45K<V256, false>>;
  k.q5_k_tiles = qa_rows<QtQ45K<V256, true>>;
  k.q4_k_t16_tiles = qa_rows<QtQ45K<V256T, false>, true>;
  k.q5_k_t16_tiles = qa_rows<QtQ45K<V256T, true>, true>;
  k.q6_k_t16_tiles = qa_rows<QtQ6K<V256T, true>, true>;
  k.q2_k_t16_tiles = qa_rows<QtQ2K<V256T>, true>;
  k.q3_k_t16_tiles = qa_rows<QtQ3K<V256T, true>, true>;
  k.q6_k_tiles = qa_rows<QtQ6K<V256>>;
  k.q2_k_tiles = qa_rows<QtQ2K<V256>>;
  k.q3_k_tiles = qa_rows<QtQ3K<V256>>;
  k.q8_0_tiles = qa_rows<QtQ80<V256>>;
  k.iq4_xs_tiles = qa_rows<QtIq4Xs<V256>>;
  k.mxfp4_tiles = qa_rows<QtMxfp4<V256>>;
  k.q4_0_tiles = qa_rows<QtQ40<V256>>;
  k.q4_1_tiles = qa_rows<QtQ41<V256>>;
  k.q5_0_tiles = qa_rows<QtQ50<V256>>;
  k.q5_1_tiles = qa_rows<QtQ51<V256>>;
  k.iq4_nl_tiles = qa_rows<QtIq4Nl<V256>>;
  return k;
}

}  // namespace

const QDotKernels& qdot_kernels_avxvnni() {
  static const QDotKernels table = with_vnni_tiles(qdot_kernels_avx2());
  return table;
}

}  // namespace strata::kern
