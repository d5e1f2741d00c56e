#include "runtime/model/engram.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu-kernels/scratch.h"
#include "runtime/backend/device.h"
#include "runtime/common/error.h"
#include "runtime/model/engram_token_map.h"
#include "runtime/model/model_files.h"
#include "runtime/model/weights.h"

namespace strata {
namespace {

using Buf = std::vector<float>;

// torch nn.RMSNorm with eps=None uses the float32 machine epsilon; ShortConv's norms use 1e-5.
constexpr float kGateNormEps = std::numeric_limits<float>::epsilon();
constexpr float kConvNormEps = 1e-5f;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// A 1-D integer tensor (I32 or I64) of n elements.
std::vector<int64_t> read_ints(const Weights& w, const std::string& name, int64_t n) {
  const WeightIndex& idx = w.index();
  ErrorContext where{idx.path().string(), name, -1};
  const TensorEntry* e = idx.find(name);
  if (e == nullptr) throw_error(where, "Engram tensor not found");
  where.offset = static_cast<int64_t>(e->offset);
  if (e->shape != std::vector<int64_t>{n})
    throw_error(where,
                "has shape " + shape_str(e->shape) + "; the config implies [" + std::to_string(n) + "]");
  size_t size = 0;
  if (e->type == WeightType::I32)
    size = 4;
  else if (e->type == WeightType::I64)
    size = 8;
  else
    throw_error(where, "has type " + std::string(weight_type_name(e->type)) + "; expected I32 or I64");
  const std::span<const uint8_t> bytes = idx.bytes(*e);
  if (bytes.size() != size * static_cast<size_t>(n))
    throw_error(where, "holds " + std::to_string(bytes.size()) + " bytes; expected " +
                           std::to_string(size * static_cast<size_t>(n)));
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (size_t i = 0; i < out.size(); ++i) {
    if (size == 4) {
      int32_t v;
      std::memcpy(&v, bytes.data() + 4 * i, 4);
      out[i] = v;
    } else {
      std::memcpy(&out[i], bytes.data() + 8 * i, 8);
    }
  }
  return out;
}

WeightView checked_matrix(const Weights& w, const std::string& name, int64_t rows, int64_t cols) {
  const WeightView v = w.matrix(name);
  if (v.rows != rows || v.cols != cols)
    throw_error({w.index().path().string(), name, -1},
                "is a [" + std::to_string(v.rows) + ", " + std::to_string(v.cols) +
                    "] matrix; the config implies [" + std::to_string(rows) + ", " + std::to_string(cols) +
                    "]");
  return v;
}

// Appends the f32 values of a tensor of n elements to out.
void append_vector(const Weights& w, const std::string& name, int64_t n, Buf& out) {
  const Buf v = w.vector(name);
  if (static_cast<int64_t>(v.size()) != n)
    throw_error({w.index().path().string(), name, -1},
                "has " + std::to_string(v.size()) + " elements; the config implies " + std::to_string(n));
  out.insert(out.end(), v.begin(), v.end());
}

// (x mod p) in [0, p) for p > 0, as NumPy's % on int64.
int64_t floor_mod(int64_t x, int64_t p) {
  const int64_t r = x % p;
  return r < 0 ? r + p : r;
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace

// ---------------------------------------------------------------------------------------------

MappedEngramTable::MappedEngramTable(const WeightView& w, std::string name) : w_(w), name_(std::move(name)) {
  check_weight_view(w_);
}

void MappedEngramTable::read_rows(const int64_t* rows, int64_t n, float* out) const {
  for (int64_t i = 0; i < n; ++i) {
    if (rows[i] < 0 || rows[i] >= w_.rows)
      throw Error("engram: row " + std::to_string(rows[i]) + " is outside table '" + name_ + "' (" +
                  std::to_string(w_.rows) + " rows)");
  }
  const ScratchLease<std::vector<int32_t>> lease;  // reused: no allocation per step
  std::vector<int32_t>& ids = *lease;
  ids.assign(rows, rows + n);  // within the table's rows, checked above
  host_device()->ops().gather_rows(w_, ids.data(), n, out);
}

// ---------------------------------------------------------------------------------------------

struct Engram::Layer {
  int id = 0;
  std::vector<int64_t> multipliers;          // [max_ngram_size]
  std::vector<int64_t> head_sizes, offsets;  // [heads]: prime moduli and their first table rows
  std::unique_ptr<EngramTable> table;        // [sum(head_sizes), n_embed_per_ngram / n_head_per_ngram]
  int64_t row_reads = 0;
  std::vector<int64_t> row_hist = std::vector<int64_t>(Engram::kRowBins, 0);
  WeightView value_proj;                     // [hidden, E]
  std::vector<WeightView> key_proj;          // per stream [hidden, E]
  Buf value_bias;                            // [hidden]
  Buf key_bias, norm1, norm2, conv_norm;     // [streams · hidden]
  Buf conv_w;                                // [streams · hidden, kernel]
};

Engram::Engram(const ModelConfig& c, const Weights& w, std::vector<int32_t> token_map)
    : token_map_(std::move(token_map)) {
  const EngramConfig& e = c.engram;
  hidden_ = c.hidden_size;
  streams_ = c.is_v4() ? c.hc_mult : 1;
  max_ngram_ = e.max_ngram_size;
  heads_ = int64_t{e.max_ngram_size - 1} * e.n_head_per_ngram;
  kernel_ = e.kernel_size;
  if (!e.enabled || e.layer_ids.empty()) return;

  const std::string src = c.source.empty() ? "config" : c.source;
  if (token_map_.empty()) throw Error("engram: empty token map");
  if (e.pad_id < 0 || static_cast<size_t>(e.pad_id) >= token_map_.size())
    throw_error({src, "engram.pad_id", -1}, "pad_id " + std::to_string(e.pad_id) +
                                                " is outside the vocabulary (" +
                                                std::to_string(token_map_.size()) + " ids)");
  if (streams_ < 1 || kernel_ < 1 || e.n_head_per_ngram < 1 || e.n_embed_per_ngram % e.n_head_per_ngram != 0)
    throw_error({src, "engram", -1},
                "needs hc_mult >= 1, kernel_size >= 1 and n_embed_per_ngram a multiple of "
                "n_head_per_ngram");
  pad_ = token_map_[static_cast<size_t>(e.pad_id)];

  const auto sizes = engram_head_sizes(e);
  const int64_t dim = e.n_embed_per_ngram / e.n_head_per_ngram, ew = heads_ * dim, ch = streams_ * hidden_;
  const std::string path = w.index().path().string();
  for (int id : e.layer_ids) {
    if (id < 0) throw_error({src, "engram.layer_ids", -1}, "negative layer id " + std::to_string(id));
    if (static_cast<size_t>(id) >= slot_.size()) slot_.resize(static_cast<size_t>(id) + 1, -1);
    if (slot_[static_cast<size_t>(id)] >= 0) continue;
    slot_[static_cast<size_t>(id)] = static_cast<int>(layers_.size());
    auto L = std::make_unique<Layer>();
    L->id = id;
    const std::string p = "layers." + std::to_string(id) + ".engram.";

    L->multipliers = read_ints(w, p + "multipliers", max_ngram_);
    for (size_t k = 0; k < L->multipliers.size(); ++k) {
      const int64_t m = L->multipliers[k];
      if (m <= 0 || m % 2 == 0)
        throw_error({path, p + "multipliers", -1}, "multiplier " + std::to_string(k) + " is " +
                                                       std::to_string(m) +
                                                       "; expected a positive odd integer");
    }
    L->head_sizes = read_ints(w, p + "head_sizes", heads_);
    const std::vector<int64_t>& want = sizes.at(id);
    int64_t total = 0;
    for (int64_t j = 0; j < heads_; ++j) {
      const int64_t s = L->head_sizes[static_cast<size_t>(j)];
      if (s != want[static_cast<size_t>(j)])
        throw_error({path, p + "head_sizes", -1},
                    "head " + std::to_string(j) + " has size " + std::to_string(s) + "; the config implies " +
                        std::to_string(want[static_cast<size_t>(j)]) + " (engram_head_sizes)");
      L->offsets.push_back(total);
      total += s;
    }
    const std::string table_name = p + "multi_head_embedding.embedding.weight";
    auto table = std::make_unique<MappedEngramTable>(w.matrix(table_name), table_name);
    if (table->rows() != total)
      throw_error({path, p + "head_sizes", -1}, "head sizes sum to " + std::to_string(total) + " but '" +
                                                    table_name + "' has " + std::to_string(table->rows()) +
                                                    " rows");
    if (table->dim() != dim)
      throw_error({path, table_name, -1},
                  "has rows of " + std::to_string(table->dim()) +
                      "; the config implies n_embed_per_ngram / n_head_per_ngram = " + std::to_string(dim));
    L->table = std::move(table);

    L->value_proj = checked_matrix(w, p + "value_proj.weight", hidden_, ew);
    append_vector(w, p + "value_proj.bias", hidden_, L->value_bias);
    for (int64_t i = 0; i < streams_; ++i) {
      const std::string s = std::to_string(i);
      L->key_proj.push_back(checked_matrix(w, p + "key_projs." + s + ".weight", hidden_, ew));
      append_vector(w, p + "key_projs." + s + ".bias", hidden_, L->key_bias);
      append_vector(w, p + "norm1." + s + ".weight", hidden_, L->norm1);
      append_vector(w, p + "norm2." + s + ".weight", hidden_, L->norm2);
      append_vector(w, p + "short_conv.norms." + s + ".weight", hidden_, L->conv_norm);
    }
    append_vector(w, p + "short_conv.conv.weight", ch * kernel_, L->conv_w);
    layers_.push_back(std::move(L));
  }
  own_ = new_state();
}

Engram::State Engram::new_state() const {
  State s;
  s.recent.assign(static_cast<size_t>(std::max<int64_t>(max_ngram_ - 1, 0)), pad_);
  s.layers.resize(layers_.size());
  for (LayerState& ls : s.layers) ls.history.assign(static_cast<size_t>((kernel_ - 1) * max_ngram_ * streams_ * hidden_), 0.0f);
  return s;
}

Engram::~Engram() = default;
Engram::Engram(Engram&& o) noexcept { *this = std::move(o); }
Engram& Engram::operator=(Engram&& o) noexcept {
  const bool own = o.cur_ == &o.own_;
  hidden_ = o.hidden_;
  streams_ = o.streams_;
  max_ngram_ = o.max_ngram_;
  heads_ = o.heads_;
  kernel_ = o.kernel_;
  pad_ = o.pad_;
  token_map_ = std::move(o.token_map_);
  own_ = std::move(o.own_);
  cur_ = own ? &own_ : o.cur_;
  slot_ = std::move(o.slot_);
  layers_ = std::move(o.layers_);
  return *this;
}

bool Engram::is_layer(int layer) const {
  return layer >= 0 && static_cast<size_t>(layer) < slot_.size() && slot_[static_cast<size_t>(layer)] >= 0;
}

Engram::Layer& Engram::layer_at(int layer) {
  return const_cast<Layer&>(static_cast<const Engram*>(this)->layer_at(layer));
}

const Engram::Layer& Engram::layer_at(int layer) const {
  if (!is_layer(layer)) throw Error("engram: layer " + std::to_string(layer) + " is not an Engram layer");
  return *layers_[static_cast<size_t>(slot_[static_cast<size_t>(layer)])];
}

void Engram::begin_step(std::span<const int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size()), back = max_ngram_ - 1;
  for (int64_t t = 0; t < n; ++t) {
    const int32_t id = tokens[static_cast<size_t>(t)];
    if (id < 0 || static_cast<size_t>(id) >= token_map_.size())
      throw Error("engram: token id " + std::to_string(id) + " at position " + std::to_string(t) +
                  " of the step is outside the vocabulary (" + std::to_string(token_map_.size()) + " ids)");
  }
  State& st = *cur_;
  st.step_n = n;
  st.n_past += n;
  if (layers_.empty()) return;

  // ctx = the last max_ngram_size-1 compressed ids, then this step's.
  const ScratchLease<std::vector<int32_t>> ctx_lease;
  std::vector<int32_t>& ctx = *ctx_lease;
  ctx.assign(st.recent.begin(), st.recent.end());
  for (int32_t id : tokens) ctx.push_back(token_map_[static_cast<size_t>(id)]);
  const int64_t per_order = heads_ / back;
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer* L = layers_[li].get();
    std::vector<int64_t>& rows = st.layers[li].rows;
    rows.resize(static_cast<size_t>(n * heads_));
    const std::vector<int64_t>& m = L->multipliers;
    for (int64_t t = 0; t < n; ++t) {
      const int32_t* cur = ctx.data() + back + t;  // cur[-k] = tok_k
      // Two's-complement products and XOR: the bits NumPy's wrapping int64 arithmetic gives.
      uint64_t mix = static_cast<uint64_t>(cur[0]) * static_cast<uint64_t>(m[0]);
      int64_t* out = rows.data() + t * heads_;
      for (int64_t order = 2; order <= max_ngram_; ++order) {
        mix ^= static_cast<uint64_t>(cur[-(order - 1)]) *
               static_cast<uint64_t>(m[static_cast<size_t>(order - 1)]);
        for (int64_t j = 0; j < per_order; ++j) {
          const int64_t h = (order - 2) * per_order + j;
          out[h] = floor_mod(static_cast<int64_t>(mix), L->head_sizes[static_cast<size_t>(h)]) +
                   L->offsets[static_cast<size_t>(h)];
        }
      }
    }
  }
  st.recent.assign(ctx.end() - back, ctx.end());
  for (size_t li = 0; li < layers_.size(); ++li) {
    Layer& L = *layers_[li];
    const std::vector<int64_t>& rows = st.layers[li].rows;
    const int64_t n_rows = L.table->rows();
    for (int64_t r : rows)
      if (r >= 0 && r < n_rows) ++L.row_hist[static_cast<size_t>(r * kRowBins / n_rows)];
    L.row_reads += static_cast<int64_t>(rows.size());
    L.table->prefetch(rows.data(), static_cast<int64_t>(rows.size()));
  }
}

int64_t Engram::row_reads(int layer) const { return layer_at(layer).row_reads; }
std::span<const int64_t> Engram::row_histogram(int layer) const { return layer_at(layer).row_hist; }
std::vector<int> Engram::layer_ids() const {
  std::vector<int> ids;
  for (const auto& L : layers_) ids.push_back(L->id);
  return ids;
}

std::span<const int64_t> Engram::step_rows(int layer) const {
  (void)layer_at(layer);  // throws for a layer without Engram
  return cur_->layers[static_cast<size_t>(slot_[static_cast<size_t>(layer)])].rows;
}

std::span<const float> Engram::last_gates(int layer) const {
  (void)layer_at(layer);
  return cur_->layers[static_cast<size_t>(slot_[static_cast<size_t>(layer)])].gates;
}

void Engram::apply(int layer, float* h, int64_t n) {
  Layer& L = layer_at(layer);
  const State& st = *cur_;
  LayerState& S = cur_->layers[static_cast<size_t>(slot_[static_cast<size_t>(layer)])];
  if (n != st.step_n)
    throw Error("engram: layer " + std::to_string(layer) + " applied to " + std::to_string(n) +
                " tokens; the step has " + std::to_string(st.step_n));
  if (S.applied != st.n_past - st.step_n)
    throw Error("engram: layer " + std::to_string(layer) + " has seen " + std::to_string(S.applied) +
                " tokens of " + std::to_string(st.n_past - st.step_n) +
                " before this step (applied twice, or a step was skipped)");
  if (n == 0) return;

  const int64_t dim = L.table->dim(), ew = heads_ * dim, C = streams_ * hidden_;
  const int64_t dil = max_ngram_, back = (kernel_ - 1) * dil;

  const auto sz = [](int64_t k) { return static_cast<size_t>(k); };
  const ScratchFloats e(sz(n * ew));
  L.table->read_rows(S.rows.data(), n * heads_, e.data());

  const Ops& ops = host_device()->ops();
  const ScratchFloats value(sz(n * hidden_));
  ops.linear(L.value_proj, e.data(), n, value.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t d = 0; d < hidden_; ++d)
      value[static_cast<size_t>(t * hidden_ + d)] += L.value_bias[static_cast<size_t>(d)];

  // Gates per stream: agreement of the normalized key (from e) and query (h_i).
  S.gates.assign(static_cast<size_t>(n * streams_), 0.0f);
  const ScratchFloats key(sz(n * hidden_)), q(sz(hidden_));
  const double inv_sqrt_hidden = 1.0 / std::sqrt(static_cast<double>(hidden_));
  for (int64_t i = 0; i < streams_; ++i) {
    ops.linear(L.key_proj[static_cast<size_t>(i)], e.data(), n, key.data());
    const float* kb = L.key_bias.data() + i * hidden_;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t d = 0; d < hidden_; ++d) key[static_cast<size_t>(t * hidden_ + d)] += kb[d];
    ops.rms_norm(key.data(), L.norm1.data() + i * hidden_, key.data(), n, hidden_, kGateNormEps);
    for (int64_t t = 0; t < n; ++t) {
      ops.rms_norm(h + (t * streams_ + i) * hidden_, L.norm2.data() + i * hidden_, q.data(), 1, hidden_,
                   kGateNormEps);
      const float* k = key.data() + t * hidden_;
      double dot = 0;
      for (int64_t d = 0; d < hidden_; ++d) dot += static_cast<double>(k[d]) * q[static_cast<size_t>(d)];
      const double g = dot * inv_sqrt_hidden;
      const double s = g > 0 ? 1.0 : (g < 0 ? -1.0 : 0.0);
      const float z = static_cast<float>(s * std::sqrt(std::max(std::fabs(g), 1e-6)));
      S.gates[static_cast<size_t>(t * streams_ + i)] = 1.0f / (1.0f + std::exp(-z));
    }
  }

