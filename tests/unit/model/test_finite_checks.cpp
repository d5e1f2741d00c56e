// Silent wrong answers turned into errors: a NaN in a weight or an absurd config value makes
// the activations non-finite; the forward pass says so (the position, and with
// check_finite_layers the first layer that did) instead of returning NaN logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "runtime/model/causal_lm.h"
#include "runtime/model/model_files.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

const std::vector<int32_t> kIds = {5, 300, 17, 42};

ModelFiles tiny(const test::ScratchDir& dir, const std::string& name, Arch arch, nlohmann::json overrides = {}) {
  TinyOptions o;
  o.arch = arch;
  o.dtype = "f32";
  o.seed = 3;
  if (!overrides.is_null()) o.config_overrides = overrides;
  return open_model(make_tiny_model(o, dir / name).path);
}

// Writes a NaN over the first element of a tensor in its file.
void poison(const ModelFiles& m, const std::string& tensor) {
  const TensorEntry& e = m.index.at(tensor);
  ASSERT_EQ(e.stored_type, WeightType::F32);
  std::fstream f(m.index.files()[e.file].path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(e.offset));
  const float nan = NAN;
  f.write(reinterpret_cast<const char*>(&nan), 4);
  ASSERT_TRUE(f.good());
}

TEST(FiniteChecks, NanWeightIsAnErrorNamingTheLayer) {
  test::ScratchDir dir("finite");
  for (Arch arch : {Arch::DeepseekV3, Arch::DeepseekV4}) {
    const std::string name = std::string(arch_name(arch));
    ModelFiles m = tiny(dir, name, arch);
    {
      auto lm = load_causal_lm(m);
      std::vector<float> out;
      lm->forward(kIds, out, true);
      for (float v : out) ASSERT_TRUE(std::isfinite(v)) << name << ": the clean model is finite";
    }
    // Layer 1's attention output projection: finite before it, NaN from there on.
    const std::string w = arch == Arch::DeepseekV4 ? "layers.1.attn.wo_b.weight" : "layers.1.attn.wo.weight";
    poison(m, w);
    m = open_model(m.path);
    std::vector<float> out;
    STRATA_EXPECT_ERROR(load_causal_lm(m)->forward(kIds, out, true), "non-finite activation", "the last layer",
                        "position 0");
    ModelOptions check;
    check.check_finite_layers = true;
    STRATA_EXPECT_ERROR(load_causal_lm(m, check)->forward(kIds, out, true), "non-finite activation", "after layer 1");
  }
}

// A scaling factor no released model comes near is refused with the config; an infinite weight
// (here token 0's embedding row) is caught by the forward pass.
TEST(FiniteChecks, AbsurdScalesAreRefusedOrCaught) {
  test::ScratchDir dir("finite");
  TinyOptions o;
  o.config_overrides = {{"routed_scaling_factor", 1e38}};
  STRATA_EXPECT_ERROR(make_tiny_model(o, dir / "scale"), "routed_scaling_factor", "out of range");
  ModelFiles m = tiny(dir, "big", Arch::DeepseekV3);
  const TensorEntry& e = m.index.at("embed.weight");
  {
    std::fstream f(m.index.files()[e.file].path, std::ios::in | std::ios::out | std::ios::binary);
    std::vector<float> row(static_cast<size_t>(e.shape[1]), INFINITY);
    f.seekp(static_cast<std::streamoff>(e.offset));
    f.write(reinterpret_cast<const char*>(row.data()), static_cast<std::streamsize>(row.size() * 4));
  }
  m = open_model(m.path);
  std::vector<float> out;
  const int32_t zero[1] = {0};
  STRATA_EXPECT_ERROR(load_causal_lm(m)->forward(zero, out, true), "non-finite activation", "position 0");
}

}  // namespace
}  // namespace strata
