#include "runtime/model/device_layer.h"

#include <string>

#include "runtime/common/error.h"

namespace strata {

bool attention_on_gpu(const ModelOptions& opts, int64_t li) {
  if (!opts.gpu) return false;
  const std::string prefix = "layers." + std::to_string(li) + ".attn";
  bool any = false;
  for (auto it = opts.tensor_placement.lower_bound(prefix);
       it != opts.tensor_placement.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (it->second != Tier::Gpu) return false;
    any = true;
  }
  return any;
}

bool tensors_on_gpu(const ModelOptions& opts, std::initializer_list<std::string> names) {
  if (!opts.gpu) return false;
  for (const std::string& n : names) {
    const auto it = opts.tensor_placement.find(n);
    if (it == opts.tensor_placement.end() || it->second != Tier::Gpu) return false;
  }
  return names.size() > 0;
}

std::unique_ptr<DeviceCopies> attention_copies(const ModelOptions& opts, int64_t li) {
  if (!attention_on_gpu(opts, li)) return nullptr;
  return std::make_unique<DeviceCopies>(*opts.gpu, "attention", "the attention of layer " + std::to_string(li));
}

void DeviceCopies::matrix(WeightView& w) {
  if (!w.data) return;
  mats_.push_back(upload_matrix(dev_, w, cls_, what_));
  w = mats_.back().view;
}

const float* DeviceCopies::vector(const std::vector<float>& v) {
  if (v.empty()) return nullptr;
  vecs_.push_back(dev_.upload(v.data(), v.size() * sizeof(float), cls_, what_));
  return reinterpret_cast<const float*>(vecs_.back().data());
}

void run_on_device(Device& dev, const float* x, int64_t in_floats, const std::vector<int64_t>& pos, float* out,
                   int64_t out_floats, FunctionRef<void(const float* x, const int64_t* pos, float* out)> fn) {
  if (dev.is_host()) return fn(x, pos.data(), out);
  const uint64_t in_bytes = static_cast<uint64_t>(in_floats) * sizeof(float),
                 out_bytes = static_cast<uint64_t>(out_floats) * sizeof(float), pos_bytes = pos.size() * sizeof(int64_t);
  dev.submit([&] {
       DeviceScratch mem(dev);  // on the device's queue: its buffers go back when the work ends
       float* dx = mem.get(in_floats);
       float* dout = mem.get(out_floats);
       auto* dpos = mem.get<int64_t>(static_cast<int64_t>(pos.size()));
       dev.to_device(dx, x, in_bytes);
       dev.to_device(dpos, pos.data(), pos_bytes);
       fn(dx, dpos, dout);
       dev.to_host(out, dout, out_bytes);
     })
      .wait();
}

}  // namespace strata
