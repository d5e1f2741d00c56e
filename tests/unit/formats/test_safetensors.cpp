#include <gtest/gtest.h>

#include <cstring>

#include "runtime/common/error.h"
#include "runtime/format/safetensors.h"
#include "runtime/format/safetensors_writer.h"
#include "tests/support/test_support.h"
#include "tests/unit/formats/st_test_util.h"

namespace strata::test {
namespace {

SafetensorsFile parse_image(const std::vector<uint8_t>& img) {
  return parse_safetensors(img, img.size(), "t.st");
}

TEST(Safetensors, RoundTripEveryDtype) {
  ScratchDir dir("st_dtypes");
  const std::vector<WeightType> types = {WeightType::F32,     WeightType::F16,     WeightType::BF16,
                                         WeightType::F8_E4M3, WeightType::F8_E8M0, WeightType::I8,
                                         WeightType::U8,      WeightType::I16,     WeightType::I32,
                                         WeightType::I64,     WeightType::BOOL};
  SafetensorsWriter w;
  std::vector<std::vector<uint8_t>> data;
  for (size_t i = 0; i < types.size(); ++i) {
    const uint64_t bytes = *weight_type_bytes(types[i], 3 * 5);
    data.push_back(fill_pattern(bytes, static_cast<uint32_t>(i)));
    w.add_tensor("t" + std::to_string(i), types[i], {3, 5}, data.back());
  }
  w.add_tensor("empty", WeightType::F32, {0, 4}, {});
  w.add_metadata("format", "pt");
  w.write(dir / "a.safetensors");
  const auto file = read_bytes(dir / "a.safetensors");
  EXPECT_EQ(file.size(), w.total_bytes());

  const SafetensorsFile f = read_safetensors(dir / "a.safetensors");
  EXPECT_EQ(f.file_size, file.size());
  EXPECT_EQ(f.data_offset % 8, 0u);
  EXPECT_EQ(f.data_offset, 8 + f.header_size);
  ASSERT_EQ(f.metadata.size(), 1u);
  EXPECT_EQ(f.metadata[0].second, "pt");
  ASSERT_EQ(f.tensors.size(), types.size() + 1);
  for (size_t i = 0; i < types.size(); ++i) {
    const SafetensorsTensor* t = f.find("t" + std::to_string(i));
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->type, types[i]);
    EXPECT_EQ(t->dtype, *safetensors_dtype(types[i]));
    EXPECT_EQ(t->shape, (std::vector<int64_t>{3, 5}));
    ASSERT_EQ(t->nbytes, data[i].size());
    ASSERT_LE(t->offset + t->nbytes, file.size());
    EXPECT_EQ(0, std::memcmp(file.data() + t->offset, data[i].data(), t->nbytes)) << t->name;
  }
  EXPECT_EQ(f.find("empty")->nbytes, 0u);
  // Insertion order is file order; tensors come back sorted by offset.
  EXPECT_EQ(f.tensors.front().name, "t0");
  // parse of the header bytes alone gives the same result.
  const std::vector<uint8_t> head(file.begin(), file.begin() + static_cast<long>(f.data_offset));
  EXPECT_EQ(parse_safetensors(head, file.size(), "h").tensors.size(), f.tensors.size());
}

TEST(Safetensors, DtypeTable) {
  EXPECT_EQ(weight_type_from_safetensors("BF16"), WeightType::BF16);
  EXPECT_EQ(weight_type_from_safetensors("F8_E8M0"), WeightType::F8_E8M0);
  EXPECT_FALSE(weight_type_from_safetensors("F64"));
  EXPECT_FALSE(weight_type_from_safetensors("F8_E5M2"));
  EXPECT_FALSE(safetensors_dtype(WeightType::Q8_0));
  EXPECT_FALSE(safetensors_dtype(WeightType::MXFP4));
}

TEST(Safetensors, ShorterThanEight) {
  const std::vector<uint8_t> img = {1, 2, 3};
  STRATA_EXPECT_ERROR(parse_image(img), "t.st", "shorter than the 8-byte", offset_text(0));
  ScratchDir dir("st_short");
  write_bytes(dir / "s.safetensors", img);
  STRATA_EXPECT_ERROR(read_safetensors(dir / "s.safetensors"), "s.safetensors", "shorter");
}

TEST(Safetensors, HugeHeaderLength) {
  const auto img = st_image("{}", 0, 200'000'000);
  STRATA_EXPECT_ERROR(parse_image(img), "t.st", "exceeds the limit", offset_text(0));
  ScratchDir dir("st_huge");
  write_bytes(dir / "h.safetensors", img);
  STRATA_EXPECT_ERROR(read_safetensors(dir / "h.safetensors"), "h.safetensors", "exceeds the limit");
}

TEST(Safetensors, HeaderPastEndOfFile) {
  const auto img = st_image("{}", 0, 1000);
  STRATA_EXPECT_ERROR(parse_image(img), "t.st", "runs past the end of the file", offset_text(0));
  // Only a prefix of the header handed over.
  const auto full = st_image("{}  ", 0);
  STRATA_EXPECT_ERROR(parse_safetensors(std::span(full).first(9), full.size(), "p"), "truncated");
}

TEST(Safetensors, InvalidJson) {
  const std::string h = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, x})";
  const auto img = st_image(h, 4);
  STRATA_EXPECT_ERROR(parse_image(img), "t.st", "invalid JSON", offset_text(8 + h.find('x')));
}

