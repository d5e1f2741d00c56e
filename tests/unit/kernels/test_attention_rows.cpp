// Attention's register-blocked products (row_dequant.h: attn_scores_f32, attn_pv_f32,
// attn_scores_rows_f32, their bf16 forms) at every dispatch level against a double reference,
// and what is built on them: the two MLA forms (decompressed prefill, absorbed decode), the
// V3.2 indexer's choice and V4's sink attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/indexer.h"
#include "cpu-kernels/mla_attention.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/v4_attention.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

using test::randn;

// An MLA attention case with an f32 up-projection: shape, per-head weights, n new tokens' queries
// after n_past cached positions, the latent and rope caches (random, from `seed` on).
struct MlaCase {
  MlaShape s;
  int64_t n = 0, n_past = 0, n_ctx = 0;
  std::vector<float> kvb, q, latent, k_rope;
  MlaUp up;
};

MlaCase mla_case(int64_t heads, int64_t kv_lora, int64_t rope, float scale, int64_t n, int64_t n_past, uint64_t seed,
                 int64_t v = 24) {
  MlaCase c;
  c.s.heads = heads, c.s.nope = 32, c.s.rope = rope, c.s.v = v, c.s.kv_lora = kv_lora, c.s.scale = scale;
  c.n = n, c.n_past = n_past, c.n_ctx = n_past + n;
  const int64_t rows = heads * (c.s.nope + c.s.v);
  c.kvb = randn(rows * kv_lora, seed);
  c.q = randn(n * heads * (c.s.nope + rope), seed + 1);
  c.latent = randn(c.n_ctx * kv_lora, seed + 2);
  c.k_rope = randn(c.n_ctx * rope, seed + 3);
  c.up.kv_b = WeightView{WeightType::F32, reinterpret_cast<const uint8_t*>(c.kvb.data()), rows, kv_lora};
  c.up.nope = c.s.nope, c.up.v = c.s.v, c.up.kv_lora = kv_lora;
  return c;
}

// The attention of MlaCase c in double, straight from the definition: per token and head the
// keys and values taken out of the latent rows, scores over the keys the token sees (causal,
// and where mask is given, mask[t · n_ctx + k] != 0), softmax, the weighted values; zeros for a
// token that sees no key.
std::vector<float> mla_reference(const MlaCase& c, const uint8_t* mask) {
  const MlaShape& s = c.s;
  const int64_t H = s.heads, dn = s.nope, dr = s.rope, dv = s.v, dl = s.kv_lora, dq = dn + dr;
  std::vector<float> out(static_cast<size_t>(c.n * H * dv), 0.0f);
  auto up = [&](int64_t row, int64_t k) {  // row `row` of kv_b times latent row k
    double acc = 0;
    for (int64_t j = 0; j < dl; ++j) acc += double(c.kvb[static_cast<size_t>(row * dl + j)]) * c.latent[static_cast<size_t>(k * dl + j)];
    return acc;
  };
  for (int64_t h = 0; h < H; ++h) {
    std::vector<double> keys(static_cast<size_t>(c.n_ctx * dn)), vals(static_cast<size_t>(c.n_ctx * dv));
    for (int64_t k = 0; k < c.n_ctx; ++k) {
      for (int64_t i = 0; i < dn; ++i) keys[static_cast<size_t>(k * dn + i)] = up(h * (dn + dv) + i, k);
      for (int64_t i = 0; i < dv; ++i) vals[static_cast<size_t>(k * dv + i)] = up(h * (dn + dv) + dn + i, k);
    }
    for (int64_t t = 0; t < c.n; ++t) {
      const float* q = c.q.data() + (t * H + h) * dq;
      std::vector<double> p(static_cast<size_t>(c.n_ctx), 0.0);
      double mx = -INFINITY;
      for (int64_t k = 0; k <= c.n_past + t; ++k) {
        if (mask && !mask[static_cast<size_t>(t * c.n_ctx + k)]) continue;
        double sc = 0;
        for (int64_t i = 0; i < dn; ++i) sc += double(q[i]) * keys[static_cast<size_t>(k * dn + i)];
        for (int64_t i = 0; i < dr; ++i) sc += double(q[dn + i]) * c.k_rope[static_cast<size_t>(k * dr + i)];
        p[static_cast<size_t>(k)] = sc * s.scale;
        mx = std::max(mx, p[static_cast<size_t>(k)]);
      }
      if (mx == -INFINITY) continue;
      double sum = 0;
      for (int64_t k = 0; k <= c.n_past + t; ++k) {
        const bool seen = !mask || mask[static_cast<size_t>(t * c.n_ctx + k)];
        p[static_cast<size_t>(k)] = seen ? std::exp(p[static_cast<size_t>(k)] - mx) : 0.0;
        sum += p[static_cast<size_t>(k)];
      }
      for (int64_t i = 0; i < dv; ++i) {
        double acc = 0;
        for (int64_t k = 0; k <= c.n_past + t; ++k) acc += p[static_cast<size_t>(k)] * vals[static_cast<size_t>(k * dv + i)];
        out[static_cast<size_t>((t * H + h) * dv + i)] = static_cast<float>(acc / sum);
      }
    }
  }
  return out;
}

