// GgufWriter refuses what it cannot write faithfully, and names the key, tensor or path.
#include "runtime/common/error.h"
#include "runtime/format/gguf.h"
#include "tests/unit/gguf/gguf_test_util.h"

namespace strata::test {
namespace {

using nlohmann::json;

TEST(GgufWriter, RejectsBadAlignment) {
  STRATA_EXPECT_ERROR(GgufWriter(48), "alignment 48");
  STRATA_EXPECT_ERROR(GgufWriter(0), "alignment 0");
  STRATA_EXPECT_ERROR(GgufWriter(uint64_t{1} << 32), "alignment 4294967296");
}

TEST(GgufWriter, RejectsWrongTensorData) {
  GgufWriter w;
  STRATA_EXPECT_ERROR(w.add_tensor("w.short", WeightType::F32, {4}, std::vector<uint8_t>(15)), "'w.short'",
                      "data holds 15 bytes", "take 16");
  STRATA_EXPECT_ERROR(w.add_tensor("w.q8", WeightType::Q8_0, {16, 2}, std::vector<uint8_t>(34)), "'w.q8'",
                      "ne[0] = 16", "block size 32");
  STRATA_EXPECT_ERROR(w.add_tensor("w.fp8", WeightType::F8_E4M3, {4}, std::vector<uint8_t>(4)), "'w.fp8'",
                      "cannot be stored in GGUF");
  STRATA_EXPECT_ERROR(w.add_tensor("w.mx", WeightType::MXFP4, {32}, std::vector<uint8_t>(16)), "'w.mx'",
                      "cannot be stored in GGUF");
  STRATA_EXPECT_ERROR(w.add_tensor("w.0d", WeightType::F32, {}, {}), "'w.0d'", "n_dims 0");
  STRATA_EXPECT_ERROR(w.add_tensor("w.5d", WeightType::F32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4)),
                      "'w.5d'", "n_dims 5");
  STRATA_EXPECT_ERROR(w.add_tensor("w.big", WeightType::I8, {uint64_t{1} << 40, uint64_t{1} << 40}, {}),
                      "'w.big'", "overflows");
  STRATA_EXPECT_ERROR(w.add_tensor("bad\xff", WeightType::F32, {1}, std::vector<uint8_t>(4)), "UTF-8");
  w.add_tensor("w.ok", WeightType::F32, {1}, std::vector<uint8_t>(4));
  STRATA_EXPECT_ERROR(w.add_tensor("w.ok", WeightType::F32, {1}, std::vector<uint8_t>(4)), "'w.ok'",
                      "duplicate");
}

TEST(GgufWriter, RejectsBadMetadata) {
  GgufWriter w(64);
  STRATA_EXPECT_ERROR(w.add_kv({"k.u8", GgufType::U8, GgufType::U8, 300}), "'k.u8'", "300", "u8");
  STRATA_EXPECT_ERROR(w.add_kv({"k.u32", GgufType::U32, GgufType::U8, -1}), "'k.u32'", "u32");
  STRATA_EXPECT_ERROR(w.add_kv({"k.i8", GgufType::I8, GgufType::U8, 128}), "'k.i8'", "i8");
  STRATA_EXPECT_ERROR(w.add_kv({"k.i64", GgufType::I64, GgufType::U8, uint64_t{1} << 63}), "'k.i64'", "i64");
  STRATA_EXPECT_ERROR(w.add_kv({"k.str", GgufType::STRING, GgufType::U8, 5}), "'k.str'", "string");
  STRATA_EXPECT_ERROR(w.add_kv({"k.f32", GgufType::F32, GgufType::U8, "x"}), "'k.f32'", "f32");
  STRATA_EXPECT_ERROR(w.add_kv({"k.bool", GgufType::BOOL, GgufType::U8, 1}), "'k.bool'", "bool");
  STRATA_EXPECT_ERROR(w.add_kv({"k.arr", GgufType::ARRAY, GgufType::U8, 1}), "'k.arr'", "array");
  STRATA_EXPECT_ERROR(w.add_kv({"k.elem", GgufType::ARRAY, GgufType::U16, json::array({1, 70000})}),
                      "'k.elem'", "u16");
  STRATA_EXPECT_ERROR(w.add_kv({"k.type", static_cast<GgufType>(13), GgufType::U8, 1}), "'k.type'",
                      "unknown value type 13");
  STRATA_EXPECT_ERROR(
      w.add_kv({"k.mix", GgufType::ARRAY, GgufType::ARRAY, json::array({json::array({1, "a"})})}), "'k.mix'",
      "mixes");
  json deep = json::array({1});
  for (int i = 0; i < 9; ++i) deep = json::array({deep});
  STRATA_EXPECT_ERROR(w.add_kv({"k.deep", GgufType::ARRAY, GgufType::ARRAY, deep}), "'k.deep'",
                      "nested deeper");
  STRATA_EXPECT_ERROR(w.add_kv({"bad\xc3", GgufType::U8, GgufType::U8, 1}), "UTF-8");
  STRATA_EXPECT_ERROR(w.add_kv({"general.alignment", GgufType::U32, GgufType::U8, 32u}),
                      "'general.alignment'", "64");
  STRATA_EXPECT_ERROR(w.add_kv({"general.alignment", GgufType::U64, GgufType::U8, 64u}),
                      "'general.alignment'");
  w.add_kv({"k.ok", GgufType::U8, GgufType::U8, 1});
  STRATA_EXPECT_ERROR(w.add_kv({"k.ok", GgufType::U8, GgufType::U8, 2}), "'k.ok'", "duplicate");
}

TEST(GgufWriter, IoErrorNamesPath) {
  ScratchDir dir("gguf");
  GgufWriter w;
  w.add_tensor("x", WeightType::F32, {1}, std::vector<uint8_t>(4));
  const auto target = dir / "no-such-dir" / "out.gguf";
  STRATA_EXPECT_ERROR(w.write(target), target.string());
  EXPECT_THROW(w.write(target), Error);
  // A failed write leaves nothing behind, and a good one no temporary file.
  w.write(dir / "ok.gguf");
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);
}

}  // namespace
}  // namespace strata::test
