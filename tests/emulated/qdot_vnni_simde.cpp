// cpu-kernels/qdot_vnni.cpp (AVX-512 VNNI integer dots) compiled over SIMDe (simde_avx512.h).
#include "tests/emulated/simde_avx512.h"
// clang-format off
#include "cpu-kernels/qdot_vnni.cpp"