// Scores of 1..8 queries against 45 keys (padded to 48) of 200 dimensions, and the weighted sum
// of 45 values of 37 dimensions (a vector tail): each level against the double products, and
// each query's results the same bits whichever block it is in.
TEST(AttentionRows, BlocksOfQueriesMatchTheDoubleProducts) {
  const int64_t d = 200, nk = 45, ld = 48, nv = 37;
  const std::vector<float> q = randn(8 * d, 1), kt_raw = randn(d * ld, 2), p = randn(8 * ld, 3), v = randn(nk * nv, 4);
  std::vector<float> kt = kt_raw;
  for (int64_t i = 0; i < d; ++i)
    for (int64_t k = nk; k < ld; ++k) kt[static_cast<size_t>(i * ld + k)] = 0;
  test::for_each_level([&](CpuLevel level) {
    std::vector<float> alone_s(static_cast<size_t>(ld)), alone_o(static_cast<size_t>(nv));
    for (int nb = 1; nb <= 8; ++nb) {
      const float* qs[8];
      for (int t = 0; t < nb; ++t) qs[t] = q.data() + t * d;
      std::vector<float> s(static_cast<size_t>(nb * ld)), o(static_cast<size_t>(nb * nv));
      attn_scores_f32(qs, nb, kt.data(), ld, d, ld, s.data(), ld);
      attn_pv_f32(p.data(), ld, nb, v.data(), nv, nk, nv, o.data(), nv);
      for (int t = 0; t < nb; ++t) {
        for (int64_t k = 0; k < nk; ++k) {
          double want = 0;
          for (int64_t i = 0; i < d; ++i) want += static_cast<double>(q[t * d + i]) * kt[i * ld + k];
          EXPECT_NEAR(s[t * ld + k], want, 1e-4 * (1 + std::fabs(want))) << cpu_level_name(level) << " nb=" << nb;
        }
        for (int64_t j = 0; j < nv; ++j) {
          double want = 0;
          for (int64_t k = 0; k < nk; ++k) want += static_cast<double>(p[t * ld + k]) * v[k * nv + j];
          EXPECT_NEAR(o[t * nv + j], want, 1e-4 * (1 + std::fabs(want))) << cpu_level_name(level) << " nb=" << nb;
        }
      }
      // Query 0 alone and in every block: the same bits.
      if (nb == 1) {
        alone_s.assign(s.begin(), s.begin() + ld);
        alone_o.assign(o.begin(), o.begin() + nv);
      }
      EXPECT_TRUE(std::equal(alone_s.begin(), alone_s.begin() + nk, s.begin())) << cpu_level_name(level) << " nb=" << nb;
      EXPECT_TRUE(std::equal(alone_o.begin(), alone_o.end(), o.begin())) << cpu_level_name(level) << " nb=" << nb;
    }
  });
}

// Scores of 1..8 queries against 47 keys stored row-major in two parts (the latent and rope
// caches; 47 keys: whole blocks and a tail), against the double products, with the vector
// widths (80 + 32 dimensions) and without (40 + 8: the scalar twin); each query's scores the
// same bits whichever block it is in.
TEST(AttentionRows, RowMajorKeyScoresMatchTheDoubleProducts) {
  for (const auto& dims : {std::pair<int64_t, int64_t>{80, 32}, {40, 8}, {64, 0}}) {
    const int64_t d = dims.first, d2 = dims.second;  // named (lambdas below capture them)
    const int64_t nk = 47, ldk = d + 3, ldk2 = d2 + 5, lds = 50;
    const std::vector<float> q = randn(8 * d, 11), q2 = randn(8 * std::max<int64_t>(d2, 1), 12),
                             keys = randn(nk * ldk, 13), keys2 = randn(nk * ldk2, 14);
    test::for_each_level([&](CpuLevel level) {
      std::vector<float> alone;
      for (int nb = 1; nb <= 8; ++nb) {
        const float* qs[8];
        const float* qs2[8];
        for (int t = 0; t < nb; ++t) qs[t] = q.data() + t * d, qs2[t] = q2.data() + t * d2;
        std::vector<float> s(static_cast<size_t>(nb * lds), -1.0f);
        attn_scores_rows_f32(qs, qs2, nb, keys.data(), ldk, d, keys2.data(), ldk2, d2, nk, s.data(), lds);
        for (int t = 0; t < nb; ++t)
          for (int64_t k = 0; k < nk; ++k) {
            double want = 0;
            for (int64_t i = 0; i < d; ++i) want += static_cast<double>(qs[t][i]) * keys[k * ldk + i];
            for (int64_t i = 0; i < d2; ++i) want += static_cast<double>(qs2[t][i]) * keys2[k * ldk2 + i];
            EXPECT_NEAR(s[t * lds + k], want, 1e-4 * (1 + std::fabs(want)))
                << cpu_level_name(level) << " d=" << d << " nb=" << nb << " t=" << t << " k=" << k;
          }
        EXPECT_EQ(s[nk], -1.0f) << "columns past nk must stay untouched";
        if (nb == 1) alone.assign(s.begin(), s.begin() + nk);
        EXPECT_TRUE(std::equal(alone.begin(), alone.end(), s.begin())) << cpu_level_name(level) << " nb=" << nb;
      }
    });
  }
}

