#include "runtime/model/model_files.h"

#include <sstream>

#include "runtime/common/error.h"
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
  for (const TensorSpec& spec : model_schema(config)) {
    const TensorEntry* e = index.find(spec.name);
    if (!e) {
      if (spec.optional) continue;
      throw Error(model_name + ": missing tensor '" + spec.name + "' (expected shape " + shape_str(spec.shape) + ")");
    }
    if (e->shape != spec.shape)
      throw Error(model_name + ": tensor '" + spec.name + "' (stored as '" + e->stored_name + "') has shape " +
                  shape_str(e->shape) + ", the config implies " + shape_str(spec.shape));
  }
}

ModelFiles open_model(const std::filesystem::path& path, const OpenOptions& opts) {
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
    try {
      m.tokenizer = Tokenizer::from_hf_dir(model_dir(path));
    } catch (const Error& e) {
      m.tokenizer_error = e.what();
    }
  }
  if (opts.require_tokenizer && !m.tokenizer) throw Error(m.tokenizer_error);
  if (opts.check_schema) check_against_schema(m.config, m.index, path.string());
  return m;
}

}  // namespace strata
