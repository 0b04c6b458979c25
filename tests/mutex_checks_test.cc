// Tests service/mutex_checks.h with Abseil's real lock-order checking: on,
// a lock-order inversion aborts the process; off, it passes. Each case runs
// in a child process, so the mode of this test binary (Abseil's default)
// is left as it is.
#include "service/mutex_checks.h"

#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace pdp::service {
namespace {

// Takes `first` then `second`, and lets both go. Never deadlocks on one
// thread; run with (a, b) then (b, a) it is a lock-order inversion.
void LockInOrder(absl::Mutex& first, absl::Mutex& second) {
  first.Lock();
  second.Lock();
  second.Unlock();
  first.Unlock();
}

// Two mutexes taken in one order, then in the other.
void InvertLockOrder() {
  absl::Mutex a;
  absl::Mutex b;
  LockInOrder(a, b);
  LockInOrder(b, a);
}

TEST(MutexChecksDeathTest, OnAbortsOnALockOrderInversion) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SetMutexDeadlockDetection(true);
        InvertLockOrder();
      },
      "potential deadlock");
}

TEST(MutexChecksDeathTest, OffLetsTheSameInversionPass) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        SetMutexDeadlockDetection(false);
        InvertLockOrder();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace pdp::service