TEST(Safetensors, HeaderNotObject) {
  STRATA_EXPECT_ERROR(parse_image(st_image("[1, 2]", 0)), "t.st", "not a JSON object");
}

TEST(Safetensors, DuplicateKey) {
  const std::string h =
      R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  const auto img = st_image(h, 8);
  STRATA_EXPECT_ERROR(parse_image(img), "t.st", "duplicate key 'a'", offset_text(8 + h.rfind("\"a\"")));
}

TEST(Safetensors, DuplicateNestedKey) {
  const std::string h = R"({"a": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}})";
  STRATA_EXPECT_ERROR(parse_image(st_image(h, 4)), "duplicate key 'dtype'",
                      offset_text(8 + h.rfind("\"dtype\"")));
}

TEST(Safetensors, InvalidUtf8Name) {
  std::string h = R"({"ab": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
  h[3] = static_cast<char>(0xC3);  // lead byte followed by 'b' is ill-formed
  STRATA_EXPECT_ERROR(parse_image(st_image(h, 4)), "t.st", "UTF-8", "offset ");
}

TEST(Safetensors, TooDeep) {
  const std::string h = R"({"__metadata__": {"a": [[[[[[[[[[1]]]]]]]]]]}})";
  STRATA_EXPECT_ERROR(parse_image(st_image(h, 0)), "t.st", "nested deeper");
}

TEST(Safetensors, MissingAndIllTypedFields) {
  STRATA_EXPECT_ERROR(parse_image(st_image(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4)), "'w'",
                      "'dtype'", offset_text(9));
  STRATA_EXPECT_ERROR(
      parse_image(st_image(R"({"w": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}})", 4)), "'w'",
      "'dtype'");
  STRATA_EXPECT_ERROR(parse_image(st_image(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4)), "'w'",
                      "'shape'");
  STRATA_EXPECT_ERROR(
      parse_image(st_image(R"({"w": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}})", 4)), "'w'",
      "not an integer");
  STRATA_EXPECT_ERROR(parse_image(st_image(R"({"w": {"dtype": "F32", "shape": [1]}})", 4)), "'w'",
                      "data_offsets");
  STRATA_EXPECT_ERROR(
      parse_image(st_image(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4)), "'w'",
      "data_offsets");
  STRATA_EXPECT_ERROR(
      parse_image(st_image(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-1, 4]}})", 4)), "'w'",
      "non-negative");
  STRATA_EXPECT_ERROR(parse_image(st_image(R"({"w": 3})", 0)), "'w'", "not a JSON object");
  STRATA_EXPECT_ERROR(parse_image(st_image(R"({"__metadata__": {"k": 1}})", 0)), "__metadata__.k",
                      "not a string");
  STRATA_EXPECT_ERROR(parse_image(st_image(R"({"__metadata__": []})", 0)), "__metadata__",
                      "not a JSON object");
}

