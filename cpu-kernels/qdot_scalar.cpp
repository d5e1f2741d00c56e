// The scalar twins of the integer dot kernels (qdot_kernels.h): exact int32 sums per block,
// scaled in f32 — the reference the vector kernels are tested against.
#include <cmath>
#include <cstring>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/iq_unpack.h"
#include "cpu-kernels/qdot_kernels.h"

namespace strata::kern {
namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

int dot32(const uint8_t* wq, const int8_t* xq, int n) {
  int s = 0;
  for (int i = 0; i < n; ++i) s += wq[i] * xq[i];
  return s;
}

float q8_0(const uint8_t* w, const uint8_t*, const QTok& x, int64_t n) {
  const int8_t* xq = x.q;
  const float* xd = x.d;
  float acc = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* blk = w + b * 34;
    const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
    int s = 0;
    for (int i = 0; i < 32; ++i) s += q[i] * xq[b * 32 + i];
    acc += f16_at(blk) * xd[b] * static_cast<float>(s);
  }
  return acc;
}

float q4_0(const uint8_t* w, const uint8_t*, const QTok& x, int64_t n) {
  const int8_t* xq = x.q;
  const float *xd = x.d, *xds = x.ds;
  float acc = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* blk = w + b * 18;
    uint8_t q[32];
    for (int j = 0; j < 16; ++j) {
      q[j] = blk[2 + j] & 0xF;
      q[j + 16] = blk[2 + j] >> 4;
    }
    const float dw = f16_at(blk);
    acc += dw * xd[b] * static_cast<float>(dot32(q, xq + b * 32, 32)) - dw * 8 * xds[b];
  }
  return acc;
}

// Q4_K / Q5_K: sub-block j of 32 meets activation block 8 · super-block + j, whose scale is
// g · m_j / 64: the integer sums weighted by sc_j · m_j are scaled once per super-block.
template <bool kFive>
float q45_k(const uint8_t* w, const uint8_t*, const QTok& x, int64_t n) {
  constexpr int kBytes = kFive ? 176 : 144;
  float acc = 0;
  for (int64_t sb = 0; sb < n / 256; ++sb) {
    const uint8_t* blk = w + sb * kBytes;
    const float d = f16_at(blk), dmin = f16_at(blk + 2);
    const uint8_t* scales = blk + 4;
    const uint8_t* qh = blk + 16;
    const uint8_t* qs = blk + (kFive ? 48 : 16);
    int64_t isum = 0;
    float mins = 0;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* q = qs + 32 * (j / 2);
      uint8_t v[32];
      for (int l = 0; l < 32; ++l) {
        v[l] = (j % 2) ? (q[l] >> 4) : (q[l] & 0xF);
        if (kFive) v[l] = static_cast<uint8_t>(v[l] | (((qh[l] >> j) & 1) << 4));
      }
      uint8_t sc, m;
      k_scale_min(j, scales, sc, m);
      const int64_t b = sb * 8 + j;
      isum += int64_t{sc} * x.m[b] * dot32(v, x.q + b * 32, 32);
      mins += static_cast<float>(m) * x.ds[b];
    }
    acc += d * (x.g[sb] / 64) * static_cast<float>(isum) - dmin * mins;
  }
  return acc;
}

// Q6_K: per part of 128, four groups of 32 (activation blocks); scales per 16; offset 32.
// Weighted integer sums as for Q4_K, scaled once per super-block.
float q6_k(const uint8_t* w, const uint8_t*, const QTok& x, int64_t n) {
  float acc = 0;
  for (int64_t sb = 0; sb < n / 256; ++sb) {
    const uint8_t* blk = w + sb * 210;
    const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
    const float d = f16_at(blk + 208);
    int64_t isum = 0;
    for (int part = 0; part < 2; ++part) {
      const uint8_t* ql = blk + 64 * part;
      const uint8_t* qh = blk + 128 + 32 * part;
      for (int g = 0; g < 4; ++g) {
        const int64_t b = sb * 8 + part * 4 + g;
        for (int h = 0; h < 2; ++h) {
          int s = 0;
          for (int l = 16 * h; l < 16 * h + 16; ++l) {
            const uint8_t lo = (g % 2) ? ql[l + 32] : ql[l];
            const int v = ((g < 2 ? lo & 0xF : lo >> 4) | (((qh[l] >> (2 * g)) & 3) << 4));
            s += v * x.q[b * 32 + l];
          }
          s -= 32 * x.s[2 * b + h];
          isum += int64_t{sc[part * 8 + 2 * g + h]} * x.m[b] * s;
        }
      }
    }
    acc += d * (x.g[sb] / 64) * static_cast<float>(isum);
  }
  return acc;
}

