// Reference quantizers of the lower-bit GGUF formats (lowbit_formats.h): simple scale searches
// for generated test models, not a quality quantizer (llama.cpp's searches scales much harder).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/lowbit_formats.h"

namespace strata {
namespace {

int clampi(float v, int lo, int hi) { return std::clamp(static_cast<int>(std::nearbyint(v)), lo, hi); }

// The element of largest magnitude, with its sign.
float signed_amax(const float* x, int n) {
  float mx = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(mx)) mx = x[i];
  return mx;
}

// f16 of v, and the value it holds.
float to_f16(float v, uint16_t& h) {
  h = f32_to_f16(v);
  return f16_to_f32(h);
}

// x ≈ d·q + m with q in [0, levels]: m the block minimum, d the range over levels.
void min_max(const float* x, int n, int levels, uint16_t& d16, uint16_t& m16, int* q) {
  const float lo = *std::min_element(x, x + n), hi = *std::max_element(x, x + n);
  const float d = to_f16((hi - lo) / levels, d16), m = to_f16(lo, m16);
  for (int i = 0; i < n; ++i) q[i] = d ? clampi((x[i] - m) / d, 0, levels) : 0;
}

void pack_nibbles(const int* q, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + kQK / 2] & 0xF) << 4));
}

void pack_fifth_bits(const int* q, uint8_t qh[4]) {
  uint32_t h = 0;
  for (int j = 0; j < kQK; ++j) h |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  std::memcpy(qh, &h, 4);
}

void q4_1(const float* x, BlockQ4_1& b) {
  int q[kQK];
  min_max(x, kQK, 15, b.d, b.m, q);
  pack_nibbles(q, b.qs);
}

void q5_0(const float* x, BlockQ5_0& b) {
  const float d = to_f16(signed_amax(x, kQK) / -16.0f, b.d);  // the extreme maps to -16
  int q[kQK];
  for (int j = 0; j < kQK; ++j) q[j] = d ? clampi(x[j] / d + 16, 0, 31) : 16;
  pack_nibbles(q, b.qs);
  pack_fifth_bits(q, b.qh);
}

void q5_1(const float* x, BlockQ5_1& b) {
  int q[kQK];
  min_max(x, kQK, 31, b.d, b.m, q);
  pack_nibbles(q, b.qs);
  pack_fifth_bits(q, b.qh);
}

// Element i's 2 low bits into the Q2_K / Q3_K layout (lowbit_dequant.cpp's two_bits).
void put_two_bits(uint8_t* qs, int i, int v) {
  const int half = i / 128, s = (i % 128) / 16, l = i % 16;
  qs[32 * half + 16 * (s % 2) + l] |= static_cast<uint8_t>((v & 3) << (2 * (s / 2)));
}

void q2_k(const float* x, BlockQ2_K& b) {
  // Per 16 elements x ≈ s·q − m, q in 0..3, m ≥ 0; s and m as 4-bit multiples of d and dmin.
  float s[16], m[16];
  for (int k = 0; k < 16; ++k) {
    const float lo = std::min(0.0f, *std::min_element(x + 16 * k, x + 16 * k + 16));
    const float hi = *std::max_element(x + 16 * k, x + 16 * k + 16);
    m[k] = -lo;
    s[k] = (hi - lo) / 3;
  }
  const float d = to_f16(*std::max_element(s, s + 16) / 15, b.d);
  const float dmin = to_f16(*std::max_element(m, m + 16) / 15, b.dmin);
  std::memset(b.qs, 0, sizeof b.qs);
  for (int k = 0; k < 16; ++k) {
    const int sc = d ? clampi(s[k] / d, 0, 15) : 0, mn = dmin ? clampi(m[k] / dmin, 0, 15) : 0;
    b.scales[k] = static_cast<uint8_t>(sc | (mn << 4));
    const float step = d * sc, off = dmin * mn;
    for (int l = 0; l < 16; ++l) put_two_bits(b.qs, 16 * k + l, step ? clampi((x[16 * k + l] + off) / step, 0, 3) : 0);
  }
}

