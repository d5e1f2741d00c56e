// cpu-kernels/cpu_features.cpp reporting AVX-512 (F, BW, VL, DQ, VNNI) on any AVX2 CPU, for
// the test build whose AVX-512 kernels run over SIMDe.
#define STRATA_EMULATED_AVX512 1
// clang-format off
#include "cpu-kernels/cpu_features.cpp"
