// Next-token choice from logits: greedy when temperature is 0, else softmax(logits / T)
// restricted to the top_k tokens and then to the smallest set whose probability reaches
// top_p, sampled with a seeded generator (same seed, same tokens).
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace strata {

struct SamplerParams {
  float temperature = 0;  // 0: greedy (argmax, lowest id on ties)
  int top_k = 0;          // 0: no limit
  float top_p = 1;        // 1: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  int32_t next(std::span<const float> logits);

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
};

}  // namespace strata
