#include "runtime/backend/cpu_ops.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/ops.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/scratch.h"
#include "cpu-kernels/v4_attention.h"

namespace strata {

uint64_t mlp_bytes(const Mlp& m) {
  uint64_t b = 0;
  for (const WeightView* w : {&m.w1, &m.w2, &m.w3}) b += static_cast<uint64_t>(weight_data_bytes(*w) + weight_scale_bytes(*w));
  return b;
}

void CpuOps::linear(const WeightView& w, const float* x, int64_t n, float* out) const { strata::linear(w, x, n, out); }

namespace {

void mlp_with(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit, const ActQ8* const* q8) {
  const int64_t inter = m.w1.rows;
  const ScratchFloats g(static_cast<size_t>(n * inter)), u(static_cast<size_t>(n * inter));
  linear_pair(m.w1, m.w3, x, n, g.data(), u.data(), q8);
  swiglu_limited(g.data(), u.data(), g.data(), n * inter, swiglu_limit);
  strata::linear(m.w2, g.data(), n, out);
}

// The rows of the jobs' shared input (MlpJob::source) quantized once for all their gate and up
// products, instead of once per job that reads them: a token routed to k experts was quantized
// k times. per_job[i][t]: job i's token t.
struct SharedActs {
  std::vector<ActQ8> q8;       // one per distinct source row read
  std::vector<int32_t> slot;   // source row -> its index in q8, or -1
  std::vector<int32_t> row;    // q8's index -> source row
  std::vector<std::vector<const ActQ8*>> per_job;
};

// False where there is nothing to share: one job, jobs without a common source, or gate and up
// products that read no quantized activations (the GEMM, the float types' dots).
bool quantize_shared(std::span<const MlpJob> jobs, SharedActs& s) {
  if (jobs.size() < 2 || !jobs[0].source) return false;
  const float* source = jobs[0].source;
  const int64_t d = jobs[0].mlp->w1.cols;
  unsigned orders = 0;
  bool reads = false;
  int32_t last = -1;
  for (const MlpJob& j : jobs) {
    if (j.source != source || !j.rows || j.mlp->w1.cols != d) return false;
    unsigned o = 0;
    reads = pair_reads_q8(j.mlp->w1, j.mlp->w3, j.n, o) || reads;
    orders |= o;
    for (int64_t t = 0; t < j.n; ++t) last = std::max(last, j.rows[t]);
  }
  if (!reads) return false;
  s.slot.assign(static_cast<size_t>(last) + 1, -1);
  s.row.clear();
  for (const MlpJob& j : jobs)
    for (int64_t t = 0; t < j.n; ++t)
      if (int32_t& k = s.slot[static_cast<size_t>(j.rows[t])]; k < 0) {
        k = static_cast<int32_t>(s.row.size());
        s.row.push_back(j.rows[t]);
      }
  if (s.q8.size() < s.row.size()) s.q8.resize(s.row.size());
  tbb::parallel_for(size_t{0}, s.row.size(), [&](size_t i) {
    quantize_act_q8(source + static_cast<int64_t>(s.row[i]) * d, d, s.q8[i], orders);
  });
  s.per_job.resize(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    s.per_job[i].resize(static_cast<size_t>(jobs[i].n));
    for (int64_t t = 0; t < jobs[i].n; ++t)
      s.per_job[i][static_cast<size_t>(t)] = &s.q8[static_cast<size_t>(s.slot[static_cast<size_t>(jobs[i].rows[t])])];
  }
  return true;
}

}  // namespace

void CpuOps::mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const {
  mlp_with(m, x, n, out, swiglu_limit, nullptr);
}

void CpuOps::mlp_batch(std::span<const MlpJob> jobs, float swiglu_limit) const {
  // Experts with a GEMM-sized share of the batch (prefill) multiply through oneDNN, whose
  // OpenMP team already takes every core: they run one after another on this thread. Started
  // from oneTBB workers instead, each would bring its own team (cores x cores threads).
  const ScratchLease<std::vector<MlpJob>> small_lease;
  std::vector<MlpJob>& small = *small_lease;
  small.clear();
  for (const MlpJob& j : jobs) {
    if (linear_path(j.mlp->w1, j.mlp->w1.rows, j.n) == LinearPath::Gemm) mlp(*j.mlp, j.x, j.n, j.out, swiglu_limit);
    else small.push_back(j);
  }
  const ScratchLease<SharedActs> shared_lease;
  SharedActs& shared = *shared_lease;
  bool is_shared = false;
  // Jobs [i] of `small`, on the arena this runs in.
  auto run = [&](std::span<const size_t> idx) {
    tbb::parallel_for(size_t{0}, idx.size(), [&](size_t k) {
      const MlpJob& j = small[idx[k]];
      mlp_with(*j.mlp, j.x, j.n, j.out, swiglu_limit, is_shared ? shared.per_job[idx[k]].data() : nullptr);
    });
  };
  const ScratchLease<std::vector<size_t>> all_lease;
  std::vector<size_t>& all = *all_lease;
  all.resize(small.size());
  for (size_t i = 0; i < small.size(); ++i) all[i] = i;
  // Already inside a compute arena (or no split): all jobs here.
  if (compute_nodes() == 1 || compute_arena_of_this_thread() >= 0)
    return run_in_compute_arena([&] {
      is_shared = quantize_shared(small, shared);
      run(all);
    });
  if (small.size() == 1) return run_on_compute_node(small[0].node, [&] { run(all); });
  run_in_compute_arena([&] { is_shared = quantize_shared(small, shared); });
  const ScratchLease<std::vector<std::vector<size_t>>> per_node_lease;
  std::vector<std::vector<size_t>>& per_node = *per_node_lease;
  per_node.resize(static_cast<size_t>(compute_nodes()));
  for (auto& v : per_node) v.clear();
  for (size_t i = 0; i < small.size(); ++i) per_node[static_cast<size_t>(small[i].node) % per_node.size()].push_back(i);
  run_on_compute_nodes([&](int k) { run(per_node[static_cast<size_t>(k)]); });
}

void CpuOps::gather_rows(const WeightView& table, const int32_t* rows, int64_t n, float* out) const {
  for (int64_t i = 0; i < n; ++i) dequantize_rows(table, rows[i], 1, out + i * table.cols);
}

void CpuOps::route(const RouterParams& p, const float* logits, const float* bias, const int32_t* fixed, int64_t n,
                   int32_t* ids, float* weights) const {
  const int64_t ne = p.n_experts, k = p.top_k;
  for (int64_t t = 0; t < n; ++t) {
    if (fixed) {
      std::copy_n(fixed + t * k, k, ids + t * k);
      route_token_fixed(p, logits + t * ne, ids + t * k, weights + t * k);
    } else {
      route_token(p, logits + t * ne, bias, ids + t * k, weights + t * k);
    }
  }
}

void CpuOps::hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post,
                    float* comb) const {
  strata::hc_pre(p, w, X, n, u, post, comb);
}

