#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "runtime/format/gguf.h"
#include "runtime/format/mapped_file.h"
#include "runtime/format/safetensors.h"
#include "runtime/format/safetensors_writer.h"
#include "runtime/format/weight_index.h"
#include "tests/support/test_support.h"
#include "tests/unit/formats/st_test_util.h"

namespace strata::test {
namespace {

SafetensorsTensorData tensor(std::string name, WeightType t, std::vector<int64_t> shape, uint32_t seed = 1) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return {std::move(name), t, shape, fill_pattern(*weight_type_bytes(t, n), seed)};
}

void expect_bytes(const WeightIndex& ix, const TensorEntry& e, const std::vector<uint8_t>& want) {
  const auto got = ix.bytes(e);
  ASSERT_EQ(got.size(), want.size()) << e.name;
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size())) << e.name;
}

TEST(WeightIndex, HfSafetensorsSingle) {
  ScratchDir dir("wi_single");
  const std::vector<SafetensorsTensorData> ts = {
      tensor("model.embed_tokens.weight", WeightType::BF16, {16, 8}, 1),
      tensor("model.layers.0.input_layernorm.weight", WeightType::F32, {8}, 2),
      tensor("model.layers.1.mlp.experts.3.down_proj.weight", WeightType::BF16, {8, 4}, 3),
      tensor("model.layers.1.mlp.gate.e_score_correction_bias", WeightType::F32, {4}, 4),
      tensor("rotary.inv_freq", WeightType::F32, {2}, 5),
  };
  write_sharded_safetensors(dir.path(), ts, 1);
  const WeightIndex ix = WeightIndex::open(dir.path());
  EXPECT_EQ(ix.format(), WeightIndex::Format::Safetensors);
  ASSERT_EQ(ix.files().size(), 1u);
  EXPECT_EQ(ix.files()[0].size, std::filesystem::file_size(dir / "model.safetensors"));
  ASSERT_EQ(ix.tensors().size(), ts.size());
  EXPECT_EQ(ix.gguf(0), nullptr);

  const TensorEntry& emb = ix.at("embed.weight");
  EXPECT_EQ(emb.stored_name, "model.embed_tokens.weight");
  EXPECT_EQ(emb.cls, TensorClass::Embedding);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{16, 8}));
  expect_bytes(ix, emb, ts[0].bytes);

  const TensorEntry& ex = ix.expert(1, 3, "w2");
  EXPECT_EQ(ex.name, "layers.1.ffn.experts.3.w2.weight");
  EXPECT_EQ(ex.layer, 1);
  EXPECT_EQ(ex.expert, 3);
  EXPECT_EQ(ex.cls, TensorClass::RoutedExpert);
  expect_bytes(ix, ex, ts[2].bytes);
  EXPECT_EQ(ix.at("layers.1.ffn.gate.bias").cls, TensorClass::Router);

  // Unknown names are kept under their stored name with a warning.
  const TensorEntry* odd = ix.find("rotary.inv_freq");
  ASSERT_NE(odd, nullptr);
  EXPECT_EQ(odd->cls, TensorClass::Other);
  EXPECT_EQ(odd->layer, -1);
  ASSERT_EQ(ix.warnings().size(), 1u);
  EXPECT_NE(ix.warnings()[0].find("rotary.inv_freq"), std::string::npos);

  STRATA_EXPECT_ERROR(ix.at("layers.9.attn.wo.weight"), "tensor 'layers.9.attn.wo.weight' not found in",
                      dir.path().string());
  STRATA_EXPECT_ERROR(ix.expert(1, 4, "w1"), "layers.1.ffn.experts.4.w1.weight");
  // Opening the file itself gives the same index.
  EXPECT_EQ(WeightIndex::open(dir / "model.safetensors").tensors().size(), ts.size());
}

