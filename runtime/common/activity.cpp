#include "runtime/common/activity.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>

namespace strata {
namespace {

struct Frame {
  const char* what;
  int64_t n;
  const char* unit;
  std::string_view item;
};

constexpr int kDepth = 16;
thread_local Frame t_stack[kDepth];
thread_local int t_depth = 0;

char g_failed[1024];
std::atomic<int> g_state{0};  // 0: empty, 1: being written, 2: written

}  // namespace

Activity::Activity(const char* what, int64_t n, const char* unit) noexcept {
  if (t_depth < kDepth) t_stack[t_depth] = {what, n, unit, {}};
  ++t_depth;
}

Activity::Activity(const char* what, std::string_view item, int64_t n, const char* unit) noexcept {
  if (t_depth < kDepth) t_stack[t_depth] = {what, n, unit, item};
  ++t_depth;
}

Activity::~Activity() { --t_depth; }

void note_failed_allocation() noexcept {
  int expected = 0;
  if (!g_state.compare_exchange_strong(expected, 1)) return;
  const int d = t_depth < kDepth ? t_depth : kDepth;
  if (d == 0) {
    g_failed[0] = 0;
  } else {
    const Frame& f = t_stack[d - 1];
    const int item_len = static_cast<int>(std::min<size_t>(f.item.size(), sizeof g_failed));
    if (!f.item.empty() && f.n >= 0)
      std::snprintf(g_failed, sizeof g_failed, "%s %.*s (%" PRId64 "%s%s)", f.what, item_len, f.item.data(),
                    f.n, f.unit ? " " : "", f.unit ? f.unit : "");
    else if (!f.item.empty())
      std::snprintf(g_failed, sizeof g_failed, "%s %.*s", f.what, item_len, f.item.data());
    else if (f.n >= 0)
      std::snprintf(g_failed, sizeof g_failed, "%s %" PRId64 "%s%s", f.what, f.n, f.unit ? " " : "", f.unit ? f.unit : "");
    else
      std::snprintf(g_failed, sizeof g_failed, "%s", f.what);
  }
  g_state.store(2);
}

std::string take_failed_allocation() {
  if (g_state.load() != 2) return "";
  std::string s = g_failed;
  g_state.store(0);
  return s;
}

}  // namespace strata
