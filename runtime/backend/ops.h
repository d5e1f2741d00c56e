// The operations model code asks a device for. A backend implements them for its device
// (cpu_ops.h: the CPU kernels of cpu-kernels/); the model names what to compute, the device
// that holds the weights decides how. Pointers are in the memory of the device the ops belong
// to: host memory for the CPU and the simulated GPU, device memory for a real GPU.
#pragma once

#include <cstdint>
#include <span>

#include "cpu-kernels/mhc.h"
#include "cpu-kernels/mla_attention.h"
#include "cpu-kernels/rope.h"
#include "cpu-kernels/router.h"
#include "cpu-kernels/weight_view.h"

namespace strata {

// A SwiGLU MLP (a routed or shared expert, a dense FFN): gate w1 [inter, d], down w2 [d, inter],
// up w3 [inter, d].
struct Mlp {
  WeightView w1, w2, w3;
};

// The quantize-dequantize round trips of the published math (cpu-kernels/ops.h): FP8 E4M3 with
// amax scales or power-of-two (UE8M0) scales, FP4 E2M1.
enum class RowQuant { Fp8, Fp8Pow2, Fp4 };

// One MLP's share of a batch: its tokens' activations x [n, d] and its output out [n, d]; node:
// the compute node that holds its weights (a hint for the host's NUMA split, 0 otherwise).
// source / rows (optional, both or neither): x's row i is row rows[i] of source [*, d] (the MoE
// layer's input), so a backend may prepare each source row once for all the jobs sharing it.
struct MlpJob {
  const Mlp* mlp;
  const float* x;
  int64_t n;
  float* out;
  int node = 0;
  const float* source = nullptr;
  const int32_t* rows = nullptr;
};

// Bytes an MLP's matrices (with their scales) span.
uint64_t mlp_bytes(const Mlp& m);

class Ops {
 public:
  virtual ~Ops() = default;
  // out [n, w.rows] = x [n, w.cols] · wᵀ, for every stored weight type.
  virtual void linear(const WeightView& w, const float* x, int64_t n, float* out) const = 0;
  // y[t][r] = Σ_c W[r0 + r][c] · x[t][c] for rows r < nr of w; x [n, ldx], y [n, ldy].
  virtual void linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                           int64_t ldy) const = 0;
  // out [n, d] = w2(swiglu(w1 x, w3 x)); swiglu_limit > 0 applies DeepSeek-V4's clamp.
  virtual void mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const = 0;
  // Rows `rows` [n] of the table as f32 rows out [n, table.cols] (an embedding gather).
  virtual void gather_rows(const WeightView& table, const int32_t* rows, int64_t n, float* out) const = 0;
  // The MoE gate of n tokens (cpu-kernels/router.h): logits [n, n_experts], bias or null; with
  // `fixed` [n, top_k] the experts are given (hash routing) and only weighed. ids, weights [n, top_k].
  virtual void route(const RouterParams& p, const float* logits, const float* bias, const int32_t* fixed, int64_t n,
                     int32_t* ids, float* weights) const = 0;
  // mHC around a sublayer for n tokens (cpu-kernels/mhc.h): X [n, hc, D] -> u [n, D], post
  // [n, hc], comb [n, hc, hc]; then X updated with the sublayer's output f [n, D]; the head's mix.
  virtual void hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post,
                      float* comb) const = 0;
  virtual void hc_post(const HcParams& p, const float* f, const float* post, const float* comb, float* X,
                       int64_t n) const = 0;
  virtual void hc_head(const HcParams& p, const HcView& w, const float* X, float* u) const = 0;
  // Every job's mlp at once (a layer's routed experts): the same results as mlp on each in turn.
  virtual void mlp_batch(std::span<const MlpJob> jobs, float swiglu_limit) const = 0;
  // y = x / rms(x) · w over n rows of d (x and y may alias).
  virtual void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t d, float eps) const = 0;
  // y = (x - mean) / sd · w + b over n rows of d.
  virtual void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d,
                          float eps) const = 0;
  // RoPE of n tokens × `heads` vectors: vector (t, h) starts at x + t·token_stride + h·head_stride
  // and is rotated by pos[t]; pairs (2i, 2i+1) (interleaved) or (i, i + dim/2) (halves).
  virtual void rope(const Rope& r, bool halves, float* x, int64_t n, int64_t heads, int64_t head_stride,
                    int64_t token_stride, const int64_t* pos) const = 0;
  // The same rotation of one vector per head at one position.
  virtual void rope_at(const Rope& r, float* x, int64_t heads, int64_t head_stride, int64_t pos) const = 0;
  // The normalized Hadamard rotation of n contiguous rows of dim (a power of two).
  virtual void hadamard_rows(float* x, int64_t n, int64_t dim) const = 0;
  // The first `dim` values of n rows `stride` apart quantized and dequantized in blocks.
  virtual void quant_rows(float* x, int64_t n, int64_t stride, int64_t dim, int64_t block, RowQuant q) const = 0;
  // out[i] = a[i] + b[i].
  virtual void add(const float* a, const float* b, float* out, int64_t n) const = 0;
  // x[i] *= a.
  virtual void scale(float* x, int64_t n, float a) const = 0;
  // Copies within the device's memory.
  virtual void copy(void* dst, const void* src, uint64_t bytes) const = 0;
  // MLA attention of one sequence's new tokens (cpu-kernels/mla_attention.h).
  virtual void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                             const float* latent, const float* k_rope, const uint8_t* allowed, bool absorbed,
                             float* out) const = 0;
  // The same over caches of bf16 rows (--cache-type-k bf16), each row widened to f32 as it is
  // read, and the rounding that fills them: dst[i] = src[i] rounded to bf16 (to nearest, ties
  // to even).
  virtual void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                             const uint16_t* latent, const uint16_t* k_rope, const uint8_t* allowed,
                             bool absorbed, float* out) const = 0;
  virtual void to_bf16(uint16_t* dst, const float* src, int64_t n) const = 0;
  // The DSA indexer's top-k keys per token (cpu-kernels/mla_attention.h).
  virtual void index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh,
                          int64_t hd, int64_t top_k, uint8_t* allowed) const = 0;
  // The same over bf16 keys (--cache-type-k bf16).
  virtual void index_topk(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t n_past,
                          int64_t nh, int64_t hd, int64_t top_k, uint8_t* allowed) const = 0;
  // DeepSeek-V4's cores (cpu-kernels/v4_attention.h): attention with sinks over gathered keys
  // (`keys`, the pointer array, in the device's memory too), the compressed-row indexer, the
  // compressor's pooling.
  virtual void sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H,
                              int64_t D, float scale, float* out) const = 0;
  // The same over keys of bf16 rows (--cache-type-k bf16).
  virtual void sink_attention(const float* q, const uint16_t* const* keys, int64_t nk, const float* sink,
                              int64_t H, int64_t D, float scale, float* out) const = 0;
  virtual void index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos, int64_t ratio,
                          int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                          int64_t* count) const = 0;
  // The same over bf16 compressed rows (--cache-type-k bf16).
  virtual void index_pick(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t first_pos,
                          int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                          int64_t* count) const = 0;
  virtual void compress_pool(const float* kv, const float* score, const float* prev_kv, const float* prev_score,
                             int64_t ratio, int64_t width, int64_t own, int64_t D, float* out) const = 0;
};

}  // namespace strata