TEST(WeightIndex, ShardedBytesAddUp) {
  ScratchDir dir("wi_sharded");
  std::vector<SafetensorsTensorData> ts;
  for (int l = 0; l < 3; ++l) {
    ts.push_back(
        tensor("model.layers." + std::to_string(l) + ".self_attn.o_proj.weight", WeightType::F16, {4, 6}, l));
    ts.push_back(tensor("model.layers." + std::to_string(l) + ".post_attention_layernorm.weight",
                        WeightType::F32, {4}, 9 + l));
  }
  write_sharded_safetensors(dir.path(), ts, 3);
  const WeightIndex ix = WeightIndex::open(dir.path(), 2);
  ASSERT_EQ(ix.files().size(), 3u);
  uint64_t sum = 0, data = 0;
  for (const auto& e : ix.tensors()) sum += e.nbytes;
  for (const auto& f : ix.files()) data += f.size - read_safetensors(f.path).data_offset;
  EXPECT_EQ(sum, data);
  for (const auto& t : ts) expect_bytes(ix, ix.at(*canonical_from_hf(t.name)), t.bytes);
  // Layer 2 is past the 2 main layers: MTP.
  EXPECT_EQ(ix.at("layers.2.attn.wo.weight").cls, TensorClass::Mtp);
  EXPECT_EQ(ix.at("layers.1.attn.wo.weight").cls, TensorClass::Attention);
  // The index file itself opens too; the layer count can be given afterwards.
  WeightIndex late = WeightIndex::open(dir / "model.safetensors.index.json");
  EXPECT_EQ(late.tensors().size(), ts.size());
  EXPECT_EQ(late.at("layers.2.attn.wo.weight").cls, TensorClass::Attention);
  late.set_num_hidden_layers(2);
  EXPECT_EQ(late.at("layers.2.attn.wo.weight").cls, TensorClass::Mtp);
  EXPECT_EQ(late.at("layers.1.ffn_norm.weight").cls, TensorClass::Norm);
}

TEST(WeightIndex, MovedIndexKeepsWorking) {
  ScratchDir dir("wi_move");
  write_sharded_safetensors(dir / "a", {tensor("norm.weight", WeightType::F32, {4})}, 1);
  WeightIndex ix = WeightIndex::open(dir / "a");
  WeightIndex moved = std::move(ix);
  EXPECT_EQ(moved.bytes(moved.at("norm.weight")).size(), 16u);
}

TEST(WeightIndex, DuplicateCanonicalAcrossShards) {
  ScratchDir dir("wi_dup");
  write_sharded_safetensors(dir.path(),
                            {tensor("model.layers.0.input_layernorm.weight", WeightType::F32, {4}),
                             tensor("layers.0.attn_norm.weight", WeightType::F32, {4})},
                            2);
  STRATA_EXPECT_ERROR(WeightIndex::open(dir.path()), "layers.0.attn_norm.weight",
                      "model.layers.0.input_layernorm.weight", "model-00001-of-00002.safetensors",
                      "model-00002-of-00002.safetensors");
}

TEST(WeightIndex, Fp8WithScales) {
  ScratchDir dir("wi_fp8");
  write_sharded_safetensors(
      dir.path(),
      {tensor("model.layers.0.self_attn.q_a_proj.weight", WeightType::F8_E4M3, {300, 200}),
       tensor("model.layers.0.self_attn.q_a_proj.weight_scale_inv", WeightType::F32, {3, 2}),
       tensor("layers.0.attn.wo.weight", WeightType::F8_E4M3, {128, 129}),
       tensor("layers.0.attn.wo.scale", WeightType::F8_E8M0, {1, 2})},
      1);
  const WeightIndex ix = WeightIndex::open(dir.path());
  const TensorEntry& w = ix.at("layers.0.attn.wq_a.weight");
  EXPECT_EQ(w.type, WeightType::F8_E4M3);
  EXPECT_EQ(w.scale, "layers.0.attn.wq_a.scale");
  EXPECT_EQ(ix.at(w.scale).stored_name, "model.layers.0.self_attn.q_a_proj.weight_scale_inv");
  EXPECT_EQ(ix.at("layers.0.attn.wo.weight").scale, "layers.0.attn.wo.scale");
  EXPECT_TRUE(ix.at("layers.0.attn.wo.scale").scale.empty());
}

TEST(WeightIndex, Fp8WithoutScale) {
  ScratchDir dir("wi_fp8_noscale");
  write_sharded_safetensors(dir.path(), {tensor("layers.0.attn.wo.weight", WeightType::F8_E4M3, {128, 128})},
                            1);
  STRATA_EXPECT_ERROR(WeightIndex::open(dir.path()), "model.safetensors", "'layers.0.attn.wo.weight'",
                      "no block-scale companion 'layers.0.attn.wo.scale'");
}

