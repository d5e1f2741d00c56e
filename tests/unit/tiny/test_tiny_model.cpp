// Generated tiny models open through the same path as real ones, in every layout, and the
// same seed gives the same values whatever the storage type.
#include <gtest/gtest.h>
#include <tbb/task_arena.h>

#include "cpu-kernels/dequant.h"
#include "runtime/model/model_files.h"
#include "runtime/model/schema.h"
#include "runtime/model/summary.h"
#include "runtime/format/gguf.h"
#include "runtime/tiny/tiny_model.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

TinyReport make(const test::ScratchDir& dir, const std::string& name, TinyOptions o) {
  return make_tiny_model(o, dir / name);
}

// Dequantized f32 values of one canonical tensor, whatever its storage.
std::vector<float> values(const WeightIndex& index, const std::string& name) {
  const TensorEntry& e = index.at(name);
  int64_t n = 1;
  for (int64_t d : e.shape) n *= d;
  std::vector<float> out(static_cast<size_t>(n));
  const auto bytes = index.bytes(e);
  if (e.type == WeightType::F8_E4M3) {
    const TensorEntry& s = index.at(e.scale);
    dequantize_fp8_blockscaled_ref(bytes.data(), e.shape[0], e.shape[1], index.bytes(s).data(), s.type, out.data());
  } else if (e.type == WeightType::MXFP4) {
    const TensorEntry& s = index.at(e.scale);
    dequantize_mxfp4_ref(bytes.data(), index.bytes(s).data(), e.shape[0], e.shape[1], out.data());
  } else {
    dequantize_row_ref(e.type, bytes.data(), out.data(), n);
  }
  return out;
}

TEST(TinyModel, EveryArchitectureOpensAndMatchesItsSchema) {
  test::ScratchDir dir("tiny");
  struct Case {
    Arch arch;
    bool engram;
    std::string dtype;
  };
  int k = 0;
  for (const Case& c : {Case{Arch::DeepseekV3, false, "bf16"}, Case{Arch::DeepseekV32, false, "fp8"},
                        Case{Arch::DeepseekV4, false, "fp4"}, Case{Arch::DeepseekV3, true, "bf16"},
                        Case{Arch::DeepseekV4, true, "bf16"}}) {
    TinyOptions o;
    o.arch = c.arch;
    o.engram = c.engram;
    o.dtype = c.dtype;
    const TinyReport r = make(dir, "m" + std::to_string(k++), o);
    EXPECT_EQ(r.config.arch, c.arch);
    EXPECT_EQ(r.config.engram.enabled, c.engram);
    const ModelFiles m = open_model(r.path);  // checks the schema
    ASSERT_TRUE(m.tokenizer.has_value()) << m.tokenizer_error;
    const ModelSummary s = summarize(m);
    EXPECT_EQ(s.total_params, count_params(m.config).total);
    EXPECT_EQ(s.active_params, count_params(m.config).active);
    uint64_t st_bytes = 0;
    for (const auto& f : std::filesystem::directory_iterator(r.path))
      if (f.path().extension() == ".safetensors") st_bytes += f.file_size();
    EXPECT_EQ(s.file_bytes, st_bytes);
    EXPECT_LT(st_bytes, 4u << 20) << "a tiny model should stay a few MB";
  }
}

TEST(TinyModel, SameSeedSameBytesOtherSeedOtherBytes) {
  test::ScratchDir dir("tiny");
  TinyOptions o;
  o.seed = 5;
  make(dir, "a", o);
  make(dir, "b", o);
  o.seed = 6;
  make(dir, "c", o);
  EXPECT_EQ(test::read_bytes(dir / "a/model.safetensors"), test::read_bytes(dir / "b/model.safetensors"));
  EXPECT_NE(test::read_bytes(dir / "a/model.safetensors"), test::read_bytes(dir / "c/model.safetensors"));
}

// Tensors are drawn in parallel: the bytes do not depend on the thread count, and progress
// hears every tensor once, in increasing counts.
TEST(TinyModel, ParallelDrawingGivesTheSameBytesAndReportsProgress) {
  test::ScratchDir dir("tiny");
  TinyOptions o;
  o.seed = 5;
  o.format = "gguf";
  o.dtype = "q4_k";
  size_t last = 0, total = 0, calls = 0;
  o.progress = [&](size_t done, size_t all) {
    EXPECT_EQ(done, last + 1);
    last = done;
    total = all;
    ++calls;
  };
  make(dir, "many.gguf", o);
  EXPECT_GT(calls, 10u);
  EXPECT_EQ(last, total);
  o.progress = nullptr;
  tbb::task_arena one(1);
  one.execute([&] { make(dir, "one.gguf", o); });
  EXPECT_EQ(test::read_bytes(dir / "many.gguf"), test::read_bytes(dir / "one.gguf"));
}

