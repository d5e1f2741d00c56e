#include "cpu-kernels/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace strata {

CpuLevel CpuFeatures::best() const {
  if (avx512f && avx512bw && avx512vl && avx512dq && avx2 && fma && f16c) return CpuLevel::Avx512;
  if (avx2 && fma && f16c) return CpuLevel::Avx2;
  return CpuLevel::Scalar;
}

namespace {

#if defined(__x86_64__) || defined(__i386__)
// XCR0: which register states the OS saves (YMM: bits 1-2; ZMM: bits 5-7 as well).
uint64_t xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    // CPUID directly: compilers disagree on the feature names __builtin_cpu_supports knows.
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
    const bool osxsave = cx & (1u << 27);
    if (!osxsave) return c;
    const uint64_t xcr = xcr0();
    const bool ymm = (xcr & 0x6) == 0x6, zmm = (xcr & 0xE6) == 0xE6;
    c.fma = ymm && (cx & (1u << 12));
    c.f16c = ymm && (cx & (1u << 29));
    if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
      c.avx2 = ymm && (b & (1u << 5));
      c.avx512f = zmm && (b & (1u << 16));
      c.avx512dq = zmm && (b & (1u << 17));
      c.avx512bw = zmm && (b & (1u << 30));
      c.avx512vl = zmm && (b & (1u << 31));
      c.avx512vnni = zmm && (cx & (1u << 11));
      c.avx512vbmi = zmm && (cx & (1u << 1));
      // AMX-BF16 and AMX-TILE, with the OS saving the tile state (XCR0 bits 17-18).
      c.amx_bf16 = (xcr & 0x60000) == 0x60000 && (d & (1u << 22)) && (d & (1u << 24));
    }
    if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) {
      c.avx512bf16 = zmm && (a & (1u << 5));
      c.avxvnni = ymm && c.avx2 && (a & (1u << 4));
    }
#endif
#if defined(STRATA_EMULATED_AVX512)
    // Only in the test build whose AVX-512 kernels are compiled over SIMDe (tests/emulated/):
    // the AVX-512 level, VNNI, BF16 and VBMI exist on any AVX2 CPU. oneDNN's BF16 GEMM is not emulated.
    c.avx512f = c.avx512bw = c.avx512vl = c.avx512dq = c.avx512vnni = c.avx2 && c.fma && c.f16c;
    c.avx512bf16 = c.avx512vbmi = c.emulated = c.avx512f;
#endif
    return c;
  }();
  return f;
}

std::string_view cpu_level_name(CpuLevel l) {
  switch (l) {
    case CpuLevel::Scalar: return "scalar";
    case CpuLevel::Avx2: return "avx2";
    case CpuLevel::Avx512: return "avx512";
  }
  return "?";
}

namespace {

CpuLevel initial_level() {
  CpuLevel l = cpu_features().best();
  if (const char* env = std::getenv("STRATA_CPU_LEVEL")) {
    const std::string v(env);
    const CpuLevel want = v == "scalar" ? CpuLevel::Scalar : v == "avx2" ? CpuLevel::Avx2 : l;
    if (want < l) l = want;
  }
  return l;
}

std::atomic<int>& level_var() {
  static std::atomic<int> v{static_cast<int>(initial_level())};
  return v;
}

}  // namespace

CpuLevel dispatch_level() { return static_cast<CpuLevel>(level_var().load(std::memory_order_relaxed)); }

CpuLevel set_dispatch_level(CpuLevel l) {
  const CpuLevel best = cpu_features().best();
  const CpuLevel use = l < best ? l : best;
  level_var().store(static_cast<int>(use));
  return use;
}

}  // namespace strata