  // v = gate · value; x = [history; RMSNorm(v)] over channels c = i·hidden + d.
  const ScratchFloats v(sz(n * C)), x(sz((back + n) * C));
  std::copy(S.history.begin(), S.history.end(), x.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < streams_; ++i) {
      const float a = S.gates[static_cast<size_t>(t * streams_ + i)];
      float* vi = v.data() + t * C + i * hidden_;
      for (int64_t d = 0; d < hidden_; ++d) vi[d] = a * value[static_cast<size_t>(t * hidden_ + d)];
      ops.rms_norm(vi, L.conv_norm.data() + i * hidden_, x.data() + (back + t) * C + i * hidden_, 1, hidden_,
                   kConvNormEps);
    }

  // Causal depthwise convolution (dilation max_ngram_size), SiLU, residual.
  for (int64_t t = 0; t < n; ++t) {
    float* ht = h + t * C;
    const float* vt = v.data() + t * C;
    for (int64_t c = 0; c < C; ++c) {
      const float* wc = L.conv_w.data() + c * kernel_;
      float y = 0;
      for (int64_t j = 0; j < kernel_; ++j)
        y += wc[j] * x[static_cast<size_t>((back + t - (kernel_ - 1 - j) * dil) * C + c)];
      ht[c] += vt[c] + silu(y);
    }
  }
  std::copy_n(x.data() + n * C, back * C, S.history.begin());
  S.applied += n;
}

void Engram::reset() { *cur_ = new_state(); }

const EngramTable& Engram::table(int layer) const { return *layer_at(layer).table; }

void Engram::set_table(int layer, std::unique_ptr<EngramTable> table) {
  Layer& L = layer_at(layer);
  if (!table || table->rows() != L.table->rows() || table->dim() != L.table->dim())
    throw Error("engram: a replacement table for layer " + std::to_string(layer) + " must have " +
                std::to_string(L.table->rows()) + " rows of " + std::to_string(L.table->dim()));
  L.table = std::move(table);
}

std::unique_ptr<Engram> load_engram(const ModelFiles& m, const Weights& w) {
  if (!m.config.engram.enabled) return nullptr;
  if (!m.tokenizer)
    throw Error(m.path.string() + ": Engram layers hash compressed token ids, built from the tokenizer, and the "
                "tokenizer could not be loaded: " + m.tokenizer_error);
  return std::make_unique<Engram>(m.config, w, engram_token_map(*m.tokenizer));
}

}  // namespace strata
