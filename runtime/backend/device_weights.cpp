#include "runtime/backend/device_weights.h"

#include "runtime/common/error.h"

namespace strata {

DeviceMatrix upload_matrix(Device& dev, const WeightView& w, const std::string& cls, const std::string& what) {
  if (w.data && !dev.computes(w.type))
    throw Error(dev.name() + ": " + what + " is stored as " + std::string(weight_type_name(w.type)) +
                ", which this device cannot compute; keep it in DRAM (--cpu-moe / --n-cpu-moe for experts, a "
                "--placement file for other tensors) or run with --gpu none");
  DeviceMatrix m;
  m.view = w;
  m.data = dev.upload(w.data, static_cast<uint64_t>(weight_data_bytes(w)), cls, what);
  m.view.data = m.data.data();
  if (w.scale) {
    m.scale = dev.upload(w.scale, static_cast<uint64_t>(weight_scale_bytes(w)), cls, what + " (scales)");
    m.view.scale = m.scale.data();
  }
  return m;
}

DeviceMlp upload_mlp(Device& dev, const Mlp& m, const std::string& cls, const std::string& what) {
  DeviceMlp d;
  d.parts.push_back(upload_matrix(dev, m.w1, cls, what + " w1"));
  d.parts.push_back(upload_matrix(dev, m.w2, cls, what + " w2"));
  d.parts.push_back(upload_matrix(dev, m.w3, cls, what + " w3"));
  d.mlp = {d.parts[0].view, d.parts[1].view, d.parts[2].view};
  return d;
}

}  // namespace strata
