// Software prefetch for kernels that stream weights from DRAM. A core keeps only so many reads
// in flight; asking for the bytes a little ahead of where a kernel reads starts them earlier
// than the hardware prefetcher alone does.
#pragma once

namespace strata::kern {

// How far ahead, in bytes. Measured with linear() streaming 512 MiB of weight copies on the
// 2-core Zen 3 VM (distances 0 / 1024 / 2048 / 4096): 2048 gave the integer dots 7–27% more
// GB/s (Q8_0 27 → 32, Q6_K 22 → 28, MXFP4 24 → 27, Q4_K 26 → 32; Q5_K, bound by its own
// arithmetic, about the same) and the FP8 dot about 10%; the f32 / bf16 / f16 dots gained
// nothing there (f32 lost 5–10%) and the AVX2 ones do not prefetch. On the 2-core AVX-512 BF16
// Xeon VM (`strata bench kernels --batch 1 --shapes v3`, DRAM ~26 GB/s) the AVX-512 bf16 / f16
// dots went from 11–16 to 20–22 GB/s with it and the bf16 FP8 dot from 11–14 to 18–20;
// 4096 and 8192 measured the same as 2048 within that VM's spread. On the 2-core Zen 5 EPYC VM
// (DRAM 45–78 GB/s by the probe) 4096 took the Q4_K batch-1 product from 183–197 to 171–187 µs
// (`bench kernels --types q4_k --batch 1 --shapes v3`, alternating builds) and the race model's
// decode from 81–102 to 98–113 tok/s (`bench run -p 0 -n 64 -r 2 -t 2`, six alternating pairs,
// 4096 ahead in five); 8192 fell between. Prefill and the other types: within the noise.
constexpr int kPrefetchAhead = 4096;

// Asks for [p, p + bytes) + kAhead, one cache line per 64 bytes (prefetches never fault,
// so the end of a matrix needs no care). Static, as the kernels' other header helpers
// (qdot_kernels.h): each instruction-set file keeps its own copy. kLocality: 3 into L1
// (prefetcht0), 2 into L2 (prefetcht1). The 16-row integer tiles take L2: on the 2-core Zen 4
// EPYC VM their one-token products of Q3_K and Q2_K, whose arithmetic keeps the core busy between
// loads, read DRAM at 60-75% of the probe with L1 prefetches and at 90-100% with L2 ones (`bench
// kernels --batch 1 --shapes v3 --types q3_k_t16,q2_k_t16`: 24-27 -> 30-35 GB/s), and the
// race-shaped Q3_K GGUF with --repack decoded 72-79 -> 104-108 tok/s (`bench run -p 0 -n 32 -r 2
// -t 2`, two alternating rounds); Q4_K's tiles and prompts the same within the noise. The
// AVX-512 float dots (F32 / BF16 / F16, and FP8 on AVX-512 BF16) take L2 too: there, four
// alternations of `bench kernels --batch 1,4 --shapes v3 --types bf16,f16,fp8`, BF16 7168 -> 2048
// went 22-24 -> 29-31 GB/s at one token, its 4-token products 2048 -> 7168 22-24 -> 31-39, F16
// alike, FP8 27-31 -> 33-36 (one token) and 17-20 -> 26-30 (four), F32 the same within the noise
// (29-38 / 15-17 GB/s at one / four tokens either way). The integer row
// kernels keep L1: with L2 they measured the same (Q2_K-Q8_0, IQ1_S, IQ2_XXS rows).
template <int kLocality = 3, int kAhead = kPrefetchAhead>
static inline void prefetch_ahead(const void* p, int bytes = 64) {
  for (int o = 0; o < bytes; o += 64)
    __builtin_prefetch(static_cast<const char*>(p) + kAhead + o, 0, kLocality);
}

// How far ahead the tiles over a tiled layout (one stream per 16 rows, into L2) ask: 8 KiB. On
// the Zen 4 EPYC VM, race-shaped GGUFs with --repack, `bench run -p 0 -n 32 -r 2 -t 2`, pairs of
// runs against 4 KiB: Q4_K 75.1 / 79.4 / 85.4 / 83.1 -> 82.1 / 84.9 / 86.9 / 105.8 tok/s, Q3_K
// 88.2 / 100.6 / 86.3 -> 101.3 / 97.3 / 94.8, Q2_K 118.3 / 114.2 / 117.8 -> 123.4 / 119.9 / 115.4
// (eight pairs of ten faster).
constexpr int kTiledPrefetchAhead = 8192;

}  // namespace strata::kern
