// Integer dot products of quantized activations with integer-quantized weights (Q8_0, Q4_0,
// Q4_K, Q5_K, Q6_K, MXFP4), the decode-time path for those types: the weight is never widened
// to f32. Activations are quantized to int8 per block of 32 with one f32 scale each; the
// products are summed exactly in int32.
//
// The scales of a group of 8 blocks (256 values) are powers of two apart: with A = max|x| of
// the group, block b's scale is d_b = (A / 127) / 2^e_b, e_b the largest e <= 6 with
// 2^e · max|x|_b <= A, and q = round-to-nearest-even(x · 2^e_b · 127 / A). A block thus uses
// between half and all of int8's range (a block under A / 64 less), where its own max|x| / 127
// would use all of it: the rounding step is at most twice as coarse, not the group's — as one
// scale per 256 (llama.cpp's Q8_K) would make it. What it buys: a K-quant super-block meets
// one float scale, A / 127 / 64, and integer multipliers m_b = 2^(6 - e_b), which fold into the
// weights' 6- or 8-bit sub-block scales as int16 (vpmaddwd): a super-block is summed in int32
// and scaled once instead of once per sub-block. Q8_0, Q4_0 and MXFP4 use d_b per block.
//
// Error: each activation is off by at most d_b / 2: a product NMSE of about 5e-5 for Gaussian
// activations, 1.4e-4 for silu(g)·u and up to 2e-4 when a block holds an outlier (measured and
// printed by tests/unit/kernels/test_qdot.cpp, beside one scale per block and one per 256).
// A group whose max|x| is below 2^-100 quantizes to zeros; a group holding a NaN or an
// infinity gets NaN scales, so the products are NaN. It is on by default for batches below
// gemm_min_batch(); STRATA_INT_DOT=0 or set_int_dot(false) (`--exact-dot` on the command line)
// dequantizes the weight to f32 instead, exact to the reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "cpu-kernels/weight_view.h"

