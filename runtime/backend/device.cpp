#include "runtime/backend/device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "runtime/common/error.h"
#include "runtime/common/units.h"

namespace strata {

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release();
    dev_ = o.dev_;
    data_ = o.data_;
    size_ = o.size_;
    cls_ = std::move(o.cls_);
    o.dev_ = nullptr;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

void DeviceBuffer::release() {
  if (dev_ && data_) dev_->give_back(data_, size_, cls_);
  dev_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

DeviceBuffer Device::alloc(uint64_t bytes, const std::string& cls, const std::string& what) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes > capacity_ - used_)
      throw Error(name_ + ": " + what + " needs " + human_bytes(bytes) + " but " + human_bytes(capacity_ - used_) +
                  " of its " + human_bytes(capacity_) + " are free");
    used_ += bytes;
    peak_ = std::max(peak_, used_);
    by_class_[cls] += bytes;
  }
  DeviceBuffer b;
  try {
    b.data_ = raw_alloc(std::max<uint64_t>(bytes, 1));
  } catch (const std::exception& e) {  // a device's allocator (cudaMalloc) says why
    give_back(nullptr, bytes, cls);
    throw Error(name_ + ": allocating " + human_bytes(bytes) + " for " + what + " failed: " + e.what());
  }
  if (!b.data_) {
    give_back(nullptr, bytes, cls);
    throw Error(name_ + ": allocating " + human_bytes(bytes) + " for " + what + " failed");
  }
  b.dev_ = this;
  b.size_ = bytes;
  b.cls_ = cls;
  return b;
}

uint64_t workspace_size(uint64_t bytes) {
  if (bytes <= 256 || bytes > (uint64_t{1} << 62)) return std::max<uint64_t>(bytes, 256);
  uint64_t p = 256;
  while (p * 2 <= bytes) p *= 2;  // p <= bytes < 2p
  uint64_t q = p;
  while (q < bytes) q += p / 4;
  return q;
}

DeviceBuffer Device::take_workspace(uint64_t bytes) {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    size_t best = pool_.size(), drop = pool_.size();
    for (size_t i = 0; i < pool_.size(); ++i) {
      const uint64_t sz = pool_[i].size();
      if (sz >= bytes && (best == pool_.size() || sz < pool_[best].size())) best = i;
      if (sz < bytes && (drop == pool_.size() || sz > pool_[drop].size())) drop = i;
    }
    if (best < pool_.size()) {
      DeviceBuffer b = std::move(pool_[best]);
      pool_[best] = std::move(pool_.back());
      pool_.pop_back();
      return b;
    }
    if (drop < pool_.size()) {
      pool_[drop] = std::move(pool_.back());
      pool_.pop_back();
    }
  }
  // Rounded up to the next of 2^k·{1, 1.25, 1.5, 1.75}: scratch that follows the context (scores
  // over the cache) misses the pool every few hundred tokens, not on every one.
  return alloc(workspace_size(bytes), "workspace", "a step's activations");
}

void Device::return_workspace(DeviceBuffer b) {
  if (!b.data()) return;
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (pool_.size() < kWorkspacePool) pool_.push_back(std::move(b));
}

void Device::release_workspace_pool() {
  std::vector<DeviceBuffer> gone;
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    gone.swap(pool_);
  }
  std::lock_guard<std::mutex> lock(arena_mu_);
  arena_ = DeviceBuffer();
}

void Device::reserve_workspace(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(arena_mu_);
  if (arena_depth_ > 0) throw Error(name_ + ": the step workspace is replaced while a step uses it");
  arena_ = DeviceBuffer();
  arena_top_ = arena_overflow_live_ = 0;
  if (bytes) arena_ = alloc(bytes, "workspace", "the step workspace of the plan");
}

uint64_t Device::workspace_reserved() const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  return arena_.size();
}

uint64_t Device::workspace_peak() const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  return arena_peak_;
}

uint64_t Device::workspace_overflows() const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  return arena_overflows_;
}

