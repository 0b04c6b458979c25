// Abseil's mutex deadlock detection for a whole server process (pdpd, and
// bench/floor_server so that the floor runs the same stack).
//
// Debian builds Abseil without NDEBUG, so by default every absl::Mutex lock
// in the process, gRPC's included, records lock order in one process-wide
// graph under one process-wide spinlock, and a lock-order cycle aborts the
// process. Servers turn it off, as release builds of Abseil have it; tests
// turn it on (bench/README.md, "Abseil deadlock detection").
//
//   SetMutexDeadlockDetection(absl::GetFlag(FLAGS_mutex_deadlock_detection));
//
// Call once at start, before the server's threads. Tested by
// tests/mutex_checks_test.cc.
#ifndef PDP_SERVICE_MUTEX_CHECKS_H_
#define PDP_SERVICE_MUTEX_CHECKS_H_

namespace pdp::service {

// on: every lock is checked, a potential deadlock aborts the process, and
// an INFO line says so. off: no lock-order tracking at all.
void SetMutexDeadlockDetection(bool on);

}  // namespace pdp::service

#endif  // PDP_SERVICE_MUTEX_CHECKS_H_