TEST(WeightIndex, Fp8WrongScaleShape) {
  ScratchDir dir("wi_fp8_badscale");
  write_sharded_safetensors(dir.path(),
                            {tensor("layers.0.attn.wo.weight", WeightType::F8_E4M3, {300, 200}),
                             tensor("layers.0.attn.wo.scale", WeightType::F32, {2, 2})},
                            1);
  STRATA_EXPECT_ERROR(WeightIndex::open(dir.path()), "'layers.0.attn.wo.scale'", "'layers.0.attn.wo.weight'",
                      "[3, 2]", "got f32 [2, 2]");
  ScratchDir dir2("wi_fp8_badscaletype");
  write_sharded_safetensors(dir2.path(),
                            {tensor("layers.0.attn.wo.weight", WeightType::F8_E4M3, {300, 200}),
                             tensor("layers.0.attn.wo.scale", WeightType::BF16, {3, 2})},
                            1);
  STRATA_EXPECT_ERROR(WeightIndex::open(dir2.path()), "'layers.0.attn.wo.scale'", "must be F32 or F8_E8M0",
                      "got bf16");
}

TEST(WeightIndex, Fp4Experts) {
  ScratchDir dir("wi_fp4");
  write_sharded_safetensors(dir.path(),
                            {tensor("layers.2.ffn.experts.0.w1.weight", WeightType::I8, {16, 32}),
                             tensor("layers.2.ffn.experts.0.w1.scale", WeightType::F8_E8M0, {16, 2})},
                            1);
  const WeightIndex ix = WeightIndex::open(dir.path());
  const TensorEntry& w = ix.expert(2, 0, "w1");
  EXPECT_EQ(w.type, WeightType::MXFP4);
  EXPECT_EQ(w.stored_type, WeightType::I8);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(w.nbytes, *weight_type_bytes(WeightType::MXFP4, 16 * 64));
  EXPECT_EQ(w.scale, "layers.2.ffn.experts.0.w1.scale");

  ScratchDir bad("wi_fp4_bad");
  write_sharded_safetensors(bad.path(),
                            {tensor("layers.2.ffn.experts.0.w1.weight", WeightType::U8, {16, 32}),
                             tensor("layers.2.ffn.experts.0.w1.scale", WeightType::F8_E8M0, {16, 4})},
                            1);
  STRATA_EXPECT_ERROR(WeightIndex::open(bad.path()), "'layers.2.ffn.experts.0.w1.scale'",
                      "'layers.2.ffn.experts.0.w1.weight'", "must be [16, 2]", "got [16, 4]");
}

TEST(WeightIndex, FolderResolution) {
  ScratchDir dir("wi_dirs");
  STRATA_EXPECT_ERROR(WeightIndex::open(dir / "absent"), "absent", "does not exist");
  STRATA_EXPECT_ERROR(WeightIndex::open(dir.path()), "no model.safetensors");
  write_text(dir / "notes.txt", "x");
  STRATA_EXPECT_ERROR(WeightIndex::open(dir / "notes.txt"), "notes.txt", "not a .safetensors");
  SafetensorsWriter w;
  w.add_tensor("norm.weight", WeightType::F32, {1}, {0, 0, 128, 63});
  w.write(dir / "weights.safetensors");
  EXPECT_EQ(WeightIndex::open(dir.path()).tensors().size(), 1u);
  w.write(dir / "other.safetensors");
  STRATA_EXPECT_ERROR(WeightIndex::open(dir.path()), "ambiguous");
}

TEST(MappedFile, MapsAndRejects) {
  ScratchDir dir("mapped");
  write_bytes(dir / "f.bin", {1, 2, 3, 4, 5});
  MappedFile m(dir / "f.bin");
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m.slice(1, 3)[2], 4);
  STRATA_EXPECT_ERROR(m.slice(3, 3), "f.bin", "past the end", "offset 3");
  MappedFile moved = std::move(m);
  EXPECT_EQ(moved.bytes()[4], 5);
  EXPECT_EQ(m.size(), 0u);
  STRATA_EXPECT_ERROR(MappedFile(dir / "nope.bin"), "nope.bin", "No such file");
  write_bytes(dir / "empty.bin", {});
  EXPECT_EQ(MappedFile(dir / "empty.bin").slice(0, 0).size(), 0u);
}

