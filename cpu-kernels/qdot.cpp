#include "cpu-kernels/qdot.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/qdot_kernels.h"

namespace strata {
namespace {

std::atomic<bool>& int_dot_flag() {
  static std::atomic<bool> on{[] {
    const char* e = std::getenv("STRATA_INT_DOT");
    return !(e && std::string(e) == "0");
  }()};
  return on;
}

const kern::QDotKernels& kernels_for_level() {
  switch (dispatch_level()) {
    case CpuLevel::Avx512:
      if (cpu_features().avx512vnni) return kern::qdot_kernels_vnni();
      return kern::qdot_kernels_avx2();
    case CpuLevel::Avx2: return kern::qdot_kernels_avx2();
    case CpuLevel::Scalar: break;
  }
  return kern::qdot_kernels_scalar();
}

float row_dot(const kern::QDotKernels& k, const WeightView& w, int64_t r, const ActQ8& a) {
  if (a.n != w.cols) throw std::invalid_argument("qdot_row: activations of " + std::to_string(a.n) +
                                                 " for a row of " + std::to_string(w.cols));
  const int64_t n = w.cols;
  const int8_t* xq = a.q.data();
  const float* xd = a.d.data();
  const int16_t* xs = a.s.data();
  const float* xds = a.ds.data();
  switch (w.type) {
    case WeightType::Q8_0: return k.q8_0(w.data + r * (n / 32) * 34, xq, xd, xs, xds, n);
    case WeightType::Q4_0: return k.q4_0(w.data + r * (n / 32) * 18, xq, xd, xs, xds, n);
    case WeightType::Q4_K: return k.q4_k(w.data + r * (n / 256) * 144, xq, xd, xs, xds, n);
    case WeightType::Q5_K: return k.q5_k(w.data + r * (n / 256) * 176, xq, xd, xs, xds, n);
    case WeightType::Q6_K: return k.q6_k(w.data + r * (n / 256) * 210, xq, xd, xs, xds, n);
    case WeightType::MXFP4: return k.mxfp4(w.data + r * n / 2, w.scale + r * n / 32, a.qp.data(), xd, n);
    default: break;
  }
  throw std::invalid_argument("qdot_row: no integer dot for " + std::string(weight_type_name(w.type)));
}

void pair_order(ActQ8& a) {
  const int64_t nb = a.n / 32;
  a.qp.resize(a.q.size());
  for (int64_t b = 0; b < nb; b += 2) {
    const int64_t cnt = nb - b >= 2 ? 2 : 1;
    const int8_t* src = a.q.data() + b * 32;
    int8_t* dst = a.qp.data() + b * 32;
    for (int64_t k = 0; k < cnt; ++k)
      for (int i = 0; i < 16; ++i) {
        dst[k * 16 + i] = src[k * 32 + 2 * i];
        dst[cnt * 16 + k * 16 + i] = src[k * 32 + 2 * i + 1];
      }
  }
}

}  // namespace

void quantize_act_q8(const float* x, int64_t n, ActQ8& out) {
  if (n % 32) throw std::invalid_argument("quantize_act_q8: length " + std::to_string(n) + " is not a multiple of 32");
  out.n = n;
  out.q.resize(static_cast<size_t>(n));
  out.d.resize(static_cast<size_t>(n / 32));
  out.s.resize(static_cast<size_t>(n / 16));
  out.ds.resize(static_cast<size_t>(n / 32));
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    out.d[static_cast<size_t>(b)] = d;
    int8_t* q = out.q.data() + b * 32;
    for (int h = 0; h < 2; ++h) {
      int sum = 0;
      for (int i = 16 * h; i < 16 * h + 16; ++i) {
        const float v = std::nearbyint(xb[i] * id);  // round to nearest even; |v| <= 127
        q[i] = static_cast<int8_t>(v);
        sum += q[i];
      }
      out.s[static_cast<size_t>(2 * b + h)] = static_cast<int16_t>(sum);
    }
    out.ds[static_cast<size_t>(b)] = d * static_cast<float>(out.s[static_cast<size_t>(2 * b)] +
                                                             out.s[static_cast<size_t>(2 * b + 1)]);
  }
  pair_order(out);
}

bool qdot_supported(WeightType t) {
  switch (t) {
    case WeightType::Q8_0:
    case WeightType::Q4_0:
    case WeightType::Q4_K:
    case WeightType::Q5_K:
    case WeightType::Q6_K:
    case WeightType::MXFP4: return true;
    default: return false;
  }
}

float qdot_row(const WeightView& w, int64_t r, const ActQ8& a) { return row_dot(kernels_for_level(), w, r, a); }

float qdot_row_scalar(const WeightView& w, int64_t r, const ActQ8& a) {
  return row_dot(kern::qdot_kernels_scalar(), w, r, a);
}

bool int_dot_enabled() { return int_dot_flag().load(std::memory_order_relaxed); }
void set_int_dot(bool on) { int_dot_flag().store(on); }

}  // namespace strata
