// The CUDA op set: what runtime/backend/cuda/ calls to implement the seam's Ops on a CUDA
// device. Every pointer is device memory unless its name says host; every call is queued on
// `stream` (a cudaStream_t) and returns at once, except where a comment says it waits. A CUDA
// failure throws std::runtime_error naming the call and the device's message.
//
// One file per op family, each naming its CPU twin:
//   memory.cu        devices, memory, copies, streams
//   linear.cu        products of every decodable type (decode_group.h), row gather, dequantize
//   elementwise.cu   norms, RoPE, SwiGLU, add/scale, Hadamard, FP8/FP4 quantize-dequantize
//   mla.cu           MLA attention (absorbed over the latent cache), the V3.2 indexer's top-k
//   v4_attention.cu  V4 sink attention, compressed-row pick, compressor pooling
//   router.cu        the MoE gate's scores, group limit and top-k
//   mhc.cu           mHC hyper-connections (pre mixing with Sinkhorn, post mixing, the head's mix)
//   blas.cpp         cuBLAS (loaded at run time) for the products of many tokens
//   graph.cu         CUDA graphs of a stream's captured work
#pragma once

#include <cstdint>
#include <string>

#include "cpu-kernels/mhc.h"
#include "cpu-kernels/mla_attention.h"
#include "cpu-kernels/router.h"
#include "cpu-kernels/weight_view.h"
#include "gpu-kernels/op_workspace.h"

namespace strata::gpu {

using Stream = void*;  // cudaStream_t

// ---- memory.cu ----
int device_count(std::string* why = nullptr);
void set_device(int device);
// The same without throwing (for destructors): an error is cleared and ignored.
void set_device_quietly(int device) noexcept;
// Free and total bytes of the current device (cudaMemGetInfo).
void mem_info(uint64_t* free_bytes, uint64_t* total_bytes);
void* device_alloc(uint64_t bytes, const std::string& what);
void device_free(void* p) noexcept;
Stream stream_create();
void stream_destroy(Stream s);
// Waits for everything queued on s; throws what a kernel on it failed with.
void stream_sync(Stream s);
// Waits for s, ignoring errors (on a path that is already throwing).
void stream_settle(Stream s) noexcept;
// A marker in a stream's work (cudaEvent_t, without timing): sync waits until the work issued
// before its record has run, and throws what it failed with.
using Marker = void*;
Marker marker_create();
void marker_destroy(Marker m) noexcept;
void marker_record(Marker m, Stream s);
void marker_sync(Marker m);
void copy_h2d(void* dst, const void* host_src, uint64_t n, Stream s);
// Waits: host_dst holds the bytes when it returns.
void copy_d2h(void* host_dst, const void* src, uint64_t n, Stream s);
void copy_d2d(void* dst, const void* src, uint64_t n, Stream s);
void memset_zero(void* dst, uint64_t n, Stream s);
// A device's name ("NVIDIA GeForce RTX 4090").
std::string device_name(int device);

// ---- linear.cu ----
// Whether products can read weights of type t here (decode_group.h: decodable).
bool linear_supported(WeightType t);
// Copies the lattice i-quants' codebooks to the current device, once per device (the products
// of those types do it at first use otherwise). Waits.
void prepare_device_tables();
// y[t][r] = Σ_c W[r0 + r][c] · x[t][c] for r < nr, t < n; x [n, ldx], y [n, ldy]. A warp per
// row for a few tokens (decode), 64×64 shared-memory tiles for more (prefill).
void linear(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
            int64_t ldy, Stream s);
// Per-head products (MLA's up-projection): output row r (< nr) is weight row r0 + (r / rpg)·wgs +
// r % rpg over x at group offset (r / rpg)·xgs: y[t][r] = Σ_c W[..][c] · x[t·ldx + (r / rpg)·xgs + c].
void linear_grouped(const WeightView& w, int64_t r0, int64_t nr, int64_t rows_per_group, int64_t w_group_stride,
                    const float* x, int64_t n, int64_t ldx, int64_t x_group_stride, float* y, int64_t ldy, Stream s);
// The transposed product per head: y[t][h·yhs + c] = Σ_{j < rows} W[h·row_stride + j][c] ·
// x[t·ldx + h·xhs + j] for h < heads, c < cols (MLA's absorbed queries from wkv_b's key rows).
void linear_t_heads(const WeightView& w, int64_t heads, int64_t row_stride, int64_t rows, const float* x, int64_t n,
                    int64_t ldx, int64_t x_head_stride, float* y, int64_t ldy, int64_t y_head_stride, Stream s);
// Rows [r0, r0 + nr) of w as f32 [nr, cols].
void dequantize(const WeightView& w, int64_t r0, int64_t nr, float* out, Stream s);
// out [n, cols] = rows rows[i] (device int32) of the table.
void gather_rows(const WeightView& table, const int32_t* rows, int64_t n, float* out, Stream s);

// ---- elementwise.cu ----
void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t d, float eps, Stream s);
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d, float eps, Stream s);
// g = silu(min(g, limit)) · clamp(u, ±limit) (no clamp when limit <= 0), in place in g.
void swiglu(float* g, const float* u, int64_t n, float limit, Stream s);
void add(const float* a, const float* b, float* out, int64_t n, Stream s);
void scale(float* x, int64_t n, float a, Stream s);
// dst[i] = src[i] rounded to bf16 (to nearest, ties to even): the rows of a bf16 KV cache.
void to_bf16(uint16_t* dst, const float* src, int64_t n, Stream s);
// RoPE of n tokens × heads vectors (runtime/backend/ops.h: rope); freqs (host, nf <= 256) are
// the rotation's frequencies; pos: device positions, or null with every token at pos0.
void rope(const double* host_freqs, int64_t nf, bool halves, float* x, int64_t n, int64_t heads, int64_t head_stride,
          int64_t token_stride, const int64_t* pos, int64_t pos0, Stream s);
