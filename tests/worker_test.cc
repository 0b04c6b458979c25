// service::Worker: tasks in order, and background scheduling (SCHED_IDLE,
// escalation to the normal class at `nice` for a task that runs too long,
// the nice-only fallback when the process may not leave SCHED_IDLE).
#include "service/worker.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace pdp::service {
namespace {

using std::chrono::milliseconds;

int ThreadNice() { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); }

// What the calling thread's nice value becomes after adding `increment`.
int NiceAfter(int increment) { return std::clamp(ThreadNice() + increment, -20, 19); }

struct Seen {
  int policy = -1;
  int nice = 100;
};

// The scheduling of a task posted to `worker` now.
Seen SeenByATask(Worker& worker) {
  std::atomic<bool> done = false;
  Seen seen;
  worker.Post([&] {
    seen.policy = sched_getscheduler(0);
    seen.nice = ThreadNice();
    done = true;
    done.notify_one();
  });
  done.wait(false);
  return seen;
}

TEST(WorkerTest, RunsTasksInOrderAndDrainsTheQueueWhenDestroyed) {
  std::vector<int> ran;
  {
    Worker worker;
    for (int i = 0; i < 1000; ++i) worker.Post([&ran, i] { ran.push_back(i); });
  }  // the destructor runs what is still queued
  ASSERT_EQ(ran.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(ran[i], i);
}

TEST(WorkerTest, AForegroundWorkerRunsAtTheProcesssPriority) {
  Worker worker;
  const Seen seen = SeenByATask(worker);
  EXPECT_EQ(seen.policy, sched_getscheduler(0));
  EXPECT_EQ(seen.nice, ThreadNice());
}

TEST(WorkerTest, ABackgroundWorkerWaitsInSchedIdleAtItsNiceValue) {
  Worker worker(BackgroundPriority{.nice = 10, .escalate_after = milliseconds(60'000)});
  const Seen seen = SeenByATask(worker);
  EXPECT_EQ(seen.nice, NiceAfter(10));
  if (BackgroundClassFor(10) == BackgroundClass::kIdle) {
    EXPECT_EQ(seen.policy, SCHED_IDLE);
  } else {
    EXPECT_EQ(seen.policy, SCHED_OTHER) << "without leave to exit SCHED_IDLE, nice only";
  }
  EXPECT_EQ(worker.escalations(), 0);
}

TEST(WorkerTest, WithNoIdleTimeABackgroundWorkerRunsAtItsNiceValueOnly) {
  Worker worker(BackgroundPriority{.nice = 10, .escalate_after = milliseconds(0)});
  const Seen seen = SeenByATask(worker);
  EXPECT_EQ(seen.policy, SCHED_OTHER);
  EXPECT_EQ(seen.nice, NiceAfter(10));
}

TEST(WorkerTest, ATaskThatRunsTooLongLeavesSchedIdleAndTheNextOneIsIdleAgain) {
  if (BackgroundClassFor(10) != BackgroundClass::kIdle) {
    GTEST_SKIP() << "this process may not leave SCHED_IDLE (no CAP_SYS_NICE, RLIMIT_NICE < 10)";
  }
  Worker worker(BackgroundPriority{.nice = 10, .escalate_after = milliseconds(20)});
  // A long task: runs until the watchdog moves it to the normal class (or
  // gives up after 30 s, which fails below).
  std::atomic<bool> done = false;
  Seen first_start, first_end;
  worker.Post([&] {
    first_start.policy = sched_getscheduler(0);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (sched_getscheduler(0) == SCHED_IDLE && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    first_end.policy = sched_getscheduler(0);
    first_end.nice = ThreadNice();
    done = true;
    done.notify_one();
  });
  done.wait(false);
  EXPECT_EQ(first_start.policy, SCHED_IDLE);
  EXPECT_EQ(first_end.policy, SCHED_OTHER);
  EXPECT_EQ(first_end.nice, NiceAfter(10)) << "escalated to `nice`, not to the process's priority";

  const Seen next = SeenByATask(worker);
  EXPECT_EQ(next.policy, SCHED_IDLE);
  EXPECT_EQ(next.nice, NiceAfter(10));
  EXPECT_EQ(worker.escalations(), 1);
}

// In a process that may not leave SCHED_IDLE (RLIMIT_NICE 0, and no
// CAP_SYS_NICE: as root, it first becomes nobody), a background worker runs
// in the normal class at `nice`, where it cannot be starved. Returns what
// went wrong (0: nothing).
int BackgroundWorkerWithoutLeaveToExitSchedIdle() {
  if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 2;
  const rlimit none{0, 0};
  if (setrlimit(RLIMIT_NICE, &none) != 0) return 3;
  if (BackgroundClassFor(10) != BackgroundClass::kNice) return 4;
  Worker worker(BackgroundPriority{.nice = 10, .escalate_after = milliseconds(20)});
  const Seen seen = SeenByATask(worker);
  if (seen.policy != SCHED_OTHER) return 5;
  if (seen.nice != NiceAfter(10)) return 6;
  return 0;
}

TEST(WorkerTest, WithoutLeaveToExitSchedIdleABackgroundWorkerUsesNiceOnly) {
  // In a child process: neither step can be undone.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::_Exit(BackgroundWorkerWithoutLeaveToExitSchedIdle()),
              testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace pdp::service
