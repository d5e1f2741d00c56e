// Every Ops member of the CUDA device against the CPU's (runtime/backend/cpu_ops.h) on random
// inputs, at DeepSeek-like shapes with odd tails, through the seam itself (make_cuda_device:
// memory, queue, copies, Ops). Skipped, with the reason, where no CUDA device is present.
// NMSE bounds: products and attention accumulate in f32 in another order than the CPU
// (1e-10 relative to the signal); the FP8/FP4 round trips may round a value on the other side
// of a tie (1e-6). The CPU twin runs exact (--exact-dot): its default integer dot rounds the
// activations to int8 and its batched products to BF16, which the device does not.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <utility>

#include "../unit/kernels/kernel_test_util.h"
#include "cpu-kernels/kernel_choices.h"
#include "gpu-kernels/decode_group.h"
#include "gpu-kernels/gpu_ops.h"
#include "runtime/backend/cpu_ops.h"
#include "runtime/backend/cuda_device.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

// The CPU's products in f32, as --exact-dot sets them, for every test of this file.
class ExactCpuProducts : public ::testing::Environment {
 public:
  void SetUp() override {
    KernelChoices c = kernel_choices();
    c.int_dot = false;
    c.gemm_bf16 = false;
    set_kernel_choices(c);
  }
};
[[maybe_unused]] ::testing::Environment* const kExactCpu = ::testing::AddGlobalTestEnvironment(new ExactCpuProducts);

std::shared_ptr<Device> cuda() {
  std::string why;
  if (cuda_device_count(&why) == 0) return nullptr;
  static std::shared_ptr<Device> dev = make_cuda_device(0, uint64_t{8} << 30);
  return dev;
}
#define NEED_CUDA(dev)                                                                  \
  auto dev = cuda();                                                                    \
  if (!dev) {                                                                           \
    std::string why;                                                                    \
    cuda_device_count(&why);                                                            \
    GTEST_SKIP() << "no CUDA device, CUDA op test not run: " << why;                    \
  }

// Host data on the device, and back.
struct On {
  explicit On(Device& d) : dev(d) {}
  Device& dev;
  std::vector<DeviceBuffer> held;
  template <class T>
  T* put(const std::vector<T>& v) {
    held.push_back(dev.upload(v.data(), v.size() * sizeof(T), "test", "test input"));
    return reinterpret_cast<T*>(held.back().data());
  }
  template <class T>
  T* zeros(size_t n) {
    return put(std::vector<T>(n, T{}));
  }
  template <class T>
  std::vector<T> get(const T* p, size_t n) {
    std::vector<T> v(n);
    dev.submit([&] { dev.to_host(v.data(), p, n * sizeof(T)); }).wait();
    return v;
  }
  WeightView matrix(const WeightView& w) {
    WeightView d = w;
    held.push_back(dev.upload(w.data, static_cast<uint64_t>(weight_data_bytes(w)), "test", "weights"));
    d.data = held.back().data();
    if (w.scale) {
      held.push_back(dev.upload(w.scale, static_cast<uint64_t>(weight_scale_bytes(w)), "test", "scales"));
      d.scale = held.back().data();
    }
    return d;
  }
  template <class F>
  void run(F&& f) {
    dev.submit(std::forward<F>(f)).wait();
  }
};

// Pointers to nk keys of D in a pool, on the host and on the device, out of order as a window
// ring gathers them.
template <class T>
std::pair<std::vector<const T*>, std::vector<const T*>> gathered_keys(const T* host, const T* dev, int64_t nk,
                                                                      int64_t D) {
  std::vector<const T*> h, d;
  for (int64_t i = 0; i < nk; ++i) {
    const int64_t j = (i * 7) % nk;
    h.push_back(host + j * D);
    d.push_back(dev + j * D);
  }
  return {h, d};
}

void expect_close(const std::vector<float>& ref, const std::vector<float>& got, double bound, const std::string& what) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  const double e = test::nmse(ref, got);
  EXPECT_LT(e, bound) << what;
}