void hadamard_rows(float* x, int64_t n, int64_t dim, Stream s);
// kind: 0 FP8 (amax scale), 1 FP8 (power-of-two scale), 2 FP4 (power-of-two scale).
void quant_rows(float* x, int64_t n, int64_t stride, int64_t dim, int64_t block, int kind, Stream s);

// ---- mla.cu ----
// runtime/backend/ops.h: mla_attention, computed in the absorbed form for any n (the same math
// as the decompressed one); up's weights in device memory; work: mla_workspace_bytes of them
// (op_workspace.h, as for the other ops' work buffers).
void mla_attention(const MlaShape& sh, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const float* latent,
                   const float* k_rope, const uint8_t* allowed, float* out, void* work, Stream s);
void index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh, int64_t hd,
                int64_t top_k, uint8_t* allowed, void* work, Stream s);
// The same over a bf16 cache (--cache-type-k bf16): its rows widened to f32 as they are read.
void mla_attention(const MlaShape& sh, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                   const uint16_t* latent, const uint16_t* k_rope, const uint8_t* allowed, float* out,
                   void* work, Stream s);
void index_topk(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t n_past, int64_t nh,
                int64_t hd, int64_t top_k, uint8_t* allowed, void* work, Stream s);

// ---- v4_attention.cu ----
void sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H, int64_t D,
                    float scale, float* out, void* work, Stream s);
void index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos, int64_t ratio,
                int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked, int64_t* count, void* work,
                Stream s);
void compress_pool(const float* kv, const float* score, const float* prev_kv, const float* prev_score, int64_t ratio,
                   int64_t width, int64_t own, int64_t D, float* out, Stream s);
// The same over bf16 keys and compressed rows (--cache-type-k bf16), widened as they are read.
void sink_attention(const float* q, const uint16_t* const* keys, int64_t nk, const float* sink, int64_t H,
                    int64_t D, float scale, float* out, void* work, Stream s);
void index_pick(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t first_pos,
                int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                int64_t* count, void* work, Stream s);

// ---- router.cu ----
// The gate of n tokens (runtime/backend/ops.h: route): logits [n, n_experts], bias or null;
// with `fixed` [n, top_k] (hash routing) the experts are given and only weighed.
void route(const RouterParams& p, const float* logits, const float* bias, const int32_t* fixed, int64_t n,
           int32_t* ids, float* weights, Stream s);

// ---- graph.cu ----
// A stream's work captured and launched as one CUDA graph. capture_begin starts capturing s;
// capture_end ends it and makes *exec (null at first) the captured graph: updated in place
// where its shape is the same, else instantiated anew (returns true then); graph_launch runs it
// on s. capture_abort ends a capture whose work failed and drops it.
using GraphExec = void*;
void capture_begin(Stream s);
bool capture_end(Stream s, GraphExec* exec);
void capture_abort(Stream s) noexcept;
void graph_launch(GraphExec exec, Stream s);
void graph_destroy(GraphExec exec) noexcept;

// ---- blas.cpp ----
// Whether cuBLAS loaded (at the first call; why not, otherwise): without it every product
// runs on linear's own kernels.
bool blas_available(std::string* why = nullptr);
// Makes the current device's cuBLAS handle and its 4 MiB workspace now, where cuBLAS loads
// (the first product of many tokens does it otherwise).
void prepare_blas();
// linear through f32 cuBLAS GEMMs (n >= kBlasMinTokens is where it pays): the rows decoded
// into work, linear_workspace_bytes(n, nr, w.cols) of it, a chunk at a time. Throws where
// cuBLAS did not load.
void linear_blas(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx,
                 float* y, int64_t ldy, float* work, Stream s);

// ---- mhc.cu ----
// runtime/backend/ops.h: hc_pre, hc_post, hc_head; w's arrays (fn, base, scale) in device
// memory; work: hc_workspace_bytes(n, hc, D) of it (n = 1 for the head).
void hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post, float* comb,
            void* work, Stream s);
void hc_post(const HcParams& p, const float* f, const float* post, const float* comb, float* X, int64_t n,
             Stream s);
void hc_head(const HcParams& p, const HcView& w, const float* X, float* u, void* work, Stream s);

}  // namespace strata::gpu
