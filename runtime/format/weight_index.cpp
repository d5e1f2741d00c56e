#include "runtime/format/weight_index.h"

#include <algorithm>
#include <mutex>

#include "runtime/common/error.h"
#include "runtime/format/gguf_split.h"
#include "runtime/format/mapped_file.h"
#include "runtime/format/safetensors.h"

namespace strata {

struct WeightIndex::Maps {
  std::mutex mu;
  std::vector<std::unique_ptr<MappedFile>> files;
};

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool has_ext(const std::filesystem::path& p, std::string_view ext) { return p.extension() == ext; }

bool is_split_first_part(const std::filesystem::path& p) {
  return p.filename().string().find("-00001-of-") != std::string::npos;
}

// The files a folder holds, by the rules of WeightIndex::open.
std::filesystem::path resolve_dir(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> st, gg, idx;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const auto& p = e.path();
    if (has_ext(p, ".safetensors")) st.push_back(p);
    if (has_ext(p, ".gguf")) gg.push_back(p);
    if (p.filename().string().ends_with(".safetensors.index.json")) idx.push_back(p);
  }
  if (ec) throw_error({dir.string(), "", -1}, "cannot list folder: " + ec.message());
  std::sort(st.begin(), st.end());
  std::sort(gg.begin(), gg.end());
  std::sort(idx.begin(), idx.end());
  // Both formats in one folder: which one the user means is a guess, and the two may be
  // different models (or different quantizations of one).
  if (!gg.empty() && (!st.empty() || !idx.empty()))
    throw_error({dir.string(), "", -1},
                "ambiguous model folder: it holds safetensors (" +
                    (idx.empty() ? st[0] : idx[0]).filename().string() + ") and GGUF (" +
                    gg[0].filename().string() +
                    ") weights; name the file to open (the .gguf, or the .safetensors / "
                    "index file, whose folder's config.json is read beside it)");
  if (std::filesystem::exists(dir / "model.safetensors.index.json"))
    return dir / "model.safetensors.index.json";
  if (std::filesystem::exists(dir / "model.safetensors")) return dir / "model.safetensors";
  if (idx.size() == 1) return idx[0];
  if (idx.empty() && st.size() == 1 && gg.empty()) return st[0];
  if (st.empty() && idx.empty() && gg.size() == 1) return gg[0];
  if (st.empty() && idx.empty() && gg.size() > 1) {
    std::vector<std::filesystem::path> firsts;
    for (const auto& p : gg)
      if (is_split_first_part(p)) firsts.push_back(p);
    // Several files that are all parts of one split model: start at its first part.
    if (firsts.size() == 1 && gguf_split_paths(firsts[0]).size() == gg.size()) return firsts[0];
  }
  if (st.empty() && gg.empty() && idx.empty())
    throw_error({dir.string(), "", -1},
                "no model.safetensors, model.safetensors.index.json or .gguf file in the folder");
  throw_error({dir.string(), "", -1}, "ambiguous model folder: " + std::to_string(st.size()) +
                                          " .safetensors, " + std::to_string(idx.size()) + " index and " +
                                          std::to_string(gg.size()) + " .gguf files; name the file to open");
}

}  // namespace

// Fills a WeightIndex from parsed headers.
class WeightIndexBuilder {
 public:
  explicit WeightIndexBuilder(WeightIndex& ix, int num_layers) : ix_(ix), num_layers_(num_layers) {}

  void add_safetensors(const SafetensorsFile& f) {
    const auto file = static_cast<uint32_t>(ix_.files_.size());
    ix_.files_.push_back({f.path, f.file_size});
    for (const auto& t : f.tensors) {
      TensorEntry e;
      const auto canonical = canonical_from_hf(t.name);
      if (!canonical)
        ix_.warnings_.push_back(f.path + ": tensor '" + t.name + "' has no canonical name; kept as is");
      e.name = canonical.value_or(t.name);
      e.stored_name = t.name;
      e.type = e.stored_type = t.type;
      e.shape = t.shape;
      e.file = file;
      e.offset = t.offset;
      e.nbytes = t.nbytes;
      finish(e, canonical.has_value(), f.path);
    }
  }

