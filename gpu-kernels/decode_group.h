// Every weight type a GPU product reads, decoded 32 elements at a time: group g of row r is
// elements [32g, 32g + 32) of that row. Each GGUF block is a whole number of groups, so a lane
// of a warp (or a thread of a tile) owns groups and decodes them in registers. The functions
// are __host__ __device__: the CUDA kernels call them, and tests/unit/kernels/
// test_gpu_decode.cpp runs them on the host against the scalar dequantizer of cpu-kernels/
// (dequantize_rows), type by type, so the formats are checked where no GPU exists.
//
// CPU twins: cpu-kernels/dequant.cpp and lowbit_dequant.cpp (the same formulas, the same
// order of float operations where it matters).
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu-kernels/iq_grids.h"
#include "cpu-kernels/weight_type.h"
#include "cpu-kernels/weight_view.h"

#if defined(__CUDACC__)
#define STRATA_HD __host__ __device__ inline
#else
#define STRATA_HD inline
#endif

namespace strata::gpu {

// A matrix as a kernel reads it: a WeightView plus its row stride in bytes, and for the lattice
// i-quants their codebooks where the decoder runs (device memory in a kernel, iq_grids() on the
// host).
struct Mat {
  WeightType type = WeightType::F32;
  const uint8_t* data = nullptr;
  const uint8_t* scale = nullptr;
  WeightType scale_type = WeightType::F32;
  int64_t rows = 0, cols = 0, row_bytes = 0;
  const IqGrids* grids = nullptr;
};

// The lattice i-quants: their groups are read through Mat::grids.
STRATA_HD bool needs_grids(WeightType t) {
  switch (t) {
    case WeightType::IQ2_XXS: case WeightType::IQ2_XS: case WeightType::IQ2_S: case WeightType::IQ3_XXS:
    case WeightType::IQ3_S: case WeightType::IQ1_S: case WeightType::IQ1_M:
      return true;
    default:
      return false;
  }
}

// The types decode32 knows: plain floats, FP8 with block scales, MXFP4, every GGUF block type
// the CPU reads.
inline bool decodable(WeightType t) {
  if (needs_grids(t)) return true;
  switch (t) {
    case WeightType::F32: case WeightType::F16: case WeightType::BF16: case WeightType::F8_E4M3:
    case WeightType::MXFP4: case WeightType::Q8_0: case WeightType::Q4_0: case WeightType::Q4_1:
    case WeightType::Q5_0: case WeightType::Q5_1: case WeightType::Q2_K: case WeightType::Q3_K:
    case WeightType::Q4_K: case WeightType::Q5_K: case WeightType::Q6_K: case WeightType::IQ4_NL:
    case WeightType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

inline Mat mat_of(const WeightView& w, const IqGrids* grids = nullptr) {
  Mat m;
  m.grids = grids;
  m.type = w.type;
  m.data = w.data;
  m.scale = w.scale;
  m.scale_type = w.scale_type;
  m.rows = w.rows;
  m.cols = w.cols;
  m.row_bytes = row_bytes(w.type, w.cols);
  return m;
}

STRATA_HD float f32_of_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

STRATA_HD uint32_t rd16(const uint8_t* p) { return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8); }
STRATA_HD uint32_t rd32(const uint8_t* p) { return rd16(p) | (rd16(p + 2) << 16); }

// IEEE half from its bits (subnormals exact: m·2^-24).
STRATA_HD float half_bits(uint32_t h) {
  const uint32_t s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
  if (e == 0) {
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return s ? -v : v;
  }
  if (e == 31) return f32_of_bits((s << 31) | 0x7f800000u | (m << 13));
  return f32_of_bits((s << 31) | ((e + 112) << 23) | (m << 13));
}
STRATA_HD float bf16_bits(uint32_t h) { return f32_of_bits(h << 16); }
// FP8 E4M3 (OCP fn: no infinities, S.1111.111 is NaN).
STRATA_HD float e4m3_bits(uint32_t b) {
  const uint32_t s = (b >> 7) & 1, e = (b >> 3) & 15, m = b & 7;
  if (e == 15 && m == 7) return f32_of_bits(0x7fc00000u);
  const float v = e == 0 ? static_cast<float>(m) * 0.001953125f : f32_of_bits(((e + 120) << 23) | (m << 20));
  return s ? -v : v;
}
STRATA_HD float e8m0_bits(uint32_t b) {
  if (b == 0xFF) return f32_of_bits(0x7fc00000u);
  return f32_of_bits(b == 0 ? 0x00400000u : b << 23);
}
STRATA_HD float e2m1_bits(uint32_t n) {
  // {0, 0.5, 1, 1.5, 2, 3, 4, 6}: exponent field e (bits 1-2), mantissa bit m.
  const uint32_t e = (n >> 1) & 3, mb = n & 1;
  const float v = e == 0 ? 0.5f * static_cast<float>(mb) : (1.0f + 0.5f * static_cast<float>(mb)) * static_cast<float>(1u << (e - 1));
  return (n & 8) ? -v : v;
}
#if defined(__CUDACC__)
static __constant__ int8_t kIq4LevelsDevice[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
#endif
STRATA_HD int iq4_level(uint32_t i) {
#if defined(__CUDA_ARCH__)
  return kIq4LevelsDevice[i & 15];
#else
  static constexpr int8_t lv[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return lv[i & 15];
#endif
}

// The 6-bit (scale, min) of sub-block j of a Q4_K / Q5_K super-block (q: its 12 scale bytes).
STRATA_HD void kq_scale_min(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}
// Q2_K / Q3_K: the 2-bit quant of element i (0..255) of a super-block's qs.
STRATA_HD int kq_two_bits(const uint8_t* qs, int i) {
  const int half = i / 128, s = (i % 128) / 16, l = i % 16;
  return (qs[32 * half + 16 * (s % 2) + l] >> (2 * (s / 2))) & 3;
}
STRATA_HD int q3k_scale(int j, const uint8_t* q) {
  const int lo = j < 8 ? (q[j] & 0xF) : (q[j - 8] >> 4);
  const int hi = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

// The lattice i-quants (CPU twin: cpu-kernels/iq_unpack.h). Element i of a super-block is
// D · sc · lv: D the f16 scale times the type's multiplier, sc an odd scale per 16 or 32, lv a
// signed codebook level; every product is exact in f32, so any order gives the CPU's bits.
// A 7-bit sign field with its parity bit on top (IQ2_XXS, IQ2_XS, IQ3_XXS).
STRATA_HD uint32_t iq_even_signs(uint32_t f) {
  f &= 127;
  uint32_t p = f ^ (f >> 4);
  p ^= p >> 2;
  p ^= p >> 1;
  return f | ((p & 1) << 7);
}
// Eight magnitudes (one per byte of mag), negated where a sign bit is set, times ds = D · sc.
STRATA_HD void iq_put8(float* y, float ds, uint64_t mag, uint32_t signs) {
  for (int j = 0; j < 8; ++j) {
    const float v = static_cast<float>(static_cast<int>((mag >> (8 * j)) & 0xFF));
    y[j] = ds * (((signs >> j) & 1) ? -v : v);
  }
}
// IQ1: the eight values v (int8 −1, 0, 1) of a point as levels 8 · v + shift, times ds.
STRATA_HD void iq1_put8(float* y, float ds, uint64_t point, int shift) {
  for (int j = 0; j < 8; ++j)
    y[j] = ds * static_cast<float>(8 * static_cast<int>(static_cast<int8_t>((point >> (8 * j)) & 0xFF)) + shift);
}
// An odd scale 2s + 1 from a 4-bit field.
STRATA_HD float iq_odd(uint32_t s) { return static_cast<float>(2 * static_cast<int>(s & 0xF) + 1); }

// Sub-block ib (32 elements) of the lattice super-block at b.
template <WeightType T>
STRATA_HD void decode_lattice32(const IqGrids& gr, const uint8_t* b, int ib, float* y) {
  if constexpr (T == WeightType::IQ2_XXS) {
    const uint32_t idx = rd32(b + 2 + 8 * ib), aux = rd32(b + 6 + 8 * ib);
    const float ds = half_bits(rd16(b)) * 0.125f * iq_odd(aux >> 28);
    for (int l = 0; l < 4; ++l) iq_put8(y + 8 * l, ds, gr.iq2xxs[(idx >> (8 * l)) & 0xFF], iq_even_signs(aux >> (7 * l)));
  } else if constexpr (T == WeightType::IQ2_XS) {
    const float d = half_bits(rd16(b)) * 0.125f;
    for (int l = 0; l < 4; ++l) {
      const uint32_t q = rd16(b + 2 + 2 * (4 * ib + l)), k = 2 * ib + l / 2;
      iq_put8(y + 8 * l, d * iq_odd(b[66 + k / 2] >> (4 * (k % 2))), gr.iq2xs[q & 511], iq_even_signs(q >> 9));
    }
  } else if constexpr (T == WeightType::IQ2_S) {
    const float d = half_bits(rd16(b)) * 0.125f;
    for (int l = 0; l < 4; ++l) {
      const uint32_t k = 4 * ib + l, idx = b[2 + k] | (((b[66 + ib] >> (2 * l)) & 3) << 8), s16 = 2 * ib + l / 2;
      iq_put8(y + 8 * l, d * iq_odd(b[74 + s16 / 2] >> (4 * (s16 % 2))), gr.iq2s[idx], b[34 + k]);
    }
  } else if constexpr (T == WeightType::IQ3_XXS) {
    const uint32_t aux = rd32(b + 66 + 4 * ib);
    const float ds = half_bits(rd16(b)) * 0.25f * iq_odd(aux >> 28);
    for (int l = 0; l < 4; ++l) {
      const uint8_t* q = b + 2 + 8 * ib + 2 * l;
      iq_put8(y + 8 * l, ds, gr.iq3xxs[q[0]] | (static_cast<uint64_t>(gr.iq3xxs[q[1]]) << 32), iq_even_signs(aux >> (7 * l)));
    }
  } else if constexpr (T == WeightType::IQ3_S) {
    const float ds = half_bits(rd16(b)) * iq_odd(b[106 + ib / 2] >> (4 * (ib % 2)));
    const uint32_t qh = b[66 + ib];
    for (int l = 0; l < 4; ++l) {
      const uint8_t* q = b + 2 + 8 * ib + 2 * l;
      const uint32_t i1 = q[0] | (((qh >> (2 * l)) & 1) << 8), i2 = q[1] | (((qh >> (2 * l + 1)) & 1) << 8);
      iq_put8(y + 8 * l, ds, gr.iq3s[i1] | (static_cast<uint64_t>(gr.iq3s[i2]) << 32), b[74 + 4 * ib + l]);
    }
  } else if constexpr (T == WeightType::IQ1_S) {
    const uint32_t h = rd16(b + 34 + 2 * ib);
    const float ds = half_bits(rd16(b)) * 0.125f * iq_odd((h >> 12) & 7);
    for (int l = 0; l < 4; ++l)
      iq1_put8(y + 8 * l, ds, gr.iq1s[b[2 + 4 * ib + l] | (((h >> (3 * l)) & 7) << 8)], (h & 0x8000) ? -1 : 1);
  } else if constexpr (T == WeightType::IQ1_M) {
    uint32_t w[4];
    for (int k = 0; k < 4; ++k) w[k] = rd16(b + 48 + 2 * k);
    const uint32_t d16 = (w[0] >> 12) | ((w[1] >> 8) & 0x00F0) | ((w[2] >> 4) & 0x0F00) | (w[3] & 0xF000);
    const float d = half_bits(d16) * 0.125f;
    for (int l = 0; l < 4; ++l) {
      const uint32_t k = 4 * ib + l, h = (b[32 + k / 2] >> (4 * (k % 2))) & 0xF, s16 = 2 * ib + l / 2;
      const float ds = d * iq_odd((w[s16 / 4] >> (3 * (s16 % 4))) & 7);
      iq1_put8(y + 8 * l, ds, gr.iq1s[b[k] | ((h & 7) << 8)], (h & 8) ? -1 : 1);
    }
  }
}

// y[0..32) = elements [32g, 32g + 32) of row r; elements past the last column are 0 (only a
// plain type can end inside a group).
template <WeightType T>
STRATA_HD void decode32(const Mat& m, int64_t r, int64_t g, float* y) {
  const uint8_t* row = m.data + r * m.row_bytes;
  const int64_t c0 = 32 * g;
  if constexpr (T == WeightType::F32 || T == WeightType::F16 || T == WeightType::BF16 || T == WeightType::F8_E4M3) {
    float s = 1.0f;
    if constexpr (T == WeightType::F8_E4M3) {
      if (m.scale) {
        const int64_t scols = (m.cols + 127) / 128, si = (r / 128) * scols + c0 / 128;
        s = m.scale_type == WeightType::F32 ? f32_of_bits(rd32(m.scale + 4 * si)) : e8m0_bits(m.scale[si]);
      }
    }
    for (int j = 0; j < 32; ++j) {
      const int64_t c = c0 + j;
      float v = 0.f;
      if (c < m.cols) {
        if constexpr (T == WeightType::F32) v = f32_of_bits(rd32(row + 4 * c));
        else if constexpr (T == WeightType::F16) v = half_bits(rd16(row + 2 * c));
        else if constexpr (T == WeightType::BF16) v = bf16_bits(rd16(row + 2 * c));
        else v = e4m3_bits(row[c]) * s;
      }
      y[j] = v;
    }
  } else if constexpr (T == WeightType::MXFP4) {
    const uint8_t* p = row + 16 * g;
    const float s = e8m0_bits(m.scale[r * (m.cols / 32) + g]);
    for (int j = 0; j < 32; ++j) y[j] = e2m1_bits((j & 1) ? (p[j / 2] >> 4) : (p[j / 2] & 0xF)) * s;
  } else if constexpr (T == WeightType::Q8_0) {
    const uint8_t* b = row + 34 * g;
    const float d = half_bits(rd16(b));
    for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(b[2 + j]));
  } else if constexpr (T == WeightType::Q4_0 || T == WeightType::IQ4_NL) {
    const uint8_t* b = row + 18 * g;
    const float d = half_bits(rd16(b));
    for (int j = 0; j < 16; ++j) {
      if constexpr (T == WeightType::Q4_0) {
        y[j] = d * static_cast<float>((b[2 + j] & 0xF) - 8);
        y[j + 16] = d * static_cast<float>((b[2 + j] >> 4) - 8);
      } else {
        y[j] = d * static_cast<float>(iq4_level(b[2 + j] & 0xF));
        y[j + 16] = d * static_cast<float>(iq4_level(b[2 + j] >> 4));
      }
    }
  } else if constexpr (T == WeightType::Q4_1) {
    const uint8_t* b = row + 20 * g;
    const float d = half_bits(rd16(b)), mn = half_bits(rd16(b + 2));
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(b[4 + j] & 0xF) + mn;
      y[j + 16] = d * static_cast<float>(b[4 + j] >> 4) + mn;
    }
  } else if constexpr (T == WeightType::Q5_0 || T == WeightType::Q5_1) {
    constexpr int kBytes = T == WeightType::Q5_0 ? 22 : 24, kHead = T == WeightType::Q5_0 ? 2 : 4;
    const uint8_t* b = row + kBytes * g;
    const float d = half_bits(rd16(b));
    const uint32_t qh = rd32(b + kHead);
    const uint8_t* qs = b + kHead + 4;
    for (int j = 0; j < 32; ++j) {
      const int lo = j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4);
      const int q = lo | static_cast<int>(((qh >> j) & 1) << 4);
      if constexpr (T == WeightType::Q5_0) y[j] = d * static_cast<float>(q - 16);
      else y[j] = d * static_cast<float>(q) + half_bits(rd16(b + 2));
    }
  } else if constexpr (T == WeightType::Q4_K || T == WeightType::Q5_K) {
    constexpr int kBytes = T == WeightType::Q4_K ? 144 : 176, kQs = T == WeightType::Q4_K ? 16 : 48;
    const uint8_t* b = row + kBytes * (g / 8);
    const int j = static_cast<int>(g % 8);
    const float d = half_bits(rd16(b)), dmin = half_bits(rd16(b + 2));
    int sc, mn;
    kq_scale_min(j, b + 4, sc, mn);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
    const uint8_t* q = b + kQs + 32 * (j / 2);
    const int shift = 4 * (j % 2);
    for (int l = 0; l < 32; ++l) {
      int v = (q[l] >> shift) & 0xF;
      if constexpr (T == WeightType::Q5_K) v += ((b[16 + l] >> j) & 1) ? 16 : 0;  // qh bit j: u1/u2 of the chunk
      y[l] = d1 * static_cast<float>(v) - m1;
    }
  } else if constexpr (T == WeightType::Q6_K) {
    const uint8_t* b = row + 210 * (g / 8);
    const int j = static_cast<int>(g % 8), half = j / 4, qq = j % 4;
    const float d = half_bits(rd16(b + 208));
    const uint8_t* ql = b + 64 * half + 32 * (qq & 1);
    const uint8_t* qh = b + 128 + 32 * half;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * half + 2 * qq);
    for (int l = 0; l < 32; ++l) {
      const int lo = qq >= 2 ? (ql[l] >> 4) : (ql[l] & 0xF);
      const int q = (lo | (((qh[l] >> (2 * qq)) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[l / 16]) * static_cast<float>(q);
    }
  } else if constexpr (T == WeightType::Q2_K) {
    const uint8_t* b = row + 84 * (g / 8);
    const int i0 = 32 * static_cast<int>(g % 8);
    const float d = half_bits(rd16(b + 80)), dmin = half_bits(rd16(b + 82));
    for (int l = 0; l < 32; ++l) {
      const int i = i0 + l;
      const int sc = b[i / 16];
      y[l] = d * static_cast<float>(sc & 0xF) * static_cast<float>(kq_two_bits(b + 16, i)) - dmin * static_cast<float>(sc >> 4);
    }
  } else if constexpr (T == WeightType::Q3_K) {
    const uint8_t* b = row + 110 * (g / 8);
    const int i0 = 32 * static_cast<int>(g % 8);
    const float d = half_bits(rd16(b + 108));
    for (int l = 0; l < 32; ++l) {
      const int i = i0 + l;
      const int high = (b[i % 32] >> (i / 32)) & 1;
      y[l] = d * static_cast<float>(q3k_scale(i / 16, b + 96)) * static_cast<float>(kq_two_bits(b + 32, i) - (high ? 0 : 4));
    }
  } else if constexpr (T == WeightType::IQ2_XXS || T == WeightType::IQ2_XS || T == WeightType::IQ2_S ||
                       T == WeightType::IQ3_XXS || T == WeightType::IQ3_S || T == WeightType::IQ1_S ||
                       T == WeightType::IQ1_M) {
    constexpr int kBytes = T == WeightType::IQ2_XXS ? 66 : T == WeightType::IQ2_XS ? 74 : T == WeightType::IQ2_S ? 82
                         : T == WeightType::IQ3_XXS ? 98 : T == WeightType::IQ3_S ? 110 : T == WeightType::IQ1_S ? 50 : 56;
    decode_lattice32<T>(*m.grids, row + kBytes * (g / 8), static_cast<int>(g % 8), y);
  } else if constexpr (T == WeightType::IQ4_XS) {
    const uint8_t* b = row + 136 * (g / 8);
    const int s = static_cast<int>(g % 8);
    const uint32_t sh = rd16(b + 2);
    const int lo = (b[4 + s / 2] >> (4 * (s % 2))) & 0xF, hi = (sh >> (2 * s)) & 3;
    const float dl = half_bits(rd16(b)) * static_cast<float>((lo | (hi << 4)) - 32);
    const uint8_t* q = b + 8 + 16 * s;
    for (int j = 0; j < 16; ++j) {
      y[j] = dl * static_cast<float>(iq4_level(q[j] & 0xF));
      y[j + 16] = dl * static_cast<float>(iq4_level(q[j] >> 4));
    }
  }
}

// decode32 of whatever type m holds (false for a type decodable() refuses, or a lattice type
// without its grids): the host tests'
// entry, and the kernels' where one launch serves every type.
STRATA_HD bool decode32_any(const Mat& m, int64_t r, int64_t g, float* y) {
  if (needs_grids(m.type) && m.grids == nullptr) return false;
  switch (m.type) {
#define STRATA_DECODE_CASE(T) \
  case WeightType::T: decode32<WeightType::T>(m, r, g, y); return true;
    STRATA_DECODE_CASE(F32) STRATA_DECODE_CASE(F16) STRATA_DECODE_CASE(BF16) STRATA_DECODE_CASE(F8_E4M3)
    STRATA_DECODE_CASE(MXFP4) STRATA_DECODE_CASE(Q8_0) STRATA_DECODE_CASE(Q4_0) STRATA_DECODE_CASE(Q4_1)
    STRATA_DECODE_CASE(Q5_0) STRATA_DECODE_CASE(Q5_1) STRATA_DECODE_CASE(Q2_K) STRATA_DECODE_CASE(Q3_K)
    STRATA_DECODE_CASE(Q4_K) STRATA_DECODE_CASE(Q5_K) STRATA_DECODE_CASE(Q6_K) STRATA_DECODE_CASE(IQ4_NL)
    STRATA_DECODE_CASE(IQ4_XS) STRATA_DECODE_CASE(IQ2_XXS) STRATA_DECODE_CASE(IQ2_XS) STRATA_DECODE_CASE(IQ2_S)
    STRATA_DECODE_CASE(IQ3_XXS) STRATA_DECODE_CASE(IQ3_S) STRATA_DECODE_CASE(IQ1_S) STRATA_DECODE_CASE(IQ1_M)
#undef STRATA_DECODE_CASE
    default: return false;
  }
}

}  // namespace strata::gpu
