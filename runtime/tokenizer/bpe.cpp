#include "runtime/tokenizer/bpe.h"

#include <queue>

namespace strata {
namespace {

uint64_t pair_key(int32_t l, int32_t r) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
}

}  // namespace

BpeMerges::BpeMerges(std::vector<Merge> merges) : merges_(std::move(merges)) {
  table_.reserve(merges_.size() * 2);
  for (size_t i = 0; i < merges_.size(); ++i) {
    const Merge& m = merges_[i];
    table_.try_emplace(pair_key(m.left, m.right), RankResult{static_cast<int32_t>(i), m.result});
  }
}

const BpeMerges::RankResult* BpeMerges::find(int32_t left, int32_t right) const {
  auto it = table_.find(pair_key(left, right));
  return it == table_.end() ? nullptr : &it->second;
}

void BpeMerges::apply(std::vector<int32_t>& ids) const {
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n < 2) return;
  // Doubly linked symbols over the original positions; a symbol keeps the position of its
  // leftmost byte, so (rank, position) orders candidates exactly as "leftmost on ties".
  std::vector<int32_t> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (int32_t i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;

  struct Cand {
    int32_t rank, pos, left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t pos) {
    const int32_t nx = next[pos];
    if (nx < 0) return;
    if (const RankResult* rr = find(ids[pos], ids[nx])) heap.push({rr->rank, pos, ids[pos], ids[nx]});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);

  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int32_t nx = next[c.pos];
    // Stale when either side changed since the candidate was queued.
    if (!alive[c.pos] || nx < 0 || ids[c.pos] != c.left || ids[nx] != c.right) continue;
    ids[c.pos] = merges_[static_cast<size_t>(c.rank)].result;
    alive[nx] = 0;
    next[c.pos] = next[nx];
    if (next[nx] >= 0) prev[next[nx]] = c.pos;
    if (prev[c.pos] >= 0) push(prev[c.pos]);
    push(c.pos);
  }
  int32_t w = 0;
  for (int32_t i = 0; i < n; ++i)
    if (alive[i]) ids[w++] = ids[i];
  ids.resize(static_cast<size_t>(w));
}

void BpeMerges::apply_reference(std::vector<int32_t>& ids) const {
  for (;;) {
    size_t best = ids.size();
    const RankResult* best_rr = nullptr;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const RankResult* rr = find(ids[i], ids[i + 1]);
      if (rr && (!best_rr || rr->rank < best_rr->rank)) best = i, best_rr = rr;
    }
    if (!best_rr) return;
    ids[best] = best_rr->result;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
}

}  // namespace strata
