#include "runtime/model/summary.h"

#include <cstdio>
#include <sstream>

#include "runtime/common/units.h"
#include "runtime/format/names.h"

namespace strata {
namespace {

bool is_scale(const std::string& name) { return name.size() > 6 && name.compare(name.size() - 6, 6, ".scale") == 0; }

std::string human_count(int64_t n) {
  char buf[32];
  const double v = static_cast<double>(n);
  if (n >= 1000000000) std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  else if (n >= 1000000) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (n >= 1000) std::snprintf(buf, sizeof buf, "%.2fK", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

}  // namespace

ModelSummary summarize(const ModelFiles& m) {
  ModelSummary s;
  const ModelConfig& c = m.config;
  s.arch = std::string(arch_name(c.arch));
  s.format = m.index.format() == WeightIndex::Format::Gguf ? "gguf" : "safetensors";
  s.n_files = m.index.files().size();
  s.n_tensors = m.index.tensors().size();
  for (const auto& f : m.index.files()) s.file_bytes += f.size;

  int64_t routed = 0;
  for (const TensorEntry& t : m.index.tensors()) {
    const std::string cls(class_name(t.cls));
    s.tensor_bytes += t.nbytes;
    s.bytes_by_class[cls] += t.nbytes;
    s.bytes_by_type[std::string(weight_type_name(t.type))] += t.nbytes;
    if (is_scale(t.name)) continue;  // block scales are bytes, not parameters
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    if (t.cls == TensorClass::Mtp) {
      s.mtp_params += n;
      continue;
    }
    s.params_by_class[cls] += n;
    s.total_params += n;
    if (t.cls == TensorClass::RoutedExpert) routed += n;
  }
  const int64_t active_routed =
      c.n_routed_experts > 0 ? static_cast<int64_t>(static_cast<long double>(routed) * c.num_experts_per_tok /
                                                    c.n_routed_experts)
                             : 0;
  s.active_params = s.total_params - routed + active_routed;
  return s;
}

nlohmann::json summary_json(const ModelSummary& s) {
  return {{"arch", s.arch},
          {"format", s.format},
          {"files", s.n_files},
          {"tensors", s.n_tensors},
          {"total_params", s.total_params},
          {"active_params", s.active_params},
          {"mtp_params", s.mtp_params},
          {"file_bytes", s.file_bytes},
          {"tensor_bytes", s.tensor_bytes},
          {"header_bytes", s.file_bytes - s.tensor_bytes},
          {"bytes_by_class", s.bytes_by_class},
          {"params_by_class", s.params_by_class},
          {"bytes_by_type", s.bytes_by_type}};
}

std::string summary_text(const ModelFiles& m, const ModelSummary& s) {
  const ModelConfig& c = m.config;
  std::ostringstream o;
  o << "model        " << m.path.string() << "\n";
  o << "architecture " << s.arch << " (" << s.format << ", " << s.n_files << " file" << (s.n_files == 1 ? "" : "s")
    << ", " << s.n_tensors << " tensors)\n";
  o << "shape        " << c.num_hidden_layers << " layers, hidden " << c.hidden_size << ", " << c.num_attention_heads
    << " heads, " << c.n_routed_experts << " routed experts (top-" << c.num_experts_per_tok << ") + "
    << c.n_shared_experts << " shared, vocab " << c.vocab_size << "\n";
  o << "parameters   " << human_count(s.total_params) << " total, " << human_count(s.active_params)
    << " active per token";
  if (s.mtp_params) o << ", " << human_count(s.mtp_params) << " in MTP layers";
  o << "\n";
  o << "tokenizer    "
    << (m.tokenizer ? std::to_string(m.tokenizer->vocab_size()) + " tokens" : "none (" + m.tokenizer_error + ")")
    << "\n\n";
  auto table = [&](const char* title, const std::map<std::string, uint64_t>& rows) {
    char line[160];
    std::snprintf(line, sizeof line, "%-16s %16s %12s %7s\n", title, "bytes", "", "share");
    o << line;
    for (const auto& [k, v] : rows) {
      std::snprintf(line, sizeof line, "  %-14s %16llu %12s %6.2f%%\n", k.c_str(), static_cast<unsigned long long>(v),
                    human_bytes(v).c_str(), s.tensor_bytes ? 100.0 * v / s.tensor_bytes : 0.0);
      o << line;
    }
  };
  table("by class", s.bytes_by_class);
  o << "\n";
  table("by weight type", s.bytes_by_type);
  o << "\n";
  char line[200];
  std::snprintf(line, sizeof line, "tensor data %llu B + headers/padding %llu B = files %llu B (%s)\n",
                static_cast<unsigned long long>(s.tensor_bytes),
                static_cast<unsigned long long>(s.file_bytes - s.tensor_bytes),
                static_cast<unsigned long long>(s.file_bytes), human_bytes(s.file_bytes).c_str());
  o << line;
  return o.str();
}

}  // namespace strata