void CpuOps::hc_post(const HcParams& p, const float* f, const float* post, const float* comb, float* X,
                     int64_t n) const {
  strata::hc_post(p, f, post, comb, X, n);
}

void CpuOps::hc_head(const HcParams& p, const HcView& w, const float* X, float* u) const {
  strata::hc_head(p, w, X, u);
}

void CpuOps::rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t d, float eps) const {
  strata::rms_norm(x, w, y, n, d, eps);
}

void CpuOps::layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d,
                        float eps) const {
  strata::layer_norm(x, w, b, y, n, d, eps);
}

void CpuOps::rope(const Rope& r, bool halves, float* x, int64_t n, int64_t heads, int64_t head_stride,
                  int64_t token_stride, const int64_t* pos) const {
  for (int64_t t = 0; t < n; ++t) {
    float* v = x + t * token_stride;
    if (halves) r.apply_halves(v, heads, head_stride, pos[t]);
    else r.apply_interleaved(v, heads, head_stride, pos[t]);
  }
}

void CpuOps::rope_at(const Rope& r, float* x, int64_t heads, int64_t head_stride, int64_t pos) const {
  r.apply_interleaved(x, heads, head_stride, pos);
}

namespace {

// Rows are independent: in parallel chunks of 16 (a step's indexer heads are thousands of rows).
template <class F>
void each_row(int64_t n, const F& f) {
  run_in_compute_arena([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 16), [&](const tbb::blocked_range<int64_t>& r) {
      for (int64_t i = r.begin(); i < r.end(); ++i) f(i);
    });
  });
}

}  // namespace