namespace strata {

// The reordered copies of ActQ8's q (below), as bits.
enum ActOrder : unsigned { kActQk = 1, kActQ16 = 2, kActQe = 4, kActQx = 8, kActAllOrders = 15 };

// Allocates on 64-byte boundaries, so that 512-bit loads of whole blocks never straddle two
// cache lines.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};

// One activation vector in blocks of 32: q[n], d[n / 32], s[n / 16] — the sum of q over each
// half block — and ds[n / 32] = d × (sum of q over the block), for the weights' offsets and mins.
// Per group of 8 blocks (the last may be shorter) g = A / 127, and per block m = 2^(6 - e), so
// that d_b = g · m_b / 64 exactly. qp is q reordered for MXFP4's packing (element 2i in the low
// nibble of byte i): per pair of blocks b, b+1: the even elements of b, of b+1, then the odd
// elements of b, of b+1 (a last unpaired block: its even elements, then its odd ones). qk is q
// with each group of 256 in the order of a Q4_K/Q5_K block's nibbles read 64 bytes at a time:
// blocks 0, 2, 1, 3, 4, 6, 5, 7 (a last group shorter than 256 as in q); q16 is q with each
// group of 128 as the first 16 values of its 4 blocks, then their last 16 (IQ4_XS's nibbles
// read 64 bytes at a time; Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL's blocks two to a 256-bit vector;
// a last group shorter than 128 as in q); qe is q with each block's 16 even elements first,
// then its 16 odd ones (MXFP4's nibbles, for its tiles); qx is q with each group of 256 as its
// 32 runs of 8 transposed from 8 × 4 to 4 × 8: run 8r + j of the copy is run 4j + r of q
// (elements 32j + 8r .. 32j + 8r + 7), so that the row dots of the lattice i-quants IQ2_XXS,
// IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S on AVX-512 VBMI spread their points to four registers lane by lane
// (qdot_lattice_z.inc's qd_spread_t; a last group shorter than 256 as in q). Those four are written only
// where `orders` says so (ActOrder bits; what the weight types to meet need).
struct ActQ8 {
  int64_t n = 0;
  unsigned orders = 0;  // the reordered copies written (ActOrder)
  std::vector<int8_t, CacheLineAllocator<int8_t>> q, qp, qk, q16, qe, qx;
  std::vector<float> d;
  std::vector<int16_t> s;
  std::vector<float> ds;
  std::vector<float> g;
  std::vector<int16_t> m;
};

// n a multiple of 32. Vectorized per dispatch level; every level gives the scalar twin's bytes.
// `orders`: the reordered copies to write (act_orders_for() of the weights to meet).
void quantize_act_q8(const float* x, int64_t n, ActQ8& out, unsigned orders = kActAllOrders);
void quantize_act_q8_scalar(const float* x, int64_t n, ActQ8& out, unsigned orders = kActAllOrders);
// The reordered activation copies products with weights of type t may read.
unsigned act_orders_for(WeightType t);

// Whether qdot_row handles this weight type.
bool qdot_supported(WeightType t);
// Row r of w (all its columns) · a, a.n == w.cols; at the dispatch level in effect.
float qdot_row(const WeightView& w, int64_t r, const ActQ8& a);
// Rows [r0, r0 + nr) of w · acts[t] into out[t * stride + i] (row r0 + i) for t < n: each
// row's blocks are unpacked once per group of tokens; each result equals qdot_row's for that
// row and token.
void qdot_rows_tokens(const WeightView& w, int64_t r0, int64_t nr, const ActQ8* acts, int64_t n, float* out,
                      int64_t stride);
// The same with token t's activations at *acts[t] (gathered from a larger batch).
void qdot_rows_tokens(const WeightView& w, int64_t r0, int64_t nr, const ActQ8* const* acts, int64_t n, float* out,
                      int64_t stride);
// The same products in tiles of 16 rows, taken two at a time (qdot_tiles.inc: every
// integer-dot type with AVX-512 VNNI), or of 8 rows (qdot_tiles_avx2.inc: every integer-dot type
// with AVX2); rows of a multiple of 256; callers splitting rows among threads give each a
// multiple of 32 where they can; for
// batches of qdot_tiles_min_batch(t) tokens or more where qdot_tiles_supported(t): per row and
// token the same integer sums as qdot_rows_tokens, scaled per sub-block instead of per
// super-block, so equal to it up to f32 rounding; a result still does not depend on the other
// rows and tokens of the call. STRATA_INT_DOT_TILES=0 turns them off. From 4 tokens (Q6_K, whose
// decoding costs more, 8; Q8_0 9; the lattice i-quants 7, with VBMI IQ2_* and IQ3_* 9; IQ4_XS 12;
// MXFP4 16), where they were
// faster than the row kernels (`strata bench kernels --batch 4,8,12`); with AVX2, 12 for all.
// Where the crossover lies depends on the CPU (on the 2-core Zen 5 EPYC the Q4_K / Q5_K row
// kernels beat the tiles up to 6-8 tokens): KernelChoices::tiles_min_batch, a profile's
// cpu.tiles_min_batch as `strata tune` measures it, takes the place of these defaults.
bool qdot_tiles_supported(WeightType t);
int64_t qdot_tiles_min_batch(WeightType t);
// Whether the tiled layouts (tile_layout.h, --repack) pay at the level in effect: where the
// 16-row tiles of AVX-512 VNNI run. There one token reads a tile as fast as the row kernels read
// its rows, several tokens faster. AVX2's 8-row tiles over the layout were slower for one token
// than the row kernels (race-shaped GGUFs on the Zen 5 EPYC capped at AVX2, `bench run -p 512
// -n 32 -r 2 -t 2`: decode Q4_K 116 → 93 tok/s, Q2_K 119 → 88, Q3_K 98 → 90) and no faster for a
// prompt (pp512 525 → 529), so there the matrices are better left as stored. Nor where the
// integer dot or its tiles are off for the run (--exact-dot, --batch-invariant,
// STRATA_INT_DOT_TILES=0): then every product gathers a tiled matrix's rows back first (the
// race model's decode 13.6 → 5.4 tok/s with --exact-dot). tiled_layout_declined(): why not, in
// words for a note ("" where it pays).
bool tiled_layout_pays();
std::string tiled_layout_declined();
void qdot_rows_tiled(const WeightView& w, int64_t r0, int64_t nr, const ActQ8* acts, int64_t n, float* out,
                     int64_t stride);
void qdot_rows_tiled(const WeightView& w, int64_t r0, int64_t nr, const ActQ8* const* acts, int64_t n, float* out,
                     int64_t stride);
// The scalar twin (the reference the vector kernels are tested against).
float qdot_row_scalar(const WeightView& w, int64_t r, const ActQ8& a);
// Lattice i-quant blocks (IQ1_S … IQ3_S; n elements, whole super-blocks) as f32 by the vector
// decoders of the level in effect, bit for bit the scalar dequantizer's; false where that level
// has none (then the caller dequantizes them itself).
bool dequant_lattice_blocks(WeightType t, const uint8_t* blocks, float* out, int64_t n);

// Whether linear() uses this path for small batches (default on; STRATA_INT_DOT=0 turns it off).
bool int_dot_enabled();
void set_int_dot(bool on);

// The batch from which weights the integer dot handles go to the GEMM instead (linear.h):
// gemm_min_batch(), or 256 where the integer dot runs on AVX-512 VNNI and the CPU has no AMX —
// there it beats dequantized panels through oneDNN's BF16 GEMM up to a few hundred tokens
// (measured: prefill of 128 tokens of a V3-shaped Q4_K model 110-130 -> 160-171 tok/s, 512
// tokens unchanged; README → Benchmarks). STRATA_INT_DOT_GEMM_MIN_BATCH=N sets it.
int64_t int_dot_gemm_min_batch();
// The same for weights of type t: where the level has tiles for t and the CPU has no AMX, the
// tiles beat the GEMM at every batch measured (AVX-512 VNNI, V3 shapes, 4-512 tokens: 2-3x at
// 64-128 tokens, 1.5-2x at 512; AVX2's 8-row tiles 1.7-2.7x its F32 GEMM at 16-512 tokens;
// README → Benchmarks): INT64_MAX, no GEMM. STRATA_INT_DOT_GEMM_MIN_BATCH still sets it.
int64_t int_dot_gemm_min_batch(WeightType t);
// Overrides it (0: back to the default); for tests and benchmarks.
void set_int_dot_gemm_min_batch(int64_t n);

class ScopedIntDotGemmMinBatch {
 public:
  explicit ScopedIntDotGemmMinBatch(int64_t n);
  ~ScopedIntDotGemmMinBatch();
  ScopedIntDotGemmMinBatch(const ScopedIntDotGemmMinBatch&) = delete;
  ScopedIntDotGemmMinBatch& operator=(const ScopedIntDotGemmMinBatch&) = delete;

 private:
  int64_t saved_;
};

// Sets the switch for a scope (tests, and commands that compare against exact references).
class ScopedIntDot {
 public:
  explicit ScopedIntDot(bool on) : saved_(int_dot_enabled()) { set_int_dot(on); }
  ~ScopedIntDot() { set_int_dot(saved_); }
  ScopedIntDot(const ScopedIntDot&) = delete;
  ScopedIntDot& operator=(const ScopedIntDot&) = delete;

 private:
  bool saved_;
};

}  // namespace strata
