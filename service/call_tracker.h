// CallTracker counts the gRPC calls pdpd's services are serving, so that a
// graceful stop (SIGTERM) can tell "calls still running" from "connections
// merely open". gRPC's Server::Shutdown(deadline) waits for both: a gateway
// that keeps its channel open between calls (they all do) would hold every
// stop for the whole grace period. pdpd instead stops admitting calls, waits
// for the tracked count to reach zero (or the grace to expire), then closes
// what is left.
//
// A call is counted from when gRPC allocates its request and response (the
// services' ArenaMessageAllocator, services.h) until gRPC releases them,
// after the response has been sent. Begin/End are two atomic operations;
// End takes a lock only while a stop is waiting and the count reaches zero.
//
// Thread-safe. Tested by tests/shutdown_test.cc.
#ifndef PDP_SERVICE_CALL_TRACKER_H_
#define PDP_SERVICE_CALL_TRACKER_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pdp::service {

class CallTracker {
 public:
  // Sequentially consistent on purpose: End writes the count then reads
  // draining_, WaitUntilIdle writes draining_ then reads the count, and
  // neither may miss the other's write.
  void Begin() { active_.fetch_add(1, std::memory_order_relaxed); }
  void End() {
    if (active_.fetch_sub(1) == 1 && draining_.load()) {
      absl::MutexLock lock(&mu_);
      idle_.SignalAll();
    }
  }

  // Calls being served now.
  int64_t active() const { return active_.load(); }

  // Waits until no call is being served or `deadline` passes; true when
  // none is. Meant for shutdown, after the server stopped admitting calls
  // (otherwise new calls may keep the count above zero).
  bool WaitUntilIdle(absl::Time deadline) {
    draining_.store(true);
    absl::MutexLock lock(&mu_);
    while (active() > 0) {
      if (idle_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
    }
    return active() == 0;
  }

 private:
  std::atomic<int64_t> active_{0};
  std::atomic<bool> draining_{false};
  absl::Mutex mu_;
  absl::CondVar idle_;
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_CALL_TRACKER_H_
