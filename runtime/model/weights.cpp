#include "runtime/model/weights.h"

#include <numeric>
#include <stdexcept>

#include "runtime/backend/device.h"
#include "runtime/common/activity.h"
#include "runtime/common/error.h"

namespace strata {

WeightView Weights::view_of(const TensorEntry& e) const {
  WeightView v;
  v.type = e.type;
  v.data = index_->bytes(e).data();
  if (e.shape.empty()) throw_error({index_->path().string(), e.name, -1}, "is a scalar, not a matrix");
  v.cols = e.shape.back();
  v.rows = 1;
  for (size_t i = 0; i + 1 < e.shape.size(); ++i) v.rows *= e.shape[i];
  if (!e.scale.empty()) {
    const TensorEntry& s = index_->at(e.scale);
    v.scale = index_->bytes(s).data();
    v.scale_type = s.type;
  }
  try {
    check_weight_view(v);
  } catch (const std::invalid_argument& err) {
    throw_error({index_->path().string(), e.name, static_cast<int64_t>(e.offset)}, err.what());
  }
  return v;
}

WeightView Weights::matrix(const std::string& name) const { return view_of(index_->at(name)); }

WeightView Weights::expert(int layer, int expert, const char* w) const {
  return view_of(index_->expert(layer, expert, w));
}

std::vector<float> Weights::vector(const std::string& name) const {
  const TensorEntry& e = index_->at(name);
  const WeightView v = view_of(e);
  const std::string what = "'" + e.name + "' of " + index_->files()[e.file].path.string();
  const Activity doing("decoding to f32 the tensor", what, v.rows * v.cols, "values");
  std::vector<float> out(static_cast<size_t>(v.rows * v.cols));
  std::vector<int32_t> rows(static_cast<size_t>(v.rows));
  std::iota(rows.begin(), rows.end(), 0);
  host_device()->ops().gather_rows(v, rows.data(), v.rows, out.data());
  return out;
}

}  // namespace strata
