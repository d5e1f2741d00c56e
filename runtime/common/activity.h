// What a thread is doing, for the one message a failed allocation can give. A new handler
// runs where an allocation failed but knows neither its size nor its purpose; the phases that
// can allocate much (loading a model, reserving caches, a forward step, drawing a tiny model)
// name themselves with an Activity for their scope, and the handler records the innermost one
// of its thread, so the error says "out of memory while reserving the expert cache (2.0 GiB)"
// rather than only "out of memory". Activities take static text and a number: starting one
// allocates nothing (a decode step has one).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace strata {

class Activity {
 public:
  // what: static text ("a forward step of"); n >= 0 is printed after it with `unit` ("tokens").
  explicit Activity(const char* what, int64_t n = -1, const char* unit = nullptr) noexcept;
  // The same for one named item whose size came from the input: "reading the text file
  // big.txt (1048576000 bytes)". `item` (a file, a tensor) must outlive the activity.
  Activity(const char* what, std::string_view item, int64_t n, const char* unit) noexcept;
  ~Activity();
  Activity(const Activity&) = delete;
  Activity& operator=(const Activity&) = delete;
};

// From a new handler: records the calling thread's innermost activity as the one an allocation
// failed in (no allocation; the first failure wins until taken).
void note_failed_allocation() noexcept;
// What note_failed_allocation recorded ("" if nothing), and forgets it.
std::string take_failed_allocation();

}  // namespace strata
