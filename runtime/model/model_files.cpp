#include "runtime/model/model_files.h"

#include <set>

#include <sstream>

#include "cpu-kernels/weight_type.h"
#include "runtime/common/error.h"
#include "runtime/format/names.h"
#include "runtime/model/schema.h"

namespace strata {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

// The folder of an HF model: the path itself, or the folder of a .safetensors / index file
// given in its place (config.json and the tokenizer sit beside it).
std::filesystem::path model_dir(const std::filesystem::path& p) {
  if (std::filesystem::is_directory(p)) return p;
  return p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
}

}  // namespace

void check_against_schema(const ModelConfig& config, const WeightIndex& index, const std::string& model_name) {
  std::set<std::string> used;
  for (const TensorSpec& spec : model_schema(config)) {
    used.insert(spec.name);
    const TensorEntry* e = index.find(spec.name);
    if (!e) {
      if (spec.optional) continue;
      throw Error(model_name + ": missing tensor '" + spec.name + "' (expected shape " + shape_str(spec.shape) + ")");
    }
    if (e->shape != spec.shape)
      throw Error(model_name + ": tensor '" + spec.name + "' (stored as '" + e->stored_name + "') has shape " +
                  shape_str(e->shape) + ", the config implies " + shape_str(spec.shape));
    // Integer tables are integers; everything else is multiplied or added as real values.
    const bool int_table = spec.kind == TensorSpec::Kind::IntTable;
    if (!int_table && !weight_type_info(e->type).is_float)
      throw Error(model_name + ": tensor '" + spec.name + "' (stored as '" + e->stored_name + "') is stored as " +
                  std::string(weight_type_name(e->type)) + ", an integer type, where a weight is expected");
    if (e->scale.size()) used.insert(e->scale);
  }
  // A weight of the model's own layers that the config does not use (n_shared_experts: 0 over
  // files that hold shared experts, fewer routed experts than stored) would be dropped without
  // a word, and the output would be another model's.
  for (const TensorEntry& e : index.tensors()) {
    if (used.count(e.name) || e.cls == TensorClass::Mtp || e.cls == TensorClass::Other) continue;
    const bool companion = e.name.size() > 6 && e.name.compare(e.name.size() - 6, 6, ".scale") == 0;
    if (companion) continue;  // reported with its weight
    throw Error(model_name + ": tensor '" + e.stored_name + "' (" + std::string(class_name(e.cls)) +
                ") is in the files but this config does not use it; check n_shared_experts, n_routed_experts, "
                "first_k_dense_replace and num_hidden_layers in the config");
  }
}

ModelFiles open_model(const std::filesystem::path& path, const OpenOptions& opts) {
  if (path.empty()) throw Error("the model path is empty: give a model folder, a .safetensors or a .gguf file");
  if (!std::filesystem::exists(path)) throw Error(path.string() + ": no such file or directory");
  // Opened before the aggregate is built: an exception thrown inside aggregate
  // initialization destroys already-built members twice under GCC 12.
  WeightIndex index = WeightIndex::open(path);
  ModelFiles m{path, {}, std::move(index), std::nullopt, {}};
  if (m.index.format() == WeightIndex::Format::Gguf) {
    const GgufFile* g = m.index.gguf(0);
    const nlohmann::json md = g->metadata_json();
    m.config = config_from_gguf_metadata(md, g->path);
    try {
      m.tokenizer = Tokenizer::from_gguf_metadata(md, g->path);
    } catch (const Error& e) {
      m.tokenizer_error = e.what();
    }
  } else {
    const auto cfg = model_dir(path) / "config.json";
    if (!std::filesystem::exists(cfg))
      throw Error(path.string() + ": an HF model needs config.json beside its safetensors files (looked for " +
                  cfg.string() + ")");
    m.config = load_hf_config(cfg);
    // Where HF generation reads its stop ids; a model may list more there than in config.json.
    if (const auto gen = model_dir(path) / "generation_config.json"; std::filesystem::exists(gen))
      add_generation_config_eos(m.config, gen);
    try {
      m.tokenizer = Tokenizer::from_hf_dir(model_dir(path));
    } catch (const Error& e) {
      m.tokenizer_error = e.what();
    }
  }
  // A tokenizer whose ids pass the model's vocabulary would feed the embedding rows it lacks.
  if (m.tokenizer && static_cast<int64_t>(m.tokenizer->vocab_size()) > m.config.vocab_size) {
    const std::string where = m.index.format() == WeightIndex::Format::Gguf
                                  ? path.string()
                                  : (model_dir(path) / "tokenizer.json").string();
    m.tokenizer_error = where + ": the tokenizer has ids up to " + std::to_string(m.tokenizer->vocab_size() - 1) +
                        ", outside the model's vocabulary of " + std::to_string(m.config.vocab_size) +
                        " (vocab_size): a tokenizer of another model?";
    m.tokenizer.reset();
  }
  // Generation stops at every EOS id the config lists, not only the tokenizer's.
  if (m.tokenizer) {
    const int64_t config_eos[1] = {m.config.eos_token_id};
    m.tokenizer->add_eos_ids(config_eos);
    m.tokenizer->add_eos_ids(m.config.extra_eos_token_ids);
  }
  if (opts.require_tokenizer && !m.tokenizer) throw Error(m.tokenizer_error);
  if (opts.check_schema) check_against_schema(m.config, m.index, path.string());
  return m;
}

}  // namespace strata