// The absorbed form over a context of several parts (split-K, merged per row) and query rows in
// several groups (5 heads x 3 tokens, and one token: decode), causal and sparse (one token under
// a mask: only the keys it sees gathered and scored): the decompressed form's outputs, and the
// same bits whatever the number of threads. Over a bf16 cache, the sparse decode gives the f32
// form's over the rounded cache (within the bf16 products' rounding where they run).
TEST(AttentionRows, AbsorbedMlaOverALongContextMatchesTheDecompressedForm) {
  struct Restore {
    ~Restore() { configure_compute_arena({}); }
  } restore;
  for (int64_t tokens : {3, 1}) {
    const MlaCase c = mla_case(5, 64, 32, 0.02f, tokens, 1300, 21);
    const MlaShape& s = c.s;
    const int64_t n = c.n, n_past = c.n_past, n_ctx = c.n_ctx;
    // Sparse: every third key hidden, and token 0 sees no key of the second part at all.
    std::vector<uint8_t> allowed(static_cast<size_t>(n * n_ctx), 1);
    for (size_t i = 0; i < allowed.size(); i += 3) allowed[i] = 0;
    for (int64_t k = 512; k < 1024; ++k) allowed[static_cast<size_t>(k)] = 0;
    for (const uint8_t* mask : {static_cast<const uint8_t*>(nullptr), static_cast<const uint8_t*>(allowed.data())}) {
      test::for_each_level([&](CpuLevel level) {
        const std::string what = std::string(cpu_level_name(level)) + (mask ? " sparse" : " causal") + ", " +
                                 std::to_string(n) + " tokens";
        std::vector<float> a(static_cast<size_t>(n * s.heads * s.v)), b(a.size()), one(a.size());
        configure_compute_arena({});
        mla_attention(s, c.up, c.q.data(), n, n_past, c.latent.data(), c.k_rope.data(), mask, true, a.data());
        mla_attention(s, c.up, c.q.data(), n, n_past, c.latent.data(), c.k_rope.data(), mask, false, b.data());
        configure_compute_arena({.threads = 1});
        mla_attention(s, c.up, c.q.data(), n, n_past, c.latent.data(), c.k_rope.data(), mask, true, one.data());
        EXPECT_LT(test::nmse(a, b), 1e-10) << what;
        EXPECT_EQ(a, one) << what << ": the thread count changed the result";
        if (n != 1 || !mask) return;
        std::vector<uint16_t> lat16(c.latent.size()), kr16(c.k_rope.size());
        std::vector<float> lat_r(lat16.size()), kr_r(kr16.size());
        for (size_t i = 0; i < lat16.size(); ++i) lat16[i] = f32_to_bf16(c.latent[i]), lat_r[i] = bf16_to_f32(lat16[i]);
        for (size_t i = 0; i < kr16.size(); ++i) kr16[i] = f32_to_bf16(c.k_rope[i]), kr_r[i] = bf16_to_f32(kr16[i]);
        mla_attention(s, c.up, c.q.data(), n, n_past, lat16.data(), kr16.data(), mask, true, a.data());
        mla_attention(s, c.up, c.q.data(), n, n_past, lat_r.data(), kr_r.data(), mask, true, b.data());
        EXPECT_LT(test::nmse(b, a), has_attn_scores_rows_bf16(s.kv_lora, s.rope) ? 1e-5 : 1e-30) << what << " bf16";
      });
    }
  }
}

// Over caches of bf16 rows: the f32 forms' outputs over the rounded cache, bit for bit (rows
// widened exactly as they are read), absorbed (several parts and chunks) and decompressed; where
// the CPU has bf16 dot products and the widths allow them, the forms multiply bf16 queries, keys
// and weights (rounded) with bf16 rows: within that rounding of those outputs.
TEST(AttentionRows, Bf16CacheGivesTheF32FormsOverTheRoundedCache) {
  for (const auto& dims : {std::tuple<int64_t, int64_t, int64_t>{48, 16, 24}, {64, 32, 32}}) {
    const int64_t dl = std::get<0>(dims), dr = std::get<1>(dims), dv = std::get<2>(dims);
    const MlaCase c = mla_case(3, dl, dr, 0.05f, 2, 700, 31, dv);
    const MlaShape& s = c.s;
    const std::vector<float>& latent = c.latent;
    const std::vector<float>& k_rope = c.k_rope;
    std::vector<uint16_t> lat16(latent.size()), kr16(k_rope.size());
    std::vector<float> lat_r(latent.size()), kr_r(k_rope.size());
    for (size_t i = 0; i < latent.size(); ++i) lat16[i] = f32_to_bf16(latent[i]), lat_r[i] = bf16_to_f32(lat16[i]);
    for (size_t i = 0; i < k_rope.size(); ++i) kr16[i] = f32_to_bf16(k_rope[i]), kr_r[i] = bf16_to_f32(kr16[i]);
    test::for_each_level([&](CpuLevel level) {
      for (bool absorbed : {true, false}) {
        std::vector<float> a(static_cast<size_t>(c.n * s.heads * s.v)), b(a.size());
        mla_attention(s, c.up, c.q.data(), c.n, c.n_past, lat16.data(), kr16.data(), nullptr, absorbed, a.data());
        mla_attention(s, c.up, c.q.data(), c.n, c.n_past, lat_r.data(), kr_r.data(), nullptr, absorbed, b.data());
        const std::string what = std::string(cpu_level_name(level)) + (absorbed ? " absorbed" : " decompressed") +
                                 " kv_lora " + std::to_string(dl);
        const bool bf16 = absorbed ? has_attn_scores_rows_bf16(dl, dr) && has_attn_pv_bf16(dl)
                                   : has_attn_scores_bf16(s.nope + dr) && has_attn_pv_bf16(dv);
        if (bf16) {
          const double e = test::nmse(b, a);
          EXPECT_GT(e, 0) << what << ": the bf16 products were not taken";
          // The decompressed form also rounds the keys and values it takes out of the latent.
          EXPECT_LT(e, absorbed ? 1e-5 : 5e-5) << what;
        } else {
          EXPECT_EQ(a, b) << what;
        }
      }
    });
  }
}

