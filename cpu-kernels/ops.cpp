#include "cpu-kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/row_dequant.h"

namespace strata {

void rms_norm(const float* x, const float* w, float* y, int64_t n_rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * dim;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
    float* yr = y + r * dim;
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n_rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * dim;
    double s = 0;
    for (int64_t i = 0; i < dim; ++i) s += xr[i];
    const double mean = s / static_cast<double>(dim);
    double v = 0;
    for (int64_t i = 0; i < dim; ++i) v += (xr[i] - mean) * (xr[i] - mean);
    const double inv = 1.0 / std::sqrt(v / static_cast<double>(dim) + eps);
    float* yr = y + r * dim;
    for (int64_t i = 0; i < dim; ++i) yr[i] = static_cast<float>((xr[i] - mean) * inv) * w[i] + b[i];
  }
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

namespace {

// out[i] = g · sigmoid(g) · u for g = gate(i), u = up(i) (gate and out may be the same array):
// the exponentials a chunk at a time through exp_f32.
template <class Gate, class Up>
void silu_times(Gate gate, Up up, float* out, int64_t n) {
  constexpr int64_t kChunk = 256;
  float e[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = std::min(kChunk, n - i0);
    for (int64_t j = 0; j < m; ++j) e[j] = -gate(i0 + j);
    exp_f32(e, m);
    for (int64_t j = 0; j < m; ++j) {
      const float g = gate(i0 + j);
      out[i0 + j] = g * (1.0f / (1.0f + e[j])) * up(i0 + j);
    }
  }
}

}  // namespace

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  silu_times([gate](int64_t i) { return gate[i]; }, [up](int64_t i) { return up[i]; }, out, n);
}

void softmax(float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  if (std::isinf(m) && m < 0) {
    for (int64_t i = 0; i < n; ++i) x[i] = 0;
    return;
  }
  for (int64_t i = 0; i < n; ++i) x[i] -= m;
  exp_f32(x, n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void hadamard(float* x, int64_t dim) {
  if (dim <= 0 || (dim & (dim - 1)) != 0)
    throw std::invalid_argument("hadamard: dim " + std::to_string(dim) + " is not a power of two");
  for (int64_t h = 1; h < dim; h *= 2)
    for (int64_t i = 0; i < dim; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim)));
  for (int64_t i = 0; i < dim; ++i) x[i] *= s;
}

void fp8_qdq(float* x, int64_t dim, int64_t block, bool pow2_scale) {
  for (int64_t b0 = 0; b0 < dim; b0 += block) {
    const int64_t b1 = std::min(dim, b0 + block);
    float amax = 0;
    for (int64_t i = b0; i < b1; ++i) amax = std::max(amax, std::fabs(x[i]));
    float scale = std::max(amax, 1e-4f) / 448.0f;
    if (pow2_scale) scale = std::exp2(std::ceil(std::log2(scale)));
    for (int64_t i = b0; i < b1; ++i) x[i] = e4m3_to_f32(f32_to_e4m3(x[i] / scale)) * scale;
  }
}

void fp4_qdq(float* x, int64_t dim, int64_t block) {
  const float min_amax = 6.0f * std::ldexp(1.0f, -126);
  for (int64_t b0 = 0; b0 < dim; b0 += block) {
    const int64_t b1 = std::min(dim, b0 + block);
    float amax = 0;
    for (int64_t i = b0; i < b1; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float scale = std::exp2(std::ceil(std::log2(std::max(amax, min_amax) / 6.0f)));
    const float inv = 1.0f / scale;  // a power of two: x · inv is x / scale exactly
    for (int64_t i = b0; i < b1; ++i) x[i] = e2m1_round(x[i] * inv) * scale;
  }
}

void swiglu_limited(const float* gate, const float* up, float* out, int64_t n, float limit) {
  if (limit <= 0) return swiglu(gate, up, out, n);
  silu_times([gate, limit](int64_t i) { return std::min(gate[i], limit); },
             [up, limit](int64_t i) { return std::clamp(up[i], -limit, limit); }, out, n);
}

}  // namespace strata
