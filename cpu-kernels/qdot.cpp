#include "cpu-kernels/qdot.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/lowbit_formats.h"
#include "cpu-kernels/qdot_kernels.h"
#include "cpu-kernels/scratch.h"
#include "cpu-kernels/tile_layout.h"

namespace strata {
namespace {

// AVX2's kernels, with their tiles on AVX-VNNI where the CPU has it (and it is not turned off).
const kern::QDotKernels& avx2_kernels() {
  if (cpu_features().avxvnni && kernel_choice<&KernelChoices::avx_vnni>()) return kern::qdot_kernels_avxvnni();
  return kern::qdot_kernels_avx2();
}

const kern::QDotKernels& kernels_for_level() {
  switch (dispatch_level()) {
    case CpuLevel::Avx512:
      if (cpu_features().avx512vnni && cpu_features().avx512vbmi &&
          kernel_choice<&KernelChoices::avx512_vbmi>())
        return kern::qdot_kernels_vbmi();
      if (cpu_features().avx512vnni) return kern::qdot_kernels_vnni();
      return avx2_kernels();
    case CpuLevel::Avx2: return avx2_kernels();
    case CpuLevel::Scalar: break;
  }
  return kern::qdot_kernels_scalar();
}

// The level's tiles for type t, or null.
kern::QDotFn tiles_of(const kern::QDotKernels& k, WeightType t) {
  switch (t) {
    case WeightType::Q4_K: return k.q4_k_tiles;
    case WeightType::Q5_K: return k.q5_k_tiles;
    case WeightType::Q6_K: return k.q6_k_tiles;
    case WeightType::Q2_K: return k.q2_k_tiles;
    case WeightType::Q3_K: return k.q3_k_tiles;
    case WeightType::Q8_0: return k.q8_0_tiles;
    case WeightType::IQ4_XS: return k.iq4_xs_tiles;
    case WeightType::MXFP4: return k.mxfp4_tiles;
    case WeightType::Q4_0: return k.q4_0_tiles;
    case WeightType::Q4_1: return k.q4_1_tiles;
    case WeightType::Q5_0: return k.q5_0_tiles;
    case WeightType::Q5_1: return k.q5_1_tiles;
    case WeightType::IQ4_NL: return k.iq4_nl_tiles;
    case WeightType::IQ2_XXS: return k.iq2_xxs_tiles;
    case WeightType::IQ2_XS: return k.iq2_xs_tiles;
    case WeightType::IQ2_S: return k.iq2_s_tiles;
    case WeightType::IQ3_XXS: return k.iq3_xxs_tiles;
    case WeightType::IQ3_S: return k.iq3_s_tiles;
    case WeightType::IQ1_S: return k.iq1_s_tiles;
    case WeightType::IQ1_M: return k.iq1_m_tiles;
    case WeightType::Q4_K_T16: return k.q4_k_t16_tiles;
    case WeightType::Q5_K_T16: return k.q5_k_t16_tiles;
    case WeightType::Q6_K_T16: return k.q6_k_t16_tiles;
    case WeightType::Q2_K_T16: return k.q2_k_t16_tiles;
    case WeightType::Q3_K_T16: return k.q3_k_t16_tiles;
    default: return nullptr;
  }
}

kern::QTok tok(const ActQ8& a) {
  return {a.q.data(), a.d.data(),  a.s.data(),   a.ds.data(), a.qp.data(), a.g.data(),
          a.m.data(), a.qk.data(), a.q16.data(), a.qe.data(), a.qx.data()};
}

// Rows [r0, r0 + nr) of w against acts[0..n): row r0 + i of token t into out[t * stride + i];
// tokens in groups of the level's kernel group (qdot_kernels.h). Checked and dispatched once for the whole range.
void rows_dot(const kern::QDotKernels& k, const WeightView& w, int64_t r0, int64_t nr, const ActQ8* const* acts,
              int64_t n, float* out, int64_t stride, bool tiles = false) {
  const int64_t cols = w.cols;
  const unsigned orders = act_orders_for(w.type);
  for (int64_t t = 0; t < n; ++t) {
    if (acts[t]->n != cols)
      throw std::invalid_argument("qdot_row: activations of " + std::to_string(acts[t]->n) + " for a row of " +
                                  std::to_string(cols));
    if ((acts[t]->orders & orders) != orders)
      throw std::invalid_argument("qdot_row: activations quantized without the order " +
                                  std::string(weight_type_name(w.type)) + " reads");
  }
  if (is_tiled_layout(w.type) && !(tiles && tiles_of(k, w.type))) {
    // No row kernel reads a tiled layout: its rows gathered into the stored order, a tile at a time.
    const ScratchLease<std::vector<uint8_t>> lease;
    std::vector<uint8_t>& buf = *lease;
    const int64_t rb = row_bytes(w.type, cols);
    buf.resize(static_cast<size_t>(kTileLayoutRows * rb));
    WeightView plain = w;
    plain.type = row_layout_of(w.type);
    plain.data = buf.data();
    for (int64_t i = 0; i < nr; i += kTileLayoutRows) {
      const int64_t m = std::min(kTileLayoutRows, nr - i);
      tiled_rows_to_rows(w, r0 + i, m, buf.data());
      plain.rows = m;
      rows_dot(k, plain, 0, m, acts, n, out + i, stride);
    }
    return;
  }
  kern::QDotFn f = nullptr;
  switch (w.type) {
    case WeightType::Q8_0: f = k.q8_0; break;
    case WeightType::Q4_0: f = k.q4_0; break;
    case WeightType::Q4_K: f = k.q4_k; break;
    case WeightType::Q5_K: f = k.q5_k; break;
    case WeightType::Q6_K: f = k.q6_k; break;
    case WeightType::MXFP4: f = k.mxfp4; break;
    case WeightType::Q4_1: f = k.q4_1; break;
    case WeightType::Q5_0: f = k.q5_0; break;
    case WeightType::Q5_1: f = k.q5_1; break;
    case WeightType::IQ4_NL: f = k.iq4_nl; break;
    case WeightType::Q2_K: f = k.q2_k; break;
    case WeightType::Q3_K: f = k.q3_k; break;
    case WeightType::IQ4_XS: f = k.iq4_xs; break;
    case WeightType::IQ2_XXS: f = k.iq2_xxs; break;
    case WeightType::IQ2_XS: f = k.iq2_xs; break;
    case WeightType::IQ2_S: f = k.iq2_s; break;
    case WeightType::IQ3_XXS: f = k.iq3_xxs; break;
    case WeightType::IQ3_S: f = k.iq3_s; break;
    case WeightType::IQ1_S: f = k.iq1_s; break;
    case WeightType::IQ1_M: f = k.iq1_m; break;
    case WeightType::Q4_K_T16:
    case WeightType::Q5_K_T16:
    case WeightType::Q6_K_T16:
    case WeightType::Q2_K_T16:
    case WeightType::Q3_K_T16: break;  // tiles only (above)
    default: throw std::invalid_argument("qdot_row: no integer dot for " + std::string(weight_type_name(w.type)));
  }
  if (tiles) {
    f = cols % 256 ? nullptr : tiles_of(k, w.type);
    if (f && is_tiled_layout(w.type) && (r0 % kTileLayoutRows || nr % kTileLayoutRows))
      throw std::invalid_argument("qdot_rows_tiled: rows " + std::to_string(r0) + " .. " + std::to_string(r0 + nr) +
                                  " of " + std::string(weight_type_name(w.type)) + " are not whole tiles of 16");
    if (!f)
      throw std::invalid_argument("qdot_rows_tiled: no tiles for " + std::string(weight_type_name(w.type)) +
                                  " rows of " + std::to_string(cols) + " at this dispatch level");
  }
  const int64_t bytes = row_bytes(w.type, cols);
  const uint8_t* e8m0 = w.type == WeightType::MXFP4 ? w.scale + r0 * (cols / 32) : nullptr;
  // Called per parallel chunk: decode-sized batches keep their token views on the stack, larger
  // ones in this thread's buffer (kept: no allocation per call).
  kern::QTok small[16];
  thread_local std::vector<kern::QTok> big;
  kern::QTok* toks = small;
  if (n > 16) {
    if (big.size() < static_cast<size_t>(n)) big.resize(static_cast<size_t>(n));
    toks = big.data();
  }
  for (int64_t t = 0; t < n; ++t) toks[t] = tok(*acts[t]);
  f(w.data + r0 * bytes, bytes, e8m0, nr, toks, n, cols, out, stride);
}

std::vector<const ActQ8*> pointers_to(const ActQ8* acts, int64_t n) {
  std::vector<const ActQ8*> p(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) p[static_cast<size_t>(t)] = acts + t;
  return p;
}

void quantize_with(const kern::QDotKernels& k, const float* x, int64_t n, ActQ8& out, unsigned orders) {
  if (n % 32) throw std::invalid_argument("quantize_act_q8: length " + std::to_string(n) + " is not a multiple of 32");
  out.n = n;
  out.q.resize(static_cast<size_t>(n));
  out.qp.resize(static_cast<size_t>(n));
  out.d.resize(static_cast<size_t>(n / 32));
  out.s.resize(static_cast<size_t>(n / 16));
  out.ds.resize(static_cast<size_t>(n / 32));
  out.g.resize(static_cast<size_t>((n / 32 + 7) / 8));
  out.m.resize(static_cast<size_t>(n / 32));
  k.quantize(x, n, {out.q.data(), out.d.data(), out.s.data(), out.ds.data(), out.qp.data(), out.g.data(), out.m.data()});
  out.orders = orders;
  if (orders & kActQk) {  // q's blocks of 32 in the order 0, 2, 1, 3, 4, 6, 5, 7 per group of 256
    out.qk.resize(static_cast<size_t>(n));
    constexpr int kOrder[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    const int64_t whole = n / 256 * 256;
    for (int64_t g = 0; g < whole; g += 256)
      for (int k = 0; k < 8; ++k) std::memcpy(&out.qk[g + 32 * k], &out.q[g + 32 * kOrder[k]], 32);
    std::memcpy(out.qk.data() + whole, out.q.data() + whole, static_cast<size_t>(n - whole));
  }
  if (orders & kActQ16) {  // per group of 128, the first halves of its 4 blocks, then their second halves
    out.q16.resize(static_cast<size_t>(n));
    const int64_t whole = n / 128 * 128;
    for (int64_t g = 0; g < whole; g += 128)
      for (int k = 0; k < 8; ++k) std::memcpy(&out.q16[g + 16 * k], &out.q[g + 32 * (k % 4) + 16 * (k / 4)], 16);
    std::memcpy(out.q16.data() + whole, out.q.data() + whole, static_cast<size_t>(n - whole));
  }
  if (orders & kActQe) {  // each block's even elements, then its odd ones
    out.qe.resize(static_cast<size_t>(n));
    for (int64_t b = 0; b < n; b += 32)
      for (int i = 0; i < 16; ++i) {
        out.qe[static_cast<size_t>(b + i)] = out.q[static_cast<size_t>(b + 2 * i)];
        out.qe[static_cast<size_t>(b + 16 + i)] = out.q[static_cast<size_t>(b + 2 * i + 1)];
      }
  }
  if (orders & kActQx) {  // per group of 256, its runs of 8 transposed from 8 x 4 to 4 x 8
    out.qx.resize(static_cast<size_t>(n));
    const int64_t whole = n / 256 * 256;
    for (int64_t g = 0; g < whole; g += 256)
      for (int r = 0; r < 4; ++r)
        for (int j = 0; j < 8; ++j) std::memcpy(&out.qx[g + 64 * r + 8 * j], &out.q[g + 32 * j + 8 * r], 8);
    std::memcpy(out.qx.data() + whole, out.q.data() + whole, static_cast<size_t>(n - whole));
  }
}

}  // namespace

void quantize_act_q8(const float* x, int64_t n, ActQ8& out, unsigned orders) {
  quantize_with(kernels_for_level(), x, n, out, orders);
}
void quantize_act_q8_scalar(const float* x, int64_t n, ActQ8& out, unsigned orders) {
  quantize_with(kern::qdot_kernels_scalar(), x, n, out, orders);
}

unsigned act_orders_for(WeightType t) {
  switch (t) {
    case WeightType::Q4_K:
    case WeightType::Q5_K:
    case WeightType::Q4_K_T16:
    case WeightType::Q5_K_T16: return kActQk;
    case WeightType::IQ4_XS:
    case WeightType::Q4_0:
    case WeightType::Q4_1:
    case WeightType::Q5_0:
    case WeightType::Q5_1:
    case WeightType::IQ4_NL:
      return kActQ16;
    case WeightType::MXFP4: return kActQe;
    case WeightType::IQ2_XXS:
    case WeightType::IQ2_XS:
    case WeightType::IQ2_S:
    case WeightType::IQ3_XXS:
    case WeightType::IQ3_S:
      return kActQx;
    default: return 0;
  }
}

bool qdot_supported(WeightType t) {
  switch (t) {
    case WeightType::Q8_0:
    case WeightType::Q4_0:
    case WeightType::Q4_K:
    case WeightType::Q5_K:
    case WeightType::Q6_K:
    case WeightType::MXFP4:
    case WeightType::Q4_1:
    case WeightType::Q5_0:
    case WeightType::Q5_1:
    case WeightType::IQ4_NL:
    case WeightType::Q2_K:
    case WeightType::Q3_K:
    case WeightType::IQ4_XS:
    case WeightType::Q4_K_T16:
    case WeightType::Q5_K_T16:
    case WeightType::Q6_K_T16:
    case WeightType::Q2_K_T16:
    case WeightType::Q3_K_T16: return true;
    default: return is_lattice_iq(t);
  }
}

float qdot_row(const WeightView& w, int64_t r, const ActQ8& a) {
  float out;
  const ActQ8* one = &a;
  rows_dot(kernels_for_level(), w, r, 1, &one, 1, &out, 1);
  return out;
}

void qdot_rows_tokens(const WeightView& w, int64_t r0, int64_t nr, const ActQ8* const* acts, int64_t n, float* out,
                      int64_t stride) {
  rows_dot(kernels_for_level(), w, r0, nr, acts, n, out, stride);
}

void qdot_rows_tokens(const WeightView& w, int64_t r0, int64_t nr, const ActQ8* acts, int64_t n, float* out,
                      int64_t stride) {
  const std::vector<const ActQ8*> ptrs = pointers_to(acts, n);
  qdot_rows_tokens(w, r0, nr, ptrs.data(), n, out, stride);
}

std::string tiled_layout_declined() {
  if (!int_dot_enabled())
    return "the products widen weights to f32 (--exact-dot), reading a tiled matrix's rows back";
  if (kernel_choice<&KernelChoices::batch_invariant>() || !kernel_choice<&KernelChoices::int_dot_tiles>())
    return "the integer-dot tiles are off (--batch-invariant or STRATA_INT_DOT_TILES=0), so every "
           "product would read a tiled matrix's rows back";
  const kern::QDotKernels& k = kernels_for_level();
  if (&k == &avx2_kernels() || !tiles_of(k, WeightType::Q4_K_T16))  // not the 16-row tiles
    return "at this CPU's kernel level (" + std::string(cpu_level_name(dispatch_level())) +
           ", no AVX-512 VNNI) the tiles of the layout are slower than the row kernels for one token";
  return "";
}

bool tiled_layout_pays() { return tiled_layout_declined().empty(); }

bool qdot_tiles_supported(WeightType t) {
  if (!kernel_choice<&KernelChoices::int_dot_tiles>()) return false;
  return tiles_of(kernels_for_level(), t) != nullptr;
}

int64_t qdot_tiles_min_batch(WeightType t) {
  // A tiled layout has no row kernel of its own (its rows would be gathered): tiles from one token.
  if (is_tiled_layout(t)) return 1;
  // A profile's measured crossover for this box (cpu.tiles_min_batch, `strata tune`) first.
  if (const int64_t chosen = tiles_min_batch_choice(t); chosen > 0) return chosen;
  // The lattice i-quants' row kernels spend most of their time building a row's codebook points,
  // which the tiles build once per pass: with AVX-512 VNNI the row kernels share that among 8
  // tokens and the tiles win from 7; at AVX2 (passes of 4) from 6-8 (`strata tune` on the Zen 3
  // EPYC, three runs: IQ1_S 6, 6, 8; IQ2_XXS 6, 6, 6). With VBMI, IQ2_XXS, IQ2_XS, IQ2_S,
  // IQ3_XXS and IQ3_S decode their rows in the activations' order, and their row kernels (one
  // call for a block of rows) stay ahead of the tiles up to 8 tokens, one pass, and fall behind
  // from 9, two (`bench kernels --batch 7,8,10,12 --shapes v3,2048x768` with
  // STRATA_INT_DOT_TILES=0 and 1 on the Zen 4 EPYC, best of two: IQ2_XS 7168 -> 2048 at 8 tokens
  // rows 1,114 us, tiles 1,421; at 10 1,544 and 1,531; `strata tune` there: IQ2_XXS 12 in five
  // runs); IQ1_S's and IQ1_M's, bound by reading their points, lose from 7 as before.
  if (is_lattice_iq(t))
    return &kernels_for_level() == &kern::qdot_kernels_vbmi() && t != WeightType::IQ1_S && t != WeightType::IQ1_M ? 9 : 7;
  // AVX2's tiles against its row kernels' passes of 4 tokens: they break even at 10-12 tokens
  // (Q4_K, Q6_K at 2048 x 768 on the Zen 5 EPYC capped at AVX2; `strata bench kernels
  // --batch 6,8,10,12,16` with STRATA_INT_DOT_TILES=0 and 1; `strata tune` on the Zen 3 EPYC
  // puts Q4_K at 6-8 and the others at 8-16, one profile per box).
  if (const auto& k = kernels_for_level(); &k == &kern::qdot_kernels_avx2() || &k == &kern::qdot_kernels_avxvnni())
    return 12;
  // The K-quants against row kernels that take up to 8 tokens a pass: `strata tune` on the Zen 4
  // and the Zen 5 EPYC (VNNI on 512-bit vectors) put the crossovers at Q2_K 6 / 6, Q3_K 8 / 8,
  // Q4_K 8 / 6 (even at 6 there), Q5_K 12 / 12 and Q6_K 12 / 12 tokens; below them the rows are
  // as fast or faster (Zen 5, 7168 -> 2048 Q4_K at 4 tokens: rows 255 us, tiles 415).
  switch (t) {
    case WeightType::Q2_K: return 6;
    case WeightType::Q3_K:
    case WeightType::Q4_K: return 8;
    case WeightType::Q5_K:
    case WeightType::Q6_K: return 12;
    case WeightType::Q8_0: return 9;  // twice the bytes per weight: the row kernel's single pass of 8 holds up to there
    case WeightType::IQ4_XS: return 12;  // its 512-bit row kernel shares a row's decoding among 8 tokens
    case WeightType::MXFP4: return 16;   // below, its row kernel's pairs of blocks are as fast
    default: return 4;
  }
}

bool dequant_lattice_blocks(WeightType t, const uint8_t* blocks, float* out, int64_t n) {
  // lattice_f32 follows the enum's order of the lattice types.
  static_assert(static_cast<int>(WeightType::IQ1_M) - static_cast<int>(WeightType::IQ2_XXS) == 6);
  if (!is_lattice_iq(t) || n % 256) return false;
  const auto f = kernels_for_level().lattice_f32[static_cast<int>(t) - static_cast<int>(WeightType::IQ2_XXS)];
  if (!f) return false;
  f(blocks, out, n);
  return true;
}

void qdot_rows_tiled(const WeightView& w, int64_t r0, int64_t nr, const ActQ8* const* acts, int64_t n, float* out,
                     int64_t stride) {
  rows_dot(kernels_for_level(), w, r0, nr, acts, n, out, stride, true);
}

void qdot_rows_tiled(const WeightView& w, int64_t r0, int64_t nr, const ActQ8* acts, int64_t n, float* out,
                     int64_t stride) {
  const std::vector<const ActQ8*> ptrs = pointers_to(acts, n);
  qdot_rows_tiled(w, r0, nr, ptrs.data(), n, out, stride);
}

float qdot_row_scalar(const WeightView& w, int64_t r, const ActQ8& a) {
  float out;
  const ActQ8* one = &a;
  rows_dot(kern::qdot_kernels_scalar(), w, r, 1, &one, 1, &out, 1);
  return out;
}

// The integer dot on AVX-512 VNNI of a real CPU without AMX: where it outruns the BF16 GEMM.
static bool vnni_without_amx() {
  return dispatch_level() == CpuLevel::Avx512 && cpu_features().avx512vnni && !cpu_features().emulated &&
         !cpu_features().amx_bf16;
}

// Whether the level's tiles for t outrun oneDNN at every batch, as measured: the 512-bit tiles
// on AVX-512 VNNI without AMX (against the BF16 GEMM), the 8-row tiles at the AVX2 level
// (against the F32 GEMM on 256-bit vectors: 1.7-2.7x at 16-512 tokens, the Zen 5 EPYC with
// both capped at AVX2). An AVX-512 CPU without VNNI keeps its 512-bit F32 GEMM.
static bool tiles_beat_gemm(WeightType t) {
  if (!qdot_tiles_supported(t)) return false;
  return vnni_without_amx() || (dispatch_level() == CpuLevel::Avx2 && !cpu_features().amx_bf16);
}

int64_t int_dot_gemm_min_batch() {
  const int64_t set = kernel_choice<&KernelChoices::int_dot_gemm_min_batch>();
  if (set > 0) return std::max(set, gemm_min_batch());
  return vnni_without_amx() ? std::max(int64_t{256}, gemm_min_batch()) : gemm_min_batch();
}

int64_t int_dot_gemm_min_batch(WeightType t) {
  if (kernel_choice<&KernelChoices::int_dot_gemm_min_batch>() > 0 || !tiles_beat_gemm(t)) return int_dot_gemm_min_batch();
  return INT64_MAX;
}

void set_int_dot_gemm_min_batch(int64_t n) {
  KernelChoices c = kernel_choices();
  c.int_dot_gemm_min_batch = n > 0 ? n : 0;
  set_kernel_choices(c);
}

ScopedIntDotGemmMinBatch::ScopedIntDotGemmMinBatch(int64_t n)
    : saved_(kernel_choices().int_dot_gemm_min_batch) {
  set_int_dot_gemm_min_batch(n);
}
ScopedIntDotGemmMinBatch::~ScopedIntDotGemmMinBatch() { set_int_dot_gemm_min_batch(saved_); }

bool int_dot_enabled() { return kernel_choice<&KernelChoices::int_dot>(); }
void set_int_dot(bool on) {
  KernelChoices c = kernel_choices();
  c.int_dot = on;
  set_kernel_choices(c);
}

}  // namespace strata