// The bf16 products (vdpbf16ps) where the CPU has them: scores of 1..8 queries against 47 keys
// in two parts (as rows, and transposed in pairs), and the weighted sum of 47 values of 64
// columns (an odd count of keys: the last pair half empty), against double sums of the same
// bf16 values.
TEST(AttentionRows, Bf16ProductsMatchTheDoubleProductsOfTheRoundedValues) {
  const int64_t d = 96, d2 = 32, nk = 47, ldk = d + 32, ldk2 = d2, lds = 48;
  auto rounded = [](const std::vector<float>& v) {
    std::vector<uint16_t> r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
    return r;
  };
  const std::vector<uint16_t> q = rounded(randn(8 * d, 41)), q2 = rounded(randn(8 * d2, 42)),
                              keys = rounded(randn(nk * ldk, 43)), keys2 = rounded(randn(nk * ldk2, 44));
  int ran = 0;
  test::for_each_level([&](CpuLevel level) {
    if (!has_attn_scores_rows_bf16(d, d2) || !has_attn_pv_bf16(64) || !has_attn_scores_bf16(d + d2)) return;
    ++ran;
    for (int nb = 1; nb <= 8; ++nb) {
      const uint16_t* qs[8];
      const uint16_t* qs2[8];
      for (int t = 0; t < nb; ++t) qs[t] = q.data() + t * d, qs2[t] = q2.data() + t * d2;
      std::vector<float> s(static_cast<size_t>(nb * lds), -1.0f);
      ASSERT_TRUE(attn_scores_rows_bf16(qs, qs2, nb, keys.data(), ldk, d, keys2.data(), ldk2, d2, nk, s.data(), lds));
      for (int t = 0; t < nb; ++t)
        for (int64_t k = 0; k < nk; ++k) {
          double want = 0;
          for (int64_t i = 0; i < d; ++i) want += double(bf16_to_f32(qs[t][i])) * bf16_to_f32(keys[k * ldk + i]);
          for (int64_t i = 0; i < d2; ++i) want += double(bf16_to_f32(qs2[t][i])) * bf16_to_f32(keys2[k * ldk2 + i]);
          EXPECT_NEAR(s[t * lds + k], want, 1e-4 * (1 + std::fabs(want))) << cpu_level_name(level) << " nb=" << nb;
        }
      EXPECT_EQ(s[nk], -1.0f) << "columns past nk must stay untouched";
      // The same keys (both parts, 48 with the padding zero) transposed in pairs of elements.
      const int64_t dt = d + d2, ldt = 64, nkt = 48;
      std::vector<uint16_t> kt(static_cast<size_t>(dt * ldt), 0), qt(static_cast<size_t>(8 * dt));
      for (int64_t k = 0; k < nk; ++k)
        for (int64_t i = 0; i < dt; ++i)
          kt[static_cast<size_t>((i / 2 * ldt + k) * 2 + i % 2)] = i < d ? keys[k * ldk + i] : keys2[k * ldk2 + i - d];
      const uint16_t* qts[8];
      for (int t = 0; t < nb; ++t) {
        std::copy_n(qs[t], d, qt.begin() + t * dt);
        std::copy_n(qs2[t], d2, qt.begin() + t * dt + d);
        qts[t] = qt.data() + t * dt;
      }
      std::vector<float> st(static_cast<size_t>(nb * lds), -1.0f);
      ASSERT_TRUE(attn_scores_bf16(qts, nb, kt.data(), ldt, dt, nkt, st.data(), lds));
      for (int t = 0; t < nb; ++t)
        for (int64_t k = 0; k < nkt; ++k)
          EXPECT_NEAR(st[t * lds + k], k < nk ? s[t * lds + k] : 0.0f, 1e-4 * (1 + std::fabs(s[t * lds + k])))
              << cpu_level_name(level) << " nb=" << nb << " key " << k << ", transposed";
      // The weighted sum: weights (any f32, rounded to bf16 by the kernel) times bf16 values.
      const int64_t nv = 64, ldv = nv + 32;
      const std::vector<float> p = randn(nb * lds, 45);
      const std::vector<uint16_t> v = rounded(randn(nk * ldv, 46));
      std::vector<float> o(static_cast<size_t>(nb * nv));
      ASSERT_TRUE(attn_pv_bf16(p.data(), lds, nb, v.data(), ldv, nk, nv, o.data(), nv));
      for (int t = 0; t < nb; ++t)
        for (int64_t j = 0; j < nv; ++j) {
          double want = 0;
          for (int64_t k = 0; k < nk; ++k)
            want += double(bf16_to_f32(f32_to_bf16(p[t * lds + k]))) * bf16_to_f32(v[k * ldv + j]);
          EXPECT_NEAR(o[t * nv + j], want, 1e-4 * (1 + std::fabs(want))) << cpu_level_name(level) << " nb=" << nb;
        }
    }
  });
  if (ran == 0) GTEST_SKIP() << "no bf16 dot products at any level of this CPU (AVX-512 BF16)";
}