// The same seed draws the same f32 values; each storage type only adds its own rounding.
TEST(TinyModel, StorageTypesAgreeWithinTheirQuantizationError) {
  test::ScratchDir dir("tiny");
  TinyOptions o;
  o.dtype = "f32";
  const ModelFiles ref = open_model(make(dir, "f32", o).path);
  struct Case {
    std::string format, dtype;
    double max_nmse;
  };
  for (const Case& c : {Case{"hf", "bf16", 1e-4}, Case{"hf", "fp8", 2e-3}, Case{"hf", "fp4", 2e-2},
                        Case{"gguf", "q8_0", 1e-4}, Case{"gguf", "q4_k", 2e-2}, Case{"gguf", "f16", 1e-6}}) {
    o.format = c.format;
    o.dtype = c.dtype;
    const ModelFiles m = open_model(make(dir, c.format + "-" + c.dtype + (c.format == "gguf" ? ".gguf" : ""), o).path);
    for (const std::string name : {"layers.0.attn.wq_a.weight", "layers.1.ffn.experts.3.w1.weight",
                                   "layers.2.ffn.experts.7.w2.weight", "layers.1.ffn.shared_experts.w3.weight",
                                   "layers.0.ffn.w2.weight"}) {
      const double e = test::nmse(values(ref.index, name), values(m.index, name));
      EXPECT_LT(e, c.max_nmse) << c.format << " " << c.dtype << " " << name;
      EXPECT_GT(e, 0.0) << c.format << " " << c.dtype << " " << name << " should be rounded";
    }
  }
}

TEST(TinyModel, ShardedEqualsSingle) {
  test::ScratchDir dir("tiny");
  TinyOptions o;
  const ModelFiles one = open_model(make(dir, "one", o).path);
  o.shards = 3;
  const ModelFiles three = open_model(make(dir, "three", o).path);
  EXPECT_EQ(three.index.files().size(), 3u);
  ASSERT_EQ(one.index.tensors().size(), three.index.tensors().size());
  for (const TensorEntry& e : one.index.tensors()) {
    const TensorEntry& f = three.index.at(e.name);
    EXPECT_EQ(e.shape, f.shape) << e.name;
    const auto a = one.index.bytes(e), b = three.index.bytes(f);
    EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << e.name;
  }
}

TEST(TinyModel, GgufCarriesConfigAndTokenizer) {
  test::ScratchDir dir("tiny");
  TinyOptions o;
  const ModelFiles hf = open_model(make(dir, "hf", o).path);
  o.format = "gguf";
  o.dtype = "q8_0";
  const ModelFiles gg = open_model(make(dir, "m.gguf", o).path);
  EXPECT_EQ(gg.config.hidden_size, hf.config.hidden_size);
  EXPECT_EQ(gg.config.n_routed_experts, hf.config.n_routed_experts);
  EXPECT_EQ(gg.config.kv_lora_rank, hf.config.kv_lora_rank);
  EXPECT_EQ(gg.config.rope_scaling.factor, hf.config.rope_scaling.factor);
  ASSERT_TRUE(gg.tokenizer && hf.tokenizer);
  for (const char* text : {"Hello, world!", "数字 12345 and  spaces\n\n", "<｜User｜>hi<｜Assistant｜>"})
    EXPECT_EQ(gg.tokenizer->encode(text), hf.tokenizer->encode(text)) << text;
  // Each expert is its own contiguous byte range inside the stacked tensor.
  const TensorEntry& e0 = gg.index.expert(1, 0, "w1");
  const TensorEntry& e1 = gg.index.expert(1, 1, "w1");
  EXPECT_EQ(e1.offset, e0.offset + e0.nbytes);
  EXPECT_EQ(e0.stored_name, "blk.1.ffn_gate_exps.weight");
  // What llama.cpp-family readers require: counts and ids as UINT32, one token string per
  // vocabulary row (the rows past the tokenizer's as UNUSED padding).
  const GgufFile f = read_gguf(gg.path);
  for (const char* key : {"deepseek2.block_count", "deepseek2.embedding_length", "deepseek2.expert_count",
                          "deepseek2.attention.head_count", "deepseek2.vocab_size", "deepseek2.expert_gating_func",
                          "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
    const GgufKV* kv = f.find(key);
    ASSERT_NE(kv, nullptr) << key;
    EXPECT_EQ(kv->type, GgufType::U32) << key;
  }
  const GgufKV* tokens = f.find("tokenizer.ggml.tokens");
  const GgufKV* types = f.find("tokenizer.ggml.token_type");
  ASSERT_TRUE(tokens && types);
  EXPECT_EQ(static_cast<int64_t>(tokens->value.size()), gg.config.vocab_size);
  EXPECT_EQ(types->value.size(), tokens->value.size());
  // A vocabulary with rows past the tokenizer's (as DeepSeek's 129280 rows over 128815 tokens).
  const int64_t rows = static_cast<int64_t>(gg.tokenizer->vocab_size()) + 3;
  const nlohmann::json md = gg.tokenizer->to_gguf_metadata(rows);
  ASSERT_EQ(static_cast<int64_t>(md["tokenizer.ggml.tokens"].size()), rows);
  ASSERT_EQ(static_cast<int64_t>(md["tokenizer.ggml.token_type"].size()), rows);
  EXPECT_EQ(md["tokenizer.ggml.tokens"][static_cast<size_t>(rows - 1)], "[PAD" + std::to_string(rows - 1) + "]");
  EXPECT_EQ(md["tokenizer.ggml.token_type"][static_cast<size_t>(rows - 1)], 5);  // UNUSED
}

TEST(TinyModel, RejectsTypesTheLayoutCannotHold) {
  test::ScratchDir dir("tiny");
  TinyOptions o;
  o.dtype = "q4_k";
  STRATA_EXPECT_ERROR(make(dir, "x", o), "q4_k");
  o.format = "gguf";
  o.dtype = "fp8";
  STRATA_EXPECT_ERROR(make(dir, "y.gguf", o), "fp8");
  o.format = "hf";
  o.dtype = "bf16";
  o.shards = 0;
  STRATA_EXPECT_ERROR(make(dir, "z", o), "--shards");
}

}  // namespace
}  // namespace strata
