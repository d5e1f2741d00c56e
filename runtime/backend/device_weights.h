// Weights copied into a device's memory: the views the device's Ops read, and the buffers that
// hold them (the weights stay valid while the DeviceMlp lives).
#pragma once

#include <string>
#include <vector>

#include "runtime/backend/device.h"

namespace strata {

struct DeviceMatrix {
  WeightView view;  // data and scale in the device's memory
  DeviceBuffer data, scale;
};
// Copies w (its data and block scales) to dev, counted under `cls`; strata::Error naming
// `what` when the device's memory cannot hold it.
DeviceMatrix upload_matrix(Device& dev, const WeightView& w, const std::string& cls, const std::string& what);

struct DeviceMlp {
  Mlp mlp;
  std::vector<DeviceMatrix> parts;
};
DeviceMlp upload_mlp(Device& dev, const Mlp& m, const std::string& cls, const std::string& what);

}  // namespace strata
