// Byte-pair merges over token ids: a rank table of (left, right) -> (rank, merged id), the
// heap-based merge used for encoding and a quadratic reference twin it is tested against.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace strata {

class BpeMerges {
 public:
  struct Merge {
    int32_t left, right, result;
  };

  // Merges in rank order (rank = index). A repeated (left, right) pair keeps its first rank.
  explicit BpeMerges(std::vector<Merge> merges);
  BpeMerges() = default;

  const std::vector<Merge>& merges() const { return merges_; }

  // Merges `ids` in place: repeatedly the pair of lowest rank, the leftmost one on ties.
  void apply(std::vector<int32_t>& ids) const;
  // Same result by rescanning the whole sequence after every merge (O(n^2)).
  void apply_reference(std::vector<int32_t>& ids) const;

 private:
  struct RankResult {
    int32_t rank, result;
  };
  const RankResult* find(int32_t left, int32_t right) const;

  std::vector<Merge> merges_;
  std::unordered_map<uint64_t, RankResult> table_;
};

}  // namespace strata