void q3_k(const float* x, BlockQ3_K& b) {
  // Per 16 elements x ≈ s·q, q in −4..3; s a signed 6-bit multiple of d (the extreme maps to −4).
  float s[16];
  for (int k = 0; k < 16; ++k) s[k] = signed_amax(x + 16 * k, 16) / -4.0f;
  float big = 0;
  for (float v : s) big = std::max(big, std::fabs(v));
  const float d = to_f16(big / 31, b.d);
  std::memset(b.qs, 0, sizeof b.qs);
  std::memset(b.hmask, 0, sizeof b.hmask);
  std::memset(b.scales, 0, sizeof b.scales);
  for (int k = 0; k < 16; ++k) {
    const int sc = d ? clampi(s[k] / d, -32, 31) : 0;
    const int u = sc + 32;  // 6 bits: low 4 and high 2 where q3_k_scale reads them
    if (k < 8) b.scales[k] |= static_cast<uint8_t>(u & 0xF);
    else b.scales[k - 8] |= static_cast<uint8_t>((u & 0xF) << 4);
    b.scales[8 + k % 4] |= static_cast<uint8_t>((u >> 4) << (2 * (k / 4)));
    const float step = d * sc;
    for (int l = 0; l < 16; ++l) {
      const int i = 16 * k + l;
      const int q = (step ? clampi(x[i] / step, -4, 3) : 0) + 4;  // 0..7: high bit set means no −4
      put_two_bits(b.qs, i, q & 3);
      if (q & 4) b.hmask[i % 32] |= static_cast<uint8_t>(1u << (i / 32));
    }
  }
}

// The index of the IQ4 level nearest v / d.
int nearest_level(float v, float d) {
  if (!d) return 8;  // level 1, the one nearest zero (×0 either way)
  const float t = v / d;
  int best = 0;
  for (int k = 1; k < 16; ++k)
    if (std::fabs(kIq4Levels[k] - t) < std::fabs(kIq4Levels[best] - t)) best = k;
  return best;
}

void iq4_nl(const float* x, BlockIQ4_NL& b) {
  const float d = to_f16(signed_amax(x, kQK) / -127.0f, b.d);  // the extreme maps to −127
  int q[kQK];
  for (int j = 0; j < kQK; ++j) q[j] = nearest_level(x[j], d);
  pack_nibbles(q, b.qs);
}

void iq4_xs(const float* x, BlockIQ4_XS& b) {
  float s[8], big = 0;
  for (int k = 0; k < 8; ++k) big = std::max(big, std::fabs(s[k] = signed_amax(x + 32 * k, 32) / -127.0f));
  const float d = to_f16(big / 31, b.d);
  b.scales_h = 0;
  std::memset(b.scales_l, 0, sizeof b.scales_l);
  for (int k = 0; k < 8; ++k) {
    const int u = (d ? clampi(s[k] / d, -32, 31) : 0) + 32;
    b.scales_l[k / 2] |= static_cast<uint8_t>((u & 0xF) << (4 * (k % 2)));
    b.scales_h = static_cast<uint16_t>(b.scales_h | ((u >> 4) << (2 * k)));
    const float dl = d * (u - 32);
    int q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = nearest_level(x[32 * k + j], dl);
    pack_nibbles(q, b.qs + 16 * k);
  }
}

template <typename Block>
void make(const float* src, int64_t n, int per, void (*fn)(const float*, Block&), std::vector<uint8_t>& out) {
  out.assign(static_cast<size_t>(n / per) * sizeof(Block), 0);
  auto* b = reinterpret_cast<Block*>(out.data());
  for (int64_t i = 0; i < n / per; ++i) fn(src + i * per, b[i]);
}

}  // namespace

bool quantize_lowbit_ref(WeightType t, const float* src, int64_t n, std::vector<uint8_t>& out) {
  switch (t) {
    case WeightType::Q4_1: make<BlockQ4_1>(src, n, kQK, q4_1, out); return true;
    case WeightType::Q5_0: make<BlockQ5_0>(src, n, kQK, q5_0, out); return true;
    case WeightType::Q5_1: make<BlockQ5_1>(src, n, kQK, q5_1, out); return true;
    case WeightType::Q2_K: make<BlockQ2_K>(src, n, kQKK, q2_k, out); return true;
    case WeightType::Q3_K: make<BlockQ3_K>(src, n, kQKK, q3_k, out); return true;
    case WeightType::IQ4_NL: make<BlockIQ4_NL>(src, n, kQK, iq4_nl, out); return true;
    case WeightType::IQ4_XS: make<BlockIQ4_XS>(src, n, kQKK, iq4_xs, out); return true;
    default: return quantize_iq_ref(t, src, n, out);
  }
}

}  // namespace strata
