// Writer -> reader round trips: every value type, every tensor type, both alignments.
#include <cstring>
#include <limits>

#include "runtime/common/error.h"
#include "runtime/format/gguf.h"
#include "tests/unit/gguf/gguf_test_util.h"

namespace strata::test {
namespace {

using nlohmann::json;

std::vector<GgufKV> every_value_type() {
  std::vector<GgufKV> kv;
  kv.push_back({"general.architecture", GgufType::STRING, GgufType::U8, "deepseek2"});
  kv.push_back({"t.u8", GgufType::U8, GgufType::U8, 255});
  kv.push_back({"t.i8", GgufType::I8, GgufType::U8, -128});
  kv.push_back({"t.u16", GgufType::U16, GgufType::U8, 65535});
  kv.push_back({"t.i16", GgufType::I16, GgufType::U8, -32768});
  kv.push_back({"t.u32", GgufType::U32, GgufType::U8, 4000000000u});
  kv.push_back({"t.i32", GgufType::I32, GgufType::U8, -2000000000});
  kv.push_back({"t.f32", GgufType::F32, GgufType::U8, 1.5});
  kv.push_back({"t.bool", GgufType::BOOL, GgufType::U8, true});
  kv.push_back({"t.false", GgufType::BOOL, GgufType::U8, false});
  kv.push_back({"t.str", GgufType::STRING, GgufType::U8, "h\xc3\xa9llo \xe4\xb8\x96"});
  kv.push_back({"t.u64", GgufType::U64, GgufType::U8, (uint64_t{1} << 63) + 5});
  kv.push_back({"t.i64", GgufType::I64, GgufType::U8, -(int64_t{1} << 62)});
  kv.push_back({"t.f64", GgufType::F64, GgufType::U8, 1e300});
  kv.push_back({"a.u8", GgufType::ARRAY, GgufType::U8, json::array({0, 1, 255})});
  kv.push_back({"a.i8", GgufType::ARRAY, GgufType::I8, json::array({-1, 127})});
  kv.push_back({"a.u16", GgufType::ARRAY, GgufType::U16, json::array({7, 65535})});
  kv.push_back({"a.i16", GgufType::ARRAY, GgufType::I16, json::array({-7})});
  kv.push_back({"a.u32", GgufType::ARRAY, GgufType::U32, json::array({1u, 4294967295u})});
  kv.push_back({"a.i32", GgufType::ARRAY, GgufType::I32, json::array({-1, 2, 3})});
  kv.push_back({"a.f32", GgufType::ARRAY, GgufType::F32, json::array({0.25, -2.0})});
  kv.push_back({"a.bool", GgufType::ARRAY, GgufType::BOOL, json::array({true, false})});
  kv.push_back({"a.str", GgufType::ARRAY, GgufType::STRING, json::array({"a", "", "<|end|>"})});
  kv.push_back(
      {"a.u64", GgufType::ARRAY, GgufType::U64, json::array({std::numeric_limits<uint64_t>::max()})});
  kv.push_back({"a.i64", GgufType::ARRAY, GgufType::I64, json::array({std::numeric_limits<int64_t>::min()})});
  kv.push_back({"a.f64", GgufType::ARRAY, GgufType::F64, json::array({0.1})});
  kv.push_back({"a.empty", GgufType::ARRAY, GgufType::STRING, json::array()});
  GgufKV nested{"a.nested", GgufType::ARRAY, GgufType::ARRAY,
                json::array({json::array({1, 2}), json::array()})};
  nested.nested_types = {GgufType::U16};
  kv.push_back(nested);
  GgufKV deep{"a.deep", GgufType::ARRAY, GgufType::ARRAY,
              json::array({json::array({json::array({"x", "y"})}), json::array({json::array({"z"})})})};
  deep.nested_types = {GgufType::ARRAY, GgufType::STRING};
  kv.push_back(deep);
  return kv;
}

TEST(GgufRoundTrip, EveryValueType) {
  ScratchDir dir("gguf");
  GgufWriter w;
  const auto kvs = every_value_type();
  for (const auto& kv : kvs) w.add_kv(kv);
  w.write(dir / "v.gguf");
  const GgufFile f = read_gguf(dir / "v.gguf");
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.alignment, 32u);
  ASSERT_EQ(f.kv.size(), kvs.size());  // no general.alignment added at the default
  for (size_t i = 0; i < kvs.size(); ++i) {
    SCOPED_TRACE(kvs[i].key);
    EXPECT_EQ(f.kv[i].key, kvs[i].key);  // insertion order kept
    EXPECT_EQ(f.kv[i].type, kvs[i].type);
    if (kvs[i].type == GgufType::ARRAY) {
      EXPECT_EQ(f.kv[i].array_type, kvs[i].array_type);
      EXPECT_EQ(f.kv[i].nested_types, kvs[i].nested_types);
    }
    EXPECT_EQ(f.kv[i].value, kvs[i].value);
  }
  const json meta = f.metadata_json();
  EXPECT_TRUE(meta["t.u64"].is_number_unsigned());
  EXPECT_EQ(meta["t.u64"].get<uint64_t>(), (uint64_t{1} << 63) + 5);
  EXPECT_TRUE(meta["t.i64"].is_number_integer());
  EXPECT_FALSE(meta["t.i64"].is_number_unsigned());
  EXPECT_EQ(meta["t.i64"].get<int64_t>(), -(int64_t{1} << 62));
  EXPECT_TRUE(meta["t.f32"].is_number_float());
  EXPECT_DOUBLE_EQ(meta["t.f64"].get<double>(), 1e300);
  EXPECT_TRUE(meta["t.bool"].is_boolean());
  EXPECT_EQ(meta["a.str"][2], "<|end|>");
  EXPECT_EQ(meta["a.deep"][1][0][0], "z");
  ASSERT_NE(f.find("t.i8"), nullptr);
  EXPECT_EQ(f.find("t.i8")->value.get<int>(), -128);
  EXPECT_EQ(f.find("missing"), nullptr);
}

TEST(GgufRoundTrip, NestedArrayTypesInferredWhenNotGiven) {
  ScratchDir dir("gguf");
  GgufWriter w;
  w.add_kv({"n", GgufType::ARRAY, GgufType::ARRAY, json::array({json::array({1, -2}), json::array({3})})});
  w.add_kv({"m", GgufType::ARRAY, GgufType::ARRAY, json::array({json::array({"a"}), json::array({1})})});
  const GgufFile f = parse_gguf(written_image(w, dir), "n.gguf");
  EXPECT_EQ(f.kv[0].nested_types, std::vector<GgufType>{GgufType::I32});
  EXPECT_EQ(f.kv[0].value, json::parse("[[1,-2],[3]]"));
  // Arrays at one level with different element types: read, but no shared type recorded.
  EXPECT_TRUE(f.kv[1].nested_types.empty());
  EXPECT_EQ(f.kv[1].value, json::parse(R"([["a"],[1]])"));
}

struct TensorCase {
  WeightType type;
  GgmlType ggml;
  std::vector<uint64_t> ne;
};

void check_tensors(uint64_t alignment) {
  ScratchDir dir("gguf");
  const std::vector<TensorCase> cases = {
      {WeightType::F32, GgmlType::F32, {3}},
      {WeightType::F16, GgmlType::F16, {5, 3}},
      {WeightType::BF16, GgmlType::BF16, {2, 2, 2}},
      {WeightType::Q8_0, GgmlType::Q8_0, {64, 3}},
      {WeightType::Q4_0, GgmlType::Q4_0, {32, 1, 2}},
      {WeightType::Q4_K, GgmlType::Q4_K, {256, 2}},
      {WeightType::Q5_K, GgmlType::Q5_K, {512}},
      {WeightType::Q6_K, GgmlType::Q6_K, {256, 1, 1, 2}},
      {WeightType::Q4_1, GgmlType::Q4_1, {32, 2}},
      {WeightType::Q5_0, GgmlType::Q5_0, {64}},
      {WeightType::Q5_1, GgmlType::Q5_1, {32, 3}},
      {WeightType::Q2_K, GgmlType::Q2_K, {256, 2}},
      {WeightType::Q3_K, GgmlType::Q3_K, {512}},
      {WeightType::IQ4_NL, GgmlType::IQ4_NL, {32, 1, 2}},
      {WeightType::IQ4_XS, GgmlType::IQ4_XS, {256, 3}},
      {WeightType::IQ2_XXS, GgmlType::IQ2_XXS, {256, 2}},
      {WeightType::IQ2_XS, GgmlType::IQ2_XS, {512}},
      {WeightType::IQ2_S, GgmlType::IQ2_S, {256, 1, 2}},
      {WeightType::IQ3_XXS, GgmlType::IQ3_XXS, {256}},
      {WeightType::IQ3_S, GgmlType::IQ3_S, {256, 3}},
      {WeightType::IQ1_S, GgmlType::IQ1_S, {768}},
      {WeightType::IQ1_M, GgmlType::IQ1_M, {256, 2}},
      {WeightType::I8, GgmlType::I8, {7}},
      {WeightType::I16, GgmlType::I16, {3, 3}},
      {WeightType::I32, GgmlType::I32, {9}},
      {WeightType::I64, GgmlType::I64, {1}},
      {WeightType::F32, GgmlType::F32, {0, 4}},
  };
  GgufWriter w(alignment);
  w.add_kv({"general.name", GgufType::STRING, GgufType::U8, "t"});
  std::vector<std::vector<uint8_t>> data;
  for (size_t i = 0; i < cases.size(); ++i) {
    uint64_t n = 1;
    for (uint64_t d : cases[i].ne) n *= d;
    data.push_back(pattern_bytes(*weight_type_bytes(cases[i].type, n), static_cast<uint32_t>(i)));
    w.add_tensor("tensor." + std::to_string(i), cases[i].type, cases[i].ne, data.back());
  }
  const auto bytes = written_image(w, dir);
  const GgufFile f = parse_gguf(bytes, "t.gguf");
  const GgufFile g = read_gguf(dir / "img.gguf");
  EXPECT_EQ(f.alignment, alignment);
  EXPECT_EQ(f.data_offset % alignment, 0u);
  EXPECT_EQ(f.file_size, bytes.size());
  EXPECT_EQ(g.data_offset, f.data_offset);
  ASSERT_EQ(f.tensors.size(), cases.size());
  ASSERT_EQ(g.tensors.size(), cases.size());
  if (alignment != 32) {
    ASSERT_NE(f.find("general.alignment"), nullptr);
    EXPECT_EQ(f.find("general.alignment")->type, GgufType::U32);
    EXPECT_EQ(f.find("general.alignment")->value.get<uint64_t>(), alignment);
  } else {
    EXPECT_EQ(f.find("general.alignment"), nullptr);
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    const auto& t = f.tensors[i];
    EXPECT_EQ(t.name, "tensor." + std::to_string(i));
    EXPECT_EQ(t.type, cases[i].type);
    EXPECT_EQ(t.ggml_type, static_cast<uint32_t>(cases[i].ggml));
    EXPECT_EQ(t.ne, cases[i].ne);
    EXPECT_EQ(t.nbytes, data[i].size());
    EXPECT_EQ(t.offset % alignment, 0u);
    EXPECT_GE(t.offset, f.data_offset);
    ASSERT_LE(t.offset + t.nbytes, bytes.size());
    if (!data[i].empty()) {
      EXPECT_EQ(0, std::memcmp(bytes.data() + t.offset, data[i].data(), data[i].size()));
    }
    EXPECT_EQ(g.tensors[i].offset, t.offset);
    EXPECT_EQ(g.tensors[i].nbytes, t.nbytes);
  }
}

TEST(GgufRoundTrip, EveryTensorTypeAlign32) { check_tensors(32); }
TEST(GgufRoundTrip, EveryTensorTypeAlign64) { check_tensors(64); }
TEST(GgufRoundTrip, EveryTensorTypeAlign1) { check_tensors(1); }

TEST(GgufRoundTrip, CallerAlignmentKeyNotDuplicated) {
  ScratchDir dir("gguf");
  GgufWriter w(64);
  w.add_kv({"general.alignment", GgufType::U32, GgufType::U8, 64u});
  w.add_tensor("x", WeightType::F32, {1}, pattern_bytes(4, 1));
  const GgufFile f = parse_gguf(written_image(w, dir), "a.gguf");
  EXPECT_EQ(f.kv.size(), 1u);
  EXPECT_EQ(f.alignment, 64u);
  EXPECT_EQ(f.tensors[0].offset % 64, 0u);
}

TEST(GgufRoundTrip, LargeHeaderReadInChunks) {
  // Metadata of a few MiB makes the file reader grow its prefix several times.
  ScratchDir dir("gguf");
  json tokens = json::array();
  for (int i = 0; i < 150000; ++i) tokens.push_back("token-" + std::to_string(i) + std::string(i % 17, 'x'));
  GgufWriter w;
  w.add_kv({"tokenizer.ggml.tokens", GgufType::ARRAY, GgufType::STRING, tokens});
  w.add_tensor("last", WeightType::I32, {2}, pattern_bytes(8, 3));
  w.write(dir / "big.gguf");
  const GgufFile f = read_gguf(dir / "big.gguf");
  EXPECT_GT(f.data_offset, 2u << 20);
  EXPECT_EQ(f.kv[0].value, tokens);
  const auto bytes = read_bytes(dir / "big.gguf");
  EXPECT_EQ(0, std::memcmp(bytes.data() + f.tensors[0].offset, pattern_bytes(8, 3).data(), 8));
}

TEST(GgufTypes, Mapping) {
  for (uint32_t id : {0u, 1u, 2u, 3u, 6u, 7u, 8u, 10u, 11u, 12u, 13u, 14u, 16u, 17u, 18u, 19u, 20u, 21u, 22u, 23u,
                      24u, 25u, 26u, 27u, 29u, 30u}) {
    const auto wt = weight_type_from_ggml(id);
    ASSERT_TRUE(wt.has_value()) << id;
    ASSERT_TRUE(ggml_from_weight_type(*wt).has_value()) << id;
    EXPECT_EQ(static_cast<uint32_t>(*ggml_from_weight_type(*wt)), id);
  }
  EXPECT_EQ(weight_type_from_ggml(39), std::nullopt);  // MXFP4: different block layout
  EXPECT_EQ(weight_type_from_ggml(28), std::nullopt);  // F64
  for (uint32_t other : {15u, 34u, 35u})  // Q8_K (an activation type), TQ1_0, TQ2_0
    EXPECT_EQ(weight_type_from_ggml(other), std::nullopt) << other;
  EXPECT_EQ(weight_type_from_ggml(1000), std::nullopt);
  EXPECT_EQ(ggml_from_weight_type(WeightType::MXFP4), std::nullopt);
  EXPECT_EQ(ggml_from_weight_type(WeightType::F8_E4M3), std::nullopt);
  EXPECT_EQ(ggml_from_weight_type(WeightType::U8), std::nullopt);
}

}  // namespace
}  // namespace strata::test