// cuBLAS is opened at run time: from the toolkit the build used where it is (the build machine,
// CI), no device needed; where it is absent (a bundle without it) the reason names the library.
TEST(CudaBlas, LoadsFromTheToolkitItWasBuiltWith) {
  std::string why;
  const bool ok = gpu::blas_available(&why);
  const std::filesystem::path lib = std::filesystem::path(STRATA_TEST_CUDA_LIB_DIR) /
                                    ("libcublas.so." + std::to_string(CUDART_VERSION / 1000));
  if (std::filesystem::exists(lib)) {
    EXPECT_TRUE(ok) << why;
  } else {
    EXPECT_FALSE(ok);
    EXPECT_NE(why.find("libcublas"), std::string::npos) << why;
  }
}

// From kBlasMinTokens tokens the products go through cuBLAS (f32, decoded rows) where it
// loads, through the tiles otherwise; both within f32 rounding of the CPU.
TEST(CudaOps, LinearOfEveryDecodableTypeMatchesTheCpu) {
  NEED_CUDA(dev);
  std::string why;
  std::printf("many-token products: %s\n", gpu::blas_available(&why) ? "cuBLAS" : ("tiles: " + why).c_str());
  for (int i = 0; i <= static_cast<int>(WeightType::IQ1_M); ++i) {
    const auto t = static_cast<WeightType>(i);
    if (!gpu::decodable(t)) continue;
    const bool plain = t == WeightType::F32 || t == WeightType::F16 || t == WeightType::BF16;
    const int64_t rows = 300, cols = plain ? 1000 : 1024;
    const test::Mat m = test::make_matrix(t, rows, cols, WeightType::F32, 3 + i);
    for (int64_t n :
         {int64_t{1}, int64_t{3}, int64_t{5}, int64_t{16}, int64_t{70}, gpu::kBlasMinTokens + 2}) {
      On on(*dev);
      const std::vector<float> x = test::randn(n * cols, 9);
      std::vector<float> ref(static_cast<size_t>(n * rows));
      cpu_ops().linear(m.view, x.data(), n, ref.data());
      const WeightView w = on.matrix(m.view);
      float* dx = on.put(x);
      float* dy = on.zeros<float>(ref.size());
      on.run([&] { dev->ops().linear(w, dx, n, dy); });
      expect_close(ref, on.get(dy, ref.size()), 1e-10, std::string(weight_type_name(t)) + " n=" + std::to_string(n));
      // A row range into a strided output.
      std::vector<float> rref(static_cast<size_t>(n * 100));
      cpu_ops().linear_rows(m.view, 37, 50, x.data(), n, cols, rref.data(), 100);
      float* dr = on.zeros<float>(rref.size());
      on.run([&] { dev->ops().linear_rows(w, 37, 50, dx, n, cols, dr, 100); });
      std::vector<float> got = on.get(dr, rref.size());
      for (int64_t tk = 0; tk < n; ++tk)
        for (int64_t r = 50; r < 100; ++r) got[static_cast<size_t>(tk * 100 + r)] = rref[static_cast<size_t>(tk * 100 + r)];
      expect_close(rref, got, 1e-10, std::string(weight_type_name(t)) + " rows n=" + std::to_string(n));
    }
  }
}

TEST(CudaOps, MlpAndGatherMatchTheCpu) {
  NEED_CUDA(dev);
  On on(*dev);
  const int64_t d = 256, inter = 96, n = 7;
  const test::Mat w1 = test::make_matrix(WeightType::Q4_K, inter, d, WeightType::F32, 1),
                  w3 = test::make_matrix(WeightType::Q6_K, inter, d, WeightType::F32, 2),
                  w2 = test::make_matrix(WeightType::Q8_0, d, inter, WeightType::F32, 3);
  const Mlp host{w1.view, w2.view, w3.view};
  const Mlp dm{on.matrix(w1.view), on.matrix(w2.view), on.matrix(w3.view)};
  const std::vector<float> x = test::randn(n * d, 4);
  float* dx = on.put(x);
  for (float limit : {0.0f, 1.5f}) {
    std::vector<float> ref(static_cast<size_t>(n * d));
    cpu_ops().mlp(host, x.data(), n, ref.data(), limit);
    float* dy = on.zeros<float>(ref.size());
    on.run([&] { dev->ops().mlp(dm, dx, n, dy, limit); });
    expect_close(ref, on.get(dy, ref.size()), 1e-10, "mlp limit " + std::to_string(limit));
  }
  const test::Mat table = test::make_matrix(WeightType::BF16, 50, 96, WeightType::F32, 5);
  const std::vector<int32_t> ids = {3, 49, 0, 3};
  std::vector<float> ref(4 * 96);
  cpu_ops().gather_rows(table.view, ids.data(), 4, ref.data());
  const WeightView dt = on.matrix(table.view);
  int32_t* di = on.put(ids);
  float* dg = on.zeros<float>(ref.size());
  on.run([&] { dev->ops().gather_rows(dt, di, 4, dg); });
  EXPECT_EQ(on.get(dg, ref.size()), ref);
}