  void add_gguf(GgufFile g) {
    const auto file = static_cast<uint32_t>(ix_.files_.size());
    ix_.files_.push_back({g.path, g.file_size});
    for (const auto& t : g.tensors) {
      const auto map = canonical_from_gguf(t.name);
      if (!map)
        ix_.warnings_.push_back(g.path + ": tensor '" + t.name + "' has no canonical name; kept as is");
      TensorEntry e;
      e.stored_name = t.name;
      e.type = e.stored_type = t.type;
      for (auto it = t.ne.rbegin(); it != t.ne.rend(); ++it) e.shape.push_back(static_cast<int64_t>(*it));
      e.file = file;
      if (!map || !map->stacked_experts) {
        e.name = map ? map->canonical : t.name;
        e.offset = t.offset;
        e.nbytes = t.nbytes;
        finish(e, map.has_value(), g.path);
        continue;
      }
      // [n_expert, out, in]: one contiguous slice per expert.
      if (t.ne.size() != 3 || t.ne[2] == 0)
        throw_error(
            {g.path, t.name, static_cast<int64_t>(t.offset)},
            "stacked expert tensor must be 3-D with experts outermost, got shape " + shape_str(e.shape));
      const uint64_t n_exp = t.ne[2];
      const auto per = weight_type_bytes(t.type, t.ne[0] * t.ne[1]);
      if (!per || *per * n_exp != t.nbytes)
        throw_error({g.path, t.name, static_cast<int64_t>(t.offset)},
                    "stacked expert tensor of " + std::to_string(t.nbytes) + " bytes does not split into " +
                        std::to_string(n_exp) + " whole experts");
      for (uint64_t x = 0; x < n_exp; ++x) {
        TensorEntry s = e;
        s.name = expert_name(map->canonical, static_cast<int>(x));
        s.shape = {e.shape[1], e.shape[2]};
        s.offset = t.offset + x * *per;
        s.nbytes = *per;
        finish(s, true, g.path);
      }
    }
    ix_.gguf_.push_back(std::move(g));
  }

 private:
  void finish(TensorEntry& e, bool known, const std::string& file) {
    if (known) {
      e.cls = classify(e.name, num_layers_);
      e.layer = layer_of(e.name);
      e.expert = expert_of(e.name);
    }
    const auto [it, added] = ix_.by_name_.emplace(e.name, ix_.tensors_.size());
    if (!added) {
      const TensorEntry& o = ix_.tensors_[it->second];
      throw_error({file, e.stored_name, static_cast<int64_t>(e.offset)},
                  "maps to canonical name '" + e.name + "', which '" + o.stored_name + "' in " +
                      ix_.files_[o.file].path.string() + " already has");
    }
    ix_.tensors_.push_back(std::move(e));
  }

  WeightIndex& ix_;
  int num_layers_;
};

WeightIndex::WeightIndex() : maps_(std::make_unique<Maps>()) {}
WeightIndex::WeightIndex(WeightIndex&&) noexcept = default;
WeightIndex& WeightIndex::operator=(WeightIndex&&) noexcept = default;
WeightIndex::~WeightIndex() = default;

WeightIndex WeightIndex::open(const std::filesystem::path& model, int num_hidden_layers) {
  std::error_code ec;
  if (!std::filesystem::exists(model, ec)) throw_error({model.string(), "", -1}, "model path does not exist");
  const std::filesystem::path target = std::filesystem::is_directory(model, ec) ? resolve_dir(model) : model;
  WeightIndex ix;
  ix.path_ = model;
  WeightIndexBuilder b(ix, num_hidden_layers);
  if (has_ext(target, ".gguf")) {
    ix.format_ = Format::Gguf;
    std::vector<GgufFile> parts;
    for (const auto& p : gguf_split_paths(target)) parts.push_back(read_gguf(p));
    if (parts.size() > 1) check_gguf_split(parts);
    for (auto& g : parts) b.add_gguf(std::move(g));
  } else if (has_ext(target, ".json")) {
    const SafetensorsShardedModel m = read_safetensors_index(target);
    for (const auto& f : m.shards) b.add_safetensors(f);
  } else if (has_ext(target, ".safetensors")) {
    b.add_safetensors(read_safetensors(target));
  } else {
    throw_error({target.string(), "", -1}, "not a .safetensors, .safetensors.index.json or .gguf file");
  }
  ix.resolve_scales();
  ix.maps_->files.resize(ix.files_.size());
  return ix;
}