TEST(Safetensors, NegativeDimension) {
  STRATA_EXPECT_ERROR(
      parse_image(st_image(R"({"w": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 4]}})", 4)),
      "t.st", "'w'", "negative dimension -3", offset_text(9));
}

TEST(Safetensors, ShapeOverflow) {
  STRATA_EXPECT_ERROR(
      parse_image(st_image(
          R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", 4)),
      "'w'", "overflows");
  // Element count fits but the byte count does not.
  STRATA_EXPECT_ERROR(
      parse_image(
          st_image(R"({"w": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 4]}})", 4)),
      "'w'", "overflow");
}

TEST(Safetensors, EndBeforeBegin) {
  STRATA_EXPECT_ERROR(
      parse_image(st_image(R"({"w": {"dtype": "U8", "shape": [0], "data_offsets": [4, 2]}})", 4)), "'w'",
      "before begin");
}

TEST(Safetensors, DataPastEndOfFile) {
  const std::string h = R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
  STRATA_EXPECT_ERROR(parse_image(st_image(h, 12)), "t.st", "'w'", "past the end of the file",
                      offset_text(8 + h.size()));
}

TEST(Safetensors, SizeMismatch) {
  const std::string h = R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}})";
  STRATA_EXPECT_ERROR(parse_image(st_image(h, 8)), "t.st", "'w'", "does not match",
                      offset_text(8 + h.size()));
}

TEST(Safetensors, UnknownDtype) {
  STRATA_EXPECT_ERROR(
      parse_image(st_image(R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", 8)), "t.st",
      "'w'", "unknown dtype 'F64'");
  STRATA_EXPECT_ERROR(
      parse_image(st_image(R"({"v": {"dtype": "F8_E5M2", "shape": [1], "data_offsets": [0, 1]}})", 1)), "'v'",
      "unknown dtype 'F8_E5M2'");
}

TEST(Safetensors, Overlap) {
  const std::string h =
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  STRATA_EXPECT_ERROR(parse_image(st_image(h, 12)), "t.st", "'b'", "overlaps tensor 'a'",
                      offset_text(8 + h.size() + 4));
  // Touching ranges and empty tensors inside others are fine.
  const std::string ok =
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}, "c": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})";
  EXPECT_EQ(parse_image(st_image(ok, 12)).tensors.size(), 3u);
}

TEST(Safetensors, AbsoluteOffsetsAndHeaderOrder) {
  const std::string h =
      R"({"z": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]}, "y": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})";
  const auto f = parse_image(st_image(h, 6));
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "y");
  EXPECT_EQ(f.tensors[0].offset, 8 + h.size());
  EXPECT_EQ(f.tensors[1].offset, 8 + h.size() + 4);
  EXPECT_EQ(f.tensors[1].nbytes, 2u);
}

TEST(Safetensors, MissingFile) {
  STRATA_EXPECT_ERROR(read_safetensors("/nonexistent/x.safetensors"), "/nonexistent/x.safetensors",
                      "cannot open");
}

TEST(SafetensorsWriter, RejectsBadTensors) {
  SafetensorsWriter w;
  STRATA_EXPECT_ERROR(w.add_tensor("q", WeightType::Q8_0, {32}, std::vector<uint8_t>(34)), "'q'",
                      "no safetensors dtype");
  STRATA_EXPECT_ERROR(w.add_tensor("s", WeightType::F32, {3}, std::vector<uint8_t>(8)), "'s'", "got 8 bytes");
  STRATA_EXPECT_ERROR(w.add_tensor("n", WeightType::F32, {-1}, {}), "'n'", "negative");
  w.add_tensor("a", WeightType::U8, {1}, {7});
  STRATA_EXPECT_ERROR(w.add_tensor("a", WeightType::U8, {1}, {7}), "'a'", "twice");
  STRATA_EXPECT_ERROR(w.write("/nonexistent/dir/out.safetensors"), "/nonexistent/dir/out.safetensors");
}

}  // namespace
}  // namespace strata::test