TEST(CudaOps, NormsRopeAndElementwiseMatchTheCpu) {
  NEED_CUDA(dev);
  On on(*dev);
  const int64_t n = 5, d = 7168 + 3;
  const std::vector<float> x = test::randn(n * d, 1), w = test::randn(d, 2), b = test::randn(d, 3);
  float *dx = on.put(x), *dw = on.put(w), *db = on.put(b), *dy = on.zeros<float>(x.size());
  std::vector<float> ref(x.size());
  cpu_ops().rms_norm(x.data(), w.data(), ref.data(), n, d, 1e-6f);
  on.run([&] { dev->ops().rms_norm(dx, dw, dy, n, d, 1e-6f); });
  expect_close(ref, on.get(dy, ref.size()), 1e-10, "rms_norm");
  cpu_ops().layer_norm(x.data(), w.data(), b.data(), ref.data(), n, d, 1e-6f);
  on.run([&] { dev->ops().layer_norm(dx, dw, db, dy, n, d, 1e-6f); });
  expect_close(ref, on.get(dy, ref.size()), 1e-10, "layer_norm");
  cpu_ops().add(x.data(), w.data(), ref.data(), d);
  on.run([&] { dev->ops().add(dx, dw, dy, d); });
  expect_close(std::vector<float>(ref.begin(), ref.begin() + d), on.get(dy, static_cast<size_t>(d)), 1e-14, "add");

  // RoPE with YaRN over 3 tokens × 4 heads of 192 (the rope half at 128), both pair layouts.
  RopeParams rp;
  rp.dim = 64;
  rp.factor = 40;
  rp.original_max_positions = 4096;
  const Rope rope(rp);
  const std::vector<int64_t> pos = {0, 17, 70000};
  const std::vector<float> q = test::randn(3 * 4 * 192, 6);
  int64_t* dpos = on.put(pos);
  for (bool halves : {false, true}) {
    std::vector<float> r = q;
    cpu_ops().rope(rope, halves, r.data() + 128, 3, 4, 192, 4 * 192, pos.data());
    float* dq = on.put(q);
    on.run([&] { dev->ops().rope(rope, halves, dq + 128, 3, 4, 192, 4 * 192, dpos); });
    expect_close(r, on.get(dq, q.size()), 1e-12, halves ? "rope halves" : "rope interleaved");
  }
  std::vector<float> r = q;
  cpu_ops().rope_at(rope, r.data() + 128, 4, 192, -70000);
  float* dq = on.put(q);
  on.run([&] { dev->ops().rope_at(rope, dq + 128, 4, 192, -70000); });
  expect_close(std::vector<float>(r.begin(), r.begin() + 4 * 192), on.get(dq, 4 * 192), 1e-12, "rope_at");

  const std::vector<float> hx = test::randn(6 * 128, 7);
  std::vector<float> h = hx;
  cpu_ops().hadamard_rows(h.data(), 6, 128);
  float* dh = on.put(hx);
  on.run([&] { dev->ops().hadamard_rows(dh, 6, 128); });
  expect_close(h, on.get(dh, h.size()), 1e-12, "hadamard");
  for (RowQuant rq : {RowQuant::Fp8, RowQuant::Fp8Pow2, RowQuant::Fp4}) {
    std::vector<float> qx = hx;
    cpu_ops().quant_rows(qx.data(), 3, 256, 200, 128, rq);
    float* dqx = on.put(hx);
    on.run([&] { dev->ops().quant_rows(dqx, 3, 256, 200, 128, rq); });
    expect_close(qx, on.get(dqx, qx.size()), 1e-6, "quant_rows " + std::to_string(static_cast<int>(rq)));
  }
}

