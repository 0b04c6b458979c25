// What Abseil's mutex deadlock detection costs, and why pdpd turns it off
// (pdpd --mutex_deadlock_detection; bench/README.md, "Abseil deadlock
// detection"). Debian's Abseil is built without NDEBUG, so by default every
// absl::Mutex lock, gRPC's included, records lock order in one process-wide
// graph under one process-wide spinlock.
//
// Each thread locks and unlocks a mutex of its own: there is no contention
// on the mutexes themselves, so with detection off the time per lock does
// not grow with threads; with it on, the threads serialize on the graph's
// lock. Argument: 0 detection off, 1 on (Abseil's default here).
//
//   build/bench/mutex_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include "absl/synchronization/mutex.h"

namespace {

void SetDetection(bool on) {
  absl::SetMutexDeadlockDetectionMode(on ? absl::OnDeadlockCycle::kAbort
                                         : absl::OnDeadlockCycle::kIgnore);
}

// Lock and unlock one long-lived mutex per thread.
void BM_LockOwnMutex(benchmark::State& state) {
  if (state.thread_index() == 0) SetDetection(state.range(0) != 0);
  absl::Mutex own;
  for (auto _ : state) {
    own.Lock();
    benchmark::DoNotOptimize(&own);
    own.Unlock();
  }
}
BENCHMARK(BM_LockOwnMutex)->ArgName("detection")->Arg(0)->Arg(1)
    ->Threads(1)->Threads(2)->UseRealTime();

// A mutex created, locked once and destroyed, as gRPC does for many
// per-call objects: detection adds the mutex to the graph and removes it.
void BM_ShortLivedMutex(benchmark::State& state) {
  if (state.thread_index() == 0) SetDetection(state.range(0) != 0);
  for (auto _ : state) {
    absl::Mutex mu;
    mu.Lock();
    benchmark::DoNotOptimize(&mu);
    mu.Unlock();
  }
}
BENCHMARK(BM_ShortLivedMutex)->ArgName("detection")->Arg(0)->Arg(1)
    ->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
