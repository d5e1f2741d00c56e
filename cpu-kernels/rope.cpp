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

void Rope::apply_interleaved(float* x, int64_t pos) const {
  for (size_t i = 0; i < freqs_.size(); ++i) {
    const double a = static_cast<double>(pos) * freqs_[i];
    const float c = static_cast<float>(std::cos(a)), s = static_cast<float>(std::sin(a));
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * c - x1 * s;
    x[2 * i + 1] = x0 * s + x1 * c;
  }
}

void Rope::apply_halves(float* x, int64_t pos) const {
  const size_t half = freqs_.size();
  for (size_t i = 0; i < half; ++i) {
    const double a = static_cast<double>(pos) * freqs_[i];
    const float c = static_cast<float>(std::cos(a)), s = static_cast<float>(std::sin(a));
    const float x0 = x[i], x1 = x[i + half];
    x[i] = x0 * c - x1 * s;
    x[i + half] = x0 * s + x1 * c;
  }
}

double yarn_mscale(double factor, double mscale) { return factor <= 1 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0; }

}  // namespace strata