// MLA at DeepSeek's head geometry (fewer heads), both up-projection forms, with a past, a
// sparse mask and a chunked prefill.
TEST(CudaOps, MlaAttentionAndTheIndexerMatchTheCpu) {
  NEED_CUDA(dev);
  On on(*dev);
  const int64_t H = 4, dn = 128, dr = 64, dv = 128, dl = 512, n = 6, n_past = 40, n_ctx = n_past + n;
  const MlaShape sh{H, dn, dr, dv, dl, 0.07f};
  const std::vector<float> q = test::randn(n * H * (dn + dr), 1), lat = test::randn(n_ctx * dl, 2),
                           kr = test::randn(n_ctx * dr, 3);
  std::vector<uint8_t> allowed(static_cast<size_t>(n * n_ctx));
  std::mt19937 g(4);
  for (auto& a : allowed) a = static_cast<uint8_t>(g() % 3 != 0);
  const test::Mat kv_b = test::make_matrix(WeightType::Q8_0, H * (dn + dv), dl, WeightType::F32, 5);
  const test::Mat k_b = test::make_matrix(WeightType::BF16, H * dl, dn, WeightType::F32, 6),
                  v_b = test::make_matrix(WeightType::Q4_K, H * dv, dl, WeightType::F32, 7);
  float *dq = on.put(q), *dlat = on.put(lat), *dkr = on.put(kr);
  uint8_t* dal = on.put(allowed);
  for (bool split : {false, true}) {
    MlaUp up, dup;
    up.split = split;
    up.nope = dn, up.v = dv, up.kv_lora = dl;
    if (split) up.k_b = k_b.view, up.v_b = v_b.view;
    else up.kv_b = kv_b.view;
    dup = up;
    if (split) dup.k_b = on.matrix(k_b.view), dup.v_b = on.matrix(v_b.view);
    else dup.kv_b = on.matrix(kv_b.view);
    for (const uint8_t* mask : {static_cast<const uint8_t*>(nullptr), static_cast<const uint8_t*>(allowed.data())}) {
      std::vector<float> ref(static_cast<size_t>(n * H * dv));
      cpu_ops().mla_attention(sh, up, q.data(), n, n_past, lat.data(), kr.data(), mask, false, ref.data());
      float* dout = on.zeros<float>(ref.size());
      on.run([&] { dev->ops().mla_attention(sh, dup, dq, n, n_past, dlat, dkr, mask ? dal : nullptr, true, dout); });
      expect_close(ref, on.get(dout, ref.size()), 1e-10,
                   std::string(split ? "split" : "kv_b") + (mask ? " masked" : " causal"));
    }
  }
  // The indexer: 8 heads of 128; top 20 of up to 46 keys.
  const int64_t nh = 8, hd = 128, top_k = 20;
  const std::vector<float> iq = test::randn(n * nh * hd, 8), iw = test::randn(n * nh, 9), keys = test::randn(n_ctx * hd, 10);
  std::vector<uint8_t> ref(static_cast<size_t>(n * n_ctx));
  cpu_ops().index_topk(iq.data(), iw.data(), keys.data(), n, n_past, nh, hd, top_k, ref.data());
  uint8_t* dmask = on.zeros<uint8_t>(ref.size());
  float *diq = on.put(iq), *diw = on.put(iw), *dkeys = on.put(keys);
  on.run([&] { dev->ops().index_topk(diq, diw, dkeys, n, n_past, nh, hd, top_k, dmask); });
  EXPECT_EQ(on.get(dmask, ref.size()), ref);
}

