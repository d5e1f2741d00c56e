// cpu-kernels/row_kernels_avx512bf16.cpp (the BF16 + VBMI FP8 dot) compiled over SIMDe (simde_avx512.h).
#include "tests/emulated/simde_avx512.h"
// clang-format off
#include "cpu-kernels/row_kernels_avx512bf16.cpp"
