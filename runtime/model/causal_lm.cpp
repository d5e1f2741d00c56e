#include "runtime/model/causal_lm.h"

#include "runtime/model/deepseek_v3.h"
#include "runtime/model/deepseek_v4.h"

namespace strata {

std::unique_ptr<CausalLM> load_causal_lm(const ModelFiles& m, const ModelOptions& opts) {
  switch (m.config.arch) {
    case Arch::DeepseekV3:
    case Arch::DeepseekV32: return make_deepseek_v3(m, opts);
    case Arch::DeepseekV4: return make_deepseek_v4(m, opts);
  }
  return nullptr;
}

}  // namespace strata
