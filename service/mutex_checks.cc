// SetMutexDeadlockDetection (mutex_checks.h).
// Tested by tests/mutex_checks_test.cc.
#include "service/mutex_checks.h"

#include "absl/synchronization/mutex.h"
#include "service/log.h"

namespace pdp::service {

void SetMutexDeadlockDetection(bool on) {
  if (on) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kAbort);
    LogInfo("mutex deadlock detection on: every lock is checked, and a potential deadlock "
            "aborts the process");
  } else {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
}

}  // namespace pdp::service