// DeepSeek-V4's attention with a sink logit: 11 heads (a group of 8 and 3) over 300 keys
// gathered by pointer out of order (three parts, the last partial), at vector and scalar widths
// (D 64, 40), against the formula in double; the same bits with one thread; a head whose sink
// dominates; no keys at all: zeros (the sink takes every weight); keys stored as bf16: the f32
// result over the rounded keys, bit for bit.
TEST(AttentionRows, SinkAttentionMatchesTheDoubleFormula) {
  struct Restore {
    ~Restore() { configure_compute_arena({}); }
  } restore;
  const int64_t H = 11, nk = 300, pool_rows = 400;
  const float scale = 0.1f;
  for (int64_t D : {64, 40}) {
    const std::vector<float> pool = randn(pool_rows * D, 51), q = randn(H * D, 52);
    std::vector<float> sink = randn(H, 53);
    sink[2] = 30.0f;
    std::vector<const float*> keys(static_cast<size_t>(nk));
    for (int64_t k = 0; k < nk; ++k) keys[static_cast<size_t>(k)] = pool.data() + (k * 7 % pool_rows) * D;
    std::vector<float> want(static_cast<size_t>(H * D));
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> sc(static_cast<size_t>(nk));
      double m = sink[static_cast<size_t>(h)];
      for (int64_t k = 0; k < nk; ++k) {
        double a = 0;
        for (int64_t i = 0; i < D; ++i) a += double(q[static_cast<size_t>(h * D + i)]) * keys[static_cast<size_t>(k)][i];
        sc[static_cast<size_t>(k)] = a * scale;
        m = std::max(m, sc[static_cast<size_t>(k)]);
      }
      double den = std::exp(sink[static_cast<size_t>(h)] - m);
      for (double& v : sc) den += (v = std::exp(v - m));
      for (int64_t i = 0; i < D; ++i) {
        double a = 0;
        for (int64_t k = 0; k < nk; ++k) a += sc[static_cast<size_t>(k)] * keys[static_cast<size_t>(k)][i];
        want[static_cast<size_t>(h * D + i)] = static_cast<float>(a / den);
      }
    }
    test::for_each_level([&](CpuLevel level) {
      const std::string what = std::string(cpu_level_name(level)) + " D " + std::to_string(D);
      std::vector<float> out(want.size()), one(want.size()), none(want.size(), 1.0f);
      configure_compute_arena({});
      sink_attention(q.data(), keys.data(), nk, sink.data(), H, D, scale, out.data());
      EXPECT_LT(test::nmse(want, out), 1e-10) << what;
      EXPECT_LT(std::fabs(out[static_cast<size_t>(2 * D)]), 1e-8) << what << ": the sink's head";
      configure_compute_arena({.threads = 1});
      sink_attention(q.data(), keys.data(), nk, sink.data(), H, D, scale, one.data());
      EXPECT_EQ(out, one) << what << ": the thread count changed the result";
      sink_attention(q.data(), keys.data(), 0, sink.data(), H, D, scale, none.data());
      EXPECT_TRUE(std::all_of(none.begin(), none.end(), [](float x) { return x == 0; })) << what;
      // bf16 keys (-ctk bf16): the f32 result over the same keys rounded, bit for bit.
      configure_compute_arena({});
      std::vector<uint16_t> pool16(pool.size());
      std::vector<float> pool_r(pool.size());
      for (size_t i = 0; i < pool.size(); ++i) pool_r[i] = bf16_to_f32(pool16[i] = f32_to_bf16(pool[i]));
      std::vector<const uint16_t*> keys16(keys.size());
      std::vector<const float*> keys_r(keys.size());
      for (size_t k = 0; k < keys.size(); ++k) {
        keys16[k] = pool16.data() + (keys[k] - pool.data());
        keys_r[k] = pool_r.data() + (keys[k] - pool.data());
      }
      std::vector<float> got16(want.size()), want16(want.size());
      sink_attention(q.data(), keys_r.data(), nk, sink.data(), H, D, scale, want16.data());
      sink_attention(q.data(), keys16.data(), nk, sink.data(), H, D, scale, got16.data());
      EXPECT_EQ(got16, want16) << what << ": bf16 keys";
      EXPECT_GT(test::nmse(want16, out), 0) << what << ": the keys were not rounded";
    });
  }
}

