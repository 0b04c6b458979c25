#include "service/worker.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "service/log.h"

namespace pdp::service {
namespace {

// Adds `increment` to thread `tid`'s nice value. Raising it needs no
// privilege; if it fails the work still runs, only sooner.
void AddNice(pid_t tid, int increment) {
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  if (errno != 0) return;
  setpriority(PRIO_PROCESS, static_cast<id_t>(tid), std::clamp(current + increment, -20, 19));
}

// On Linux a thread id names just that thread. sched_setscheduler keeps the
// thread's nice value for the normal class.
bool SetPolicy(pid_t tid, int policy) {
  sched_param param{};
  return sched_setscheduler(tid, policy, &param) == 0;
}

void LogClassOnce(const BackgroundPriority& background, BackgroundClass cls) {
  static std::once_flag logged;
  std::call_once(logged, [&] {
    if (cls == BackgroundClass::kIdle) {
      LogInfo("background work (compiling and storing pushed rule sets, freeing replaced "
              "ones) runs in SCHED_IDLE; a task still running after %d ms moves to nice +%d",
              static_cast<int>(background.escalate_after.count()), background.nice);
    } else {
      LogInfo("background work runs at nice +%d, not in SCHED_IDLE: this process may not "
              "move a thread back out of SCHED_IDLE (that needs CAP_SYS_NICE or "
              "RLIMIT_NICE >= %d), so under a saturated core pushes compete with decisions",
              background.nice,
              20 - std::clamp(getpriority(PRIO_PROCESS, 0) + background.nice, -20, 19));
    }
  });
}

}  // namespace

BackgroundClass BackgroundClassFor(int nice) {
  BackgroundClass result = BackgroundClass::kNice;
  std::thread probe([&] {
    const pid_t tid = gettid();
    AddNice(tid, nice);
    if (SetPolicy(tid, SCHED_IDLE) && SetPolicy(tid, SCHED_OTHER)) {
      result = BackgroundClass::kIdle;
    }
  });
  probe.join();
  return result;
}

Worker::Worker() : idle_(false), thread_([this] { Loop(); }) {}

Worker::Worker(BackgroundPriority background)
    : background_(background),
      idle_(background.escalate_after.count() > 0 &&
            BackgroundClassFor(background.nice) == BackgroundClass::kIdle),
      thread_([this] { Loop(); }) {
  if (background.escalate_after.count() > 0) {
    LogClassOnce(background, idle_ ? BackgroundClass::kIdle : BackgroundClass::kNice);
  }
  if (idle_) watchdog_ = std::thread([this] { Watch(); });
}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

void Worker::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

int64_t Worker::escalations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return escalations_;
}

void Worker::Loop() {
  if (background_) {
    const pid_t tid = gettid();
    AddNice(tid, background_->nice);
    if (idle_) SetPolicy(tid, SCHED_IDLE);
    std::lock_guard<std::mutex> lock(mu_);
    tid_ = tid;
  }
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      running_ = false;
      if (escalated_) {
        SetPolicy(tid_, SCHED_IDLE);  // allowed without privilege
        escalated_ = false;
      }
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) {
        done_ = true;
        break;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
      running_ = true;
      started_ = std::chrono::steady_clock::now();
    }
    watch_cv_.notify_one();
    task();
  }
  watch_cv_.notify_one();
}

void Worker::Watch() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!done_) {
    if (!running_ || escalated_) {
      watch_cv_.wait(lock);
      continue;
    }
    const auto deadline = started_ + background_->escalate_after;
    if (std::chrono::steady_clock::now() < deadline) {
      watch_cv_.wait_until(lock, deadline);
      continue;  // re-read: the task may have ended, another begun
    }
    // The task that started at started_ is still running: the worker
    // cannot move on while this thread holds the lock.
    if (SetPolicy(tid_, SCHED_OTHER)) {
      ++escalations_;
    } else {
      LogWarning("could not move a background task out of SCHED_IDLE: %s", std::strerror(errno));
    }
    escalated_ = true;  // either way, nothing more to do for this task
  }
}

}  // namespace pdp::service
