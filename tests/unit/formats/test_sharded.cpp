#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "runtime/format/safetensors.h"
#include "runtime/format/safetensors_writer.h"
#include "tests/support/test_support.h"
#include "tests/unit/formats/st_test_util.h"

namespace strata::test {
namespace {

std::vector<SafetensorsTensorData> some_tensors(int n) {
  std::vector<SafetensorsTensorData> v;
  for (int i = 0; i < n; ++i)
    v.push_back({"t" + std::to_string(i), WeightType::BF16, {2, i + 1}, fill_pattern(4 * (i + 1), i)});
  return v;
}

nlohmann::json read_json(const std::filesystem::path& p) {
  const auto b = read_bytes(p);
  return nlohmann::json::parse(b.begin(), b.end());
}
void write_json(const std::filesystem::path& p, const nlohmann::json& j) { write_text(p, j.dump(1)); }

TEST(SafetensorsSharded, ThreeWayRoundTrip) {
  ScratchDir dir("st_shard3");
  const auto tensors = some_tensors(7);
  write_sharded_safetensors(dir.path(), tensors, 3, {{"format", "pt"}});
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(std::filesystem::exists(dir / safetensors_shard_name(k, 3)));
  EXPECT_EQ(safetensors_shard_name(1, 3), "model-00002-of-00003.safetensors");
  const auto m = read_safetensors_index(dir / "model.safetensors.index.json");
  ASSERT_EQ(m.shards.size(), 3u);
  EXPECT_EQ(m.weight_map.size(), 7u);
  uint64_t total = 0;
  for (const auto& t : tensors) total += t.bytes.size();
  EXPECT_EQ(m.metadata.at("total_size").get<uint64_t>(), total);
  for (const auto& s : m.shards) {
    EXPECT_FALSE(s.tensors.empty()) << s.path;
    ASSERT_EQ(s.metadata.size(), 1u);
  }
  for (const auto& t : tensors) {
    const SafetensorsTensor* found = nullptr;
    const SafetensorsFile* in = nullptr;
    for (const auto& s : m.shards)
      if (const auto* x = s.find(t.name)) found = x, in = &s;
    ASSERT_NE(found, nullptr) << t.name;
    const auto bytes = read_bytes(in->path);
    ASSERT_EQ(found->nbytes, t.bytes.size());
    EXPECT_EQ(0, std::memcmp(bytes.data() + found->offset, t.bytes.data(), t.bytes.size()));
  }
}

TEST(SafetensorsSharded, SingleShardWritesNoIndex) {
  ScratchDir dir("st_shard1");
  write_sharded_safetensors(dir.path(), some_tensors(2), 1);
  EXPECT_TRUE(std::filesystem::exists(dir / "model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  EXPECT_EQ(read_safetensors(dir / "model.safetensors").tensors.size(), 2u);
  STRATA_EXPECT_ERROR(write_sharded_safetensors(dir.path(), some_tensors(1), 0), "shard count 0");
}

TEST(SafetensorsSharded, MissingShard) {
  ScratchDir dir("st_shard_missing");
  write_sharded_safetensors(dir.path(), some_tensors(5), 3);
  std::filesystem::remove(dir / safetensors_shard_name(1, 3));
  STRATA_EXPECT_ERROR(read_safetensors_index(dir / "model.safetensors.index.json"),
                      "model.safetensors.index.json", "model-00002-of-00003.safetensors", "missing");
}

TEST(SafetensorsSharded, TensorMissingFromShard) {
  ScratchDir dir("st_shard_ghost");
  write_sharded_safetensors(dir.path(), some_tensors(5), 3);
  auto j = read_json(dir / "model.safetensors.index.json");
  j["weight_map"]["ghost"] = safetensors_shard_name(2, 3);
  write_json(dir / "model.safetensors.index.json", j);
  STRATA_EXPECT_ERROR(read_safetensors_index(dir / "model.safetensors.index.json"), "'ghost'",
                      "model-00003-of-00003.safetensors", "model.safetensors.index.json",
                      "missing from this shard");
}

TEST(SafetensorsSharded, TensorNotInWeightMap) {
  ScratchDir dir("st_shard_unlisted");
  write_sharded_safetensors(dir.path(), some_tensors(5), 3);
  auto j = read_json(dir / "model.safetensors.index.json");
  j["weight_map"].erase("t1");
  write_json(dir / "model.safetensors.index.json", j);
  STRATA_EXPECT_ERROR(read_safetensors_index(dir / "model.safetensors.index.json"), "'t1'",
                      "model-00001-of-00003.safetensors", "not in the weight_map");
}

TEST(SafetensorsSharded, TensorListedUnderOtherShard) {
  ScratchDir dir("st_shard_moved");
  write_sharded_safetensors(dir.path(), some_tensors(5), 3);
  auto j = read_json(dir / "model.safetensors.index.json");
  // Shards: t0 t1 t2 | t3 | t4 (by bytes).
  j["weight_map"]["t0"] = safetensors_shard_name(1, 3);
  write_json(dir / "model.safetensors.index.json", j);
  STRATA_EXPECT_ERROR(read_safetensors_index(dir / "model.safetensors.index.json"), "'t0'",
                      "model-00001-of-00003.safetensors", "places it in 'model-00002-of-00003.safetensors'");
}

TEST(SafetensorsSharded, BadIndex) {
  ScratchDir dir("st_shard_badindex");
  write_text(dir / "a.json", R"({"weight_map": {"x": "s.safetensors", "x": "t.safetensors"}})");
  STRATA_EXPECT_ERROR(read_safetensors_index(dir / "a.json"), "a.json", "duplicate key 'x'");
  write_text(dir / "b.json", R"({"metadata": {}})");
  STRATA_EXPECT_ERROR(read_safetensors_index(dir / "b.json"), "b.json", "weight_map");
  write_text(dir / "c.json", R"({"weight_map": {"x": "../evil.safetensors"}})");
  STRATA_EXPECT_ERROR(read_safetensors_index(dir / "c.json"), "c.json", "'x'", "not a file name inside");
  write_text(dir / "d.json", R"({"weight_map": {"x": 3}})");
  STRATA_EXPECT_ERROR(read_safetensors_index(dir / "d.json"), "d.json", "'x'", "not a string");
  STRATA_EXPECT_ERROR(read_safetensors_index(dir / "none.json"), "none.json", "cannot read index");
}

}  // namespace
}  // namespace strata::test