// GGUF: a stacked [n_exp, out, in] Q8_0 expert tensor becomes one entry per expert.
TEST(WeightIndex, GgufStackedExpertsExpand) {
  ScratchDir dir("wi_gguf");
  GgufWriter w;
  w.add_kv({"general.architecture", GgufType::STRING, GgufType::U8, "deepseek2"});
  const auto emb = fill_pattern(16 * 4 * 4, 1);
  w.add_tensor("token_embd.weight", WeightType::F32, {16, 4}, emb);
  const uint64_t in = 64, out = 4, n_exp = 3;
  const uint64_t per = *weight_type_bytes(WeightType::Q8_0, in * out);
  const auto stacked = fill_pattern(per * n_exp, 2);
  w.add_tensor("blk.1.ffn_gate_exps.weight", WeightType::Q8_0, {in, out, n_exp}, stacked);
  const auto norm = fill_pattern(16, 3);
  w.add_tensor("blk.1.attn_norm.weight", WeightType::F32, {4}, norm);
  w.add_tensor("mystery.weight", WeightType::F32, {4}, norm);
  w.write(dir / "m.gguf");

  const WeightIndex ix = WeightIndex::open(dir.path());
  EXPECT_EQ(ix.format(), WeightIndex::Format::Gguf);
  ASSERT_NE(ix.gguf(0), nullptr);
  EXPECT_EQ(ix.gguf(1), nullptr);
  const GgufFile& g = *ix.gguf(0);
  ASSERT_EQ(ix.tensors().size(), 3u + n_exp);
  EXPECT_EQ(ix.find("blk.1.ffn_gate_exps.weight"), nullptr);
  uint64_t data = 0, sum = 0;
  for (const auto& t : g.tensors) data += t.nbytes;
  for (const auto& e : ix.tensors()) sum += e.nbytes;
  EXPECT_EQ(sum, data);

  const GgufTensorInfo* info = nullptr;
  for (const auto& t : g.tensors)
    if (t.name == "blk.1.ffn_gate_exps.weight") info = &t;
  ASSERT_NE(info, nullptr);
  for (uint64_t x = 0; x < n_exp; ++x) {
    const TensorEntry& e = ix.expert(1, static_cast<int>(x), "w1");
    EXPECT_EQ(e.stored_name, "blk.1.ffn_gate_exps.weight");
    EXPECT_EQ(e.type, WeightType::Q8_0);
    EXPECT_EQ(e.shape, (std::vector<int64_t>{4, 64}));
    EXPECT_EQ(e.offset, info->offset + x * per);
    EXPECT_EQ(e.nbytes, per);
    EXPECT_EQ(e.expert, static_cast<int>(x));
    EXPECT_EQ(e.layer, 1);
    expect_bytes(ix, e,
                 std::vector<uint8_t>(stacked.begin() + static_cast<long>(x * per),
                                      stacked.begin() + static_cast<long>((x + 1) * per)));
  }
  const TensorEntry& te = ix.at("embed.weight");
  EXPECT_EQ(te.shape, (std::vector<int64_t>{4, 16}));  // ne reversed
  expect_bytes(ix, te, emb);
  expect_bytes(ix, ix.at("layers.1.attn_norm.weight"), norm);
  EXPECT_EQ(ix.at("mystery.weight").cls, TensorClass::Other);
  EXPECT_EQ(ix.warnings().size(), 1u);
}

TEST(WeightIndex, GgufStackedExpertsMustBe3D) {
  ScratchDir dir("wi_gguf_2d");
  GgufWriter w;
  w.add_tensor("blk.0.ffn_up_exps.weight", WeightType::F32, {4, 4}, fill_pattern(64, 1));
  w.write(dir / "m.gguf");
  STRATA_EXPECT_ERROR(WeightIndex::open(dir / "m.gguf"), "m.gguf", "'blk.0.ffn_up_exps.weight'", "3-D");
}

TEST(WeightIndex, GgufSplitParts) {
  ScratchDir dir("wi_gguf_split");
  for (int k = 1; k <= 2; ++k) {
    GgufWriter w;
    w.add_tensor("blk." + std::to_string(k) + ".attn_norm.weight", WeightType::F32, {4}, fill_pattern(16, k));
    w.write(dir / ("m-0000" + std::to_string(k) + "-of-00002.gguf"));
  }
  const WeightIndex ix = WeightIndex::open(dir.path());
  EXPECT_EQ(ix.files().size(), 2u);
  EXPECT_EQ(ix.at("layers.2.attn_norm.weight").file, 1u);
  expect_bytes(ix, ix.at("layers.2.attn_norm.weight"), fill_pattern(16, 2));
  EXPECT_EQ(WeightIndex::open(dir / "m-00002-of-00002.gguf").files().size(), 2u);
}

}  // namespace
}  // namespace strata::test