TEST(CudaOps, TheV4CoresMatchTheCpu) {
  NEED_CUDA(dev);
  On on(*dev);
  const int64_t H = 8, D = 512, nk = 37;
  const std::vector<float> q = test::randn(H * D, 1), pool = test::randn(nk * D, 2), sink = test::randn(H, 3);
  float *dq = on.put(q), *dpool = on.put(pool), *dsink = on.put(sink);
  const auto [keys, dkeys] = gathered_keys(pool.data(), dpool, nk, D);
  const float** dk = on.put(dkeys);
  std::vector<float> ref(static_cast<size_t>(H * D));
  cpu_ops().sink_attention(q.data(), keys.data(), nk, sink.data(), H, D, 0.04f, ref.data());
  float* dout = on.zeros<float>(ref.size());
  on.run([&] { dev->ops().sink_attention(dq, dk, nk, dsink, H, D, 0.04f, dout); });
  expect_close(ref, on.get(dout, ref.size()), 1e-10, "sink_attention");

  const int64_t n = 5, first = 30, ratio = 4, nh = 4, hd = 64, top_k = 3, rows = (first + n) / ratio;
  const std::vector<float> iq = test::randn(n * nh * hd, 4), iw = test::randn(n * nh, 5), rk = test::randn(rows * hd, 6);
  std::vector<int64_t> picked(static_cast<size_t>(n * top_k), -1), count(static_cast<size_t>(n));
  cpu_ops().index_pick(iq.data(), iw.data(), rk.data(), n, first, ratio, nh, hd, 0.1f, top_k, picked.data(), count.data());
  int64_t *dp = on.put(std::vector<int64_t>(picked.size(), -1)), *dc = on.zeros<int64_t>(count.size());
  float *diq = on.put(iq), *diw = on.put(iw), *drk = on.put(rk);
  on.run([&] { dev->ops().index_pick(diq, diw, drk, n, first, ratio, nh, hd, 0.1f, top_k, dp, dc); });
  EXPECT_EQ(on.get(dc, count.size()), count);
  EXPECT_EQ(on.get(dp, picked.size()), picked);

  const int64_t width = 2 * 96, own = 96, Dc = 96;
  const std::vector<float> kv = test::randn(ratio * width, 7), sc = test::randn(ratio * width, 8),
                           pkv = test::randn(ratio * width, 9), psc = test::randn(ratio * width, 10);
  float *dkv = on.put(kv), *dsc = on.put(sc), *dpkv = on.put(pkv), *dpsc = on.put(psc);
  for (bool prev : {false, true}) {
    std::vector<float> r(static_cast<size_t>(Dc));
    cpu_ops().compress_pool(kv.data(), sc.data(), prev ? pkv.data() : nullptr, prev ? psc.data() : nullptr, ratio,
                            width, own, Dc, r.data());
    float* dr = on.zeros<float>(r.size());
    on.run([&] { dev->ops().compress_pool(dkv, dsc, prev ? dpkv : nullptr, prev ? dpsc : nullptr, ratio, width, own, Dc, dr); });
    expect_close(r, on.get(dr, r.size()), 1e-12, prev ? "compress_pool with prev" : "compress_pool");
  }
}