// Keys stored as bf16 rows (-ctk bf16) give the indexers' scores over the same keys rounded,
// bit for bit, at every level, split into parallel chunks or not (600 keys: partial chunks),
// and the V3.2 choice and V4's picks follow: those of the rounded keys.
TEST(AttentionRows, IndexerOverBf16KeysScoresTheRoundedKeys) {
  for (int64_t hd : {48, 40}) {
    const int64_t nk = 600, nh = 5, top_k = 100;
    const std::vector<float> q = randn(nh * hd, 71), w = randn(nh, 72), keys = randn(nk * hd, 73);
    std::vector<uint16_t> keys16(keys.size());
    std::vector<float> keys_r(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) keys_r[i] = bf16_to_f32(keys16[i] = f32_to_bf16(keys[i]));
    test::for_each_level([&](CpuLevel level) {
      const std::string what = std::string(cpu_level_name(level)) + " hd " + std::to_string(hd);
      for (bool split : {false, true}) {
        std::vector<float> got(nk), want(nk), exact(nk);
        index_scores(q.data(), w.data(), keys16.data(), nh, hd, nk, split, got.data());
        index_scores(q.data(), w.data(), keys_r.data(), nh, hd, nk, split, want.data());
        index_scores(q.data(), w.data(), keys.data(), nh, hd, nk, split, exact.data());
        EXPECT_EQ(got, want) << what << (split ? " split" : "");
        EXPECT_GT(test::nmse(want, exact), 0) << what << ": the keys were not rounded";
      }
      std::vector<uint8_t> allowed16(nk), allowed_r(nk);
      index_topk(q.data(), w.data(), keys16.data(), 1, nk - 1, nh, hd, top_k, allowed16.data());
      index_topk(q.data(), w.data(), keys_r.data(), 1, nk - 1, nh, hd, top_k, allowed_r.data());
      EXPECT_EQ(allowed16, allowed_r) << what << ": V3.2's choice";
      const int64_t ratio = 4, pos = ratio * nk - 1;
      std::vector<int64_t> picked16(top_k), picked_r(top_k), count16(1), count_r(1);
      index_pick(q.data(), w.data(), keys16.data(), 1, pos, ratio, nh, hd, 0.3f, top_k, picked16.data(),
                 count16.data());
      index_pick(q.data(), w.data(), keys_r.data(), 1, pos, ratio, nh, hd, 0.3f, top_k, picked_r.data(),
                 count_r.data());
      EXPECT_EQ(picked16, picked_r) << what << ": V4's picks";
      EXPECT_EQ(count16, count_r) << what;
    });
  }
}

// The DSA indexer's choice against double scores: for each of 3 new tokens after 600 cached
// ones (5 heads, vector and scalar widths), exactly top_k of its visible keys, none past it, and
// every chosen key scoring at least every key left out (within f32 rounding); the same choice
// whatever the thread count.
TEST(AttentionRows, IndexerTopKMatchesDoubleScores) {
  struct Restore {
    ~Restore() { configure_compute_arena({}); }
  } restore;
  for (int64_t hd : {48, 40}) {
    const int64_t n = 3, n_past = 600, n_ctx = n_past + n, nh = 5, top_k = 100;
    const std::vector<float> q = randn(n * nh * hd, 51), w = randn(n * nh, 52), keys = randn(n_ctx * hd, 53);
    std::vector<uint8_t> first;
    test::for_each_level([&](CpuLevel level) {
      for (int threads : {0, 1}) {
        configure_compute_arena({.threads = threads});
        for (int64_t tokens : {n, int64_t{1}}) {  // a batch, and one token alone (decode)
          const int64_t past = n_past + (n - tokens), ctx = past + tokens;
          std::vector<uint8_t> allowed(static_cast<size_t>(tokens * ctx), 7);
          index_topk(q.data() + (n - tokens) * nh * hd, w.data() + (n - tokens) * nh, keys.data(), tokens, past, nh, hd,
                     top_k, allowed.data());
          for (int64_t t = 0; t < tokens; ++t) {
            const int64_t tt = n - tokens + t, visible = past + t + 1;
            std::vector<double> ref(static_cast<size_t>(visible));
            for (int64_t k = 0; k < visible; ++k)
              for (int64_t h = 0; h < nh; ++h) {
                double d = 0;
                for (int64_t i = 0; i < hd; ++i) d += double(q[(tt * nh + h) * hd + i]) * keys[k * hd + i];
                ref[static_cast<size_t>(k)] += w[tt * nh + h] * std::max(d, 0.0);
              }
            double lowest_in = 1e300, highest_out = -1e300;
            int64_t chosen = 0;
            for (int64_t k = 0; k < ctx; ++k) {
              const uint8_t a = allowed[static_cast<size_t>(t * ctx + k)];
              ASSERT_LE(a, 1) << "every mark written";
              if (k >= visible) {
                EXPECT_EQ(a, 0) << "a key past the token chosen";
                continue;
              }
              chosen += a;
              if (a) lowest_in = std::min(lowest_in, ref[static_cast<size_t>(k)]);
              else highest_out = std::max(highest_out, ref[static_cast<size_t>(k)]);
            }
            EXPECT_EQ(chosen, top_k) << cpu_level_name(level) << " hd=" << hd;
            EXPECT_GE(lowest_in, highest_out - 1e-4 * (1 + std::fabs(highest_out))) << cpu_level_name(level);
          }
          if (tokens == n && threads == 0) first = allowed;
          if (tokens == n) {
            EXPECT_EQ(allowed, first) << cpu_level_name(level) << ": the thread count changed the choice";
          }
        }
      }
    });
  }
}