void CpuOps::hadamard_rows(float* x, int64_t n, int64_t dim) const {
  each_row(n, [&](int64_t i) { hadamard(x + i * dim, dim); });
}

void CpuOps::quant_rows(float* x, int64_t n, int64_t stride, int64_t dim, int64_t block, RowQuant q) const {
  each_row(n, [&](int64_t i) {
    float* row = x + i * stride;
    if (q == RowQuant::Fp4) fp4_qdq(row, dim, block);
    else fp8_qdq(row, dim, block, q == RowQuant::Fp8Pow2);
  });
}

void CpuOps::add(const float* a, const float* b, float* out, int64_t n) const {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void CpuOps::linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                         int64_t ldy) const {
  strata::linear_rows(w, r0, nr, x, n, ldx, y, ldy);
}

void CpuOps::sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H,
                            int64_t D, float scale, float* out) const {
  strata::sink_attention(q, keys, nk, sink, H, D, scale, out);
}

void CpuOps::sink_attention(const float* q, const uint16_t* const* keys, int64_t nk, const float* sink,
                            int64_t H, int64_t D, float scale, float* out) const {
  strata::sink_attention(q, keys, nk, sink, H, D, scale, out);
}

void CpuOps::index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos, int64_t ratio,
                        int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked, int64_t* count) const {
  strata::index_pick(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count);
}

void CpuOps::index_pick(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t first_pos,
                        int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                        int64_t* count) const {
  strata::index_pick(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count);
}

void CpuOps::compress_pool(const float* kv, const float* score, const float* prev_kv, const float* prev_score,
                           int64_t ratio, int64_t width, int64_t own, int64_t D, float* out) const {
  strata::compress_pool(kv, score, prev_kv, prev_score, ratio, width, own, D, out);
}

void CpuOps::scale(float* x, int64_t n, float a) const {
  for (int64_t i = 0; i < n; ++i) x[i] *= a;
}

void CpuOps::copy(void* dst, const void* src, uint64_t bytes) const {
  if (bytes) std::memcpy(dst, src, bytes);
}

void CpuOps::mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                           const float* latent, const float* k_rope, const uint8_t* allowed, bool absorbed,
                           float* out) const {
  strata::mla_attention(s, up, q, n, n_past, latent, k_rope, allowed, absorbed, out);
}

void CpuOps::mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                           const uint16_t* latent, const uint16_t* k_rope, const uint8_t* allowed, bool absorbed,
                           float* out) const {
  strata::mla_attention(s, up, q, n, n_past, latent, k_rope, allowed, absorbed, out);
}

void CpuOps::to_bf16(uint16_t* dst, const float* src, int64_t n) const { to_bf16_row(src, dst, n); }

void CpuOps::index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh,
                        int64_t hd, int64_t top_k, uint8_t* allowed) const {
  strata::index_topk(q, w, keys, n, n_past, nh, hd, top_k, allowed);
}

void CpuOps::index_topk(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t n_past,
                        int64_t nh, int64_t hd, int64_t top_k, uint8_t* allowed) const {
  strata::index_topk(q, w, keys, n, n_past, nh, hd, top_k, allowed);
}

const CpuOps& cpu_ops() {
  static const CpuOps ops;
  return ops;
}

}  // namespace strata
