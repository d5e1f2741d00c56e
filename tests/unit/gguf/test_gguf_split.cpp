// Split models: finding every part from any one, and checking their split.* metadata.
#include "runtime/common/error.h"
#include "runtime/format/gguf_split.h"
#include "tests/unit/gguf/gguf_test_util.h"

namespace strata::test {
namespace {

// Writes part `no` (0-based) of `count` with split metadata and one tensor.
void write_part(const ScratchDir& dir, const std::string& prefix, int no, int count, int tensors_total,
                const std::string& tensor) {
  GgufWriter w;
  w.add_kv({"split.no", GgufType::U16, GgufType::U8, no});
  w.add_kv({"split.count", GgufType::U16, GgufType::U8, count});
  w.add_kv({"split.tensors.count", GgufType::I32, GgufType::U8, tensors_total});
  w.add_tensor(tensor, WeightType::F32, {1}, pattern_bytes(4, static_cast<uint32_t>(no)));
  char name[64];
  std::snprintf(name, sizeof name, "-%05d-of-%05d.gguf", no + 1, count);
  w.write(dir / (prefix + name));
}

TEST(GgufSplit, FindsAllPartsFromAnyPart) {
  ScratchDir dir("gguf");
  for (int i = 0; i < 3; ++i) write_part(dir, "model-Q4_K", i, 3, 3, "t" + std::to_string(i));
  const auto parts = gguf_split_paths(dir / "model-Q4_K-00002-of-00003.gguf");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], dir / "model-Q4_K-00001-of-00003.gguf");
  EXPECT_EQ(parts[1], dir / "model-Q4_K-00002-of-00003.gguf");
  EXPECT_EQ(parts[2], dir / "model-Q4_K-00003-of-00003.gguf");
  std::vector<GgufFile> files;
  for (const auto& p : parts) files.push_back(read_gguf(p));
  EXPECT_NO_THROW(check_gguf_split(files));
}

TEST(GgufSplit, PlainNameIsOnePart) {
  ScratchDir dir("gguf");
  EXPECT_EQ(gguf_split_paths(dir / "model.gguf"), std::vector<std::filesystem::path>{dir / "model.gguf"});
  EXPECT_EQ(gguf_split_paths(dir / "model-1-of-2.gguf").size(), 1u);
}

TEST(GgufSplit, MissingPartNamed) {
  ScratchDir dir("gguf");
  write_part(dir, "m", 0, 3, 3, "a");
  write_part(dir, "m", 1, 3, 3, "b");
  const auto missing = (dir / "m-00003-of-00003.gguf").string();
  STRATA_EXPECT_ERROR(gguf_split_paths(dir / "m-00001-of-00003.gguf"), missing, "part 3 of 3 is missing");
  EXPECT_THROW(gguf_split_paths(dir / "m-00001-of-00003.gguf"), Error);
}

TEST(GgufSplit, ImpossiblePartNumbers) {
  ScratchDir dir("gguf");
  STRATA_EXPECT_ERROR(gguf_split_paths(dir / "m-00000-of-00002.gguf"), "m-00000-of-00002.gguf", "impossible");
  STRATA_EXPECT_ERROR(gguf_split_paths(dir / "m-00003-of-00002.gguf"), "impossible");
}

class GgufSplitMeta : public ::testing::Test {
 protected:
  std::vector<GgufFile> read(const std::vector<std::pair<int, int>>& no_count, int total,
                             std::vector<std::string> names = {"a", "b"}) {
    std::vector<GgufFile> files;
    for (size_t i = 0; i < no_count.size(); ++i) {
      write_part(dir, "p" + std::to_string(i), no_count[i].first, no_count[i].second, total, names[i]);
      char name[64];
      std::snprintf(name, sizeof name, "-%05d-of-%05d.gguf", no_count[i].first + 1, no_count[i].second);
      files.push_back(read_gguf(dir / ("p" + std::to_string(i) + name)));
    }
    return files;
  }
  ScratchDir dir{"gguf"};
};

TEST_F(GgufSplitMeta, WrongIndexNamesFile) {
  const auto files = read({{0, 2}, {0, 2}}, 2);
  STRATA_EXPECT_ERROR(check_gguf_split(files), files[1].path, "'split.no'", "index 0", "part index 1");
}

TEST_F(GgufSplitMeta, WrongCountNamesFile) {
  const auto files = read({{0, 2}, {1, 3}}, 2);
  STRATA_EXPECT_ERROR(check_gguf_split(files), files[1].path, "'split.count'", "says 3 parts");
}

TEST_F(GgufSplitMeta, WrongTensorTotal) {
  const auto files = read({{0, 2}, {1, 2}}, 5);
  STRATA_EXPECT_ERROR(check_gguf_split(files), files[0].path, "'split.tensors.count'", "says 5", "hold 2");
}

TEST_F(GgufSplitMeta, TensorInTwoParts) {
  const auto files = read({{0, 2}, {1, 2}}, 2, {"same", "same"});
  STRATA_EXPECT_ERROR(check_gguf_split(files), files[1].path, "'same'", "also appears in " + files[0].path);
}

TEST_F(GgufSplitMeta, NonIntegerMetadata) {
  ScratchDir d("gguf");
  GgufWriter w;
  w.add_kv({"split.no", GgufType::STRING, GgufType::U8, "zero"});
  w.write(d / "s.gguf");
  const std::vector<GgufFile> files{read_gguf(d / "s.gguf")};
  STRATA_EXPECT_ERROR(check_gguf_split(files), "s.gguf", "'split.no'", "not a non-negative integer");
}

}  // namespace
}  // namespace strata::test
