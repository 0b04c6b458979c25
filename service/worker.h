// A thread that runs posted tasks in order, optionally in the background:
// pdpd's admin work (parsing, compiling and storing a pushed rule set) and
// the freeing of replaced rule sets run on such threads so that they yield
// the core to decisions.
//
// Background scheduling, on Linux. The thread waits for tasks in the
// SCHED_IDLE class: on a busy core the kernel runs it only when no other
// thread wants the core, and a decision thread that wakes preempts it at
// once. A nice value alone only lowers a thread's share: measured in
// bench/README.md ("Updates under load"), a push every second under load
// raised Authorize's p99 by x1.11 at nice +10 and not at all (x0.95, x0.97)
// in SCHED_IDLE. So that a core saturated with decisions delays an update
// but never stalls it, a task still running `escalate_after` after it
// started is moved to the normal class at `nice` until it ends (pdpd's
// --background_idle_ms; 0 keeps the thread in the normal class).
//
// Leaving SCHED_IDLE needs CAP_SYS_NICE or an RLIMIT_NICE that allows the
// thread's nice value (RLIMIT_NICE >= 20 - nice; `docker run --ulimit
// nice=10`, systemd's LimitNICE=10). Without either, SCHED_IDLE could starve
// an update for as long as the core stays saturated, so the thread stays in
// the normal class at `nice` instead (BackgroundClass() says which).
//
// Thread-safe. Tested by tests/worker_test.cc.
#ifndef PDP_SERVICE_WORKER_H_
#define PDP_SERVICE_WORKER_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace pdp::service {

struct BackgroundPriority {
  int nice = 10;  // added to the process's nice value
  // 0: never in SCHED_IDLE, always at `nice` (pdpd --background_idle_ms=0).
  std::chrono::milliseconds escalate_after{2000};
};

// How a background worker is scheduled between escalations.
enum class BackgroundClass {
  kIdle,  // SCHED_IDLE, escalated to `nice` after `escalate_after`
  kNice,  // the normal class at `nice` (SCHED_IDLE could not be left)
};

// Whether this process may move a thread out of SCHED_IDLE at `nice`
// (probed once per nice value on a throwaway thread: the kernel's own check).
BackgroundClass BackgroundClassFor(int nice);

class Worker {
 public:
  Worker();  // at the process's priority
  explicit Worker(BackgroundPriority background);
  ~Worker();  // runs what is queued, then joins
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Post(std::function<void()> task);

  // Tasks moved out of SCHED_IDLE because they ran past `escalate_after`.
  int64_t escalations() const;

 private:
  void Loop();
  void Watch();  // the escalation watchdog (background kIdle workers only)

  const std::optional<BackgroundPriority> background_;
  // background_, with a nonzero escalate_after, and BackgroundClass::kIdle
  const bool idle_;
  mutable std::mutex mu_;
  std::condition_variable cv_;        // tasks_ or stopping_
  std::condition_variable watch_cv_;  // running_, escalated_ or done_
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  bool done_ = false;  // Loop returned
  // Whether a task is running, and since when.
  bool running_ = false;
  std::chrono::steady_clock::time_point started_;
  bool escalated_ = false;  // the thread is out of SCHED_IDLE
  int64_t escalations_ = 0;
  pid_t tid_ = 0;
  std::thread thread_;
  std::thread watchdog_;
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_WORKER_H_
