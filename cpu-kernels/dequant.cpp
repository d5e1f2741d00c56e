#include "cpu-kernels/dequant.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/lowbit_formats.h"

namespace strata {
namespace {

template <typename T>
void ints(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}

template <typename Block>
const Block* blocks(const void* src) {
  return static_cast<const Block*>(src);
}

void q8_0(const BlockQ8_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK; ++j) y[j] = d * b.qs[j];
}

void q4_0(const BlockQ4_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * ((b.qs[j] & 0xF) - 8);
    y[j + kQK / 2] = d * ((b.qs[j] >> 4) - 8);
  }
}

void q4_k(const BlockQ4_K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  const uint8_t* q = b.qs;
  for (int j = 0, is = 0; j < kQKK; j += 64, is += 2, q += 32) {
    uint8_t sc, m;
    k_scale_min(is, b.scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    k_scale_min(is + 1, b.scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) y[j + l] = d1 * (q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[j + 32 + l] = d2 * (q[l] >> 4) - m2;
  }
}

void q5_k(const BlockQ5_K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  const uint8_t* q = b.qs;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < kQKK; j += 64, is += 2, q += 32, u1 <<= 2, u2 <<= 2) {
    uint8_t sc, m;
    k_scale_min(is, b.scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    k_scale_min(is + 1, b.scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) y[j + l] = d1 * ((q[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) y[j + 32 + l] = d2 * ((q[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
  }
}

void q6_k(const BlockQ6_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const uint8_t* ql = b.ql;
  const uint8_t* qh = b.qh;
  const int8_t* sc = b.scales;
  for (int n = 0; n < kQKK; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
  }
}

template <typename Block>
void per_block(const void* src, float* dst, int64_t n, int per, void (*fn)(const Block&, float*)) {
  const Block* b = blocks<Block>(src);
  for (int64_t i = 0; i < n / per; ++i) fn(b[i], dst + i * per);
}

}  // namespace

void dequantize_row_ref(WeightType t, const void* src, float* dst, int64_t n) {
  if (n < 0 || n % weight_type_info(t).block_elems != 0)
    throw std::invalid_argument("dequantize " + std::string(weight_type_name(t)) + ": " + std::to_string(n) +
                                " elements is not a whole number of blocks");
  const auto* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case WeightType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case WeightType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
      return;
    case WeightType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
      return;
    case WeightType::F8_E4M3:
      for (int64_t i = 0; i < n; ++i) dst[i] = e4m3_to_f32(p[i]);
      return;
    case WeightType::F8_E8M0:
      for (int64_t i = 0; i < n; ++i) dst[i] = e8m0_to_f32(p[i]);
      return;
    case WeightType::Q8_0: per_block<BlockQ8_0>(src, dst, n, kQK, q8_0); return;
    case WeightType::Q4_0: per_block<BlockQ4_0>(src, dst, n, kQK, q4_0); return;
    case WeightType::Q4_K: per_block<BlockQ4_K>(src, dst, n, kQKK, q4_k); return;
    case WeightType::Q5_K: per_block<BlockQ5_K>(src, dst, n, kQKK, q5_k); return;
    case WeightType::Q6_K: per_block<BlockQ6_K>(src, dst, n, kQKK, q6_k); return;
    case WeightType::I8: ints<int8_t>(src, dst, n); return;
    case WeightType::U8:
    case WeightType::BOOL: ints<uint8_t>(src, dst, n); return;
    case WeightType::I16: ints<int16_t>(src, dst, n); return;
    case WeightType::I32: ints<int32_t>(src, dst, n); return;
    case WeightType::I64: ints<int64_t>(src, dst, n); return;
    case WeightType::MXFP4: break;
    default:
      if (dequantize_lowbit_ref(t, src, dst, n)) return;
      break;
  }
  throw std::invalid_argument("dequantize_row_ref: " + std::string(weight_type_name(t)) +
                              " needs its companion scales (dequantize_mxfp4_ref)");
}

void dequantize_fp8_blockscaled_ref(const uint8_t* w, int64_t rows, int64_t cols, const void* scales,
                                    WeightType scale_type, float* dst, int64_t block) {
  if (rows < 0 || cols < 0 || block <= 0) throw std::invalid_argument("dequantize_fp8_blockscaled_ref: bad shape");
  if (scale_type != WeightType::F32 && scale_type != WeightType::F8_E8M0)
    throw std::invalid_argument("dequantize_fp8_blockscaled_ref: scales must be f32 or f8_e8m0");
  const int64_t scols = (cols + block - 1) / block;
  const auto* s = static_cast<const uint8_t*>(scales);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t si = (i / block) * scols + j / block;
      float scale;
      if (scale_type == WeightType::F32) std::memcpy(&scale, s + 4 * si, 4);
      else scale = e8m0_to_f32(s[si]);
      dst[i * cols + j] = e4m3_to_f32(w[i * cols + j]) * scale;
    }
  }
}

void dequantize_mxfp4_ref(const uint8_t* packed, const uint8_t* scales, int64_t rows, int64_t cols, float* dst) {
  if (rows < 0 || cols < 0 || cols % 32 != 0)
    throw std::invalid_argument("dequantize_mxfp4_ref: cols must be a multiple of 32, got " + std::to_string(cols));
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const uint8_t byte = packed[i * (cols / 2) + j / 2];
      const uint8_t nib = (j & 1) ? (byte >> 4) : (byte & 0xF);
      dst[i * cols + j] = e2m1_to_f32(nib) * e8m0_to_f32(scales[i * (cols / 32) + j / 32]);
    }
  }
}

}  // namespace strata
