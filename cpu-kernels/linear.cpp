#include "cpu-kernels/linear.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/scratch.h"

namespace strata {
namespace {

// Enough rows per task that a task amortizes its scheduling; small matrices run inline.
int64_t grain(const WeightView& w, int64_t n) {
  const int64_t work_per_row = w.cols * (n > 0 ? n : 1);
  const int64_t g = (1 << 16) / (work_per_row > 0 ? work_per_row : 1);
  return g < 1 ? 1 : g;
}

// Whether a product on path p reads int8-quantized activations.
bool reads_int8(LinearPath p) { return p == LinearPath::IntDot || p == LinearPath::IntDotTiles; }

// One product of a small batch: rows [r0, r0 + nr) of w into y [n, ldy].
struct Product {
  const WeightView* w;
  int64_t r0, nr;
  float* y;
  int64_t ldy;
  LinearPath path;
};

// The activations as each kernel wants them, prepared once per call: quantized for the integer
// dot (shared by the products), and per product in its fused dot's order (fused[i][t] points at
// token t's for product i: x itself where the kernel reads them as they are).
struct PreparedActs {
  bool rounded = false;  // the fused dots may round activations (as the integer dot quantizes them)
  std::vector<ActQ8> q8;
  std::vector<const ActQ8*> q8p;  // token t's quantized activations: in q8, or the caller's
  std::vector<std::vector<float>> buf;
  std::vector<std::vector<const float*>> fused;
};

// Row r (relative to p.r0) of p for every token, widened to f32 in L1-sized chunks that every
// token of the batch uses.
void product_row_widened(const Product& p, int64_t r, const float* x, int64_t n, int64_t ldx) {
  const WeightView& w = *p.w;
  float* y = p.y;
  const int64_t ldy = p.ldy;
  constexpr int64_t kChunk = 1024;
  const int64_t cols = w.cols;
  thread_local std::vector<float> chunk;
  chunk.resize(static_cast<size_t>(std::min(cols, kChunk)));
  for (int64_t t = 0; t < n; ++t) y[t * ldy + r] = 0;
  for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
    const int64_t nc = std::min(kChunk, cols - c0);
    dequant_row_range(w, p.r0 + r, c0, nc, chunk.data());
    for (int64_t t = 0; t < n; ++t) y[t * ldy + r] += dot_f32(chunk.data(), x + t * ldx + c0, nc);
  }
}

// Rows [r0, r1) (relative to p.r0) of p for every token: the integer dot (one call for the
// range), a fused dot for one or two tokens (fused: the activations in its order), or the rows
// widened.
void product_rows(const Product& p, const std::vector<const float*>& fused, int64_t r0, int64_t r1, const float* x,
                  int64_t n, int64_t ldx, const PreparedActs& acts) {
  switch (p.path) {
    case LinearPath::IntDot: return qdot_rows_tokens(*p.w, p.r0 + r0, r1 - r0, acts.q8p.data(), n, p.y + r0, p.ldy);
    case LinearPath::IntDotTiles:
      return qdot_rows_tiled(*p.w, p.r0 + r0, r1 - r0, acts.q8p.data(), n, p.y + r0, p.ldy);
    case LinearPath::FusedDot:
      if (n > 1 && fused_row_dot_tokens(*p.w, p.r0 + r0, r1 - r0, fused.data(), static_cast<int>(n), p.y + r0,
                                        p.ldy, acts.rounded))
        return;  // each row read once for every token (one token: one row at a time streams faster)
      if (n == 1) {
        fused_row_dots(*p.w, p.r0 + r0, r1 - r0, fused[0], p.y + r0, 1, acts.rounded);
        return;
      }
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t t = 0; t < n; ++t)
          fused_row_dot(*p.w, p.r0 + r, fused[static_cast<size_t>(t)], p.y[t * p.ldy + r], acts.rounded);
      return;
    default:
      for (int64_t r = r0; r < r1; ++r) product_row_widened(p, r, x, n, ldx);
  }
}

