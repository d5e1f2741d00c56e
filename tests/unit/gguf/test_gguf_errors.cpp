// Hand-corrupted images: every rejection names the file, the key or tensor, and the offset.
#include "runtime/common/error.h"
#include "runtime/format/gguf.h"
#include "tests/unit/gguf/gguf_test_util.h"

namespace strata::test {
namespace {

using nlohmann::json;

constexpr const char* kNorm = "blk.0.attn_norm.weight";  // F32 {8}
constexpr const char* kDown = "blk.0.ffn_down.weight";   // Q8_0 {32, 2}
constexpr const char* kGate = "blk.0.ffn_gate.weight";   // F16 {4, 4}

#define EXPECT_GGUF_ERROR(img, ...)                                            \
  do {                                                                         \
    EXPECT_THROW(parse_gguf(img, "bad.gguf"), ::strata::Error);                \
    STRATA_EXPECT_ERROR(parse_gguf(img, "bad.gguf"), "bad.gguf", __VA_ARGS__); \
  } while (0)

class GgufErrors : public ::testing::Test {
 protected:
  void SetUp() override { img = image(32); }

  std::vector<uint8_t> image(uint64_t alignment) {
    GgufWriter w(alignment);
    w.add_kv({"general.architecture", GgufType::STRING, GgufType::U8, "deepseek2"});
    w.add_kv({"test.key.one", GgufType::U32, GgufType::U8, 7u});
    w.add_kv({"test.key.two", GgufType::BOOL, GgufType::U8, true});
    w.add_kv({"test.tokens", GgufType::ARRAY, GgufType::STRING, json::array({"alpha", "beta"})});
    w.add_kv({"test.scores", GgufType::ARRAY, GgufType::F32, json::array({0.5, 1.5})});
    w.add_tensor(kNorm, WeightType::F32, {8}, pattern_bytes(32, 1));
    w.add_tensor(kDown, WeightType::Q8_0, {32, 2}, pattern_bytes(68, 2));
    w.add_tensor(kGate, WeightType::F16, {4, 4}, pattern_bytes(32, 3));
    return written_image(w, dir);
  }

