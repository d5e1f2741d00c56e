// One sequence generating, for the interactive and scripted commands (run, chat, bench): the
// prompt runs after what the sequence holds, then tokens are sampled until EOS (unless
// ignore_eos), a stop string, max_tokens or the end of the context. Text is handed out as it
// forms (whole UTF-8 characters, stop strings held back). The last sampled token is not run
// through the model: `pending` says which token a continuation must feed first.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "runtime/generate/engine.h"

namespace strata {

struct GenerateResult {
  std::string finish_reason;  // "stop" (EOS or a stop string), "length" (max_tokens), "context", "interrupted"
  bool eos = false;           // the model ended its answer
  int64_t prompt_tokens = 0, generated = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  int32_t pending = -1;  // the last sampled token (not yet in the sequence), -1 when none
};

// on_text returns false to stop (finish_reason "interrupted").
GenerateResult generate(CausalLM& lm, Sequence& seq, const Tokenizer& tok, const VocabMask& mask,
                        std::span<const int32_t> prompt, const GenerationParams& params,
                        const std::function<bool(const std::string&)>& on_text);

// The ids a prompt is run as: BOS (when the tokenizer adds one) and the encoded text, or with
// chat, the text as a user turn (after `system`, when given) in the model's chat format.
std::vector<int32_t> prompt_ids(const Tokenizer& tok, const std::string& prompt, bool chat,
                                const std::string& system = {});

}  // namespace strata