// Products over the same activations x [n, ldx] as one parallel job over all their rows; q8:
// x's rows already quantized (linear_pair), or null.
void small_batch(const Product* ps, size_t count, const float* x, int64_t n, int64_t ldx,
                 const ActQ8* const* q8 = nullptr) {
  const ScratchLease<PreparedActs> lease;  // reused: a warm decode step allocates nothing here
  PreparedActs& acts = *lease;
  acts.rounded = int_dot_enabled();  // `--exact-dot` turns both off
  const auto un = static_cast<size_t>(n);
  if (acts.fused.size() < count) acts.fused.resize(count);
  if (acts.buf.size() < count * un) acts.buf.resize(count * un);
  for (size_t i = 0; i < count; ++i) acts.fused[i].clear();
  // The integer-dot products share one quantization of x, with the reordered copies their
  // weight types read.
  unsigned orders = 0;
  int64_t int_cols = -1;
  for (size_t i = 0; i < count; ++i)
    if (reads_int8(ps[i].path)) {
      orders |= act_orders_for(ps[i].w->type);
      int_cols = ps[i].w->cols;  // the products share x, hence its column count
    }
  if (int_cols >= 0 && q8) {
    acts.q8p.assign(q8, q8 + n);
  } else if (int_cols >= 0) {
    if (acts.q8.size() < un) acts.q8.resize(un);
    acts.q8p.resize(un);
    for (size_t t = 0; t < un; ++t) {
      quantize_act_q8(x + static_cast<int64_t>(t) * ldx, int_cols, acts.q8[t], orders);
      acts.q8p[t] = &acts.q8[t];
    }
  }
  for (size_t i = 0; i < count; ++i) {
    if (ps[i].path == LinearPath::FusedDot)
      for (size_t t = 0; t < un; ++t)
        acts.fused[i].push_back(
            fused_row_act(*ps[i].w, x + static_cast<int64_t>(t) * ldx, acts.buf[i * un + t], acts.rounded));
  }
  // Rows go to tasks in units: a pair of 16-row tiles for products in tiles (a task never
  // splits one: a part-filled tile costs a whole one, and the tiles go in pairs: qdot.h), a pair
  // of rows for a fused dot over several tokens (its kernel may take two rows at once), one row
  // otherwise.
  auto unit = [&](size_t i) -> int64_t {
    return ps[i].path == LinearPath::IntDotTiles ? 32 : ps[i].path == LinearPath::FusedDot && n > 1 ? 2 : 1;
  };
  auto units = [&](size_t i) { return (ps[i].nr + unit(i) - 1) / unit(i); };
  int64_t total = 0;
  for (size_t i = 0; i < count; ++i) total += units(i);
  const int64_t g = std::max<int64_t>(1, grain(*ps[0].w, n) / unit(0));
  run_in_compute_arena([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, total, g), [&](const tbb::blocked_range<int64_t>& rr) {
      size_t i = 0;
      int64_t base = 0;  // the first unit of product i in the joint numbering
      for (int64_t k = rr.begin(); k < rr.end();) {
        while (k - base >= units(i)) base += units(i++);
        const int64_t end = std::min(rr.end(), base + units(i));  // this range's units of product i
        product_rows(ps[i], acts.fused[i], (k - base) * unit(i), std::min((end - base) * unit(i), ps[i].nr), x, n,
                     ldx, acts);
        k = end;
      }
    });
  });
}

// The batch from which a product whose fused dot reads each row once for every token goes to
// oneDNN instead, where the kernel's level measured one (FP8 on AVX-512 BF16 + VBMI CPUs, its
// activations rounded to bf16: the GEMM first widens the whole matrix to bf16 panels, which only
// pays off over more tokens); 0 otherwise.
int64_t fused_tokens_gemm_from(const WeightView& w) {
  return int_dot_enabled() ? fused_row_dot_tokens_gemm_from(w) : 0;
}

// BF16 weights meet oneDNN's BF16 matmul as they are stored (no panel to widen first): there it
// overtakes the fused dot from about half the usual batch (`strata bench kernels --types bf16
// --batch 4,8,12 --shapes v3`, Zen 5: 0.87-0.90 / 0.95-1.01 / 1.05-1.10 ms against the fused
// dot's 0.84-0.92 / 1.19-1.22 / 1.50-1.51).
bool bf16_gemm_in_place(const WeightView& w) {
  return w.type == WeightType::BF16 && gemm_bf16_enabled() && gemm_bf16_available() && !gemm_bf16_rounding();
}

}  // namespace

bool batch_invariant() { return kernel_choice<&KernelChoices::batch_invariant>(); }
void set_batch_invariant(bool on) {
  KernelChoices c = kernel_choices();
  c.batch_invariant = on;
  set_kernel_choices(c);
}

LinearPath linear_path(const WeightView& w, int64_t nr, int64_t n) {
  const bool invariant = batch_invariant();
  // Prefill-sized batches over a real matrix: dequantize panels and let oneDNN multiply (from
  // a larger batch where the integer dot is the faster of the two: qdot.h).
  const bool int_dot = int_dot_enabled() && qdot_supported(w.type);
  const bool tiles = int_dot && w.cols % 256 == 0 && qdot_tiles_supported(w.type);
  const int64_t gemm_from = int_dot ? (tiles ? int_dot_gemm_min_batch(w.type) : int_dot_gemm_min_batch())
                            : fused_tokens_gemm_from(w)
                                ? std::max(fused_tokens_gemm_from(w), gemm_min_batch())
                            : bf16_gemm_in_place(w) ? std::max<int64_t>(1, gemm_min_batch() / 2)
                                                    : gemm_min_batch();
  if (!invariant && n >= gemm_from && nr * w.cols >= (int64_t{1} << 16)) return LinearPath::Gemm;
  // Several tokens: tiles of 16 rows where the level has them (not in batch-invariant mode: a
  // token's result would then depend on the batch size, in the last f32 bits).
  if (int_dot) return !invariant && tiles && n >= qdot_tiles_min_batch(w.type) ? LinearPath::IntDotTiles : LinearPath::IntDot;
  // A fused dot converts the row again for every token: from three tokens on, widening it once
  // and reusing it costs less (measured for FP8 with `strata bench kernels --batch 1,8`) —
  // unless the fused dot itself reads the row once for all the tokens.
  if ((n <= 2 || invariant || has_fused_row_dot_tokens(w)) && has_fused_row_dot(w)) return LinearPath::FusedDot;
  return LinearPath::Rows;
}

