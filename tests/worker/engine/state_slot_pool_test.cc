#include "worker/engine/state_slot_pool.h"

#include <set>

#include "gtest/gtest.h"

namespace octet {
namespace {

TEST(StateSlotPoolTest, HandsOutEachSlotOnceUntilEmpty) {
  StateSlotPool pool(3);
  EXPECT_EQ(pool.num_slots(), 3);
  EXPECT_EQ(pool.num_free(), 3);
  std::set<int32_t> got;
  for (int i = 0; i < 3; ++i) {
    std::optional<int32_t> slot = pool.Acquire();
    ASSERT_TRUE(slot.has_value());
    EXPECT_GE(*slot, 0);
    EXPECT_LT(*slot, 3);
    got.insert(*slot);
    EXPECT_EQ(pool.num_free(), 2 - i);
  }
  EXPECT_EQ(got.size(), 3u);
  EXPECT_FALSE(pool.Acquire().has_value());
  EXPECT_EQ(pool.num_free(), 0);
}

TEST(StateSlotPoolTest, ReleasedSlotIsReused) {
  StateSlotPool pool(2);
  const int32_t a = *pool.Acquire();
  const int32_t b = *pool.Acquire();
  EXPECT_NE(a, b);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 1);
  std::optional<int32_t> again = pool.Acquire();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, b);
  EXPECT_FALSE(pool.Acquire().has_value());
}

TEST(StateSlotPoolTest, EmptyPool) {
  StateSlotPool pool(0);
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_FALSE(pool.Acquire().has_value());
}

TEST(StateSlotPoolDeathTest, DoubleReleaseAborts) {
  StateSlotPool pool(2);
  const int32_t a = *pool.Acquire();
  pool.Release(a);
  EXPECT_DEATH(pool.Release(a), "released twice");
}

TEST(StateSlotPoolDeathTest, UnknownSlotAborts) {
  StateSlotPool pool(2);
  EXPECT_DEATH(pool.Release(2), "unknown state slot");
  EXPECT_DEATH(pool.Release(-1), "unknown state slot");
}

}  // namespace
}  // namespace octet