int64_t Device::arena_enter() {
  std::lock_guard<std::mutex> lock(arena_mu_);
  if (!arena_.data()) return -1;
  if (arena_depth_ > 0 && arena_owner_ != std::this_thread::get_id()) return -1;
  arena_owner_ = std::this_thread::get_id();
  ++arena_depth_;
  return static_cast<int64_t>(arena_top_);
}

uint8_t* Device::arena_take(uint64_t bytes) {
  const uint64_t n = workspace_round(bytes);
  std::lock_guard<std::mutex> lock(arena_mu_);
  if (n > arena_.size() - arena_top_) return nullptr;
  uint8_t* p = arena_.data() + arena_top_;
  arena_top_ += n;
  arena_peak_ = std::max(arena_peak_, arena_top_ + arena_overflow_live_);
  return p;
}

void Device::arena_overflow(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(arena_mu_);
  ++arena_overflows_;
  arena_overflow_live_ += bytes;
  arena_peak_ = std::max(arena_peak_, arena_top_ + arena_overflow_live_);
}

void Device::arena_leave(int64_t mark, uint64_t overflow) {
  std::lock_guard<std::mutex> lock(arena_mu_);
  arena_top_ = static_cast<uint64_t>(mark);
  arena_overflow_live_ -= overflow;
  --arena_depth_;
}

DeviceScratch::DeviceScratch(Device& dev) : dev_(dev) {
  thread_local std::vector<DeviceBuffer> list;  // reused: its capacity stays
  bufs_ = &list;
  first_ = list.size();
  mark_ = dev.arena_enter();
}

DeviceScratch::~DeviceScratch() {
  while (bufs_->size() > first_) {
    dev_.return_workspace(std::move(bufs_->back()));
    bufs_->pop_back();
  }
  if (mark_ >= 0) dev_.arena_leave(mark_, overflow_);
}

uint8_t* DeviceScratch::take(uint64_t bytes) {
  if (mark_ >= 0) {
    if (uint8_t* p = dev_.arena_take(bytes)) return p;
    const uint64_t n = Device::workspace_round(bytes);
    dev_.arena_overflow(n);
    overflow_ += n;
  }
  bufs_->push_back(dev_.take_workspace(bytes));
  return bufs_->back().data();
}

void Device::give_back(uint8_t* p, uint64_t n, const std::string& cls) {
  if (p) raw_free(p);
  std::lock_guard<std::mutex> lock(mu_);
  used_ -= n;
  if ((by_class_[cls] -= n) == 0) by_class_.erase(cls);
}

uint64_t Device::used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_;
}

uint64_t Device::peak() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

std::map<std::string, uint64_t> Device::used_by_class() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_class_;
}

void Device::count_copy(bool to_device, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  (to_device ? to_device_ : to_host_) += n;
}

void Device::to_device(void* dst, const void* src, uint64_t n) {
  if (n) std::memcpy(dst, src, n);
  count_copy(true, n);
}

void Device::to_host(void* dst, const void* src, uint64_t n) {
  if (n) std::memcpy(dst, src, n);
  count_copy(false, n);
}

DeviceBuffer Device::upload(const void* src, uint64_t n, const std::string& cls, const std::string& what) {
  DeviceBuffer b = alloc(n, cls, what);
  submit([&] { to_device(b.data(), src, n); }).wait();
  return b;
}

void Device::LaneCopy::wait() const {
  event_.wait();
  if (wait_native_) wait_native_();
}

void Device::LaneCopy::settle() const noexcept {
  event_.settle();
  try {
    if (wait_native_) wait_native_();
  } catch (...) {
  }
}

Device::LaneCopy Device::lane_copy(Event e, std::function<void()> wait_native) {
  LaneCopy c;
  c.event_ = std::move(e);
  c.wait_native_ = std::move(wait_native);
  return c;
}

Device::LaneCopy Device::copy_in_async(void* dst, const void* src, uint64_t n) {
  to_device(dst, src, n);
  return {};
}

uint64_t Device::bytes_to_device() const {
  std::lock_guard<std::mutex> lock(mu_);
  return to_device_;
}

uint64_t Device::bytes_to_host() const {
  std::lock_guard<std::mutex> lock(mu_);
  return to_host_;
}

}  // namespace strata