const char* linear_path_name(LinearPath p) {
  switch (p) {
    case LinearPath::Gemm: return "gemm";
    case LinearPath::IntDot: return "int8";
    case LinearPath::IntDotTiles: return "int8tiles";
    case LinearPath::FusedDot: return "fused";
    case LinearPath::Rows: break;
  }
  return "rows";
}

void linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                 int64_t ldy, const ActQ8* const* q8) {
  const LinearPath path = linear_path(w, nr, n);
  if (path == LinearPath::Gemm) return linear_rows_onednn(w, r0, nr, x, n, ldx, y, ldy);
  const Product p{&w, r0, nr, y, ldy, path};
  small_batch(&p, 1, x, n, ldx, q8);
}

void linear_pair(const WeightView& a, const WeightView& b, const float* x, int64_t n, float* ya, float* yb,
                 const ActQ8* const* q8) {
  if (a.cols != b.cols) throw std::invalid_argument("linear_pair: inputs of " + std::to_string(a.cols) + " and " +
                                                    std::to_string(b.cols) + " columns");
  const LinearPath pa = linear_path(a, a.rows, n), pb = linear_path(b, b.rows, n);
  if (pa == LinearPath::Gemm || pb == LinearPath::Gemm) {
    linear(a, x, n, ya);
    linear(b, x, n, yb);
    return;
  }
  const Product ps[2] = {{&a, 0, a.rows, ya, a.rows, pa}, {&b, 0, b.rows, yb, b.rows, pb}};
  small_batch(ps, 2, x, n, a.cols, q8);
}

bool reads_q8(const WeightView& w, int64_t nr, int64_t n, unsigned& orders) {
  const bool reads = reads_int8(linear_path(w, nr, n));
  orders = reads ? act_orders_for(w.type) : 0;
  return reads;
}

bool pair_reads_q8(const WeightView& a, const WeightView& b, int64_t n, unsigned& orders) {
  orders = 0;
  if (linear_path(a, a.rows, n) == LinearPath::Gemm || linear_path(b, b.rows, n) == LinearPath::Gemm)
    return false;  // two linear() calls
  unsigned oa = 0, ob = 0;
  const bool ra = reads_q8(a, a.rows, n, oa), rb = reads_q8(b, b.rows, n, ob);
  orders = oa | ob;
  return ra || rb;
}

void linear_t_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                   int64_t ldy) {
  const int64_t cols = w.cols;
  if (fused_t_rows(w, r0, nr, x, y)) {
    for (int64_t t = 1; t < n; ++t) fused_t_rows(w, r0, nr, x + t * ldx, y + t * ldy);
    return;
  }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < cols; ++c) y[t * ldy + c] = 0;
  // Output columns are shared by all rows: accumulate serially (used on small per-head blocks),
  // rows widened a few at a time (one dequantizer call each: dequant_rows), 16 KiB of them, so
  // that they stay in L1 for the adds.
  const int64_t step = std::max<int64_t>(1, 4096 / cols);
  const ScratchFloats rows(static_cast<size_t>(std::min(step, nr) * cols));
  for (int64_t r = 0; r < nr; r += step) {
    const int64_t k = std::min(step, nr - r);
    dequant_rows(w, r0 + r, k, rows.data());
    for (int64_t i = 0; i < k; ++i)
      for (int64_t t = 0; t < n; ++t) axpy_f32(x[t * ldx + r + i], rows.data() + i * cols, y + t * ldy, cols);
  }
}

void linear_rows_ref(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                     int64_t ldy) {
  std::vector<float> m(static_cast<size_t>(nr * w.cols));
  dequantize_rows(w, r0, nr, m.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < nr; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < w.cols; ++c) acc += static_cast<double>(m[r * w.cols + c]) * x[t * ldx + c];
      y[t * ldy + r] = static_cast<float>(acc);
    }
}

void linear_t_rows_ref(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx,
                       float* y, int64_t ldy) {
  std::vector<float> m(static_cast<size_t>(nr * w.cols));
  dequantize_rows(w, r0, nr, m.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < w.cols; ++c) {
      double acc = 0;
      for (int64_t r = 0; r < nr; ++r) acc += static_cast<double>(m[r * w.cols + c]) * x[t * ldx + r];
      y[t * ldy + c] = static_cast<float>(acc);
    }
}

}  // namespace strata
