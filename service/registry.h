// PolicyRegistry: the active compiled policy of every rule set, as one
// immutable snapshot swapped whole.
//
// Readers (every Authorize) take a short lock to copy one shared_ptr and
// evaluate lock-free on it; writers build a new map off to the side and
// swap it in. A decision that started on the old snapshot finishes on it:
// the policy it holds stays alive until it is done. A replaced snapshot is
// released after the writer has dropped both locks, so freeing a large
// policy (milliseconds at 10k rules, on an idle-priority worker) never holds
// up the readers.
//
// Thread-safe. Tested by tests/registry_test.cc and the integration tests.
#ifndef PDP_SERVICE_REGISTRY_H_
#define PDP_SERVICE_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "engine/policy.h"

namespace pdp::service {

class PolicyRegistry {
 public:
  using Map = absl::flat_hash_map<std::string, std::shared_ptr<const engine::Policy>>;

  PolicyRegistry() : snapshot_(std::make_shared<const Map>()) {}

  // The active policy of `name`, or null.
  std::shared_ptr<const engine::Policy> Find(const std::string& name) const;
  // Installs or replaces one set's policy.
  void Set(std::shared_ptr<const engine::Policy> policy);
  void Remove(const std::string& name);
  // Replaces everything (startup load).
  void Reset(Map map);
  size_t size() const;
  // Every active policy (for metrics scrapes), in no particular order.
  std::vector<std::shared_ptr<const engine::Policy>> List() const;

 private:
  std::shared_ptr<const Map> Snapshot() const;
  // Installs `next` and returns the snapshot it replaces, for the caller to
  // release outside mu_.
  std::shared_ptr<const Map> Swap(std::shared_ptr<const Map> next);
  // Writers are serialized so that no update is lost between copy and swap.
  absl::Mutex write_mu_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Map> snapshot_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_REGISTRY_H_
