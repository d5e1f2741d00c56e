// A warm decode step allocates nothing on the heap: activations, routing, the experts' batch,
// attention scratch and device workspace are reused (cpu-kernels/scratch.h, the devices'
// workspace pools), not allocated per op and token. Counted by replacing the global operator
// new of this test binary, which holds only these tests.
//
// A sequence's first pass may still grow its scratch as the context grows (geometrically: a
// handful of times over a whole generation); the same positions decoded again after a reset
// must allocate nothing at all, and the first pass is printed. Scratch is per thread: with one
// compute thread the work lands on the same thread every pass, so the count is exact; with
// several, a worker warms its own scratch the first time it runs each kind of task (printed).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <span>
#include <string>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/model_files.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace {
std::atomic<int64_t> g_news{0};
}  // namespace

// Every form of new and delete is replaced (all on malloc / free), so that none of them pairs
// with a library's own (a sanitizer's checks pair them).
namespace {
void* counted(size_t n, size_t align) noexcept {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (align <= alignof(std::max_align_t)) return std::malloc(n ? n : 1);
  return std::aligned_alloc(align, (n + align - 1) / align * align);
}
void* counted_or_throw(size_t n, size_t align) {
  if (void* p = counted(n, align)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t n) { return counted_or_throw(n, 0); }
void* operator new[](size_t n) { return counted_or_throw(n, 0); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return counted(n, 0); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return counted(n, 0); }
void* operator new(size_t n, std::align_val_t a) { return counted_or_throw(n, static_cast<size_t>(a)); }
void* operator new[](size_t n, std::align_val_t a) { return counted_or_throw(n, static_cast<size_t>(a)); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted(n, static_cast<size_t>(a));
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted(n, static_cast<size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace strata {
namespace {

struct Case {
  const char* name;
  Arch arch;
  const char* format;
  const char* dtype;
  bool engram;
};

// Prefill of 5 tokens, then `steps` decode steps; heap allocations during the decode steps.
int64_t decode_allocations(CausalLM& lm, int steps) {
  std::vector<float> logits;
  const std::vector<int32_t> prompt = {1, 5, 9, 12, 7};
  lm.reset();
  lm.forward(prompt, logits, false);
  const int64_t before = g_news.load();
  for (int i = 0; i < steps; ++i) {
    const int32_t t = 20 + i;
    lm.forward(std::span<const int32_t>(&t, 1), logits, false);
  }
  return g_news.load() - before;
}

TEST(DecodeAllocations, AWarmDecodeStepAllocatesNothing) {
  struct Restore {
    ~Restore() { configure_compute_arena({}); }
  } restore;
  test::ScratchDir dir("alloc");
  const Case cases[] = {{"v3 bf16", Arch::DeepseekV3, "hf", "bf16", false},
                        {"v3 q4_k gguf", Arch::DeepseekV3, "gguf", "q4_k", false},
                        {"v3.2 fp8", Arch::DeepseekV32, "hf", "fp8", false},
                        {"v4 fp4", Arch::DeepseekV4, "hf", "fp4", false},
                        {"v3 + engram", Arch::DeepseekV3, "hf", "bf16", true},
                        {"v4 + engram", Arch::DeepseekV4, "hf", "fp4", true}};
  int i = 0;
  for (const Case& c : cases) {
    TinyOptions o;
    o.arch = c.arch;
    o.format = c.format;
    o.dtype = c.dtype;
    o.engram = c.engram;
    const std::string name = "m" + std::to_string(i++) + (o.format == "gguf" ? ".gguf" : "");
    const ModelFiles m = open_model(make_tiny_model(o, dir.path() / name).path, {});
    auto lm = load_causal_lm(m);
    constexpr int kSteps = 12;
    ArenaOptions one;
    one.threads = 1;
    configure_compute_arena(one);
    const int64_t first = decode_allocations(*lm, kSteps);
    const int64_t again = decode_allocations(*lm, kSteps);
    configure_compute_arena({});
    int64_t passes[3];
    for (int64_t& p : passes) p = decode_allocations(*lm, kSteps);
    std::printf("  %-13s one thread: first pass %lld allocations in %d decode steps, the same positions again %lld; "
                "all threads, three passes: %lld %lld %lld\n",
                c.name, static_cast<long long>(first), kSteps, static_cast<long long>(again),
                static_cast<long long>(passes[0]), static_cast<long long>(passes[1]), static_cast<long long>(passes[2]));
    EXPECT_EQ(again, 0) << c.name;
    EXPECT_LT(first, kSteps) << c.name << ": the first pass allocates per step, not only as its context grows";
  }
}

// The counter counts (a test that cannot fail is no test).
TEST(DecodeAllocations, TheCounterSeesAllocations) {
  const int64_t before = g_news.load();
  auto* v = new std::vector<float>(100);
  const int64_t after = g_news.load();
  delete v;
  EXPECT_GE(after - before, 2);
}

}  // namespace
}  // namespace strata
