// Which vector instructions this CPU has, and which kernel level strata dispatches to.
// Levels: scalar (the reference twins), avx2 (AVX2 + FMA + F16C), avx512 (F, BW, VL, DQ).
// The level is read once from CPUID; STRATA_CPU_LEVEL=scalar|avx2|avx512 caps it, and tests
// force each level with set_dispatch_level. A level the CPU lacks is never used.
#pragma once

#include <string_view>

namespace strata {

enum class CpuLevel { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false, avx512vbmi = false;
  bool amx_bf16 = false;  // AMX tiles with BF16 (oneDNN's BF16 GEMM runs on them)
  bool avxvnni = false;   // AVX-VNNI: vpdpbusd on 256-bit vectors, VEX-encoded (no AVX-512 needed)
  // Only in the test build whose AVX-512 kernels run over SIMDe: the AVX-512 flags are claimed,
  // not the CPU's (native libraries such as oneDNN must not act on them).
  bool emulated = false;
  CpuLevel best() const;
};

const CpuFeatures& cpu_features();
std::string_view cpu_level_name(CpuLevel l);

// The level kernels use now.
CpuLevel dispatch_level();
// Caps the level (clamped to what the CPU has); returns the level now in effect.
CpuLevel set_dispatch_level(CpuLevel l);

}  // namespace strata
