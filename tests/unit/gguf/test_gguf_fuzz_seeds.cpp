// The fuzz seed corpus (tests/data/fuzz/gguf) is what the writer produces today, and parses.
#include "runtime/format/gguf.h"
#include "tests/unit/gguf/gguf_test_util.h"

namespace strata::test {
namespace {

using nlohmann::json;

// name -> writer of one seed; each image stays under 4 KB.
std::vector<std::pair<std::string, GgufWriter>> seeds() {
  std::vector<std::pair<std::string, GgufWriter>> out;
  {
    GgufWriter w;
    w.add_kv({"general.architecture", GgufType::STRING, GgufType::U8, "deepseek2"});
    w.add_kv({"deepseek2.block_count", GgufType::U32, GgufType::U8, 1u});
    w.add_kv({"tokenizer.ggml.tokens", GgufType::ARRAY, GgufType::STRING, json::array({"<s>", "a", "b"})});
    w.add_tensor("token_embd.weight", WeightType::F16, {4, 3}, pattern_bytes(24, 1));
    w.add_tensor("blk.0.ffn_down.weight", WeightType::Q8_0, {32, 2}, pattern_bytes(68, 2));
    w.add_tensor("output_norm.weight", WeightType::F32, {4}, pattern_bytes(16, 3));
    out.emplace_back("model.gguf", std::move(w));
  }
  {
    GgufWriter w;
    w.add_kv({"u8", GgufType::U8, GgufType::U8, 1});
    w.add_kv({"i8", GgufType::I8, GgufType::U8, -1});
    w.add_kv({"u16", GgufType::U16, GgufType::U8, 2});
    w.add_kv({"i16", GgufType::I16, GgufType::U8, -2});
    w.add_kv({"u32", GgufType::U32, GgufType::U8, 3});
    w.add_kv({"i32", GgufType::I32, GgufType::U8, -3});
    w.add_kv({"f32", GgufType::F32, GgufType::U8, 0.5});
    w.add_kv({"bool", GgufType::BOOL, GgufType::U8, true});
    w.add_kv({"str", GgufType::STRING, GgufType::U8, "s"});
    w.add_kv({"u64", GgufType::U64, GgufType::U8, 4});
    w.add_kv({"i64", GgufType::I64, GgufType::U8, -4});
    w.add_kv({"f64", GgufType::F64, GgufType::U8, 0.25});
    GgufKV nested{"nested", GgufType::ARRAY, GgufType::ARRAY, json::parse("[[1,2],[3]]")};
    nested.nested_types = {GgufType::U16};
    w.add_kv(nested);
    w.add_kv({"bools", GgufType::ARRAY, GgufType::BOOL, json::array({true, false})});
    out.emplace_back("values.gguf", std::move(w));
  }
  {
    GgufWriter w(64);
    w.add_tensor("blk.0.ffn_gate_exps.weight", WeightType::Q4_K, {256, 1, 2}, pattern_bytes(288, 4));
    w.add_tensor("blk.0.ffn_gate_inp.weight", WeightType::BF16, {2, 2}, pattern_bytes(8, 5));
    w.add_tensor("ids", WeightType::I32, {3}, pattern_bytes(12, 6));
    out.emplace_back("aligned64.gguf", std::move(w));
  }
  return out;
}

TEST(GgufFuzzSeeds, CorpusMatchesWriter) {
  ScratchDir dir("gguf");
  const std::filesystem::path corpus = std::filesystem::path(STRATA_TEST_DATA) / "fuzz" / "gguf";
  for (const auto& [name, w] : seeds()) {
    SCOPED_TRACE(name);
    const auto fresh = written_image(w, dir, name);
    EXPECT_LT(fresh.size(), 4096u);
    ASSERT_TRUE(std::filesystem::exists(corpus / name)) << (corpus / name);
    const auto stored = read_bytes(corpus / name);
    EXPECT_EQ(stored, fresh) << "regenerate " << (corpus / name) << " from the writer";
    EXPECT_NO_THROW(parse_gguf(stored, name));
  }
}

}  // namespace
}  // namespace strata::test
