// Engram conditional memory (DeepSeek, arXiv 2601.07372; deepseek-ai/Engram engram_demo_v1.py):
// at each Engram layer, the hashed suffix n-grams (orders 2..N) of the compressed token ids
// index one embedding table; the gathered rows, gated per residual stream by their agreement
// with the hidden state, pass through a causal depthwise convolution and are added to h.
//
// Per layer and token t (tok_k = compressed id of token t-k, the compressed pad id before the
// sequence start; m = the layer's multipliers; p_{n,j} = head_sizes; E = (N-1)·n_embed):
//   mix_n   = XOR_{k<n} tok_k·m_k                 (64-bit two's complement, as NumPy int64)
//   row_nj  = (mix_n mod p_{n,j}) + offset_nj     (floored mod; offsets: running sum of head_sizes)
//   e       = concat_j table[row_nj]              [E]
//   per stream i: key = RMSNorm_norm1.i(key_projs.i(e)), query = RMSNorm_norm2.i(h_i) (eps = 2^-23)
//     g = <key, query>/sqrt(hidden); g = sign(g)·sqrt(max(|g|, 1e-6)); v_i = sigmoid(g)·value_proj(e)
//   vn_i = RMSNorm_short_conv.norms.i(v_i) (eps 1e-5); channels c = i·hidden + d:
//     y[t,c] = sum_j w[c,j]·vn[t - (kernel-1-j)·N, c]  (0 before the start); h_i += v_i + SiLU(y_i)
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cpu-kernels/weight_view.h"
#include "runtime/config/model_config.h"

namespace strata {

class Weights;

// Rows of one Engram embedding table, read row by row (the memory tier will back it with DRAM
// or NVMe; here: the mapped checkpoint tensor).
class EngramTable {
 public:
  virtual ~EngramTable() = default;
  virtual int64_t rows() const = 0;
  virtual int64_t dim() const = 0;
  // out [n, dim] = rows rows[0..n) as f32.
  virtual void read_rows(const int64_t* rows, int64_t n, float* out) const = 0;
  // The rows the coming read_rows calls will ask for (a whole step, before the layers run):
  // a tiered table starts reading them. Rows outside the table are ignored here.
  virtual void prefetch(const int64_t* rows, int64_t n) const {
    (void)rows;
    (void)n;
  }
};

// A table over a matrix in its stored type (any type with a matrix form), dequantized per row.
// `name` is for error messages.
class MappedEngramTable final : public EngramTable {
 public:
  MappedEngramTable(const WeightView& w, std::string name);
  int64_t rows() const override { return w_.rows; }
  int64_t dim() const override { return w_.cols; }
  // strata::Error naming the table for a row outside [0, rows()).
  void read_rows(const int64_t* rows, int64_t n, float* out) const override;

 private:
  WeightView w_;
  std::string name_;
};

// Every Engram layer of one model. The per-sequence part (the last tokens' ids, the causal
// convolution's history) lives in a State: the Engram's own one, or one bound per sequence
// when a model runs several sequences.
class Engram {
 public:
  struct LayerState {
    std::vector<int64_t> rows;  // [step_n, heads] of the current step
    std::vector<float> history;  // [(kernel-1)·max_ngram_size, streams · hidden]: normalized values of the last tokens
    std::vector<float> gates;    // [step_n, streams] of the last apply
    int64_t applied = 0;         // tokens this layer has been applied to
  };
  struct State {
    std::vector<int32_t> recent;  // compressed ids of the last max_ngram_size-1 tokens (pad before the start)
    int64_t n_past = 0, step_n = 0;
    std::vector<LayerState> layers;  // per Engram layer, in layer_ids() order
  };

  // streams = hc_mult for deepseek_v4, 1 otherwise. token_map from engram_token_map (size =
  // vocab). Reads `layers.N.engram.multipliers` / `head_sizes` (I32 or I64 tensors) and checks
  // them: positive odd multipliers; head sizes equal to engram_head_sizes(config) and summing to
  // the table's rows. strata::Error naming the tensor otherwise (also for a tensor whose shape
  // disagrees with the config). `w` must outlive the Engram.
  Engram(const ModelConfig& c, const Weights& w, std::vector<int32_t> token_map);
  ~Engram();
  Engram(Engram&&) noexcept;
  Engram& operator=(Engram&&) noexcept;

  bool is_layer(int layer) const;
  int64_t streams() const { return streams_; }
  int64_t heads() const { return heads_; }    // (max_ngram_size - 1) · n_head_per_ngram
  int64_t n_past() const { return cur_->n_past; }  // tokens of the sequence so far (this step's included)

  // A fresh sequence's state, and which state the calls below act on (nullptr: the Engram's
  // own). A bound state must outlive its use.
  State new_state() const;
  void bind(State* s) { cur_ = s ? s : &own_; }

  // Called once per forward step with the step's new tokens (appended to the history): the
  // table rows of every new token for every Engram layer, before any layer runs, so that a
  // memory tier can prefetch them. strata::Error for a token id outside the token map (the
  // state is left unchanged).
  void begin_step(std::span<const int32_t> tokens);
  // Rows of the current step at one layer: [n_new, heads], heads ordered order-outer.
  std::span<const int64_t> step_rows(int layer) const;
  // h: [n_new, streams, hidden] of the current step at this layer; h[t][i] += Engram output of
  // stream i. Keeps the normalized values the causal convolution needs from earlier tokens, so
  // one step of n tokens gives what n steps of one token give. Once per layer and step:
  // strata::Error when n_new is not the step's count or the layer missed a step.
  void apply(int layer, float* h, int64_t n_new);
  // Row reads so far at this layer, and how they fall over kRowBins equal ranges of its table
  // (what `strata profile` reports as Engram row hits).
  static constexpr int kRowBins = 64;
  int64_t row_reads(int layer) const;
  std::span<const int64_t> row_histogram(int layer) const;
  std::vector<int> layer_ids() const;
  // Inspection: the gates sigmoid(g) of the last apply at this layer, [n_new, streams].
  std::span<const float> last_gates(int layer) const;
  void reset();  // forget the bound sequence

  // The layer's table; replace it (same rows and dim, else strata::Error) to serve the rows
  // from another tier.
  const EngramTable& table(int layer) const;
  void set_table(int layer, std::unique_ptr<EngramTable> table);

 private:
  struct Layer;
  Layer& layer_at(int layer);
  const Layer& layer_at(int layer) const;

  int64_t hidden_ = 0, streams_ = 1, max_ngram_ = 0, heads_ = 0, kernel_ = 0;
  int32_t pad_ = 0;  // compressed pad id
  std::vector<int32_t> token_map_;
  State own_;
  State* cur_ = &own_;
  std::vector<int> slot_;  // layer id -> index in layers_, -1 when not an Engram layer
  std::vector<std::unique_ptr<Layer>> layers_;
};

struct ModelFiles;
// The Engram module of a model whose config has Engram layers (nullptr otherwise): the token
// map built from the model's tokenizer (strata::Error naming the model when it has none).
std::unique_ptr<Engram> load_engram(const ModelFiles& m, const Weights& w);

}  // namespace strata
