// Every tensor of a checkpoint under its canonical name: type, logical shape, file and exact
// byte range. Built in place from safetensors (single or sharded) or GGUF (single or split);
// GGUF stacked expert tensors are expanded into one entry per expert. Tensor bytes are read
// through read-only memory maps, never copied.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cpu-kernels/weight_type.h"
#include "runtime/format/gguf.h"
#include "runtime/format/names.h"

namespace strata {

class MappedFile;

struct IndexedFile {
  std::filesystem::path path;
  uint64_t size = 0;
};

struct TensorEntry {
  std::string name;         // canonical (the stored name when it maps to none)
  std::string stored_name;  // as in the file (for GGUF expert slices: the stacked name)
  WeightType type;          // logical: F8_E4M3 for fp8, MXFP4 for packed fp4 with E8M0 per-32 scales
  WeightType stored_type;
  std::vector<int64_t> shape;  // logical shape, outermost first (GGUF ne reversed); MXFP4: unpacked
  uint32_t file = 0;
  uint64_t offset = 0;  // absolute byte offset of THIS tensor (one expert for expert slices)
  uint64_t nbytes = 0;
  int layer = -1, expert = -1;
  TensorClass cls = TensorClass::Other;
  std::string scale;  // canonical name of the block-scale companion, or empty
};

class WeightIndex {
 public:
  enum class Format { Safetensors, Gguf };

  // model: a folder (model.safetensors.index.json, model.safetensors, one *.safetensors, or one
  // *.gguf / the parts of one split GGUF), or a .safetensors, index .json or .gguf file (any
  // part of a split). Layers at or past num_hidden_layers (when >= 0) are classified Mtp.
  // Throws strata::Error naming the file and tensor on any inconsistency.
  static WeightIndex open(const std::filesystem::path& model, int num_hidden_layers = -1);

  WeightIndex(WeightIndex&&) noexcept;
  WeightIndex& operator=(WeightIndex&&) noexcept;
  ~WeightIndex();

  Format format() const { return format_; }
  const std::filesystem::path& path() const { return path_; }
  const std::vector<IndexedFile>& files() const { return files_; }
  const std::vector<TensorEntry>& tensors() const { return tensors_; }

  const TensorEntry* find(std::string_view canonical) const;
  // Throws "tensor 'X' not found in <model path>".
  const TensorEntry& at(std::string_view canonical) const;
  // w: "w1" | "w2" | "w3" (gate, down, up).
  const TensorEntry& expert(int layer, int expert, std::string_view w) const;
  // Zero-copy view of the entry's bytes in a read-only map of its file (mapped on first use;
  // safe to call from several threads).
  std::span<const uint8_t> bytes(const TensorEntry& e) const;
  // GGUF metadata of a part (nullptr for safetensors).
  const GgufFile* gguf(size_t file) const;
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Reclassifies: entries of layers >= n become Mtp, others get their name's class.
  void set_num_hidden_layers(int n);

 private:
  struct Maps;
  WeightIndex();
  void add(TensorEntry e);
  void resolve_scales();

  std::filesystem::path path_;
  Format format_ = Format::Safetensors;
  std::vector<IndexedFile> files_;
  std::vector<TensorEntry> tensors_;
  std::unordered_map<std::string, size_t> by_name_;
  std::vector<GgufFile> gguf_;
  std::vector<std::string> warnings_;
  std::unique_ptr<Maps> maps_;

  friend class WeightIndexBuilder;
};

}  // namespace strata