// MXFP4: doubled E2M1 values (integers, ±12) times the activations, scaled by 2^e / 2.
float mxfp4(const uint8_t* packed, const uint8_t* e8m0, const QTok& x, int64_t n) {
  static constexpr int kTwice[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  float acc = 0;
  const int64_t nb = n / 32;
  for (int64_t b = 0; b < nb; ++b) {
    // Block b's even elements at pair + 16k, its odd ones at pair + 16 · cnt + 16k (ActQ8::qp).
    const int64_t b0 = b - b % 2, k = b - b0, cnt = nb - b0 >= 2 ? 2 : 1;
    const int8_t* even = x.qp + b0 * 32 + 16 * k;
    const int8_t* odd = x.qp + b0 * 32 + 16 * cnt + 16 * k;
    int s = 0;
    for (int i = 0; i < 16; ++i) {
      const uint8_t p = packed[b * 16 + i];
      s += kTwice[p & 0xF] * even[i] + kTwice[p >> 4] * odd[i];
    }
    acc += e8m0_to_f32(e8m0[b]) * 0.5f * x.d[b] * static_cast<float>(s);
  }
  return acc;
}

// Q4_1, Q5_0, Q5_1 and IQ4_NL, blocks of 32 meeting one activation block each: the integer
// sum of the stored quants (or IQ4_NL's signed levels) times q, scaled by d · d_b; the offset
// (Q4_1 / Q5_1: + m, Q5_0: − 16 · d) times the block's activation sum ds.
template <int kBytes, int kQh, int kQs, bool kMin, bool kLevels>
float small_block(const uint8_t* w, const uint8_t*, const QTok& x, int64_t n) {
  float acc = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* blk = w + b * kBytes;
    uint32_t qh = 0;
    if (kQh >= 0) std::memcpy(&qh, blk + kQh, 4);
    int s = 0;
    for (int j = 0; j < 32; ++j) {
      const uint8_t byte = blk[kQs + j % 16];
      int q = j < 16 ? byte & 0xF : byte >> 4;
      if (kQh >= 0) q |= static_cast<int>((qh >> j) & 1) << 4;
      if (kLevels) q = kIq4Levels[q];
      s += q * x.q[b * 32 + j];
    }
    const float dw = f16_at(blk);
    const float off = kMin ? f16_at(blk + 2) : kQh >= 0 ? -16 * dw : 0.0f;
    acc += dw * x.d[b] * static_cast<float>(s) + off * x.ds[b];
  }
  return acc;
}

// The 2-bit quant of element i (0..255) of a Q2_K / Q3_K block: per half of 128, sub-block s
// of 16 reads bits 2·(s / 2) of byte 16·(s % 2) + l.
int two_bit(const uint8_t* qs, int i) {
  const int half = i / 128, s = (i % 128) / 16, l = i % 16;
  return (qs[32 * half + 16 * (s % 2) + l] >> (2 * (s / 2))) & 3;
}

