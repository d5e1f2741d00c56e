// Stop strings over streamed text: text is released as soon as it cannot be the start of a
// stop string, and generation ends at the first complete one (the stop string and what
// follows are dropped, as the OpenAI API does).
#pragma once

#include <string>
#include <vector>

namespace strata {

class StopText {
 public:
  explicit StopText(std::vector<std::string> stops);
  // Appends generated text; returns what may be shown now. After a stop string completes,
  // stopped() is true and the return value ends just before it.
  std::string push(const std::string& text);
  // What was held back (the end of the generation, no stop string found).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace strata
