#include "runtime/model/plan_items.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "cpu-kernels/weight_type.h"
#include "runtime/common/error.h"
#include "runtime/format/names.h"
#include "runtime/model/engram_store.h"
#include "runtime/model/schema.h"

namespace strata {
namespace {

double expert_probability(const ModelConfig& c) {
  return c.n_routed_experts > 0 ? double(c.num_experts_per_tok) / double(c.n_routed_experts) : 0.0;
}

// What the forward pass computes on the CPU even when a GPU device holds the plan's GPU tier:
// the final and FFN norms, the routers, the mHC mixing of the FFN sublayer and the head,
// Engram's projections and anything unclassified. What runs with a layer's attention (its norm,
// V4's mHC around it) goes where the attention goes; the head runs on the device.
bool runs_with_attention(TensorClass cls, const std::string& name) {
  return (cls == TensorClass::Norm && name.find(".attn_norm.") != std::string::npos) ||
         (cls == TensorClass::HyperConnection && name.find(".hc_attn_") != std::string::npos);
}

bool runs_on_host(TensorClass cls, const std::string& name) {
  if (runs_with_attention(cls, name)) return false;
  switch (cls) {
    case TensorClass::Norm:
    case TensorClass::Router:
    case TensorClass::HyperConnection:
    case TensorClass::Engram:
    case TensorClass::Other: return true;
    default: return false;
  }
}

bool is_gathered(TensorClass cls, const std::string& name) {
  return cls == TensorClass::Embedding ||
         (cls == TensorClass::Engram && name.find("multi_head_embedding") != std::string::npos);
}

// The share of a gathered table's bytes one decoded token reads — the embedding one row of
// vocab_size, an Engram layer's table one row per (n-gram order, head) out of all its heads'
// rows — and, through nvme_factor, how many bytes an Engram row costs on NVMe (its page).
double gathered_reads(const ModelConfig& c, TensorClass cls, int layer, double& nvme_factor, uint64_t bytes) {
  int64_t rows = 0, per_token = 0;
  if (cls == TensorClass::Embedding) {
    rows = c.vocab_size;
    per_token = 1;
  } else if (c.engram.enabled) {
    const auto sizes = engram_head_sizes(c.engram);
    if (const auto it = sizes.find(layer); it != sizes.end())
      for (int64_t s : it->second) rows += s;
    per_token = int64_t{c.engram.max_ngram_size - 1} * c.engram.n_head_per_ngram;
  }
  if (rows <= 0 || bytes == 0) return 0;
  // Engram rows are paged (engram_store.h); the embedding is read from the memory map.
  if (cls != TensorClass::Embedding)
    nvme_factor = std::max(1.0, std::floor(double(kEngramPageBytes) / (double(bytes) / double(rows))));
  return std::min(1.0, double(per_token) / double(rows));
}

// Items of one model from (name, bytes) pairs: experts grouped, MTP left out.
PlanInput build(const ModelConfig& c, const std::string& model,
                const std::vector<std::pair<std::string, uint64_t>>& tensors) {
  PlanInput in;
  in.model = model;
  in.n_layers = static_cast<int>(c.num_hidden_layers);
  in.n_experts = static_cast<int>(c.n_routed_experts);
  in.top_k = static_cast<int>(c.num_experts_per_tok);
  kv_layout(c, in);
  in.max_context = c.max_position_embeddings;
  std::map<std::pair<int, int>, size_t> expert_item;
  uint64_t mtp = 0;
  for (const auto& [name, bytes] : tensors) {
    const int layer = layer_of(name);
    const TensorClass cls = classify(name, static_cast<int>(c.num_hidden_layers));
    if (cls == TensorClass::Mtp || layer >= c.num_hidden_layers) {
      mtp += bytes;
      continue;
    }
    const int expert = expert_of(name);
    if (expert >= 0) {
      auto [it, fresh] = expert_item.try_emplace({layer, expert}, in.items.size());
      if (fresh) {
        PlanItem item;
        item.name = "layers." + std::to_string(layer) + ".ffn.experts." + std::to_string(expert);
        item.cls = std::string(class_name(TensorClass::RoutedExpert));
        item.layer = layer;
        item.expert = expert;
        item.reads_per_token = expert_probability(c);
        in.items.push_back(item);
      }
      in.items[it->second].bytes += bytes;
      continue;
    }
    PlanItem item;
    item.name = name;
    item.cls = std::string(class_name(cls));
    item.layer = layer;
    item.bytes = bytes;
    item.gathered = is_gathered(cls, name);
    item.reads_per_token = item.gathered ? gathered_reads(c, cls, layer, item.nvme_read_factor, bytes) : 1.0;
    item.host_only = runs_on_host(cls, name);
    item.with_attention = runs_with_attention(cls, name);
    in.items.push_back(item);
  }
  (void)mtp;
  return in;
}

uint64_t matrix_bytes(WeightType t, int64_t rows, int64_t cols) {
  const auto& info = weight_type_info(t);
  const int64_t blocks = (cols + info.block_elems - 1) / info.block_elems;
  return static_cast<uint64_t>(rows) * static_cast<uint64_t>(blocks) * static_cast<uint64_t>(info.block_bytes);
}

}  // namespace

void kv_layout(const ModelConfig& c, PlanInput& in, bool bf16) {
  constexpr uint64_t f = sizeof(float);  // the caches hold f32 rows on every device
  const uint64_t lf = bf16 ? sizeof(uint16_t) : f;  // but the keys bf16 with bf16
  in.kv_fixed_bytes = 0;
  in.kv_terms.clear();
  uint64_t per_token = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (!c.is_v4()) {  // runtime/model/deepseek_v3.cpp: V3Sequence
      uint64_t row = static_cast<uint64_t>(c.kv_lora_rank + c.qk_rope_head_dim) * lf;
      if (c.arch == Arch::DeepseekV32) row += static_cast<uint64_t>(c.index_head_dim) * lf;
      in.kv_terms.push_back({1, row, false});
      per_token += row;
      continue;
    }
    // runtime/model/deepseek_v4.cpp: the sliding window's ring and, per compressor
    // (v4_compressor.cpp), its block buffers and one row per `ratio` tokens.
    const uint64_t D = static_cast<uint64_t>(c.head_dim), ID = static_cast<uint64_t>(c.index_head_dim);
    in.kv_fixed_bytes += static_cast<uint64_t>(c.sliding_window) * D * lf;
    const int64_t r = c.compress_ratio(l);
    if (r <= 0) continue;
    auto compressor = [&](uint64_t dim, uint64_t row_elem) {
      const uint64_t width = (r == 4 ? 2 : 1) * dim, block = static_cast<uint64_t>(r) * width * f;
      in.kv_fixed_bytes += block * (r == 4 ? 4 : 2);
      in.kv_terms.push_back({r, dim * row_elem, true});
      per_token += dim * row_elem / static_cast<uint64_t>(r);
    };
    compressor(D, lf);
    if (r == 4) compressor(ID, lf);
  }
  in.kv_bytes_per_token = per_token;
}