// Q2_K: sub-block s of 16 (half of activation block s / 2) has a 4-bit scale and a 4-bit min:
// d · sc_s · Σ q·x − dmin · min_s · Σ x. Both as integer sums weighted by m_(s/2), the mins
// through the half-block sums s, scaled once per super-block by g / 64.
float q2_k(const uint8_t* w, const uint8_t*, const QTok& x, int64_t n) {
  float acc = 0;
  for (int64_t sb = 0; sb < n / 256; ++sb) {
    const uint8_t* blk = w + sb * 84;
    int64_t isum = 0, msum = 0;
    for (int s = 0; s < 16; ++s) {
      const int64_t b = sb * 8 + s / 2;
      int dot = 0;
      for (int l = 0; l < 16; ++l) dot += two_bit(blk + 16, 16 * s + l) * x.q[sb * 256 + 16 * s + l];
      isum += int64_t{blk[s] & 0xF} * x.m[b] * dot;
      msum += int64_t{blk[s] >> 4} * x.m[b] * x.s[sb * 16 + s];
    }
    const float g64 = x.g[sb] / 64;
    acc += f16_at(blk + 80) * g64 * static_cast<float>(isum) - f16_at(blk + 82) * g64 * static_cast<float>(msum);
  }
  return acc;
}

// Q3_K: the 3-bit quant is the 2-bit one plus 4 where the hmask bit is set; the value is
// sc_s · (q − 4), the 4 taken off through the half-block sums.
float q3_k(const uint8_t* w, const uint8_t*, const QTok& x, int64_t n) {
  float acc = 0;
  for (int64_t sb = 0; sb < n / 256; ++sb) {
    const uint8_t* blk = w + sb * 110;
    int64_t isum = 0;
    for (int s = 0; s < 16; ++s) {
      const int64_t b = sb * 8 + s / 2;
      int dot = 0;
      for (int l = 0; l < 16; ++l) {
        const int i = 16 * s + l;
        const int q = two_bit(blk + 32, i) | ((blk[i % 32] >> (i / 32)) & 1) << 2;
        dot += q * x.q[sb * 256 + i];
      }
      isum += int64_t{q3_k_scale(s, blk + 96)} * x.m[b] * (dot - 4 * x.s[sb * 16 + s]);
    }
    acc += f16_at(blk + 108) * (x.g[sb] / 64) * static_cast<float>(isum);
  }
  return acc;
}

// IQ4_XS: sub-block j of 32 (activation block 8 · super-block + j) has a signed 6-bit scale
// over the 16 non-linear levels; weighted by m_j, scaled once per super-block.
float iq4_xs(const uint8_t* w, const uint8_t*, const QTok& x, int64_t n) {
  float acc = 0;
  for (int64_t sb = 0; sb < n / 256; ++sb) {
    BlockIQ4_XS blk;
    std::memcpy(&blk, w + sb * 136, sizeof blk);
    int64_t isum = 0;
    for (int j = 0; j < 8; ++j) {
      const int64_t b = sb * 8 + j;
      int dot = 0;
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = blk.qs[16 * j + l % 16];
        dot += kIq4Levels[l < 16 ? byte & 0xF : byte >> 4] * x.q[b * 32 + l];
      }
      isum += int64_t{iq4_xs_scale(j, blk)} * x.m[b] * dot;
    }
    acc += f16_to_f32(blk.d) * (x.g[sb] / 64) * static_cast<float>(isum);
  }
  return acc;
}

// The lattice i-quants through their integer form (iq_unpack.h): sub-block k of 16 (half of
// activation block k / 2) sums lv · q exactly, weighted by its odd scale times m_(k/2); the
// super-block is scaled once by D · g / 64.
template <float (*Unpack)(const uint8_t*, const IqGrids&, int8_t*, int16_t*), int kBytes>
float iq(const uint8_t* w, const uint8_t*, const QTok& x, int64_t n) {
  const IqGrids& grids = iq_grids();
  float acc = 0;
  for (int64_t sb = 0; sb < n / 256; ++sb) {
    int8_t lv[256];
    int16_t sc[16];
    const float d = Unpack(w + sb * kBytes, grids, lv, sc);
    int64_t isum = 0;
    for (int k = 0; k < 16; ++k) {
      int dot = 0;
      for (int l = 0; l < 16; ++l) dot += lv[16 * k + l] * x.q[sb * 256 + 16 * k + l];
      isum += int64_t{sc[k]} * x.m[sb * 8 + k / 2] * dot;
    }
    acc += d * (x.g[sb] / 64) * static_cast<float>(isum);
  }
  return acc;
}

