#include "runtime/serve/openai_api.h"

#include <chrono>
#include <cmath>
#include <mutex>
#include <random>

#include "runtime/generate/generate.h"
#include "runtime/tokenizer/utf8.h"

namespace strata {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, "'" + param + "': " + message, param);
}

std::string text_of(const json& v, const std::string& param) {
  if (!v.is_string()) bad(param, "expected a string");
  const std::string s = v.get<std::string>();
  if (!utf8::is_valid(s)) bad(param, "is not valid UTF-8");
  return s;
}

// OpenAI message content: a string, or an array of parts of which the text ones count.
std::string content_of(const json& c, const std::string& param) {
  if (c.is_string()) return text_of(c, param);
  if (c.is_null()) return "";
  if (!c.is_array()) bad(param, "expected a string or an array of content parts");
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    const json& part = c[i];
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) bad(p, "expected {\"type\": ...}");
    if (part["type"] != "text") bad(p + ".type", "only \"text\" parts are supported");
    if (!part.contains("text")) bad(p + ".text", "missing");
    out += text_of(part["text"], p + ".text");
  }
  return out;
}

double number(const json& body, const char* key, double lo, double hi, double dflt) {
  if (!body.contains(key) || body[key].is_null()) return dflt;
  const json& v = body[key];
  if (!v.is_number()) bad(key, "expected a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(key, "must be within [" + json(lo).dump() + ", " + json(hi).dump() + "]");
  return x;
}

int64_t integer(const json& body, const char* key, int64_t lo, int64_t hi, int64_t dflt) {
  if (!body.contains(key) || body[key].is_null()) return dflt;
  const json& v = body[key];
  if (!v.is_number_integer()) bad(key, "expected an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) bad(key, "too large");
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) bad(key, "must be within [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

bool flag(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return false;
  if (!body[key].is_boolean()) bad(key, "expected true or false");
  return body[key].get<bool>();
}

}  // namespace

ApiRequest parse_api_request(const json& body, bool chat, const Tokenizer& tok, const ApiLimits& lim) {
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  ApiRequest r;
  r.chat = chat;
  std::string text;
  if (chat) {
    if (!body.contains("messages")) bad("messages", "missing");
    const json& msgs = body["messages"];
    if (!msgs.is_array() || msgs.empty()) bad("messages", "expected a non-empty array");
    std::vector<ChatMessage> turns;
    for (size_t i = 0; i < msgs.size(); ++i) {
      const std::string p = "messages[" + std::to_string(i) + "]";
      const json& m = msgs[i];
      if (!m.is_object()) bad(p, "expected an object");
      if (!m.contains("role")) bad(p + ".role", "missing");
      const std::string role = text_of(m["role"], p + ".role");
      if (role != "system" && role != "user" && role != "assistant" && role != "developer")
        bad(p + ".role", "'" + role + "' is not one of system, developer, user, assistant");
      turns.push_back({role == "developer" ? "system" : role, content_of(m.value("content", json()), p + ".content")});
    }
    text = tok.chat_prompt(turns, true);
  } else {
    if (!body.contains("prompt")) bad("prompt", "missing");
    const json& p = body["prompt"];
    if (p.is_array()) {
      if (p.size() != 1) bad("prompt", "one prompt per request (n = 1): an array of one string");
      text = text_of(p[0], "prompt[0]");
    } else {
      text = text_of(p, "prompt");
    }
  }
  r.prompt = chat ? tok.encode(text) : prompt_ids(tok, text, false);
  if (r.prompt.empty()) bad(chat ? "messages" : "prompt", "encodes to no tokens");
  const int64_t n_prompt = static_cast<int64_t>(r.prompt.size());
  if (n_prompt >= lim.context)
    throw ApiError(400,
                   "the prompt has " + std::to_string(n_prompt) + " tokens; the context holds " +
                       std::to_string(lim.context) + " (prompt + completion)",
                   chat ? "messages" : "prompt");

  GenerationParams& g = r.params;
  const char* max_key = chat && body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  g.max_tokens = integer(body, max_key, 1, lim.max_tokens, lim.max_tokens);
  g.sampling.temperature = static_cast<float>(number(body, "temperature", 0, 2, 1));
  g.sampling.top_p = static_cast<float>(number(body, "top_p", 0, 1, 1));
  if (g.sampling.top_p <= 0) bad("top_p", "must be above 0");
  g.sampling.top_k = static_cast<int>(integer(body, "top_k", 0, 1 << 30, 0));
  if (body.contains("seed") && !body["seed"].is_null()) {
    g.sampling.seed = static_cast<uint64_t>(integer(body, "seed", INT64_MIN, INT64_MAX, 0));
  } else {
    // Requests are parsed on many HTTP threads at once: one generator, behind a lock.
    static std::mutex mu;
    static std::random_device rd;
    std::lock_guard<std::mutex> lock(mu);
    g.sampling.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  if (integer(body, "n", 1, 1, 1) != 1) bad("n", "only n = 1 is supported");
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& s = body["stop"];
    if (s.is_string()) {
      g.stop.push_back(text_of(s, "stop"));
    } else if (s.is_array() && s.size() <= 4) {
      for (size_t i = 0; i < s.size(); ++i) g.stop.push_back(text_of(s[i], "stop[" + std::to_string(i) + "]"));
    } else {
      bad("stop", "expected a string or an array of up to 4 strings");
    }
  }
  g.ignore_eos = flag(body, "ignore_eos");  // as llama.cpp's server: benchmarks of a fixed length
  r.stream = flag(body, "stream");
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    const json& so = body["stream_options"];
    if (!so.is_object()) bad("stream_options", "expected an object");
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean()) bad("stream_options.include_usage", "expected true or false");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  return r;
}

json error_body(const std::string& message, const std::string& type, const std::string& param) {
  return {{"error",
           {{"message", message}, {"type", type}, {"param", param.empty() ? json() : json(param)}, {"code", nullptr}}}};
}

namespace {
json usage(int64_t p, int64_t c) { return {{"prompt_tokens", p}, {"completion_tokens", c}, {"total_tokens", p + c}}; }
json reason(const std::string& r) { return r.empty() ? json() : json(r); }
}  // namespace

json completion_body(bool chat, const std::string& id, int64_t created, const std::string& model,
                     const std::string& text, const std::string& finish_reason, int64_t prompt_tokens,
                     int64_t completion_tokens) {
  json choice = {{"index", 0}, {"finish_reason", reason(finish_reason)}, {"logprobs", nullptr}};
  if (chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  return {{"id", id},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})},
          {"usage", usage(prompt_tokens, completion_tokens)}};
}

json stream_chunk(bool chat, const std::string& id, int64_t created, const std::string& model, const std::string& text,
                  const std::string& finish_reason, bool first) {
  json choice = {{"index", 0}, {"finish_reason", reason(finish_reason)}, {"logprobs", nullptr}};
  if (chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (finish_reason.empty()) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  return {{"id", id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})}};
}

json usage_chunk(bool chat, const std::string& id, int64_t created, const std::string& model, int64_t prompt_tokens,
                 int64_t completion_tokens) {
  return {{"id", id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array()},
          {"usage", usage(prompt_tokens, completion_tokens)}};
}

}  // namespace strata
