// strata make-tiny --arch A [--engram] --out DIR [--seed N] [--dtype T] [--format hf|gguf] [--shards K]
//                  [--set KEY=VALUE ...]
#include <filesystem>
#include <iostream>

#include "runtime/common/activity.h"
#include "runtime/common/error.h"
#include "runtime/tiny/tiny_model.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"

namespace strata::cli {

void register_make_tiny(CLI::App& app) {
  static TinyOptions opts;
  static std::string arch = "deepseek_v3", out, tokenizer = "auto";
  static std::vector<std::string> sets;
  auto* cmd = app.add_subcommand("make-tiny", "Write a deterministic random model in the real on-disk layout");
  cmd->add_option("--arch", arch, "deepseek_v3 | deepseek_v32 | deepseek_v4")
      ->check(CLI::IsMember({"deepseek_v3", "deepseek_v32", "deepseek_v4"}));
  cmd->add_flag("--engram", opts.engram, "Add Engram conditional-memory layers");
  cmd->add_option("--out", out, "Output directory (HF) or directory/.gguf file (GGUF)")->required();
  cmd->add_option("--seed", opts.seed, "Random seed")->capture_default_str();
  cmd->add_flag("--force", opts.force,
                "Write into a non-empty --out folder (or over a .gguf): replaces only the files make-tiny writes");
  cmd->add_option("--dtype", opts.dtype, "bf16 f16 f32 fp8 fp4 (hf); bf16 f16 f32 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k iq4_nl iq4_xs iq3_s iq3_xxs iq2_s iq2_xs iq2_xxs iq1_m iq1_s (gguf)")
      ->capture_default_str();
  static CLI::Option* format_opt = nullptr;
  format_opt = cmd->add_option("--format", opts.format, "hf | gguf (default: gguf when --out ends in .gguf, else hf)")
                   ->check(CLI::IsMember({"hf", "gguf"}))
                   ->capture_default_str();
  cmd->add_option("--shards", opts.shards, "Number of safetensors shards (hf)")->capture_default_str();
  cmd->add_option("--tokenizer", tokenizer,
                  "auto (the real DeepSeek-V3 tokenizer when installed), generated, or a directory with "
                  "tokenizer.json")
      ->capture_default_str();
  cmd->add_option("--set", sets,
                  "KEY=VALUE over the tiny config.json (VALUE as JSON, else a string), e.g. --set hidden_size=2048; "
                  "repeatable")
      ->allow_extra_args(false);
  cmd->callback([] {
    // An --out named .gguf is a GGUF file unless --format says otherwise, and then it is refused.
    const bool gguf_name = std::filesystem::path(out).extension() == ".gguf";
    if (format_opt->count() == 0 && gguf_name) opts.format = "gguf";
    if (opts.format == "hf" && gguf_name)
      throw Error("--out " + out + ": an HF model is a folder, not a .gguf file (--format gguf writes one)");
    for (const std::string& kv : sets) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw Error("--set: '" + kv + "' is not KEY=VALUE");
      const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
      nlohmann::json v = nlohmann::json::parse(value, nullptr, false);
      opts.config_overrides[key] = v.is_discarded() ? nlohmann::json(value) : v;
    }
    opts.arch = arch == "deepseek_v3" ? Arch::DeepseekV3 : arch == "deepseek_v32" ? Arch::DeepseekV32 : Arch::DeepseekV4;
    if (tokenizer == "auto") {
      const auto real = default_real_tokenizer_dir();
      opts.tokenizer_dir = std::filesystem::exists(real / "tokenizer.json") ? real : std::filesystem::path();
    } else if (tokenizer != "generated") {
      opts.tokenizer_dir = tokenizer;
    }
    // A progress line on a terminal, for models that take more than a moment to draw.
    opts.progress = terminal_progress("make-tiny: tensors");
    const Activity doing("drawing and writing the tiny model's tensors");
    const TinyReport r = make_tiny_model(opts, out);
    for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
    std::cout << "wrote " << r.path.string() << " (" << arch << (opts.engram ? "+engram" : "") << ", " << opts.format
              << ", " << opts.dtype << ", " << r.bytes_written << " bytes, tokenizer "
              << (opts.tokenizer_dir.empty() ? "generated" : opts.tokenizer_dir.string()) << ")\n";
  });
}

}  // namespace strata::cli
