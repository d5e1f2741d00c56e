// The OpenAI-compatible request and response shapes strata serves: /v1/chat/completions and
// /v1/completions, streamed (server-sent events) or whole. Parsing checks every field it uses
// and names the one that is wrong; fields it does not use are ignored, as clients send many.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/generate/engine.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata {

// A request the API refuses: HTTP status, message, and the offending field (may be empty).
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string param = {})
      : std::runtime_error(message), status(status), param(std::move(param)) {}
  int status;
  std::string param;
};

struct ApiLimits {
  int64_t max_tokens = 1024;  // the most a request may ask for, and the default
  int64_t context = 4096;     // prompt + generated tokens of one sequence
};

struct ApiRequest {
  bool chat = true;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::vector<int32_t> prompt;  // token ids, BOS (or the chat template's) included
  GenerationParams params;
};

// body: the parsed JSON body. Chat: messages [{role: system|user|assistant, content: string
// or [{type: "text", text}]}] through the tokenizer's chat template. Completions: prompt
// (a string, or an array of one string). Common: max_tokens (chat also max_completion_tokens),
// temperature [0, 2] (default 1), top_p (0, 1], top_k >= 0, seed, stop (string or up to 4),
// n = 1, stream, stream_options. Throws ApiError (400) naming the field.
ApiRequest parse_api_request(const nlohmann::json& body, bool chat, const Tokenizer& tok, const ApiLimits& lim);

// {"error": {"message", "type", "param", "code"}} as OpenAI writes it.
nlohmann::json error_body(const std::string& message, const std::string& type, const std::string& param = {});

// The whole response of a finished request.
nlohmann::json completion_body(bool chat, const std::string& id, int64_t created, const std::string& model,
                               const std::string& text, const std::string& finish_reason, int64_t prompt_tokens,
                               int64_t completion_tokens);
// One streamed chunk: text (chat: a delta, with the role on the first), or the finish reason
// (finish_reason non-empty, text empty).
nlohmann::json stream_chunk(bool chat, const std::string& id, int64_t created, const std::string& model,
                            const std::string& text, const std::string& finish_reason, bool first);
// The streamed usage chunk (stream_options.include_usage): no choices, usage counts.
nlohmann::json usage_chunk(bool chat, const std::string& id, int64_t created, const std::string& model,
                           int64_t prompt_tokens, int64_t completion_tokens);

}  // namespace strata
