// Rotary position embedding with optional YaRN scaling (as DeepSeek-V3 configures it).
#pragma once

#include <cstdint>
#include <vector>

namespace strata {

struct RopeParams {
  int64_t dim = 0;  // rotated dims (even)
  double theta = 10000;
  // YaRN (factor > 1 and original_max_positions > 0): frequencies between the beta_fast and
  // beta_slow correction dims are blended from f to f/factor along a linear ramp.
  double factor = 1;
  int64_t original_max_positions = 0;
  double beta_fast = 32, beta_slow = 1;
};

class Rope {
 public:
  explicit Rope(const RopeParams& p);
  int64_t dim() const { return static_cast<int64_t>(freqs_.size()) * 2; }
  const std::vector<double>& freqs() const { return freqs_; }

  // Pairs (x[2i], x[2i+1]) rotated by pos·freq[i] (DeepSeek MLA, GGUF rope type "norm").
  void apply_interleaved(float* x, int64_t pos) const { apply_interleaved(x, 1, 0, pos); }
  // Pairs (x[i], x[i + dim/2]) rotated by pos·freq[i] (the V3.2 indexer, "neox").
  void apply_halves(float* x, int64_t pos) const { apply_halves(x, 1, 0, pos); }
  // The same for `count` vectors at x + v · stride sharing one position (the heads of a
  // token): the angles' cos and sin computed once.
  void apply_interleaved(float* x, int64_t count, int64_t stride, int64_t pos) const;
  void apply_halves(float* x, int64_t count, int64_t stride, int64_t pos) const;

 private:
  std::vector<double> freqs_;
};

// The YaRN attention-scale multiplier 0.1·mscale·ln(factor) + 1 (1 when factor <= 1).
double yarn_mscale(double factor, double mscale);

}  // namespace strata
