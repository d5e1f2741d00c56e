#include "cpu-kernels/gemm_onednn.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <dnnl.hpp>
#include <tbb/task_arena.h>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/row_dequant.h"

namespace strata {
namespace {

using dt = dnnl::memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

std::atomic<bool> g_bf16_rounding{false};
std::atomic<long> g_created{0}, g_in_place{0}, g_calls{0}, g_from_workers{0};

// One matmul shape: src [n, cols] (row stride ldx) x weights [cols, np] (a panel of rows, read
// transposed) -> dst [n, np] (row stride ldy), in `type` with F32 output.
struct Shape {
  int64_t n, cols, np, ldx, ldy;
  dt type;
  bool operator<(const Shape& o) const {
    return std::tie(n, cols, np, ldx, ldy, type) < std::tie(o.n, o.cols, o.np, o.ldx, o.ldy, o.type);
  }
};

dnnl::matmul::primitive_desc describe(const Shape& s) {
  using dnnl::memory;
  const memory::desc src_md({s.n, s.cols}, s.type, memory::dims{s.ldx, 1});
  const memory::desc wei_md({s.cols, s.np}, s.type, memory::dims{1, s.cols});
  const memory::desc dst_md({s.n, s.np}, dt::f32, memory::dims{s.ldy, 1});
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, wei_md, dst_md), cpu_engine());
}

struct Prim {
  dnnl::matmul mm;
  dnnl::memory::desc src, wei, dst;
};

// The calling thread's primitive for a shape, created on first use. A prefill meets a handful
// of shapes (its token count, the routed experts' token counts); past 256 the cache restarts.
const Prim& primitive(const Shape& s) {
  thread_local std::map<Shape, Prim> cache;
  if (auto it = cache.find(s); it != cache.end()) return it->second;
  if (cache.size() >= 256) cache.clear();
  const dnnl::matmul::primitive_desc pd = describe(s);
  ++g_created;
  return cache.emplace(s, Prim{dnnl::matmul(pd), pd.src_desc(), pd.weights_desc(), pd.dst_desc()}).first->second;
}

// Rounds n floats to bf16 (to nearest even, NaN kept quiet), with the vector kernel of the
// level in effect (row_dequant.h).
void to_bf16(const float* src, uint16_t* dst, int64_t n) { to_bf16_row(src, dst, n); }

// The same rounding, kept as f32 (the F32 path's operands under gemm_bf16_rounding).
void round_bf16(const float* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(f32_to_bf16(src[i]));
}

}  // namespace

int64_t gemm_min_batch() {
  const int64_t v = kernel_choice<&KernelChoices::gemm_min_batch>();
  return v <= 0 ? INT64_MAX : v;
}

bool gemm_bf16_available(std::string* why) {
  // Only with the BF16 instructions (AVX-512 BF16; every AMX CPU has them too): oneDNN also
  // emulates BF16 on plain AVX-512, slower than its F32. Then a small BF16 matmul, created once;
  // oneDNN's reference implementation does not count either.
  static const std::string reason = []() -> std::string {
    if (cpu_features().emulated) return "AVX-512 BF16 is emulated over SIMDe in this build: oneDNN's BF16 GEMM is not";
    if (!cpu_features().avx512bf16) return "this CPU has no AVX-512 BF16 instructions: batched products stay f32";
    try {
      const dnnl::matmul::primitive_desc pd = describe({64, 64, 64, 64, 64, dt::bf16});
      const std::string impl = pd.impl_info_str();
      if (impl.rfind("ref", 0) == 0) return "oneDNN has only its reference BF16 matmul (" + impl + ") on this CPU";
      return {};
    } catch (const dnnl::error& e) {
      return std::string("oneDNN has no BF16 matmul on this CPU: ") + e.what();
    }
  }();
  if (why) *why = reason;
  return reason.empty();
}

