// libFuzzer target: arbitrary bytes as a placement file (`strata plan --json`, read back by
// `--placement`) for a tiny V4 + Engram config. Reading its experts and Engram tables gives
// maps inside the model or throws strata::Error naming the file and entry — never another
// exception, never a crash.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/common/error.h"
#include "runtime/config/model_config.h"
#include "runtime/model/expert_placement.h"
#include "runtime/tiny/tiny_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const strata::ModelConfig config =
      strata::parse_hf_config(strata::tiny_config_json(strata::Arch::DeepseekV4, true, 400), "tiny");
  static const std::string path = "/tmp/strata-fuzz-placement-" + std::to_string(::getpid()) + ".json";
  static const bool cleanup = std::atexit([] { std::remove(path.c_str()); }) == 0;  // the file goes with the run
  (void)cleanup;
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  } else {
    return 0;
  }
  try {
    for (const auto& [le, tier] : strata::load_expert_placement(path, config))
      if (le.first < 0 || le.first >= config.num_hidden_layers || le.second < 0 || le.second >= config.n_routed_experts)
        __builtin_trap();  // accepted an expert outside the model
    for (const auto& [layer, tier] : strata::load_engram_placement(path, config))
      if (layer < 0 || layer >= config.num_hidden_layers) __builtin_trap();
  } catch (const strata::Error&) {
  } catch (...) {
    __builtin_trap();
  }
  return 0;
}