// The bf16 KV cache (--cache-type-k bf16): the rounding that writes its rows bit for bit as the
// CPU's (ties, NaN, infinities), and each attention core over bf16 rows against the CPU's.
TEST(CudaOps, Bf16CacheCoresMatchTheCpu) {
  NEED_CUDA(dev);
  On on(*dev);
  std::vector<float> v = test::randn(1000, 21);
  v[0] = std::nanf("");
  v[1] = INFINITY;
  v[2] = -INFINITY;
  uint32_t tie = 0x3f808000u;  // exactly between two bf16 values: rounds to even
  std::memcpy(&v[3], &tie, 4);
  tie = 0x3f818000u;
  std::memcpy(&v[4], &tie, 4);
  std::vector<uint16_t> want(v.size());
  cpu_ops().to_bf16(want.data(), v.data(), static_cast<int64_t>(v.size()));
  uint16_t* db = on.zeros<uint16_t>(v.size());
  float* dv = on.put(v);
  on.run([&] { dev->ops().to_bf16(db, dv, static_cast<int64_t>(v.size())); });
  EXPECT_EQ(on.get(db, v.size()), want);

  const auto bf16 = [](const std::vector<float>& x) {
    std::vector<uint16_t> b(x.size());
    cpu_ops().to_bf16(b.data(), x.data(), static_cast<int64_t>(x.size()));
    return b;
  };
  const int64_t H = 4, dn = 128, dr = 64, dv_ = 128, dl = 512, n = 6, n_past = 40, n_ctx = n_past + n;
  const MlaShape sh{H, dn, dr, dv_, dl, 0.07f};
  const std::vector<float> q = test::randn(n * H * (dn + dr), 1);
  const std::vector<uint16_t> lat = bf16(test::randn(n_ctx * dl, 2)), kr = bf16(test::randn(n_ctx * dr, 3));
  const test::Mat kv_b = test::make_matrix(WeightType::Q8_0, H * (dn + dv_), dl, WeightType::F32, 5);
  MlaUp up;
  up.nope = dn, up.v = dv_, up.kv_lora = dl, up.kv_b = kv_b.view;
  MlaUp dup = up;
  dup.kv_b = on.matrix(kv_b.view);
  std::vector<float> ref(static_cast<size_t>(n * H * dv_));
  cpu_ops().mla_attention(sh, up, q.data(), n, n_past, lat.data(), kr.data(), nullptr, false, ref.data());
  float *dq = on.put(q), *dout = on.zeros<float>(ref.size());
  uint16_t *dlat = on.put(lat), *dkr = on.put(kr);
  on.run([&] { dev->ops().mla_attention(sh, dup, dq, n, n_past, dlat, dkr, nullptr, true, dout); });
  expect_close(ref, on.get(dout, ref.size()), 1e-10, "mla_attention bf16");

  const int64_t nh = 8, hd = 128, top_k = 20;
  const std::vector<float> iq = test::randn(n * nh * hd, 8), iw = test::randn(n * nh, 9);
  const std::vector<uint16_t> keys = bf16(test::randn(n_ctx * hd, 10));
  std::vector<uint8_t> mask(static_cast<size_t>(n * n_ctx));
  cpu_ops().index_topk(iq.data(), iw.data(), keys.data(), n, n_past, nh, hd, top_k, mask.data());
  uint8_t* dmask = on.zeros<uint8_t>(mask.size());
  float *diq = on.put(iq), *diw = on.put(iw);
  uint16_t* dkeys = on.put(keys);
  on.run([&] { dev->ops().index_topk(diq, diw, dkeys, n, n_past, nh, hd, top_k, dmask); });
  EXPECT_EQ(on.get(dmask, mask.size()), mask);

  const int64_t SH = 8, D = 512, nk = 37;
  const std::vector<float> sq = test::randn(SH * D, 11), sink = test::randn(SH, 12);
  const std::vector<uint16_t> pool = bf16(test::randn(nk * D, 13));
  float *dsq = on.put(sq), *dsink = on.put(sink);
  uint16_t* dpool = on.put(pool);
  const auto [hk, dk] = gathered_keys(pool.data(), dpool, nk, D);
  const uint16_t** ddk = on.put(dk);
  std::vector<float> sref(static_cast<size_t>(SH * D));
  cpu_ops().sink_attention(sq.data(), hk.data(), nk, sink.data(), SH, D, 0.04f, sref.data());
  float* dsout = on.zeros<float>(sref.size());
  on.run([&] { dev->ops().sink_attention(dsq, ddk, nk, dsink, SH, D, 0.04f, dsout); });
  expect_close(sref, on.get(dsout, sref.size()), 1e-10, "sink_attention bf16");

  const int64_t pn = 5, first = 30, ratio = 4, pnh = 4, phd = 64, ptop = 3, rows = (first + pn) / ratio;
  const std::vector<float> pq = test::randn(pn * pnh * phd, 14), pw = test::randn(pn * pnh, 15);
  const std::vector<uint16_t> rk = bf16(test::randn(rows * phd, 16));
  std::vector<int64_t> picked(static_cast<size_t>(pn * ptop), -1), count(static_cast<size_t>(pn));
  cpu_ops().index_pick(pq.data(), pw.data(), rk.data(), pn, first, ratio, pnh, phd, 0.1f, ptop, picked.data(),
                       count.data());
  int64_t *dp = on.put(std::vector<int64_t>(picked.size(), -1)), *dc = on.zeros<int64_t>(count.size());
  float *dpq = on.put(pq), *dpw = on.put(pw);
  uint16_t* drk = on.put(rk);
  on.run([&] { dev->ops().index_pick(dpq, dpw, drk, pn, first, ratio, pnh, phd, 0.1f, ptop, dp, dc); });
  EXPECT_EQ(on.get(dc, count.size()), count);
  EXPECT_EQ(on.get(dp, picked.size()), picked);
}