// V4's indexer choice against double scores: 3 new tokens at positions 2,397.. over rows
// compressed 4 to 1 (599 and 600 rows), 5 heads (vector and scalar widths): each picks top_k
// distinct rows it may see, best first (non-increasing double scores) and every one scoring at
// least every row left out (within f32 rounding); one token alone (its rows in parallel chunks)
// picks what it picks in the batch; the thread count changes nothing.
TEST(AttentionRows, V4IndexPickMatchesDoubleScores) {
  struct Restore {
    ~Restore() { configure_compute_arena({}); }
  } restore;
  for (int64_t hd : {48, 40}) {
    const int64_t n = 3, first_pos = 2397, ratio = 4, nh = 5, top_k = 100, rows_max = (first_pos + n) / ratio;
    const float wscale = 0.3f;
    const std::vector<float> q = randn(n * nh * hd, 61), w = randn(n * nh, 62), keys = randn(rows_max * hd, 63);
    std::vector<int64_t> first;
    test::for_each_level([&](CpuLevel level) {
      for (int threads : {0, 1}) {
        configure_compute_arena({.threads = threads});
        std::vector<int64_t> picked(static_cast<size_t>(n * top_k), -1), count(static_cast<size_t>(n), -1);
        index_pick(q.data(), w.data(), keys.data(), n, first_pos, ratio, nh, hd, wscale, top_k, picked.data(),
                   count.data());
        for (int64_t t = 0; t < n; ++t) {
          const std::string what = std::string(cpu_level_name(level)) + " hd " + std::to_string(hd) + " token " +
                                   std::to_string(t);
          const int64_t rows = (first_pos + t + 1) / ratio;
          std::vector<double> ref(static_cast<size_t>(rows));
          for (int64_t k = 0; k < rows; ++k)
            for (int64_t h = 0; h < nh; ++h) {
              double d = 0;
              for (int64_t i = 0; i < hd; ++i) d += double(q[(t * nh + h) * hd + i]) * keys[k * hd + i];
              ref[static_cast<size_t>(k)] += std::max(d, 0.0) * w[t * nh + h] * wscale;
            }
          ASSERT_EQ(count[static_cast<size_t>(t)], top_k) << what;
          std::vector<uint8_t> in(static_cast<size_t>(rows), 0);
          for (int64_t i = 0; i < top_k; ++i) {
            const int64_t r = picked[static_cast<size_t>(t * top_k + i)];
            ASSERT_TRUE(r >= 0 && r < rows) << what << ": row " << r;
            ASSERT_EQ(in[static_cast<size_t>(r)], 0) << what << ": row " << r << " picked twice";
            in[static_cast<size_t>(r)] = 1;
            if (i > 0) {
              const double prev = ref[static_cast<size_t>(picked[static_cast<size_t>(t * top_k + i - 1)])];
              EXPECT_LE(ref[static_cast<size_t>(r)], prev + 1e-4 * (1 + std::fabs(prev))) << what << ": not best first";
            }
          }
          double lowest_in = 1e300, highest_out = -1e300;
          for (int64_t k = 0; k < rows; ++k) {
            const double r = ref[static_cast<size_t>(k)];
            if (in[static_cast<size_t>(k)]) lowest_in = std::min(lowest_in, r);
            else highest_out = std::max(highest_out, r);
          }
          EXPECT_GE(lowest_in, highest_out - 1e-4 * (1 + std::fabs(highest_out))) << what;
          // The same token alone.
          std::vector<int64_t> alone(static_cast<size_t>(top_k)), alone_count(1);
          index_pick(q.data() + t * nh * hd, w.data() + t * nh, keys.data(), 1, first_pos + t, ratio, nh, hd, wscale,
                     top_k, alone.data(), alone_count.data());
          EXPECT_TRUE(std::equal(alone.begin(), alone.end(), picked.begin() + t * top_k)) << what << ": alone";
        }
        if (threads == 0) first = picked;
        EXPECT_EQ(picked, first) << cpu_level_name(level) << ": the thread count changed the choice";
      }
    });
  }
}

