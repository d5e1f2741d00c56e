#include "tests/unit/tokenizer/tokenizer_test_util.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

namespace strata::test {

std::filesystem::path node_modules_dir() {
  return std::filesystem::path(STRATA_SOURCE_DIR) / ".cache" / "npm" / "node_modules";
}

std::filesystem::path real_tokenizer_dir() {
  return node_modules_dir() / "@lenml" / "tokenizer-deepseek_v3" / "models";
}

const Tokenizer* real_tokenizer() {
  static const std::unique_ptr<Tokenizer> tok = []() -> std::unique_ptr<Tokenizer> {
    if (!std::filesystem::exists(real_tokenizer_dir() / "tokenizer.json")) return nullptr;
    const auto t0 = std::chrono::steady_clock::now();
    auto t = std::make_unique<Tokenizer>(Tokenizer::from_hf_dir(real_tokenizer_dir()));
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "# loaded DeepSeek-V3 tokenizer.json in " << ms << " ms\n";
    return t;
  }();
  return tok.get();
}

const Tokenizer& synthetic_tokenizer() {
  static const Tokenizer tok = [] {
    const nlohmann::json cfg = make_synthetic_tokenizer_config_json();
    return Tokenizer::from_hf_json(make_synthetic_tokenizer_json(512), &cfg, "synthetic");
  }();
  return tok;
}

std::vector<CorpusLine> load_corpus() {
  const auto path = std::filesystem::path(STRATA_TEST_DATA) / "tokenizer" / "corpus.jsonl";
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  std::vector<CorpusLine> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(line);
    CorpusLine c;
    c.note = j.value("note", "");
    if (j.contains("text")) {
      c.bytes = j["text"].get<std::string>();
    } else {
      const std::string hex = j["hex"].get<std::string>();
      for (size_t i = 0; i + 1 < hex.size(); i += 2)
        c.bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
      c.from_hex = true;
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace strata::test
