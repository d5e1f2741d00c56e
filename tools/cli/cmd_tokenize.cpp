// strata tokenize --model DIR (--text T | --file F)   and   strata detokenize --model DIR --ids 1,2,3
#include <fstream>
#include <iostream>
#include <sstream>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/model/model_files.h"
#include "tools/cli/commands.h"

namespace strata::cli {
namespace {

Tokenizer load_tokenizer(const std::string& model) {
  OpenOptions o;
  o.require_tokenizer = true;
  o.check_schema = false;
  return std::move(*open_model(model, o).tokenizer);
}

}  // namespace

std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > INT32_MAX)
      throw Error(flag + ": '" + item + "' is not a token id (a whole number from 0 to 2147483647)");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

void register_tokenize(CLI::App& app) {
  static std::string model, text, file, ids;
  static bool no_special = false;
  auto* tok = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  tok->add_option("--model", model, "HF model directory or .gguf file")->required();
  auto* t = tok->add_option("--text", text, "Text to encode");
  auto* f = tok->add_option("--file", file, "File whose bytes to encode");
  t->excludes(f);
  tok->add_flag("--no-special", no_special, "Treat special-token text as plain text");
  tok->callback([] {
    std::string input = text;
    if (!file.empty()) {
      input = read_input_file(file, "text file", uint64_t{1} << 30, "--file");
      require_utf8(input, "--file " + file);
    } else if (text.empty()) {
      throw Error("tokenize: give --text or --file");
    } else {
      require_utf8(input, "--text");
    }
    const Tokenizer tk = load_tokenizer(model);
    const auto out = tk.encode(input, !no_special);
    std::cout << "[";
    for (size_t i = 0; i < out.size(); ++i) std::cout << (i ? ", " : "") << out[i];
    std::cout << "]\n";
  });

  auto* det = app.add_subcommand("detokenize", "Print the text of comma-separated token ids");
  det->add_option("--model", model, "HF model directory or .gguf file")->required();
  det->add_option("--ids", ids, "Token ids, e.g. 1,2,3")->required();
  det->callback([] {
    const Tokenizer tk = load_tokenizer(model);
    std::cout << tk.decode(parse_ids(ids, "--ids")) << "\n";
  });
}

}  // namespace strata::cli
