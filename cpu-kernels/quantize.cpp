#include "cpu-kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/lowbit_formats.h"

namespace strata {
namespace {

template <typename Block>
std::vector<uint8_t> make(int64_t n, int per, void (*fn)(const float*, Block&), const float* src) {
  std::vector<uint8_t> out(static_cast<size_t>(n / per) * sizeof(Block));
  auto* b = reinterpret_cast<Block*>(out.data());
  for (int64_t i = 0; i < n / per; ++i) fn(src + i * per, b[i]);
  return out;
}

float amax(const float* x, int n) {
  float m = 0;
  for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

int clampi(float v, int lo, int hi) { return std::clamp(static_cast<int>(std::nearbyint(v)), lo, hi); }

void q8_0(const float* x, BlockQ8_0& b) {
  const float d = amax(x, kQK) / 127.0f;
  b.d = f32_to_f16(d);
  const float dq = f16_to_f32(b.d);
  for (int j = 0; j < kQK; ++j) b.qs[j] = static_cast<int8_t>(dq ? clampi(x[j] / dq, -127, 127) : 0);
}

void q4_0(const float* x, BlockQ4_0& b) {
  // Signed max maps to -8 so the full range [-8, 7] is used.
  float mx = 0;
  for (int j = 0; j < kQK; ++j)
    if (std::fabs(x[j]) > std::fabs(mx)) mx = x[j];
  b.d = f32_to_f16(mx / -8.0f);
  const float dq = f16_to_f32(b.d);
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = dq ? clampi(x[j] / dq + 8, 0, 15) : 8;
    const int hi = dq ? clampi(x[j + kQK / 2] / dq + 8, 0, 15) : 8;
    b.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

// Sub-block (scale, min) search shared by Q4_K (15 levels) and Q5_K (31 levels): x ≈ q·s − m.
void k_scales(const float* x, int levels, uint16_t& d16, uint16_t& dmin16, uint8_t packed[12], float eff_d[8],
              float eff_m[8]) {
  float sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    float lo = x[s * 32], hi = x[s * 32];
    for (int l = 1; l < 32; ++l) lo = std::min(lo, x[s * 32 + l]), hi = std::max(hi, x[s * 32 + l]);
    lo = std::min(lo, 0.0f);
    sc[s] = (hi - lo) / levels;
    mn[s] = -lo;
  }
  const float d = *std::max_element(sc, sc + 8) / 63.0f, dmin = *std::max_element(mn, mn + 8) / 63.0f;
  d16 = f32_to_f16(d);
  dmin16 = f32_to_f16(dmin);
  const float dq = f16_to_f32(d16), dminq = f16_to_f32(dmin16);
  uint8_t qs[8], qm[8];
  for (int s = 0; s < 8; ++s) {
    qs[s] = static_cast<uint8_t>(dq ? clampi(sc[s] / dq, 0, 63) : 0);
    qm[s] = static_cast<uint8_t>(dminq ? clampi(mn[s] / dminq, 0, 63) : 0);
    eff_d[s] = dq * qs[s];
    eff_m[s] = dminq * qm[s];
  }
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<uint8_t>(qs[j] | ((qs[j + 4] >> 4) << 6));
    packed[j + 4] = static_cast<uint8_t>(qm[j] | ((qm[j + 4] >> 4) << 6));
    packed[j + 8] = static_cast<uint8_t>((qs[j + 4] & 0xF) | ((qm[j + 4] & 0xF) << 4));
  }
}

int k_quant(float x, float d, float m, int levels) { return d ? clampi((x + m) / d, 0, levels) : 0; }

void q4_k(const float* x, BlockQ4_K& b) {
  float d[8], m[8];
  k_scales(x, 15, b.d, b.dmin, b.scales, d, m);
  for (int c = 0; c < 4; ++c)  // 64-element chunk c: sub-blocks 2c (low nibbles) and 2c+1 (high)
    for (int l = 0; l < 32; ++l) {
      const int lo = k_quant(x[64 * c + l], d[2 * c], m[2 * c], 15);
      const int hi = k_quant(x[64 * c + 32 + l], d[2 * c + 1], m[2 * c + 1], 15);
      b.qs[32 * c + l] = static_cast<uint8_t>(lo | (hi << 4));
    }
}

void q5_k(const float* x, BlockQ5_K& b) {
  float d[8], m[8];
  k_scales(x, 31, b.d, b.dmin, b.scales, d, m);
  std::memset(b.qh, 0, sizeof b.qh);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = k_quant(x[64 * c + l], d[2 * c], m[2 * c], 31);
      const int hi = k_quant(x[64 * c + 32 + l], d[2 * c + 1], m[2 * c + 1], 31);
      b.qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      if (lo & 16) b.qh[l] |= static_cast<uint8_t>(1u << (2 * c));
      if (hi & 16) b.qh[l] |= static_cast<uint8_t>(2u << (2 * c));
    }
}

void q6_k(const float* x, BlockQ6_K& b) {
  float sub[16];
  for (int s = 0; s < 16; ++s) sub[s] = amax(x + 16 * s, 16) / 31.0f;
  const float d = *std::max_element(sub, sub + 16) / 127.0f;
  b.d = f32_to_f16(d);
  const float dq = f16_to_f32(b.d);
  int q[kQKK];
  for (int s = 0; s < 16; ++s) {
    b.scales[s] = static_cast<int8_t>(dq ? clampi(sub[s] / dq, -128, 127) : 0);
    const float step = dq * b.scales[s];
    for (int l = 0; l < 16; ++l) q[16 * s + l] = (step ? clampi(x[16 * s + l] / step, -32, 31) : 0) + 32;
  }
  std::memset(b.qh, 0, sizeof b.qh);
  for (int half = 0; half < 2; ++half) {  // 128 elements per half: ql 64 bytes, qh 32 bytes
    const int* y = q + 128 * half;
    uint8_t* ql = b.ql + 64 * half;
    uint8_t* qh = b.qh + 32 * half;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((y[l] & 0xF) | ((y[l + 64] & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((y[l + 32] & 0xF) | ((y[l + 96] & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((y[l] >> 4) | ((y[l + 32] >> 4) << 2) | ((y[l + 64] >> 4) << 4) |
                                   ((y[l + 96] >> 4) << 6));
    }
  }
}

template <typename T, typename F>
std::vector<uint8_t> plain(const float* src, int64_t n, F conv) {
  std::vector<uint8_t> out(static_cast<size_t>(n) * sizeof(T));
  for (int64_t i = 0; i < n; ++i) {
    const T v = conv(src[i]);
    std::memcpy(out.data() + i * sizeof(T), &v, sizeof(T));
  }
  return out;
}

}  // namespace

std::vector<uint8_t> quantize_row_ref(WeightType t, const float* src, int64_t n) {
  if (n < 0 || n % weight_type_info(t).block_elems != 0)
    throw std::invalid_argument("quantize " + std::string(weight_type_name(t)) + ": " + std::to_string(n) +
                                " elements is not a whole number of blocks");
  switch (t) {
    case WeightType::F32: return plain<float>(src, n, [](float v) { return v; });
    case WeightType::F16: return plain<uint16_t>(src, n, f32_to_f16);
    case WeightType::BF16: return plain<uint16_t>(src, n, f32_to_bf16);
    case WeightType::Q8_0: return make<BlockQ8_0>(n, kQK, q8_0, src);
    case WeightType::Q4_0: return make<BlockQ4_0>(n, kQK, q4_0, src);
    case WeightType::Q4_K: return make<BlockQ4_K>(n, kQKK, q4_k, src);
    case WeightType::Q5_K: return make<BlockQ5_K>(n, kQKK, q5_k, src);
    case WeightType::Q6_K: return make<BlockQ6_K>(n, kQKK, q6_k, src);
    default: break;
  }
  if (std::vector<uint8_t> out; quantize_lowbit_ref(t, src, n, out)) return out;
  throw std::invalid_argument("quantize_row_ref: no quantizer for " + std::string(weight_type_name(t)));
}

void quantize_fp8_blockscaled_ref(const float* src, int64_t rows, int64_t cols, WeightType scale_type,
                                  std::vector<uint8_t>& w, std::vector<uint8_t>& scales, int64_t block) {
  if (scale_type != WeightType::F32 && scale_type != WeightType::F8_E8M0)
    throw std::invalid_argument("quantize_fp8_blockscaled_ref: scales must be f32 or f8_e8m0");
  const int64_t br = (rows + block - 1) / block, bc = (cols + block - 1) / block;
  w.assign(static_cast<size_t>(rows * cols), 0);
  scales.assign(static_cast<size_t>(br * bc) * (scale_type == WeightType::F32 ? 4 : 1), 0);
  for (int64_t bi = 0; bi < br; ++bi)
    for (int64_t bj = 0; bj < bc; ++bj) {
      float m = 0;
      for (int64_t i = bi * block; i < std::min(rows, (bi + 1) * block); ++i)
        for (int64_t j = bj * block; j < std::min(cols, (bj + 1) * block); ++j) m = std::max(m, std::fabs(src[i * cols + j]));
      float s = m > 0 ? m / 448.0f : 1.0f;
      if (scale_type == WeightType::F8_E8M0) {
        const uint8_t e = e8m0_from_exponent(static_cast<int>(std::ceil(std::log2(s))));
        scales[bi * bc + bj] = e;
        s = e8m0_to_f32(e);
      } else {
        std::memcpy(scales.data() + 4 * (bi * bc + bj), &s, 4);
      }
      for (int64_t i = bi * block; i < std::min(rows, (bi + 1) * block); ++i)
        for (int64_t j = bj * block; j < std::min(cols, (bj + 1) * block); ++j)
          w[i * cols + j] = f32_to_e4m3(src[i * cols + j] / s);
    }
}

void quantize_mxfp4_ref(const float* src, int64_t rows, int64_t cols, std::vector<uint8_t>& packed,
                        std::vector<uint8_t>& scales) {
  if (cols % 32 != 0) throw std::invalid_argument("quantize_mxfp4_ref: cols must be a multiple of 32");
  packed.assign(static_cast<size_t>(rows * cols / 2), 0);
  scales.assign(static_cast<size_t>(rows * cols / 32), 0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t g = 0; g < cols / 32; ++g) {
      const float* x = src + i * cols + g * 32;
      const float m = std::max(amax(x, 32), 6.0f * std::ldexp(1.0f, -126));
      const uint8_t e = e8m0_from_exponent(static_cast<int>(std::ceil(std::log2(m / 6.0f))));
      scales[i * (cols / 32) + g] = e;
      const float s = e8m0_to_f32(e);
      for (int l = 0; l < 32; ++l) {
        const uint8_t q = f32_to_e2m1(x[l] / s);
        packed[(i * cols + g * 32 + l) / 2] |= static_cast<uint8_t>((l & 1) ? q << 4 : q);
      }
    }
}

}  // namespace strata
