// Scalar dequantizers of the lower-bit GGUF formats (lowbit_formats.h).
#include <cstring>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/iq_unpack.h"
#include "cpu-kernels/lowbit_formats.h"

namespace strata {
namespace {

uint32_t le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void q4_1(const BlockQ4_1& b, float* y) {
  const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * (b.qs[j] & 0xF) + m;
    y[j + kQK / 2] = d * (b.qs[j] >> 4) + m;
  }
}

// The 5-bit quant of element j of a Q5_0 / Q5_1 block.
int q5(const uint8_t* qs, uint32_t qh, int j) {
  const int low = j < kQK / 2 ? (qs[j] & 0xF) : (qs[j - kQK / 2] >> 4);
  return low | static_cast<int>(((qh >> j) & 1) << 4);
}

void q5_0(const BlockQ5_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  const uint32_t qh = le32(b.qh);
  for (int j = 0; j < kQK; ++j) y[j] = d * (q5(b.qs, qh, j) - 16);
}

void q5_1(const BlockQ5_1& b, float* y) {
  const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
  const uint32_t qh = le32(b.qh);
  for (int j = 0; j < kQK; ++j) y[j] = d * q5(b.qs, qh, j) + m;
}

// Q2_K and Q3_K share the 2-bit layout: per 128 elements, 32 bytes q; sub-block s (16
// elements, 0..7 within the 128) reads bits 2·(s / 2) of q[16·(s % 2) + l].
int two_bits(const uint8_t* qs, int i) {
  const int half = i / 128, s = (i % 128) / 16, l = i % 16;
  return (qs[32 * half + 16 * (s % 2) + l] >> (2 * (s / 2))) & 3;
}

void q2_k(const BlockQ2_K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  for (int i = 0; i < kQKK; ++i) {
    const uint8_t sc = b.scales[i / 16];
    y[i] = d * (sc & 0xF) * two_bits(b.qs, i) - dmin * (sc >> 4);
  }
}

void q3_k(const BlockQ3_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int i = 0; i < kQKK; ++i) {
    // The high bit of element i: hmask byte i % 32, bit (i / 32).
    const int high = (b.hmask[i % 32] >> (i / 32)) & 1;
    y[i] = d * q3_k_scale(i / 16, b.scales) * (two_bits(b.qs, i) - (high ? 0 : 4));
  }
}

void iq4_nl(const BlockIQ4_NL& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * kIq4Levels[b.qs[j] & 0xF];
    y[j + kQK / 2] = d * kIq4Levels[b.qs[j] >> 4];
  }
}

void iq4_xs(const BlockIQ4_XS& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int s = 0; s < kQKK / 32; ++s) {
    const float dl = d * iq4_xs_scale(s, b);
    const uint8_t* q = b.qs + 16 * s;
    for (int j = 0; j < 16; ++j) {
      y[32 * s + j] = dl * kIq4Levels[q[j] & 0xF];
      y[32 * s + j + 16] = dl * kIq4Levels[q[j] >> 4];
    }
  }
}

// A lattice i-quant through its integer form: (D · sc) · lv, exact (iq_unpack.h).
template <float (*Unpack)(const uint8_t*, const IqGrids&, int8_t*, int16_t*), int kBytes>
void iq_blocks(const void* src, float* dst, int64_t n) {
  const IqGrids& g = iq_grids();
  int8_t lv[kQKK];
  int16_t sc[kQKK / 16];
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float d = Unpack(static_cast<const uint8_t*>(src) + b * kBytes, g, lv, sc);
    for (int i = 0; i < kQKK; ++i) dst[b * kQKK + i] = d * static_cast<float>(sc[i / 16]) * static_cast<float>(lv[i]);
  }
}

template <typename Block>
void per_block(const void* src, float* dst, int64_t n, int per, void (*fn)(const Block&, float*)) {
  const auto* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / per; ++i) fn(b[i], dst + i * per);
}

}  // namespace

bool dequantize_lowbit_ref(WeightType t, const void* src, float* dst, int64_t n) {
  switch (t) {
    case WeightType::Q4_1: per_block<BlockQ4_1>(src, dst, n, kQK, q4_1); return true;
    case WeightType::Q5_0: per_block<BlockQ5_0>(src, dst, n, kQK, q5_0); return true;
    case WeightType::Q5_1: per_block<BlockQ5_1>(src, dst, n, kQK, q5_1); return true;
    case WeightType::Q2_K: per_block<BlockQ2_K>(src, dst, n, kQKK, q2_k); return true;
    case WeightType::Q3_K: per_block<BlockQ3_K>(src, dst, n, kQKK, q3_k); return true;
    case WeightType::IQ4_NL: per_block<BlockIQ4_NL>(src, dst, n, kQK, iq4_nl); return true;
    case WeightType::IQ4_XS: per_block<BlockIQ4_XS>(src, dst, n, kQKK, iq4_xs); return true;
    case WeightType::IQ2_XXS: iq_blocks<iq2_xxs_unpack, 66>(src, dst, n); return true;
    case WeightType::IQ2_XS: iq_blocks<iq2_xs_unpack, 74>(src, dst, n); return true;
    case WeightType::IQ2_S: iq_blocks<iq2_s_unpack, 82>(src, dst, n); return true;
    case WeightType::IQ3_XXS: iq_blocks<iq3_xxs_unpack, 98>(src, dst, n); return true;
    case WeightType::IQ3_S: iq_blocks<iq3_s_unpack, 110>(src, dst, n); return true;
    case WeightType::IQ1_S: iq_blocks<iq1_s_unpack, 50>(src, dst, n); return true;
    case WeightType::IQ1_M: iq_blocks<iq1_m_unpack, 56>(src, dst, n); return true;
    default: return false;
  }
}

}  // namespace strata
