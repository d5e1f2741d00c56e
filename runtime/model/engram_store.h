// Engram tables served through the memory tier: the table tensor is cut into pages of whole
// rows (about 64 KiB each), read on use through an ExpertStore (a bounded DRAM cache filled
// with io_uring + O_DIRECT), and the rows a step will read are prefetched as soon as the step's
// hashes are known (Engram::begin_step), before any layer runs.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "memory-tier/expert_store.h"
#include "memory-tier/planner.h"
#include "runtime/format/weight_index.h"
#include "runtime/model/engram.h"

namespace strata {

// The size a table's pages aim at (whole rows; one row when a row is larger).
constexpr int64_t kEngramPageBytes = int64_t{64} << 10;

class StoredEngramTable final : public EngramTable {
 public:
  // Throws strata::Error naming the tensor when its type does not keep each row
  // self-contained (block-scaled FP8 and MXFP4 tables stay on the memory map), or when one page
  // does not fit in cache_bytes.
  StoredEngramTable(const WeightIndex& index, const TensorEntry& table, uint64_t cache_bytes, bool force_pread);
  // Whether the table keeps each row self-contained (no block scales outside its rows).
  static bool pageable(const TensorEntry& table);
  int64_t rows() const override { return rows_; }
  int64_t dim() const override { return cols_; }
  void read_rows(const int64_t* rows, int64_t n, float* out) const override;
  void prefetch(const int64_t* rows, int64_t n) const override;
  ExpertStoreStats stats() const { return store_->stats(); }
  uint64_t cache_bytes() const { return store_->budget(); }

 private:
  std::string name_;
  WeightType type_;
  int64_t rows_ = 0, cols_ = 0, row_bytes_ = 0, rows_per_page_ = 1;
  std::unique_ptr<ExpertStore> store_;
};

// Puts the Engram tables of `engram` that `placement` has on NVMe (every table when it is
// empty; a layer it lacks counts as NVMe) behind their own StoredEngramTable with a DRAM cache
// of cache_bytes / (number of such tables); the others stay on the memory map, as do, with a
// placement, NVMe-tier tables that are not pageable(). Throws strata::Error when tables are to
// be paged with no cache.
void store_engram_tables(Engram& engram, const WeightIndex& index, uint64_t cache_bytes, bool force_pread,
                         const std::map<int, Tier>& placement = {});

}  // namespace strata