void WeightIndex::resolve_scales() {
  for (TensorEntry& w : tensors_) {
    if (w.cls == TensorClass::Other && w.name == w.stored_name && !is_canonical(w.name)) continue;
    const std::string sname = scale_name_of(w.name);
    if (sname == w.name) continue;
    const TensorEntry* s = find(sname);
    const std::string& wfile = files_[w.file].path.string();
    if (w.stored_type == WeightType::F8_E4M3) {
      if (s == nullptr)
        throw_error({wfile, w.name, static_cast<int64_t>(w.offset)},
                    "FP8 weight has no block-scale companion '" + sname + "'");
      const bool two_d = w.shape.size() == 2;
      const std::vector<int64_t> expect =
          two_d ? std::vector<int64_t>{(w.shape[0] + 127) / 128, (w.shape[1] + 127) / 128}
                : std::vector<int64_t>{};
      if (!two_d || (s->type != WeightType::F32 && s->type != WeightType::F8_E8M0) || s->shape != expect)
        throw_error({files_[s->file].path.string(), sname, static_cast<int64_t>(s->offset)},
                    "block scale of FP8 weight '" + w.name + "' " + shape_str(w.shape) +
                        " must be F32 or F8_E8M0 " +
                        (two_d ? shape_str(expect) : std::string("of a 2-D weight")) + ", got " +
                        std::string(weight_type_name(s->type)) + " " + shape_str(s->shape));
      w.scale = sname;
    } else if (s != nullptr && (w.stored_type == WeightType::I8 || w.stored_type == WeightType::U8) &&
               s->type == WeightType::F8_E8M0) {
      // Packed FP4: two E2M1 values per byte, one E8M0 scale per 32 values.
      const bool two_d = w.shape.size() == 2;
      const int64_t k = two_d ? w.shape[1] * 2 : 0;
      const std::vector<int64_t> expect =
          two_d ? std::vector<int64_t>{w.shape[0], k / 32} : std::vector<int64_t>{};
      if (!two_d || k % 32 != 0 || s->shape != expect)
        throw_error({files_[s->file].path.string(), sname, static_cast<int64_t>(s->offset)},
                    "E8M0 scale of packed FP4 weight '" + w.name + "' " + shape_str(w.shape) + " must be " +
                        (two_d && k % 32 == 0 ? shape_str(expect)
                                              : std::string("[N, K/32] with K a multiple of 32")) +
                        ", got " + shape_str(s->shape));
      w.type = WeightType::MXFP4;
      w.shape[1] = k;
      w.scale = sname;
    } else if (s != nullptr) {
      w.scale = sname;
    }
  }
}

void WeightIndex::set_num_hidden_layers(int n) {
  for (TensorEntry& e : tensors_)
    if (e.name != e.stored_name || is_canonical(e.name)) e.cls = classify(e.name, n);
}

const TensorEntry* WeightIndex::find(std::string_view canonical) const {
  const auto it = by_name_.find(std::string(canonical));
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorEntry& WeightIndex::at(std::string_view canonical) const {
  const TensorEntry* e = find(canonical);
  if (e == nullptr) throw_error({}, "tensor '" + std::string(canonical) + "' not found in " + path_.string());
  return *e;
}

const TensorEntry& WeightIndex::expert(int layer, int expert, std::string_view w) const {
  return at("layers." + std::to_string(layer) + ".ffn.experts." + std::to_string(expert) + "." +
            std::string(w) + ".weight");
}

std::span<const uint8_t> WeightIndex::bytes(const TensorEntry& e) const {
  if (e.file >= files_.size())
    throw_error({path_.string(), e.name, -1}, "entry names a file the index does not have");
  MappedFile* m = nullptr;
  {
    std::lock_guard<std::mutex> lock(maps_->mu);
    auto& slot = maps_->files[e.file];
    if (!slot) slot = std::make_unique<MappedFile>(files_[e.file].path);
    m = slot.get();
  }
  return m->slice(e.offset, e.nbytes);
}

const GgufFile* WeightIndex::gguf(size_t file) const {
  if (format_ != Format::Gguf || file >= gguf_.size()) return nullptr;
  return &gguf_[file];
}

}  // namespace strata
