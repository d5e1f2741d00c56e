#include "cpu-kernels/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace strata {

Rope::Rope(const RopeParams& p) {
  if (p.dim <= 0 || p.dim % 2 != 0) throw std::invalid_argument("rope: dim must be positive and even");
  const int64_t half = p.dim / 2;
  freqs_.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    freqs_[static_cast<size_t>(i)] = 1.0 / std::pow(p.theta, static_cast<double>(2 * i) / static_cast<double>(p.dim));
  if (p.factor > 1 && p.original_max_positions > 0) {
    // The dim whose wavelength makes `rot` full turns over the original context.
    auto corr = [&](double rot) {
      return static_cast<double>(p.dim) *
             std::log(static_cast<double>(p.original_max_positions) / (rot * 2 * std::numbers::pi)) /
             (2 * std::log(p.theta));
    };
    const double low = std::max(std::floor(corr(p.beta_fast)), 0.0);
    double high = std::min(std::ceil(corr(p.beta_slow)), static_cast<double>(p.dim - 1));
    if (low == high) high += 0.001;
    for (int64_t i = 0; i < half; ++i) {
      const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
      double& f = freqs_[static_cast<size_t>(i)];
      f = f * (1 - ramp) + f / p.factor * ramp;
    }
  }
}

namespace {

// cos and sin of pos · freq[i], computed once for all the vectors of a call.
template <class Rotate>
void rotate_all(const std::vector<double>& freqs, float* x, int64_t count, int64_t stride, int64_t pos, Rotate rotate) {
  constexpr size_t kStack = 128;
  const size_t half = freqs.size();
  float cs_stack[2 * kStack];
  std::vector<float> cs_heap(half > kStack ? 2 * half : 0);
  float* c = half > kStack ? cs_heap.data() : cs_stack;
  float* s = c + half;
  for (size_t i = 0; i < half; ++i) {
    const double a = static_cast<double>(pos) * freqs[i];
    c[i] = static_cast<float>(std::cos(a));
    s[i] = static_cast<float>(std::sin(a));
  }
  for (int64_t v = 0; v < count; ++v) rotate(x + v * stride, c, s, half);
}

}  // namespace

void Rope::apply_interleaved(float* x, int64_t count, int64_t stride, int64_t pos) const {
  rotate_all(freqs_, x, count, stride, pos, [](float* v, const float* c, const float* s, size_t half) {
    for (size_t i = 0; i < half; ++i) {
      const float x0 = v[2 * i], x1 = v[2 * i + 1];
      v[2 * i] = x0 * c[i] - x1 * s[i];
      v[2 * i + 1] = x0 * s[i] + x1 * c[i];
    }
  });
}

void Rope::apply_halves(float* x, int64_t count, int64_t stride, int64_t pos) const {
  rotate_all(freqs_, x, count, stride, pos, [](float* v, const float* c, const float* s, size_t half) {
    for (size_t i = 0; i < half; ++i) {
      const float x0 = v[i], x1 = v[i + half];
      v[i] = x0 * c[i] - x1 * s[i];
      v[i + half] = x0 * s[i] + x1 * c[i];
    }
  });
}

double yarn_mscale(double factor, double mscale) { return factor <= 1 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0; }

}  // namespace strata
