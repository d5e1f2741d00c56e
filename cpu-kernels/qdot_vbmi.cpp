// The AVX-512 VNNI table with the lattice i-quants' kernels on AVX-512 VBMI as well (compiled
// with -mavx512vbmi besides the VNNI file's flags; chosen only when CPUID reports VNNI and
// VBMI, which Ice Lake and later Xeons and Zen 4 and later have, Cascade Lake not). The
// decoders of qdot_lattice_z.inc spread packed points and sign fields to bytes by
// vpmultishiftqb, vpermb and vpermi2b instead of shifts, masks and nibble tables: IQ2_XXS's
// row dot about 1.3x as fast on Zen 5, IQ3_XXS's 1.35x; their row dots (and IQ2_XS's, IQ2_S's
// and IQ3_S's) in ActQ8's qx order 1.05-1.4x faster again on Zen 4 (cpu-kernels/README.md). The
// rest of the table is the VNNI file's.
#include <immintrin.h>

#include <bit>
#include <cstring>
#include <type_traits>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/iq_unpack.h"
#include "cpu-kernels/prefetch.h"
#include "cpu-kernels/qdot_kernels.h"

#define STRATA_QDOT_VNNI 1
#define STRATA_QDOT_VBMI 1

namespace strata::kern {
namespace {

#include "cpu-kernels/qdot_z.inc"

// The types whose decoders gain by VBMI: those whose points are looked up in registers (their
// level indices spread by vpmultishiftqb and vpermb) and, for IQ2_XXS, IQ2_XS and IQ3_XXS,
// whose 7-bit sign fields take their parity by vpermi2b; and IQ1_M's tiles, whose weights take
// their scales from a vpermb table (QtIq1M).
QDotKernels with_vbmi_lattice(QDotKernels k) {
  k.iq2_xxs = qd_rows<Iq2XxsK::K>;
  k.iq2_xs = qd_rows<Iq2XsK::K>;
  k.iq2_s = qd_rows<Iq2SK::K>;
  k.iq3_xxs = qd_rows<Iq3XxsK::K>;
  k.iq3_s = qd_rows<Iq3SK::K>;
  k.iq2_xxs_tiles = qt_rows<QtIq<Iq2XxsZ>>;
  k.iq2_xs_tiles = qt_rows<QtIq<Iq2XsZ>>;
  k.iq2_s_tiles = qt_rows<QtIq<Iq2SZ>>;
  k.iq3_xxs_tiles = qt_rows<QtIq<Iq3XxsZ>>;
  k.iq3_s_tiles = qt_rows<QtIq<Iq3SZ>>;
  k.iq1_m_tiles = qt_rows<QtIq1M>;
  k.lattice_f32[0] = iq_f32_z<Iq2XxsZ>;
  k.lattice_f32[1] = iq_f32_z<Iq2XsZ>;
  k.lattice_f32[2] = iq_f32_z<Iq2SZ>;
  k.lattice_f32[3] = iq_f32_z<Iq3XxsZ>;
  k.lattice_f32[4] = iq_f32_z<Iq3SZ>;
  return k;
}

}  // namespace

const QDotKernels& qdot_kernels_vbmi() {
  static const QDotKernels table = with_vbmi_lattice(qdot_kernels_vnni());
  return table;
}

}  // namespace strata::kern
