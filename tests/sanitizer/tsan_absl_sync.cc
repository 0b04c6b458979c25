// Linked into every binary of a ThreadSanitizer build (PDP_SANITIZE=thread,
// see CMakeLists.txt), never into a normal one.
//
// Debian builds Abseil and gRPC without TSan, so TSan does not see
// absl::Mutex order anything: every access guarded by one, in pdp or in
// gRPC (whose own mutexes are absl::Mutex), looks like a race. This file
// interposes absl::Mutex's and absl::CondVar's exported lock and wait
// functions (the executable's definitions win over the shared library's for
// every caller, gRPC included), forwards each to Abseil's own, and tells TSan
// what it did: a lock acquires the mutex, an unlock releases it, a wait
// releases and re-acquires it, and a Condition's evaluation acquires and
// then releases it (Abseil evaluates a waiter's Condition under the lock, in
// the waiting or in the unlocking thread, and releases the lock while the
// Condition is false). Reader locks are modelled as exclusive ones,
// which can only hide a race between two readers, and readers do not write.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}

namespace {

// Abseil's definition of `symbol` (the next one after this executable's).
template <typename Fn>
Fn Real(const char* symbol) {
  void* real = dlsym(RTLD_NEXT, symbol);
  if (real == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found: %s\n", symbol, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(real);
}

using MutexFn = void (*)(absl::Mutex*);
using TryFn = bool (*)(absl::Mutex*);
using CondFn = void (*)(absl::Mutex*, const absl::Condition&);
using CondTimeoutFn = bool (*)(absl::Mutex*, const absl::Condition&, absl::Duration);
using CondDeadlineFn = bool (*)(absl::Mutex*, const absl::Condition&, absl::Time);
using WaitFn = void (*)(absl::CondVar*, absl::Mutex*);
using WaitTimeoutFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Duration);
using WaitDeadlineFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Time);

// A Condition that tells TSan its mutex is held while `inner` is evaluated.
//
// Abseil may evaluate it in another thread (the one that unlocks the mutex
// while this one waits), reading this object and `inner` from the waiter's
// stack. The waiter's writes reach that thread through Abseil's own,
// uninstrumented, synchronisation, which TSan cannot see; so the waiter
// releases `this` once it is built and Eval acquires it before it
// reads anything. `condition` is built with Abseil's non-template
// constructor, whose fields are written and read only inside Abseil (the
// template one would inline its reads of them here, before Eval could
// acquire anything).
struct HeldCondition {
  HeldCondition(absl::Mutex* mu, const absl::Condition& inner)
      : mu(mu), inner(&inner), condition(&HeldCondition::Eval, this) {
    __tsan_release(this);
  }
  static bool Eval(void* arg) {
    __tsan_acquire(arg);
    auto* self = static_cast<HeldCondition*>(arg);
    __tsan_acquire(self->mu);
    const bool holds = self->inner->Eval();
    // If it is false, Abseil releases the mutex and waits.
    __tsan_release(self->mu);
    return holds;
  }
  absl::Mutex* mu;
  const absl::Condition* inner;
  absl::Condition condition;
};

}  // namespace

// The real functions are looked up once each, by mangled name (Debian's
// Abseil puts everything in the inline namespace absl::debian3).
#define PDP_REAL(type, symbol)                 \
  static const type real = Real<type>(symbol); \
  (void)0

namespace absl {
inline namespace debian3 {

void Mutex::Lock() {
  PDP_REAL(MutexFn, "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  PDP_REAL(MutexFn, "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::Unlock() {
  PDP_REAL(MutexFn, "_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  PDP_REAL(MutexFn, "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}

bool Mutex::TryLock() {
  PDP_REAL(TryFn, "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  PDP_REAL(TryFn, "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  PDP_REAL(CondFn, "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  HeldCondition wrapped(this, cond);
  real(this, wrapped.condition);
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  PDP_REAL(CondFn, "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  HeldCondition wrapped(this, cond);
  real(this, wrapped.condition);
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  PDP_REAL(CondTimeoutFn,
           "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool result = [&] {
    HeldCondition wrapped(this, cond);
    return real(this, wrapped.condition, timeout);
  }();
  __tsan_acquire(this);  // held either way; `result` says whether cond is true
  return result;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  PDP_REAL(CondTimeoutFn,
           "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool result = [&] {
    HeldCondition wrapped(this, cond);
    return real(this, wrapped.condition, timeout);
  }();
  __tsan_acquire(this);
  return result;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  PDP_REAL(CondDeadlineFn,
           "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool result = [&] {
    HeldCondition wrapped(this, cond);
    return real(this, wrapped.condition, deadline);
  }();
  __tsan_acquire(this);
  return result;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  PDP_REAL(CondDeadlineFn,
           "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool result = [&] {
    HeldCondition wrapped(this, cond);
    return real(this, wrapped.condition, deadline);
  }();
  __tsan_acquire(this);
  return result;
}

void Mutex::Await(const Condition& cond) {
  PDP_REAL(CondFn, "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  HeldCondition wrapped(this, cond);
  real(this, wrapped.condition);
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  PDP_REAL(CondTimeoutFn,
           "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool met = [&] {
    HeldCondition wrapped(this, cond);
    return real(this, wrapped.condition, timeout);
  }();
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  PDP_REAL(CondDeadlineFn,
           "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool met = [&] {
    HeldCondition wrapped(this, cond);
    return real(this, wrapped.condition, deadline);
  }();
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  PDP_REAL(WaitFn, "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  PDP_REAL(WaitTimeoutFn, "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  PDP_REAL(WaitDeadlineFn, "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

}  // namespace debian3
}  // namespace absl
