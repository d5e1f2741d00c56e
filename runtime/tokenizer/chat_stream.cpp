// DeepSeek chat prompt layout and streaming detokenization.
#include "runtime/common/error.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_impl.h"
#include "runtime/tokenizer/utf8.h"

namespace strata {

std::string Tokenizer::chat_prompt(const std::vector<ChatMessage>& msgs, bool add_generation_prompt) const {
  // System messages are gathered first (joined by a blank line) and placed after BOS.
  std::string system;
  bool first_system = true;
  for (const ChatMessage& m : msgs) {
    if (m.role != "system") continue;
    if (!first_system) system += "\n\n";
    system += m.content;
    first_system = false;
  }
  std::string out;
  if (impl_->bos >= 0) out += impl_->texts[static_cast<size_t>(impl_->bos)];
  out += system;
  for (const ChatMessage& m : msgs) {
    if (m.role == "system") continue;
    if (m.role == "user") {
      out += "<｜User｜>" + m.content;
    } else if (m.role == "assistant") {
      out += "<｜Assistant｜>" + m.content + "<｜end▁of▁sentence｜>";
    } else {
      throw_error({impl_->source, "chat", -1},
                  "unsupported chat role '" + m.role + "' (system, user, assistant)");
    }
  }
  if (add_generation_prompt) out += "<｜Assistant｜>";
  return out;
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_->token_bytes(id);
  const size_t hold = utf8::incomplete_tail(pending_);
  const std::string_view ready = std::string_view(pending_).substr(0, pending_.size() - hold);
  std::string out = utf8::is_valid(ready) ? std::string(ready) : utf8::sanitize(ready);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8::sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace strata
