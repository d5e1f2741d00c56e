#include "cpu-kernels/row_dequant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/lowbit_formats.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/row_kernels.h"
#include "cpu-kernels/tile_layout.h"

namespace strata {
namespace {

// Called per row and per short attention dot: the AVX-512 table is chosen once.
const kern::RowKernels* kernels() {
  static const kern::RowKernels* const avx512 = [] {
    const CpuFeatures& f = cpu_features();
    return f.avx512bf16 && f.avx512vbmi ? &kern::row_kernels_avx512bf16() : &kern::row_kernels_avx512();
  }();
  switch (dispatch_level()) {
    case CpuLevel::Avx512: return avx512;
    case CpuLevel::Avx2: return &kern::row_kernels_avx2();
    case CpuLevel::Scalar: break;
  }
  return nullptr;
}

float scale_value(const WeightView& w, int64_t i) {
  if (w.scale_type == WeightType::F32) {
    float s;
    std::memcpy(&s, w.scale + 4 * i, 4);
    return s;
  }
  return e8m0_to_f32(w.scale[i]);
}

// The block scales of FP8 row r, one per 128 columns (at most 512: has_fused_row_dot).
void fp8_row_scales(const WeightView& w, int64_t r, float* scales) {
  const int64_t nb = (w.cols + 127) / 128;
  for (int64_t b = 0; b < nb; ++b) scales[b] = scale_value(w, (r / 128) * nb + b);
}

}  // namespace

void dequant_row_range(const WeightView& w, int64_t r, int64_t c0, int64_t nc, float* out) {
  if (is_tiled_layout(w.type)) {  // the row gathered from its tile, then as stored
    thread_local std::vector<uint8_t> buf;
    buf.resize(static_cast<size_t>(row_bytes(w.type, w.cols)));
    return dequant_row_range(row_view(w, r, buf.data()), 0, c0, nc, out);
  }
  const kern::RowKernels* k = kernels();
  const int64_t n = w.cols;
  // The lattice i-quants' vector path lives with their integer dots (AVX-512 VNNI).
  if (k && is_lattice_iq(w.type) && c0 % 256 == 0 && nc % 256 == 0 &&
      dequant_lattice_blocks(w.type, w.data + (r * n + c0) / 256 * row_bytes(w.type, 256), out, nc))
    return;
  if (k) {
    switch (w.type) {
      case WeightType::F32: std::memcpy(out, w.data + (r * n + c0) * 4, static_cast<size_t>(nc) * 4); return;
      case WeightType::BF16: return k->bf16(reinterpret_cast<const uint16_t*>(w.data) + r * n + c0, out, nc);
      case WeightType::F16: return k->f16(reinterpret_cast<const uint16_t*>(w.data) + r * n + c0, out, nc);
      case WeightType::Q8_0: return k->q8_0(w.data + (r * n + c0) / 32 * 34, out, nc);
      case WeightType::Q4_0: return k->q4_0(w.data + (r * n + c0) / 32 * 18, out, nc);
      case WeightType::Q4_K:
        if (c0 % 256 || nc % 256) break;
        return k->q4_k(w.data + (r * n + c0) / 256 * 144, out, nc);
      case WeightType::Q5_K:
        if (c0 % 256 || nc % 256) break;
        return k->q5_k(w.data + (r * n + c0) / 256 * 176, out, nc);
      case WeightType::Q6_K:
        if (c0 % 256 || nc % 256) break;
        return k->q6_k(w.data + (r * n + c0) / 256 * 210, out, nc);
      case WeightType::Q4_1: return k->q4_1(w.data + (r * n + c0) / 32 * 20, out, nc);
      case WeightType::Q5_0: return k->q5_0(w.data + (r * n + c0) / 32 * 22, out, nc);
      case WeightType::Q5_1: return k->q5_1(w.data + (r * n + c0) / 32 * 24, out, nc);
      case WeightType::IQ4_NL: return k->iq4_nl(w.data + (r * n + c0) / 32 * 18, out, nc);
      case WeightType::Q2_K:
        if (c0 % 256 || nc % 256) break;
        return k->q2_k(w.data + (r * n + c0) / 256 * 84, out, nc);
      case WeightType::Q3_K:
        if (c0 % 256 || nc % 256) break;
        return k->q3_k(w.data + (r * n + c0) / 256 * 110, out, nc);
      case WeightType::IQ4_XS:
        if (c0 % 256 || nc % 256) break;
        return k->iq4_xs(w.data + (r * n + c0) / 256 * 136, out, nc);
      case WeightType::F8_E4M3: {
        float scales[512];
        const int64_t nb = (n + 127) / 128, b0 = c0 / 128, nbr = (nc + 127) / 128;
        if (!w.scale || nbr > 512) break;
        for (int64_t b = 0; b < nbr; ++b) scales[b] = scale_value(w, (r / 128) * nb + b0 + b);
        return k->e4m3(w.data + r * n + c0, scales, 128, out, nc);
      }
      case WeightType::MXFP4: {
        float scales[2048];
        const int64_t nbr = nc / 32;
        if (nbr > 2048) break;
        for (int64_t b = 0; b < nbr; ++b) scales[b] = e8m0_to_f32(w.scale[(r * n + c0) / 32 + b]);
        return k->mxfp4(w.data + (r * n + c0) / 2, scales, out, nc);
      }
      default: break;
    }
  }
  if (c0 == 0 && nc == n) return dequantize_rows(w, r, 1, out);
  // Scalar: a sub-view starting at column c0 of row r.
  WeightView sub = w;
  sub.cols = nc;
  sub.rows = 1;
  switch (w.type) {
    case WeightType::F8_E4M3:
    case WeightType::MXFP4: {
      thread_local std::vector<float> full;
      full.resize(static_cast<size_t>(n));
      dequantize_rows(w, r, 1, full.data());
      std::memcpy(out, full.data() + c0, static_cast<size_t>(nc) * 4);
      return;
    }
    default:
      sub.data = w.data + r * row_bytes(w.type, n) + row_bytes(w.type, c0);
      return dequantize_rows(sub, 0, 1, out);
  }
}

void dequant_row(const WeightView& w, int64_t r, float* out) { dequant_row_range(w, r, 0, w.cols, out); }

void dequant_rows(const WeightView& w, int64_t r0, int64_t nr, float* out) {
  if (nr <= 0) return;
  // A run of whole rows is one run of blocks: row r0 read on over nr · cols columns (the
  // lattice, K- and legacy quants, the 16-bit and f32 types, all in whole blocks per row).
  if (!w.scale && !is_tiled_layout(w.type) && w.cols % weight_type_info(w.type).block_elems == 0) {
    WeightView run = w;
    run.cols = nr * w.cols;
    run.rows = 1;
    run.data = w.data + r0 * row_bytes(w.type, w.cols);
    return dequant_row_range(run, 0, 0, run.cols, out);
  }
  for (int64_t r = 0; r < nr; ++r) dequant_row(w, r0 + r, out + r * w.cols);
}

bool has_fused_row_dot(WeightType type, bool block_scaled) {
  if (!kernels()) return false;
  switch (type) {
    case WeightType::F32:
    case WeightType::BF16:
    case WeightType::F16: return true;
    case WeightType::F8_E4M3: return block_scaled;
    default: return false;
  }
}

bool has_fused_row_dot(const WeightView& w) {
  return has_fused_row_dot(w.type, w.scale != nullptr) && (w.type != WeightType::F8_E4M3 || (w.cols + 127) / 128 <= 512);
}

const float* fused_row_act(const WeightView& w, const float* x, std::vector<float>& buf, bool rounded) {
  const kern::RowKernels* k = kernels();
  if (!k || w.type != WeightType::F8_E4M3 || !k->e4m3_dot_order) return x;
  buf.resize(static_cast<size_t>(k->e4m3_dot_act_floats ? k->e4m3_dot_act_floats(w.cols, rounded) : w.cols));
  k->e4m3_dot_order(x, w.cols, buf.data(), rounded);
  return buf.data();
}

bool fused_row_dot(const WeightView& w, int64_t r, const float* x, float& out, bool rounded) {
  return fused_row_dots(w, r, 1, x, &out, 1, rounded);
}

bool fused_row_dots(const WeightView& w, int64_t r0, int64_t nr, const float* x, float* out, int64_t ldo,
                    bool rounded) {
  if (!has_fused_row_dot(w)) return false;
  const kern::RowKernels* k = kernels();
  const int64_t n = w.cols;
  const auto* wide = reinterpret_cast<const uint16_t*>(w.data);
  switch (w.type) {
    case WeightType::F32:
      for (int64_t r = 0; r < nr; ++r)
        out[r * ldo] = k->dot(reinterpret_cast<const float*>(w.data) + (r0 + r) * n, x, n);
      return true;
    case WeightType::BF16:
      for (int64_t r = 0; r < nr; ++r) out[r * ldo] = k->bf16_dot(wide + (r0 + r) * n, x, n);
      return true;
    case WeightType::F16:
      for (int64_t r = 0; r < nr; ++r) out[r * ldo] = k->f16_dot(wide + (r0 + r) * n, x, n);
      return true;
    default:
      break;
  }
  float scales[512];
  for (int64_t r = r0; r < r0 + nr;) {
    const int64_t end = std::min(r0 + nr, (r / 128 + 1) * 128);  // the rows of one scale block
    fp8_row_scales(w, r, scales);
    for (; r < end; ++r) out[(r - r0) * ldo] = k->e4m3_dot(w.data + r * n, scales, 128, x, n, rounded);
  }
  return true;
}

bool has_fused_row_dot_tokens(const WeightView& w) {
  const kern::RowKernels* k = kernels();
  if (!k || !has_fused_row_dot(w)) return false;
  switch (w.type) {
    case WeightType::F8_E4M3: return k->e4m3_dot_tokens != nullptr;
    case WeightType::BF16: return k->bf16_dot_tokens != nullptr;
    case WeightType::F16: return k->f16_dot_tokens != nullptr;
    default: return false;
  }
}

int64_t fused_row_dot_tokens_gemm_from(const WeightView& w) {
  return w.type == WeightType::F8_E4M3 && has_fused_row_dot_tokens(w) ? kernels()->e4m3_tokens_gemm_from : 0;
}

bool fused_row_dot_tokens(const WeightView& w, int64_t r0, int64_t nr, const float* const* x, int nt,
                          float* out, int64_t ldo, bool rounded) {
  if (!has_fused_row_dot_tokens(w)) return false;
  const int64_t n = w.cols;
  if (w.type != WeightType::F8_E4M3) {
    const auto* rows = reinterpret_cast<const uint16_t*>(w.data) + r0 * n;
    (w.type == WeightType::BF16 ? kernels()->bf16_dot_tokens : kernels()->f16_dot_tokens)(
        rows, n, static_cast<int>(nr), x, nt, n, out, ldo);
    return true;
  }
  float scales[512];
  for (int64_t r = r0; r < r0 + nr;) {
    const int64_t end = std::min(r0 + nr, (r / 128 + 1) * 128);  // the rows of one scale block
    fp8_row_scales(w, r, scales);
    kernels()->e4m3_dot_tokens(w.data + r * n, n, static_cast<int>(end - r), scales, 128, x, nt, n, rounded,
                               out + (r - r0), ldo);
    r = end;
  }
  return true;
}

float dot_f32(const float* a, const float* b, int64_t n) {
  if (const kern::RowKernels* k = kernels()) return k->dot(a, b, n);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void exp_f32(float* x, int64_t n) {
  if (const kern::RowKernels* k = kernels()) return k->exp(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

void to_bf16_row(const float* src, uint16_t* dst, int64_t n) {
  if (const kern::RowKernels* k = kernels()) return k->to_bf16(src, dst, n);
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

uint64_t sum_u64(const uint64_t* p, int64_t n) {
  if (const kern::RowKernels* k = kernels()) return k->sum_u64(p, n);
  uint64_t a = 0, b = 0, c = 0, d = 0;  // independent chains: the loads, not the adds, the limit
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) a += p[i], b += p[i + 1], c += p[i + 2], d += p[i + 3];
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}

bool has_attn_scores_rows_bf16(int64_t d, int64_t d2) {
  const kern::RowKernels* k = kernels();
  return k && k->attn_scores_rows_bf16 && d % 32 == 0 && d2 % 32 == 0;
}

bool attn_scores_rows_bf16(const uint16_t* const* q, const uint16_t* const* q2, int nb, const uint16_t* keys,
                           int64_t ldk, int64_t d, const uint16_t* keys2, int64_t ldk2, int64_t d2, int64_t nk, float* s,
                           int64_t lds) {
  if (!has_attn_scores_rows_bf16(d, d2)) return false;
  kernels()->attn_scores_rows_bf16(q, q2, nb, keys, ldk, d, keys2, ldk2, d2, nk, s, lds);
  return true;
}

bool has_attn_scores_bf16(int64_t d) {
  const kern::RowKernels* k = kernels();
  return k && k->attn_scores_bf16 && d % 2 == 0;
}

bool attn_scores_bf16(const uint16_t* const* q, int nb, const uint16_t* kt, int64_t ldk, int64_t d, int64_t nk,
                      float* s, int64_t lds) {
  if (!has_attn_scores_bf16(d)) return false;
  kernels()->attn_scores_bf16(q, nb, kt, ldk, d, nk, s, lds);
  return true;
}

bool has_attn_pv_bf16(int64_t nv) {
  const kern::RowKernels* k = kernels();
  return k && k->attn_pv_bf16 && nv % 32 == 0;
}

bool attn_pv_bf16(const float* p, int64_t ldp, int nb, const uint16_t* v, int64_t ldv, int64_t nk, int64_t nv, float* o,
                  int64_t ldo) {
  if (!has_attn_pv_bf16(nv) || nk > kern::kPvMaxKeys) return false;
  kernels()->attn_pv_bf16(p, ldp, nb, v, ldv, nk, nv, o, ldo);
  return true;
}

namespace {

// The level's transposed product for type t, or null.
kern::RowKernels::TRowsFn t_rows_for(const kern::RowKernels::TRows& k, WeightType t) {
  switch (t) {
    case WeightType::Q4_K: return k.q4_k;
    case WeightType::Q5_K: return k.q5_k;
    case WeightType::Q6_K: return k.q6_k;
    case WeightType::Q2_K: return k.q2_k;
    case WeightType::Q3_K: return k.q3_k;
    case WeightType::IQ4_XS: return k.iq4_xs;
    default: return nullptr;
  }
}

}  // namespace

bool fused_t_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, float* y) {
  const kern::RowKernels* k = kernels();
  if (!k || w.cols % 256 != 0) return false;
  const kern::RowKernels::TRowsFn f = t_rows_for(k->t_rows, w.type);
  if (!f) return false;
  const int64_t rb = row_bytes(w.type, w.cols);
  f(w.data + r0 * rb, rb, nr, x, y, w.cols);
  return true;
}

void attn_scores_f32(const float* const* q, int nb, const float* kt, int64_t ldk, int64_t d, int64_t nk, float* s,
                     int64_t lds) {
  if (const kern::RowKernels* k = kernels(); k && k->attn_scores) return k->attn_scores(q, nb, kt, ldk, d, nk, s, lds);
  for (int t = 0; t < nb; ++t)
    for (int64_t j = 0; j < nk; ++j) {
      float a = 0;
      for (int64_t i = 0; i < d; ++i) a = std::fma(q[t][i], kt[i * ldk + j], a);
      s[t * lds + j] = a;
    }
}

void attn_scores_rows_f32(const float* const* q, const float* const* q2, int nb, const float* keys, int64_t ldk,
                          int64_t d, const float* keys2, int64_t ldk2, int64_t d2, int64_t nk, float* s, int64_t lds) {
  // The vector kernels take whole vectors of 16 (a multiple of both levels' widths).
  if (const kern::RowKernels* k = kernels(); k && k->attn_scores_rows && d % 16 == 0 && d2 % 16 == 0)
    return k->attn_scores_rows(q, q2, nb, keys, ldk, d, keys2, ldk2, d2, nk, s, lds);
  for (int t = 0; t < nb; ++t)
    for (int64_t j = 0; j < nk; ++j) {
      float a = 0;
      for (int64_t i = 0; i < d; ++i) a = std::fma(q[t][i], keys[j * ldk + i], a);
      for (int64_t i = 0; i < d2; ++i) a = std::fma(q2[t][i], keys2[j * ldk2 + i], a);
      s[t * lds + j] = a;
    }
}

void attn_pv_f32(const float* p, int64_t ldp, int nb, const float* v, int64_t ldv, int64_t nk, int64_t nv, float* o,
                 int64_t ldo) {
  if (const kern::RowKernels* k = kernels(); k && k->attn_pv) return k->attn_pv(p, ldp, nb, v, ldv, nk, nv, o, ldo);
  for (int t = 0; t < nb; ++t)
    for (int64_t j = 0; j < nv; ++j) {
      float a = 0;
      for (int64_t k = 0; k < nk; ++k) a = std::fma(p[t * ldp + k], v[k * ldv + j], a);
      o[t * ldo + j] = a;
    }
}

float max_f32(const float* x, int64_t n) {
  float m[8];
  std::fill(m, m + 8, -std::numeric_limits<float>::infinity());
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) m[j] = x[k + j] > m[j] ? x[k + j] : m[j];
  for (; k < n; ++k) m[0] = x[k] > m[0] ? x[k] : m[0];
  return *std::max_element(m, m + 8);
}

float sum_f32(const float* x, int64_t n) {
  float a[8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) a[j] += x[k + j];
  for (; k < n; ++k) a[0] += x[k];
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  if (const kern::RowKernels* k = kernels()) return k->axpy(a, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace strata
