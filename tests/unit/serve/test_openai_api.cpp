// The OpenAI request parser of `strata serve`: what it takes from a body, its defaults, and a
// 400 naming the field for each kind of wrong input; the response shapes clients read.
#include <gtest/gtest.h>

#include <string>

#include "runtime/serve/openai_api.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata {
namespace {

using json = nlohmann::json;

const Tokenizer& tok() {
  static const Tokenizer t = Tokenizer::from_hf_json(make_synthetic_tokenizer_json(400), nullptr, "synthetic");
  return t;
}

ApiLimits limits() {
  ApiLimits l;
  l.context = 64;
  l.max_tokens = 32;
  return l;
}

json chat(const std::string& content) { return {{"messages", json::array({{{"role", "user"}, {"content", content}}})}}; }

// The ApiError of parsing `body`: status and field.
std::pair<int, std::string> refusal(const json& body, bool is_chat = true) {
  try {
    parse_api_request(body, is_chat, tok(), limits());
  } catch (const ApiError& e) {
    return {e.status, e.param};
  }
  return {0, "accepted"};
}

TEST(OpenAiApi, ChatUsesTheTemplateAndTheDefaults) {
  const ApiRequest r = parse_api_request(chat("Hello"), true, tok(), limits());
  EXPECT_EQ(r.prompt, tok().encode(tok().chat_prompt({{"user", "Hello"}}, true)));
  EXPECT_EQ(r.params.max_tokens, 32);  // the server's limit
  EXPECT_EQ(r.params.sampling.temperature, 1.0f);
  EXPECT_FALSE(r.stream);
  json b = chat("Hi");
  b["messages"].insert(b["messages"].begin(),
                       json::object({{"role", "developer"}, {"content", json::array({{{"type", "text"}, {"text", "Be brief."}}})}}));
  b["max_completion_tokens"] = 5;
  b["temperature"] = 0;
  b["seed"] = 9;
  b["stop"] = "x";
  b["stream"] = true;
  b["stream_options"] = {{"include_usage", true}};
  b["frequency_penalty"] = 0;  // fields strata does not use are ignored
  const ApiRequest s = parse_api_request(b, true, tok(), limits());
  EXPECT_EQ(s.prompt, tok().encode(tok().chat_prompt({{"system", "Be brief."}, {"user", "Hi"}}, true)));
  EXPECT_EQ(s.params.max_tokens, 5);
  EXPECT_EQ(s.params.sampling.temperature, 0.0f);
  EXPECT_EQ(s.params.sampling.seed, 9u);
  EXPECT_EQ(s.params.stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(s.stream && s.include_usage);
}

TEST(OpenAiApi, CompletionsAddBosAsTheTokenizerSays) {
  const ApiRequest r = parse_api_request({{"prompt", json::array({"Once"})}, {"max_tokens", 3}}, false, tok(), limits());
  std::vector<int32_t> want;
  if (tok().add_bos() && tok().bos_id() >= 0) want.push_back(tok().bos_id());
  for (int32_t id : tok().encode("Once")) want.push_back(id);
  EXPECT_EQ(r.prompt, want);
  EXPECT_FALSE(r.chat);
}

TEST(OpenAiApi, WrongInputIsA400NamingTheField) {
  EXPECT_EQ(refusal(json::array()), std::make_pair(400, std::string()));
  EXPECT_EQ(refusal(json::object()), std::make_pair(400, std::string("messages")));
  EXPECT_EQ(refusal({{"messages", json::array()}}), std::make_pair(400, std::string("messages")));
  EXPECT_EQ(refusal({{"messages", json::array({{{"role", "tool"}, {"content", "x"}}})}}),
            std::make_pair(400, std::string("messages[0].role")));
  EXPECT_EQ(refusal({{"messages", json::array({{{"role", "user"}, {"content", 5}}})}}),
            std::make_pair(400, std::string("messages[0].content")));
  EXPECT_EQ(refusal({{"messages", json::array({{{"role", "user"}, {"content", json::array({{{"type", "image_url"}}})}}})}}),
            std::make_pair(400, std::string("messages[0].content[0].type")));
  json b = chat("x");
  auto with = [&](const char* k, json v) {
    json c = b;
    c[k] = std::move(v);
    return refusal(c);
  };
  EXPECT_EQ(with("max_tokens", 0), std::make_pair(400, std::string("max_tokens")));
  EXPECT_EQ(with("max_tokens", 33), std::make_pair(400, std::string("max_tokens")));  // above the server's limit
  EXPECT_EQ(with("max_tokens", "8"), std::make_pair(400, std::string("max_tokens")));
  EXPECT_EQ(with("temperature", 2.5), std::make_pair(400, std::string("temperature")));
  EXPECT_EQ(with("top_p", 0), std::make_pair(400, std::string("top_p")));
  EXPECT_EQ(with("top_k", -1), std::make_pair(400, std::string("top_k")));
  EXPECT_EQ(with("n", 2), std::make_pair(400, std::string("n")));
  EXPECT_EQ(with("stop", json::array({"a", "b", "c", "d", "e"})), std::make_pair(400, std::string("stop")));
  EXPECT_EQ(with("stream", "yes"), std::make_pair(400, std::string("stream")));
  EXPECT_EQ(with("stream_options", 1), std::make_pair(400, std::string("stream_options")));
  EXPECT_EQ(refusal(chat(std::string("ab\xff", 3))), std::make_pair(400, std::string("messages[0].content")));
  EXPECT_EQ(refusal(chat(std::string(200, 'x') + " y z w")).second, "messages");  // past the context of 64
  EXPECT_EQ(refusal({{"prompt", json::array({"a", "b"})}}, false), std::make_pair(400, std::string("prompt")));
}

TEST(OpenAiApi, ResponsesHaveTheShapesClientsRead) {
  const json whole = completion_body(true, "id1", 7, "m", "text", "length", 3, 4);
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["choices"][0]["message"]["content"], "text");
  EXPECT_EQ(whole["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(whole["usage"]["total_tokens"], 7);
  const json first = stream_chunk(true, "id1", 7, "m", "te", "", true);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "te");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const json last = stream_chunk(true, "id1", 7, "m", "", "stop", false);
  EXPECT_FALSE(last["choices"][0]["delta"].contains("content"));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(usage_chunk(false, "id1", 7, "m", 1, 2)["choices"].empty());
  EXPECT_EQ(error_body("bad", "invalid_request_error", "top_p")["error"]["param"], "top_p");
}

}  // namespace
}  // namespace strata