bool gemm_bf16_enabled() { return kernel_choice<&KernelChoices::gemm_bf16>(); }
void set_gemm_bf16(bool on) {
  KernelChoices c = kernel_choices();
  c.gemm_bf16 = on;
  set_kernel_choices(c);
}
bool gemm_bf16_rounding() { return g_bf16_rounding.load(std::memory_order_relaxed); }
void set_gemm_bf16_rounding(bool on) { g_bf16_rounding.store(on); }
const char* gemm_type_name() {
  if (gemm_bf16_enabled() && gemm_bf16_available()) return "bf16";
  return gemm_bf16_rounding() ? "f32 over bf16-rounded operands" : "f32";
}
long gemm_primitives_created() { return g_created.load(); }
long gemm_in_place_products() { return g_in_place.load(); }
long gemm_calls() { return g_calls.load(); }
long gemm_calls_from_workers() { return g_from_workers.load(); }

void linear_rows_onednn(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                        int64_t ldy) {
  ++g_calls;
  if (tbb::this_task_arena::current_thread_index() > 0) ++g_from_workers;
  const int64_t cols = w.cols;
  const bool bf16 = gemm_bf16_enabled() && gemm_bf16_available();
  const int64_t elem = bf16 ? 2 : 4;
  // Panels of KernelChoices::gemm_panel_mb (default 64 MiB: a whole DeepSeek-V3 expert matrix
  // in f32, two in bf16): few oneDNN calls, each large enough to keep every core busy.
  const int64_t panel_bytes = kernel_choice<&KernelChoices::gemm_panel_mb>() << 20;
  const int64_t panel = std::clamp<int64_t>(panel_bytes / (elem * cols), 16, nr);
  const bool rounding = !bf16 && gemm_bf16_rounding();
  thread_local std::vector<float> buf, act_rounded;
  thread_local std::vector<uint16_t> act;
  // The activations, rounded to bf16 once for every panel (dense rows).
  const void* src = x;
  int64_t src_ld = ldx;
  if (bf16) {
    act.resize(static_cast<size_t>(n * cols));
    for (int64_t t = 0; t < n; ++t) to_bf16(x + t * ldx, act.data() + t * cols, cols);
    src = act.data();
    src_ld = cols;
  } else if (rounding) {
    act_rounded.resize(static_cast<size_t>(n * cols));
    for (int64_t t = 0; t < n; ++t) round_bf16(x + t * ldx, act_rounded.data() + t * cols, cols);
    src = act_rounded.data();
    src_ld = cols;
  }
  thread_local dnnl::stream strm(cpu_engine());
  const dt type = bf16 ? dt::bf16 : dt::f32;
  auto multiply = [&](const void* wei, int64_t np, float* dst) {
    const Prim& p = primitive({n, cols, np, src_ld, ldy, type});
    dnnl::memory src_m(p.src, cpu_engine(), const_cast<void*>(src)), wei_m(p.wei, cpu_engine(), const_cast<void*>(wei)),
        dst_m(p.dst, cpu_engine(), dst);
    p.mm.execute(strm, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, wei_m}, {DNNL_ARG_DST, dst_m}});
    strm.wait();
  };
  // Weights already stored in the type multiplied: oneDNN reads the rows where they lie.
  if (w.type == (bf16 ? WeightType::BF16 : WeightType::F32) && !rounding) {
    ++g_in_place;
    multiply(w.data + r0 * cols * elem, nr, y);
    return;
  }
  buf.resize(static_cast<size_t>(panel * cols * elem / 4));
  void* const panel_buf = buf.data();  // the calling thread's buffer, filled by the workers
  for (int64_t p0 = 0; p0 < nr; p0 += panel) {
    const int64_t np = std::min(panel, nr - p0);
    // OpenMP, the threads oneDNN itself runs on: a oneTBB pool here would fight oneDNN's
    // spinning OpenMP threads for the cores between the two phases.
    if (bf16) {
      uint16_t* const out = static_cast<uint16_t*>(panel_buf);
#ifdef _OPENMP
#pragma omp parallel
#endif
      {
        std::vector<float> row(static_cast<size_t>(cols));
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t r = 0; r < np; ++r) {
          dequant_row(w, r0 + p0 + r, row.data());
          to_bf16(row.data(), out + r * cols, cols);
        }
      }
    } else {
      float* const out = static_cast<float*>(panel_buf);
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
      for (int64_t r = 0; r < np; ++r) {
        dequant_row(w, r0 + p0 + r, out + r * cols);
        if (rounding) round_bf16(out + r * cols, out + r * cols, cols);
      }
    }
    multiply(panel_buf, np, y + p0);
  }
}

}  // namespace strata