TEST(CudaOps, TheRouterMatchesTheCpu) {
  NEED_CUDA(dev);
  On on(*dev);
  struct Gate {
    RouterParams p;
    bool bias, fixed;
  };
  const Gate gates[] = {
      {{ScoringFunc::Sigmoid, 64, 6, 8, 3, true, 2.5f}, true, false},       // V3: bias, group limit
      {{ScoringFunc::Softmax, 64, 6, 1, 1, false, 1.0f}, false, false},     // V2-style softmax, no norm
      {{ScoringFunc::SqrtSoftplus, 96, 8, 1, 1, true, 1.5f}, true, false},  // V4
      {{ScoringFunc::Sigmoid, 64, 8, 4, 2, true, 1.0f}, false, false},      // groups without bias
      {{ScoringFunc::SqrtSoftplus, 96, 8, 1, 1, true, 1.5f}, false, true},  // V4's hash layers
  };
  for (const Gate& g : gates) {
    const RouterParams& p = g.p;
    for (int64_t n : {1, 7}) {
      const std::string what = "scoring " + std::to_string(static_cast<int>(p.scoring)) + " groups " +
                               std::to_string(p.n_group) + (g.fixed ? " fixed" : "") +
                               " n=" + std::to_string(n);
      const std::vector<float> logits = test::randn(n * p.n_experts, 31 + n),
                               bias = test::randn(p.n_experts, 32);
      std::vector<int32_t> fixed(static_cast<size_t>(n * p.top_k));
      for (size_t i = 0; i < fixed.size(); ++i) fixed[i] = static_cast<int32_t>((i * 37 + 5) % p.n_experts);
      std::vector<int32_t> ids(static_cast<size_t>(n * p.top_k));
      std::vector<float> w(ids.size());
      cpu_ops().route(p, logits.data(), g.bias ? bias.data() : nullptr, g.fixed ? fixed.data() : nullptr, n,
                      ids.data(), w.data());
      float *dl = on.put(logits), *db = on.put(bias), *dw = on.zeros<float>(w.size());
      int32_t *df = on.put(fixed), *di = on.zeros<int32_t>(ids.size());
      on.run([&] { dev->ops().route(p, dl, g.bias ? db : nullptr, g.fixed ? df : nullptr, n, di, dw); });
      EXPECT_EQ(on.get(di, ids.size()), ids) << what;
      expect_close(w, on.get(dw, w.size()), 1e-10, what);
    }
  }
}