PlanInput plan_input_from_model(const ModelFiles& m) {
  std::vector<std::pair<std::string, uint64_t>> tensors;
  tensors.reserve(m.index.tensors().size());
  for (const TensorEntry& e : m.index.tensors()) tensors.emplace_back(e.name, e.nbytes);
  return build(m.config, m.path.filename().string(), tensors);
}

PlanInput plan_input_from_config(const ModelConfig& c, const std::string& weight_type, const std::string& name) {
  const bool fp8 = weight_type == "fp8", fp4 = weight_type == "fp4";
  std::optional<WeightType> wt;
  if (!fp8 && !fp4) {
    wt = weight_type_from_name(weight_type);
    const bool ok = wt && (is_gguf_block_type(*wt) || *wt == WeightType::F16 || *wt == WeightType::BF16 ||
                           *wt == WeightType::F32);
    if (!ok)
      throw Error("--weight-type: '" + weight_type + "' is not one of fp8 fp4 bf16 f16 f32 " + gguf_block_type_names());
  }
  const bool gguf = wt && *wt != WeightType::BF16 && *wt != WeightType::F32;
  std::vector<std::pair<std::string, uint64_t>> tensors;
  for (const TensorSpec& s : model_schema(c)) {
    const int64_t cols = s.shape.empty() ? 1 : s.shape.back();
    const int64_t rows = s.numel() / std::max<int64_t>(cols, 1);
    uint64_t bytes = 0;
    switch (s.kind) {
      case TensorSpec::Kind::Norm:
      case TensorSpec::Kind::Bias:
      case TensorSpec::Kind::Scalar:
      case TensorSpec::Kind::IntTable: bytes = static_cast<uint64_t>(s.numel()) * 4; break;
      case TensorSpec::Kind::Matrix: bytes = static_cast<uint64_t>(s.numel()) * (gguf ? 4 : 2); break;
      case TensorSpec::Kind::Table: bytes = wt ? matrix_bytes(*wt, rows, cols) : static_cast<uint64_t>(s.numel()) * 2; break;
      case TensorSpec::Kind::Weight:
        if (wt) {
          bytes = matrix_bytes(*wt, rows, cols);
        } else if (fp4 && expert_of(s.name) >= 0) {
          bytes = static_cast<uint64_t>(s.numel()) / 2 + static_cast<uint64_t>(rows * ((cols + 31) / 32));
        } else {
          const uint64_t scale = c.is_v4() ? 1 : 4;
          bytes = static_cast<uint64_t>(s.numel()) +
                  static_cast<uint64_t>((rows + 127) / 128) * static_cast<uint64_t>((cols + 127) / 128) * scale;
        }
        break;
    }
    tensors.emplace_back(s.name, bytes);
  }
  return build(c, name + " (" + weight_type + ")", tensors);
}

}  // namespace strata
