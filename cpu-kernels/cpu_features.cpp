#include "cpu-kernels/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <string>

namespace strata {

CpuLevel CpuFeatures::best() const {
  if (avx512f && avx512bw && avx512vl && avx512dq && avx2 && fma && f16c) return CpuLevel::Avx512;
  if (avx2 && fma && f16c) return CpuLevel::Avx2;
  return CpuLevel::Scalar;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.f16c = __builtin_cpu_supports("f16c");
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512dq = __builtin_cpu_supports("avx512dq");
    c.avx512vnni = __builtin_cpu_supports("avx512vnni");
    c.avx512bf16 = __builtin_cpu_supports("avx512bf16");
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