  ScratchDir dir{"gguf"};
  std::vector<uint8_t> img;
};

TEST_F(GgufErrors, ValidImageParses) {
  const GgufFile f = parse_gguf(img, "good.gguf");
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors[1].name, kDown);
  EXPECT_EQ(f.tensors[1].nbytes, 68u);
}

TEST_F(GgufErrors, WrongMagic) {
  img[0] = 'X';
  img[3] = 0x01;
  EXPECT_GGUF_ERROR(img, "not a GGUF file", "XGU\\x01", at(0));
}

TEST_F(GgufErrors, UnsupportedVersion) {
  put_le(img, 4, 2, 4);
  EXPECT_GGUF_ERROR(img, "unsupported GGUF version 2", at(4));
}

TEST_F(GgufErrors, TruncationAnywhere) {
  const GgufFile f = parse_gguf(img, "good.gguf");
  uint64_t data_end = 0;
  for (const auto& t : f.tensors) data_end = std::max(data_end, t.offset + t.nbytes);
  for (size_t cut = 0; cut < img.size(); ++cut) {
    const std::vector<uint8_t> part(img.begin(), img.begin() + static_cast<ptrdiff_t>(cut));
    if (cut < data_end) {
      EXPECT_THROW(parse_gguf(part, "bad.gguf"), Error) << "cut at " << cut;
    } else {
      EXPECT_NO_THROW(parse_gguf(part, "bad.gguf")) << "cut at " << cut;  // only padding lost
    }
  }
  // Inside a tensor info, inside the data, inside a metadata string.
  const InfoAt gate = info_at(img, kGate);
  const std::vector<uint8_t> in_info(img.begin(), img.begin() + static_cast<ptrdiff_t>(gate.type_at + 2));
  EXPECT_GGUF_ERROR(in_info, "truncated", "tensor type", std::string("'") + kGate + "'", at(gate.type_at));
  const std::vector<uint8_t> in_data(img.begin(), img.begin() + static_cast<ptrdiff_t>(data_end - 3));
  EXPECT_GGUF_ERROR(in_data, "runs past the end of the file", std::string("'") + kGate + "'",
                    at(gate.offset_at));
  put_le(img, 8, 0, 8);  // no tensors: the counts fit, so the cut is found in the strings
  const size_t beta = find_text(img, "beta");
  const std::vector<uint8_t> in_string(img.begin(), img.begin() + static_cast<ptrdiff_t>(beta + 2));
  EXPECT_GGUF_ERROR(in_string, "string value length 4 runs past the end", "'test.tokens'", at(beta - 8));
}

TEST_F(GgufErrors, HugeTensorCount) {
  put_le(img, 8, uint64_t{1} << 60, 8);
  EXPECT_GGUF_ERROR(img, "n_tensors 1152921504606846976 cannot fit", at(8));
}

TEST_F(GgufErrors, HugeKvCount) {
  put_le(img, 16, uint64_t{1} << 62, 8);
  EXPECT_GGUF_ERROR(img, "n_kv 4611686018427387904 cannot fit", at(16));
}

TEST_F(GgufErrors, HugeKeyLength) {
  const KvAt k = kv_at(img, "test.key.one");
  put_le(img, k.len_at, uint64_t{1} << 62, 8);
  EXPECT_GGUF_ERROR(img, "key length 4611686018427387904 runs past the end", "'kv #1'", at(k.len_at));
}

TEST_F(GgufErrors, HugeStringValueLength) {
  const KvAt k = kv_at(img, "general.architecture");
  put_le(img, k.value_at, ~uint64_t{0}, 8);
  EXPECT_GGUF_ERROR(img, "string value length 18446744073709551615", "'general.architecture'",
                    at(k.value_at));
}

TEST_F(GgufErrors, HugeTensorNameLength) {
  const InfoAt t = info_at(img, kDown);
  put_le(img, t.len_at, uint64_t{1} << 40, 8);
  EXPECT_GGUF_ERROR(img, "tensor name length", "'tensor #1'", at(t.len_at));
}

TEST_F(GgufErrors, InvalidUtf8Key) {
  const KvAt k = kv_at(img, "test.key.one");
  img[k.key_at + 5] = 0xC0;  // overlong encoding of '\0'
  img[k.key_at + 6] = 0x80;
  EXPECT_GGUF_ERROR(img, "key is not valid UTF-8", "'kv #1'", at(k.len_at));
}

TEST_F(GgufErrors, InvalidUtf8TensorName) {
  const InfoAt t = info_at(img, kNorm);
  img[t.name_at + 6] = 0xED;  // a UTF-16 surrogate
  img[t.name_at + 7] = 0xA0;
  img[t.name_at + 8] = 0x80;
  EXPECT_GGUF_ERROR(img, "tensor name is not valid UTF-8", "'tensor #0'", at(t.len_at));
}

TEST_F(GgufErrors, UnknownValueType) {
  const KvAt k = kv_at(img, "test.key.one");
  put_le(img, k.type_at, 13, 4);
  EXPECT_GGUF_ERROR(img, "unknown value type 13", "'test.key.one'", at(k.type_at));
}

TEST_F(GgufErrors, UnknownArrayElementType) {
  const KvAt k = kv_at(img, "test.scores");
  put_le(img, k.value_at, 77, 4);
  EXPECT_GGUF_ERROR(img, "unknown array element type 77", "'test.scores'", at(k.value_at));
}

TEST_F(GgufErrors, HugeArrayCount) {
  const KvAt k = kv_at(img, "test.tokens");
  put_le(img, k.value_at + 4, uint64_t{1} << 50, 8);
  EXPECT_GGUF_ERROR(img, "array of 1125899906842624 string values cannot fit", "'test.tokens'",
                    at(k.value_at + 4));
}

TEST_F(GgufErrors, BoolNotZeroOrOne) {
  const KvAt k = kv_at(img, "test.key.two");
  img[k.value_at] = 2;
  EXPECT_GGUF_ERROR(img, "bool value 2 is not 0 or 1", "'test.key.two'", at(k.value_at));
}

TEST_F(GgufErrors, ArraysNestedTooDeep) {
  RawImage r;
  r.header(0, 1).str("deep").le(9, 4);
  for (int i = 0; i < 10; ++i) r.le(9, 4).le(1, 8);
  r.le(0, 4).le(0, 8);
  // The array at depth 8 starts after the header (24), key (12), type (4) and 8 levels of 12.
  EXPECT_GGUF_ERROR(r.b, "arrays nested deeper than 8 levels", "'deep'", at(24 + 12 + 4 + 8 * 12));
}

TEST_F(GgufErrors, UnknownTensorType) {
  const InfoAt t = info_at(img, kGate);
  put_le(img, t.type_at, 99, 4);
  EXPECT_GGUF_ERROR(img, "unknown tensor type 99", std::string("'") + kGate + "'", at(t.type_at));
}

TEST_F(GgufErrors, UnsupportedTensorTypes) {
  const InfoAt t = info_at(img, kGate);
  put_le(img, t.type_at, 39, 4);
  EXPECT_GGUF_ERROR(img, "unsupported tensor type 39 (MXFP4)", std::string("'") + kGate + "'", at(t.type_at));
  put_le(img, t.type_at, 28, 4);
  EXPECT_GGUF_ERROR(img, "unsupported tensor type 28 (F64)", at(t.type_at));
  put_le(img, t.type_at, 34, 4);
  EXPECT_GGUF_ERROR(img, "unsupported tensor type 34 (TQ1_0)", at(t.type_at));
}

TEST_F(GgufErrors, BadDimensionCount) {
  const InfoAt t = info_at(img, kDown);
  put_le(img, t.n_dims_at, 0, 4);
  EXPECT_GGUF_ERROR(img, "n_dims 0 is not in 1..4", std::string("'") + kDown + "'", at(t.n_dims_at));
  put_le(img, t.n_dims_at, 5, 4);
  EXPECT_GGUF_ERROR(img, "n_dims 5 is not in 1..4", at(t.n_dims_at));
}

TEST_F(GgufErrors, ElementCountOverflow) {
  const InfoAt t = info_at(img, kDown);
  put_le(img, t.ne_at, uint64_t{1} << 40, 8);
  put_le(img, t.ne_at + 8, uint64_t{1} << 40, 8);
  EXPECT_GGUF_ERROR(img, "element count overflows", std::string("'") + kDown + "'", at(t.ne_at + 8));
}

TEST_F(GgufErrors, ByteSizeOverflow) {
  const InfoAt t = info_at(img, kNorm);
  put_le(img, t.ne_at, uint64_t{1} << 62, 8);
  EXPECT_GGUF_ERROR(img, "byte size", "overflows", std::string("'") + kNorm + "'", at(t.type_at));
}

TEST_F(GgufErrors, RowNotWholeBlocks) {
  const InfoAt t = info_at(img, kDown);
  put_le(img, t.ne_at, 16, 8);
  EXPECT_GGUF_ERROR(img, "ne[0] = 16 is not a multiple of the q8_0 block size 32",
                    std::string("'") + kDown + "'", at(t.type_at));
}

TEST_F(GgufErrors, DataPastEndOfFile) {
  const InfoAt t = info_at(img, kGate);
  put_le(img, t.offset_at, get_le(img, t.offset_at, 8) + 4096, 8);
  EXPECT_GGUF_ERROR(img, "runs past the end of the file", std::string("'") + kGate + "'", at(t.offset_at));
  put_le(img, t.offset_at, ~uint64_t{31}, 8);  // aligned, but the sum wraps around
  EXPECT_GGUF_ERROR(img, "runs past the end of the file", at(t.offset_at));
}

TEST_F(GgufErrors, OverlappingTensors) {
  const InfoAt down = info_at(img, kDown);
  const InfoAt gate = info_at(img, kGate);
  put_le(img, gate.offset_at, get_le(img, down.offset_at, 8) + 32, 8);
  EXPECT_GGUF_ERROR(img, std::string("overlaps tensor '") + kDown + "'", std::string("'") + kGate + "'",
                    at(gate.offset_at));
}

TEST_F(GgufErrors, MisalignedOffset) {
  const InfoAt t = info_at(img, kNorm);
  put_le(img, t.offset_at, 4, 8);
  EXPECT_GGUF_ERROR(img, "data offset 4 is not a multiple of the alignment 32",
                    std::string("'") + kNorm + "'", at(t.offset_at));
}

TEST_F(GgufErrors, DuplicateKey) {
  const KvAt two = kv_at(img, "test.key.two");
  const std::string one = "one";
  std::copy(one.begin(), one.end(), img.begin() + static_cast<ptrdiff_t>(two.key_at + 9));
  EXPECT_GGUF_ERROR(img, "duplicate key", "'test.key.one'", at(two.len_at));
}

TEST_F(GgufErrors, DuplicateTensorName) {
  const InfoAt gate = info_at(img, kGate);
  const std::string down = "down";
  std::copy(down.begin(), down.end(), img.begin() + static_cast<ptrdiff_t>(gate.name_at + 10));
  EXPECT_GGUF_ERROR(img, "duplicate tensor name", std::string("'") + kDown + "'", at(gate.len_at));
}

TEST_F(GgufErrors, BadAlignmentKey) {
  img = image(64);
  ASSERT_EQ(parse_gguf(img, "good.gguf").alignment, 64u);
  const KvAt k = kv_at(img, "general.alignment");
  put_le(img, k.value_at, 48, 4);
  EXPECT_GGUF_ERROR(img, "general.alignment 48 is not a non-zero power of two", "'general.alignment'",
                    at(k.value_at));
  put_le(img, k.value_at, 0, 4);
  EXPECT_GGUF_ERROR(img, "general.alignment 0 is not", at(k.value_at));
  put_le(img, k.value_at, 64, 4);
  put_le(img, k.type_at, 5, 4);  // i32
  EXPECT_GGUF_ERROR(img, "general.alignment must be u32, not i32", at(k.type_at));
}

TEST_F(GgufErrors, FileReaderNamesPathAndAgrees) {
  const InfoAt t = info_at(img, kGate);
  put_le(img, t.type_at, 99, 4);
  write_bytes(dir / "bad.gguf", img);
  STRATA_EXPECT_ERROR(read_gguf(dir / "bad.gguf"), (dir / "bad.gguf").string(), "unknown tensor type 99",
                      at(t.type_at));
  EXPECT_THROW(read_gguf(dir / "bad.gguf"), Error);
  STRATA_EXPECT_ERROR(read_gguf(dir / "absent.gguf"), (dir / "absent.gguf").string(), "cannot open");
  STRATA_EXPECT_ERROR(read_gguf(dir.path()), dir.path().string(), "not a regular file");
}

TEST_F(GgufErrors, HeaderLargerThanReaderAccepts) {
  // A sparse file big enough that a 300 MiB key is not "past the end": the reader must
  // refuse before reading it.
  RawImage r;
  r.header(0, 1).le(uint64_t{300} << 20, 8);
  const auto p = dir / "huge.gguf";
  write_bytes(p, r.b);
  std::filesystem::resize_file(p, uint64_t{320} << 20);
  STRATA_EXPECT_ERROR(read_gguf(p), p.string(), "larger than the reader accepts", "'kv #0'", at(32));
  EXPECT_THROW(read_gguf(p), Error);
}

TEST_F(GgufErrors, CountsBeyondHeaderLimitFailFast) {
  // 2^24 tensor infos fit in a 1 GiB file but not in the header the reader accepts.
  RawImage r;
  r.header(uint64_t{1} << 24, 0);
  const auto p = dir / "many.gguf";
  write_bytes(p, r.b);
  std::filesystem::resize_file(p, uint64_t{1} << 30);
  STRATA_EXPECT_ERROR(read_gguf(p), p.string(), "n_tensors 16777216 cannot fit in the 268435432 bytes left",
                      at(8));
}

TEST_F(GgufErrors, ArrayLongerThanReaderAccepts) {
  RawImage r;
  const uint64_t n = (uint64_t{1} << 24) + 1;
  r.header(0, 1).str("big").le(9, 4).le(0, 4).le(n, 8);
  r.b.resize(r.b.size() + n);
  EXPECT_GGUF_ERROR(r.b, "array of 16777217 values is longer than the reader accepts", "'big'",
                    at(24 + 11 + 4 + 4));
}

}  // namespace
}  // namespace strata::test
