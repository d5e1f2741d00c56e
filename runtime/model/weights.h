// Canonical tensors of a WeightIndex as the forward pass uses them: matrices as WeightViews
// over the mapped files (stored type, with their block scales), small vectors as f32 copies.
#pragma once

#include <string>
#include <vector>

#include "cpu-kernels/weight_view.h"
#include "runtime/format/weight_index.h"

namespace strata {

class Weights {
 public:
  explicit Weights(const WeightIndex& index) : index_(&index) {}
  bool has(const std::string& name) const { return index_->find(name) != nullptr; }
  // A 2-D (or N-D, flattened to [prod(outer), last]) matrix; throws strata::Error naming the
  // tensor when it is missing or its type has no matrix form.
  WeightView matrix(const std::string& name) const;
  WeightView expert(int layer, int expert, const char* w) const;
  // Any tensor dequantized to f32 (norms, biases, small tables).
  std::vector<float> vector(const std::string& name) const;
  const WeightIndex& index() const { return *index_; }

 private:
  WeightView view_of(const TensorEntry& e) const;
  const WeightIndex* index_;
};

}  // namespace strata