// The decompressed form (prefill: keys and values expanded, register-blocked products) and the
// absorbed form (decode: scores against the latent) both give the double reference's outputs,
// causal over a cache with earlier positions, with and without a sparse mask.
TEST(AttentionRows, DecompressedAndAbsorbedMlaMatchTheDoubleReference) {
  // 11 tokens after 6 (one block of queries, one chunk of keys); 150 after 200 (blocks of 64
  // queries, chunks of 128 keys, the last ones partial).
  for (auto [tokens, past] : {std::pair<int64_t, int64_t>{11, 6}, {150, 200}}) {
    const MlaCase c = mla_case(3, 40, 16, 0.125f, tokens, past, 5);
    const MlaShape& s = c.s;
    const int64_t n = c.n, n_past = c.n_past, n_ctx = c.n_ctx;
    // Masked: every third key hidden; in the long case token 1 sees no key of the second chunk
    // and token 5 none at all (its output zeros in both forms). Sparse (the indexer's top-k
    // deep in a context): each token sees 40 keys (all it has where it has fewer), which the
    // absorbed form takes one token at a time.
    std::vector<uint8_t> allowed(static_cast<size_t>(n * n_ctx), 1), top(allowed.size(), 0);
    for (size_t i = 0; i < allowed.size(); i += 3) allowed[i] = 0;
    if (n > 64) {
      std::fill_n(allowed.begin() + n_ctx + 128, 128, 0);
      std::fill_n(allowed.begin() + 5 * n_ctx, n_ctx, 0);
    }
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < std::min<int64_t>(40, n_past + t + 1); ++i)
        top[static_cast<size_t>(t * n_ctx + (i * 37 + t) % (n_past + t + 1))] = 1;
    for (const uint8_t* mask : {static_cast<const uint8_t*>(nullptr), static_cast<const uint8_t*>(allowed.data()),
                                static_cast<const uint8_t*>(top.data())}) {
      test::for_each_level([&](CpuLevel level) {
        const std::string what = std::string(cpu_level_name(level)) +
                                 (!mask ? " causal, " : mask == top.data() ? " top-k, " : " masked, ") +
                                 std::to_string(n) + " tokens";
        std::vector<float> a(static_cast<size_t>(n * s.heads * s.v)), b(a.size());
        mla_attention(s, c.up, c.q.data(), n, n_past, c.latent.data(), c.k_rope.data(), mask, true, a.data());
        mla_attention(s, c.up, c.q.data(), n, n_past, c.latent.data(), c.k_rope.data(), mask, false, b.data());
        const std::vector<float> want = mla_reference(c, mask);
        EXPECT_LT(test::nmse(want, a), 1e-10) << what << ", absorbed";
        EXPECT_LT(test::nmse(want, b), 1e-10) << what << ", decompressed";
        if (!mask && n > 64) {  // the same tokens in two steps (70, then 80 more): the same bits
          std::vector<float> split(b.size());
          const int64_t first = 70, dq = s.nope + s.rope;
          mla_attention(s, c.up, c.q.data(), first, n_past, c.latent.data(), c.k_rope.data(), nullptr, false,
                        split.data());
          mla_attention(s, c.up, c.q.data() + first * s.heads * dq, n - first, n_past + first, c.latent.data(),
                        c.k_rope.data(), nullptr, false, split.data() + first * s.heads * s.v);
          EXPECT_EQ(split, b) << what << ": the split into steps changed the result";
        }
        if (mask == top.data() && n > 64) {  // each token as its decode: the same bits
          std::vector<float> one(static_cast<size_t>(s.heads * s.v));
          for (int64_t t = 0; t < n; t += 37) {
            mla_attention(s, c.up, c.q.data() + t * s.heads * (s.nope + s.rope), 1, n_past + t, c.latent.data(),
                          c.k_rope.data(), top.data() + t * n_ctx, true, one.data());
            EXPECT_TRUE(std::equal(one.begin(), one.end(), a.begin() + t * s.heads * s.v)) << what << ", token " << t;
          }
        }
        if (mask == allowed.data() && n > 64) {
          const auto row5 = b.begin() + 5 * s.heads * s.v;
          EXPECT_TRUE(std::all_of(row5, row5 + s.heads * s.v, [](float x) { return x == 0; })) << what;
        }
      });
    }
  }
}

// With a quantized up-projection the decompressed form quantizes the latent rows once for every
// head's keys and values (each head's products would quantize them anew): its outputs still
// follow the exact products (`--exact-dot`) and the absorbed form within int8 rounding.
TEST(AttentionRows, DecompressedMlaOverQuantizedWeightsSharesTheLatentsQuantization) {
  MlaShape s;
  // Scores of about unit size (keys here are sums of 256 unit products): a sharp softmax would
  // amplify the int8 rounding of the keys past any bound that still tells a wrong row apart.
  s.heads = 4, s.nope = 32, s.rope = 16, s.v = 24, s.kv_lora = 256, s.scale = 0.01f;
  const int64_t n = 21, n_past = 19, n_ctx = n_past + n, dq = s.nope + s.rope;
  const std::vector<float> q = randn(n * s.heads * dq, 16), latent = randn(n_ctx * s.kv_lora, 17),
                           k_rope = randn(n_ctx * s.rope, 18);
  for (WeightType t : {WeightType::Q8_0, WeightType::Q4_K}) {
    const test::Mat kvb = test::make_matrix(t, s.heads * (s.nope + s.v), s.kv_lora);
    MlaUp up;
    up.kv_b = kvb.view;
    up.nope = s.nope, up.v = s.v, up.kv_lora = s.kv_lora;
    test::for_each_level([&](CpuLevel level) {
      std::vector<float> dec(static_cast<size_t>(n * s.heads * s.v)), abs(dec.size()), exact(dec.size());
      mla_attention(s, up, q.data(), n, n_past, latent.data(), k_rope.data(), nullptr, false, dec.data());
      mla_attention(s, up, q.data(), n, n_past, latent.data(), k_rope.data(), nullptr, true, abs.data());
      {
        const ScopedIntDot off(false);
        mla_attention(s, up, q.data(), n, n_past, latent.data(), k_rope.data(), nullptr, false, exact.data());
      }
      const double to_exact = test::nmse(exact, dec), to_absorbed = test::nmse(abs, dec);
      EXPECT_LT(to_exact, 1e-3) << cpu_level_name(level) << " " << weight_type_name(t);
      EXPECT_LT(to_absorbed, 1e-3) << cpu_level_name(level) << " " << weight_type_name(t);
      std::printf("  %s %s: NMSE to the exact products %.2g, to the absorbed form %.2g\n",
                  std::string(cpu_level_name(level)).c_str(), std::string(weight_type_name(t)).c_str(), to_exact,
                  to_absorbed);
    });
  }
}

}  // namespace
}  // namespace strata