// Per group of 8 blocks: the scales from group_scales(), q = round-to-nearest-even(x · id),
// each half block's sum, d · (block sum); then qp, the MXFP4 order of q (ActQ8::qp).
void quantize(const float* x, int64_t n, const QOut& o) {
  const int64_t nb = n / 32;
  for (int64_t b0 = 0; b0 < nb; b0 += 8) {
    const int cnt = static_cast<int>(nb - b0 < 8 ? nb - b0 : 8);
    float amax[8], id[8];
    bool finite = true;
    for (int k = 0; k < cnt; ++k) {
      amax[k] = 0;
      for (int i = 0; i < 32; ++i) {
        const float v = x[(b0 + k) * 32 + i];
        finite = finite && std::isfinite(v);
        amax[k] = std::fmax(amax[k], std::fabs(v));
      }
    }
    o.g[b0 / 8] = group_scales(amax, cnt, finite, id, o.d + b0, o.m + b0);
    for (int k = 0; k < cnt; ++k) {
      const int64_t b = b0 + k;
      const float* xb = x + b * 32;
      int8_t* qb = o.q + b * 32;
      for (int h = 0; h < 2; ++h) {
        int sum = 0;
        for (int i = 16 * h; i < 16 * h + 16; ++i) {
          // |x · id| <= 127; a non-finite group has id 0 and q 0
          qb[i] = finite ? static_cast<int8_t>(std::nearbyint(xb[i] * id[k])) : 0;
          sum += qb[i];
        }
        o.s[2 * b + h] = static_cast<int16_t>(sum);
      }
      o.ds[b] = o.d[b] * static_cast<float>(o.s[2 * b] + o.s[2 * b + 1]);
    }
  }
  // Per pair of blocks: the even elements of each, then the odd ones of each.
  for (int64_t b = 0; b < nb; b += 2) {
    const int64_t cnt = nb - b >= 2 ? 2 : 1;
    const int8_t* src = o.q + b * 32;
    int8_t* dst = o.qp + b * 32;
    for (int64_t k = 0; k < cnt; ++k)
      for (int i = 0; i < 16; ++i) {
        dst[k * 16 + i] = src[k * 32 + 2 * i];
        dst[cnt * 16 + k * 16 + i] = src[k * 32 + 2 * i + 1];
      }
  }
}

// Row by row, token by token.
template <float (*F)(const uint8_t*, const uint8_t*, const QTok&, int64_t)>
void each(const uint8_t* w, int64_t row_bytes, const uint8_t* e8m0, int64_t nr, const QTok* toks, int64_t nt,
          int64_t n, float* out, int64_t stride) {
  qd_for_rows(w, row_bytes, e8m0, nr, toks, nt, n, out, stride,
              [n](const uint8_t* row, const uint8_t* e, const QTok* x, int k, float* res) {
                for (int t = 0; t < k; ++t) res[t] = F(row, e, x[t], n);
              });
}

}  // namespace

const QDotKernels& qdot_kernels_scalar() {
  static const QDotKernels k = {each<q8_0>,
                                each<q4_0>,
                                each<q45_k<false>>,
                                each<q45_k<true>>,
                                each<q6_k>,
                                each<mxfp4>,
                                each<small_block<20, -1, 4, true, false>>,   // Q4_1
                                each<small_block<22, 2, 6, false, false>>,   // Q5_0
                                each<small_block<24, 4, 8, true, false>>,    // Q5_1
                                each<small_block<18, -1, 2, false, true>>,   // IQ4_NL
                                each<q2_k>,
                                each<q3_k>,
                                each<iq4_xs>,
                                each<iq<iq2_xxs_unpack, 66>>,
                                each<iq<iq2_xs_unpack, 74>>,
                                each<iq<iq2_s_unpack, 82>>,
                                each<iq<iq3_xxs_unpack, 98>>,
                                each<iq<iq3_s_unpack, 110>>,
                                each<iq<iq1_s_unpack, 50>>,
                                each<iq<iq1_m_unpack, 56>>,
                                quantize};
  return k;
}

}  // namespace strata::kern
