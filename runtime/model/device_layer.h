// What a model file needs to run a layer's attention on the device the plan put it on: whether
// it is there, the layer's weights copied to it, and the call that moves the layer's input in
// and its output back around the device's share (shared by V3, V3.2 and V4).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "cpu-kernels/function_ref.h"
#include "runtime/backend/device_weights.h"
#include "runtime/model/causal_lm.h"

namespace strata {

// Whether opts.gpu exists and the plan put every tensor of layer li's attention
// ("layers.<li>.attn*") on the GPU tier.
bool attention_on_gpu(const ModelOptions& opts, int64_t li);

// A layer's weights copied to one device, kept alive together.
class DeviceCopies {
 public:
  Device& device() const { return dev_; }
  // `cls` and `what` name them in the device's accounts and in a refusal.
  DeviceCopies(Device& dev, std::string cls, std::string what) : dev_(dev), cls_(std::move(cls)), what_(std::move(what)) {}
  // w becomes its copy on the device (a view without data stays as it is).
  void matrix(WeightView& w);
  // The vector's copy on the device (nullptr for an empty one).
  const float* vector(const std::vector<float>& v);

 private:
  Device& dev_;
  std::string cls_, what_;
  std::vector<DeviceMatrix> mats_;
  std::vector<DeviceBuffer> vecs_;
};

// Whether opts.gpu exists and the plan put every one of `names` on the GPU tier.
bool tensors_on_gpu(const ModelOptions& opts, std::initializer_list<std::string> names);

// Layer li's attention copies on opts.gpu when attention_on_gpu, else null.
std::unique_ptr<DeviceCopies> attention_copies(const ModelOptions& opts, int64_t li);

// Runs fn on dev's queue with x [in_floats] and pos copied to the device, and copies its output
// [out_floats] back to out; waits. On the host, fn runs here on the host pointers.
void run_on_device(Device& dev, const float* x, int64_t in_floats, const std::vector<int64_t>& pos, float* out,
                   int64_t out_floats, FunctionRef<void(const float* x, const int64_t* pos, float* out)> fn);

}  // namespace strata
