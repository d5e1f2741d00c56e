// Activities (runtime/common/activity.h): the innermost of the failing thread is what a failed
// allocation is reported as, with its number; the first failure wins until taken.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "runtime/common/activity.h"

namespace strata {
namespace {

TEST(Activity, AFailedAllocationNamesTheInnermostActivityOfItsThread) {
  EXPECT_EQ(take_failed_allocation(), "");
  {
    const Activity outer("loading the model");
    {
      const Activity inner("reserving a sequence's KV cache for", 4096, "tokens");
      note_failed_allocation();
      note_failed_allocation();  // a second failure does not replace the first
    }
    EXPECT_EQ(take_failed_allocation(), "reserving a sequence's KV cache for 4096 tokens");
    EXPECT_EQ(take_failed_allocation(), "") << "taken once";
    note_failed_allocation();
    EXPECT_EQ(take_failed_allocation(), "loading the model");
  }
  note_failed_allocation();
  EXPECT_EQ(take_failed_allocation(), "") << "no activity: nothing to name";
  // Another thread's activity is its own.
  const Activity here("a forward step of", 1, "tokens");
  std::thread([] {
    const Activity there("drawing the tiny model's tensors");
    note_failed_allocation();
  }).join();
  EXPECT_EQ(take_failed_allocation(), "drawing the tiny model's tensors");
}

TEST(Activity, AnItemSizedByTheInputIsNamedWithItsSize) {
  const std::string file = "/data/prompts.txt";
  {
    const Activity reading("reading", file, 1048576000, "bytes");
    note_failed_allocation();
  }
  EXPECT_EQ(take_failed_allocation(), "reading /data/prompts.txt (1048576000 bytes)");
  {
    const Activity parsing("parsing the JSON of", file, -1, nullptr);
    note_failed_allocation();
  }
  EXPECT_EQ(take_failed_allocation(), "parsing the JSON of /data/prompts.txt");
}

}  // namespace
}  // namespace strata
