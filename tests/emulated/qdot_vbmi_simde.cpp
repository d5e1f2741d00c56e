// cpu-kernels/qdot_vbmi.cpp (the lattice decoders on AVX-512 VBMI) compiled over SIMDe (simde_avx512.h).
#include "tests/emulated/simde_avx512.h"
// clang-format off
#include "cpu-kernels/qdot_vbmi.cpp"