// mHC of V4's shape (4 streams) and of 6, at a width with a tail past the mixes' 512-column
// slices, one token and a batch: u, post, comb, the updated streams and the head's mix.
TEST(CudaOps, HyperConnectionsMatchTheCpu) {
  NEED_CUDA(dev);
  const auto small = [](int64_t n, uint32_t seed) {
    std::vector<float> v = test::randn(n, seed);
    for (float& x : v) x *= 0.05f;
    return v;
  };
  for (int64_t hc : {4, 6}) {
    const int64_t D = 700, rows = (2 + hc) * hc;
    const HcParams p{hc, D, 20, 1e-6f, 1e-6f};
    const HcWeights w{small(rows * hc * D, 41), test::randn(rows, 42), {0.6f, 1.1f, 0.8f}};
    const HcWeights head{small(hc * hc * D, 43), test::randn(hc, 44), {0.5f}};
    for (int64_t n : {1, 9}) {
      const std::string what = "hc " + std::to_string(hc) + " n=" + std::to_string(n);
      On on(*dev);
      const std::vector<float> X = test::randn(n * hc * D, 45), f = test::randn(n * D, 46);
      std::vector<float> u(static_cast<size_t>(n * D)), post(static_cast<size_t>(n * hc)),
          comb(static_cast<size_t>(n * hc * hc)), Y = X, hu(static_cast<size_t>(D));
      cpu_ops().hc_pre(p, w, X.data(), n, u.data(), post.data(), comb.data());
      cpu_ops().hc_post(p, f.data(), post.data(), comb.data(), Y.data(), n);
      cpu_ops().hc_head(p, head, X.data(), hu.data());
      const HcView dw(on.put(w.fn), on.put(w.base), on.put(w.scale)),
          dh(on.put(head.fn), on.put(head.base), on.put(head.scale));
      float *dX = on.put(X), *df = on.put(f), *du = on.zeros<float>(u.size()),
            *dp = on.zeros<float>(post.size()), *dc = on.zeros<float>(comb.size()),
            *dhu = on.zeros<float>(hu.size());
      on.run([&] {
        dev->ops().hc_pre(p, dw, dX, n, du, dp, dc);
        dev->ops().hc_head(p, dh, dX, dhu);
      });
      expect_close(u, on.get(du, u.size()), 1e-10, what + " u");
      expect_close(post, on.get(dp, post.size()), 1e-10, what + " post");
      expect_close(comb, on.get(dc, comb.size()), 1e-10, what + " comb");
      expect_close(hu, on.get(dhu, hu.size()), 1e-10, what + " head");
      // hc_post on the CPU's own post and comb: the update alone.
      float *dp2 = on.put(post), *dc2 = on.put(comb);
      on.run([&] { dev->ops().hc_post(p, df, dp2, dc2, dX, n); });
      expect_close(Y, on.get(dX, Y.size()), 1e-12, what + " post-mix");
    }
  }
}

// What the device's gate and mixing cannot take is refused by name before anything is launched
// (no device needed): more than 6 mHC streams, more than 32 expert groups or unequal ones.
TEST(CudaOps, GateAndMixingShapesTheyCannotTakeAreRefused) {
  const HcParams wide{7, 64, 20, 1e-6f, 1e-6f};
  STRATA_EXPECT_ERROR(gpu::hc_pre(wide, HcView{}, nullptr, 1, nullptr, nullptr, nullptr, nullptr, nullptr),
                      "hc_pre", "at most 6 streams");
  STRATA_EXPECT_ERROR(gpu::hc_post(wide, nullptr, nullptr, nullptr, nullptr, 1, nullptr), "hc_post",
                      "7 streams");
  STRATA_EXPECT_ERROR(gpu::hc_head(wide, HcView{}, nullptr, nullptr, nullptr, nullptr), "hc_head",
                      "7 streams");
  RouterParams p{ScoringFunc::Sigmoid, 256, 8, 64, 4, true, 1.0f};
  STRATA_EXPECT_ERROR(gpu::route(p, nullptr, nullptr, nullptr, 1, nullptr, nullptr, nullptr), "CUDA route",
                      "64 groups");
  p.n_group = 6;  // 256 experts do not split into 6 equal groups
  STRATA_EXPECT_ERROR(gpu::route(p, nullptr, nullptr, nullptr, 1, nullptr, nullptr, nullptr), "CUDA route",
                      "32 equal groups");
}

TEST(CudaOps, TheDeviceRefusesWhatItCannotHoldOrCompute) {
  NEED_CUDA(dev);
  EXPECT_FALSE(dev->computes(WeightType::I32));
  EXPECT_TRUE(dev->computes(WeightType::Q4_K));
  EXPECT_TRUE(dev->computes(WeightType::IQ2_XXS));
  auto small = make_cuda_device(0, 1 << 20);
  EXPECT_THROW(small->alloc(2 << 20, "test", "two MiB"), std::exception);
  // Memory goes back: what the device counts returns to zero.
  { DeviceBuffer b = small->alloc(1000, "test", "a little"); EXPECT_EQ(small->used(), 1000u); }
  EXPECT_EQ(small->used(), 0u);
}

}  // namespace
}  // namespace strata
