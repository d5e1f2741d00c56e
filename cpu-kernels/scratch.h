// Per-thread scratch objects that calls reuse, so that a decode step allocates nothing once
// warm: a ScratchLease<T> hands out the next object of this thread's stack of T for its scope.
// A nested lease on the same thread (a oneTBB worker that steals a task needing the same kind
// of scratch while it waits inside a parallel loop, or two leases in one function) gets the
// next object, never one in use. Objects keep their capacity: a std::vector resized to what it
// held before does not allocate. Leases end in reverse order of their start (scopes do).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace strata {

template <class T>
class ScratchLease {
 public:
  ScratchLease() {
    Stack& s = stack();
    if (s.depth == s.items.size()) s.items.push_back(std::make_unique<T>());
    obj_ = s.items[s.depth++].get();
  }
  ~ScratchLease() { --stack().depth; }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  T& operator*() const { return *obj_; }
  T* operator->() const { return obj_; }

 private:
  struct Stack {
    std::vector<std::unique_ptr<T>> items;
    size_t depth = 0;
  };
  static Stack& stack() {
    thread_local Stack s;
    return s;
  }
  T* obj_;
};

// Room for n elements in v, growing its capacity at least twofold when it must grow: a buffer
// whose size follows the context (one more key per token) reallocates a few times over a
// generation, never once per token (assign and reserve would allocate exactly n each time).
template <class V>
void reserve_geometric(V& v, size_t n) {
  if (v.capacity() < n) v.reserve(n > 2 * v.capacity() ? n : 2 * v.capacity());
}

// A float buffer of n elements from this thread's scratch (contents unspecified).
class ScratchFloats {
 public:
  explicit ScratchFloats(size_t n) {
    reserve_geometric(*lease_, n);
    lease_->resize(n);
  }
  float* data() const { return lease_->data(); }
  float& operator[](size_t i) const { return (*lease_)[i]; }
  std::vector<float>& vec() const { return *lease_; }

 private:
  ScratchLease<std::vector<float>> lease_;
};

}  // namespace strata
