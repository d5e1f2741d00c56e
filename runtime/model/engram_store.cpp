#include "runtime/model/engram_store.h"

#include <algorithm>

#include "runtime/backend/device.h"
#include "runtime/common/error.h"

namespace strata {

bool StoredEngramTable::pageable(const TensorEntry& t) {
  return t.shape.size() == 2 && t.scale.empty() && t.type != WeightType::MXFP4 && t.type != WeightType::F8_E4M3;
}

StoredEngramTable::StoredEngramTable(const WeightIndex& index, const TensorEntry& t, uint64_t cache_bytes,
                                     bool force_pread)
    : name_(t.name), type_(t.type) {
  if (!pageable(t))
    throw_error({index.path().string(), t.name, static_cast<int64_t>(t.offset)},
                std::string("Engram table of type ") + std::string(weight_type_name(t.type)) +
                    " has block scales outside its rows and cannot be paged by rows; leave it on the memory map");
  rows_ = t.shape[0];
  cols_ = t.shape[1];
  row_bytes_ = row_bytes(t.type, cols_);
  rows_per_page_ = std::max<int64_t>(1, kEngramPageBytes / row_bytes_);
  std::vector<StoreItem> pages;
  for (int64_t r = 0; r < rows_; r += rows_per_page_) {
    const int64_t nr = std::min(rows_per_page_, rows_ - r);
    pages.push_back({{{t.file, t.offset + static_cast<uint64_t>(r * row_bytes_), static_cast<uint64_t>(nr * row_bytes_)}},
                     t.name + " rows " + std::to_string(r) + "-" + std::to_string(r + nr - 1)});
  }
  std::vector<std::filesystem::path> files;
  for (const IndexedFile& f : index.files()) files.push_back(f.path);
  ExpertStoreOptions so;
  so.budget_bytes = cache_bytes;
  so.what = "Engram row cache";
  so.budget_flag = "--engram-cache-mb";
  so.io.force_pread = force_pread;
  so.io_threads = 1;
  store_ = std::make_unique<ExpertStore>(files, std::move(pages), so);
}

void StoredEngramTable::read_rows(const int64_t* rows, int64_t n, float* out) const {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = rows[i];
    if (r < 0 || r >= rows_)
      throw Error("engram: row " + std::to_string(r) + " is outside table '" + name_ + "' (" + std::to_string(rows_) +
                  " rows)");
    const ExpertStore::Pin pin = store_->acquire(static_cast<uint32_t>(r / rows_per_page_));
    // The pinned page as a table of its rows, one row gathered from it.
    const WeightView page{type_, pin.data(), rows_per_page_, cols_};
    const int32_t in_page = static_cast<int32_t>(r % rows_per_page_);
    host_device()->ops().gather_rows(page, &in_page, 1, out + i * cols_);
  }
  store_->tick();
}

void StoredEngramTable::prefetch(const int64_t* rows, int64_t n) const {
  std::vector<uint32_t> pages;
  for (int64_t i = 0; i < n; ++i)
    if (rows[i] >= 0 && rows[i] < rows_) pages.push_back(static_cast<uint32_t>(rows[i] / rows_per_page_));
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  store_->prefetch(pages);
}

void store_engram_tables(Engram& engram, const WeightIndex& index, uint64_t cache_bytes, bool force_pread,
                         const std::map<int, Tier>& placement) {
  const auto table_name = [](int layer) {
    return "layers." + std::to_string(layer) + ".engram.multi_head_embedding.embedding.weight";
  };
  std::vector<int> ids;
  for (int layer : engram.layer_ids()) {
    const auto it = placement.find(layer);
    if (placement.empty()) ids.push_back(layer);  // --engram-cache-mb alone: every table (errors if one cannot be)
    else if ((it == placement.end() || it->second == Tier::Nvme) && StoredEngramTable::pageable(index.at(table_name(layer))))
      ids.push_back(layer);
  }
  if (ids.empty()) return;
  if (cache_bytes == 0)
    throw Error("the placement leaves " + std::to_string(ids.size()) +
                " Engram table(s) on NVMe but gives them no DRAM cache (--engram-cache-mb)");
  const uint64_t each = cache_bytes / ids.size();
  for (int layer : ids) {
    engram.set_table(layer, std::make_unique<StoredEngramTable>(index, index.at(table_name(layer)), each, force_pread));
  }
}

}  // namespace strata
