// RuleSetManager: every rule-set change, in the order compile -> persist ->
// swap, so that what is served is always what is stored.
//
// A put is compiled first (off the request path, on the caller's thread);
// only a set that compiles is written to the store, in one transaction; only
// a committed version is swapped into the registry. Changes are serialized
// by one mutex so the registry's order equals the store's commit order.
//
// A change may carry its audit event (pdp.v1.AuditEvent, with who and what
// filled in): the store commits it with the change (see Store::PutVersion),
// and on success it comes back with its id, time, version and summary.
//
// Thread-safe. Tested by tests/service_test.cc and the integration tests.
#ifndef PDP_SERVICE_RULE_SET_MANAGER_H_
#define PDP_SERVICE_RULE_SET_MANAGER_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/compiler.h"
#include "pdp/v1/admin.pb.h"
#include "service/metrics.h"
#include "service/registry.h"
#include "service/store.h"

namespace pdp::service {

class RuleSetManager {
 public:
  RuleSetManager(Store* store, PolicyRegistry* registry,
                 engine::CompileOptions options = {})
      : store_(store), registry_(registry), options_(options) {}

  // Compiles every active version in the store into the registry. Fails,
  // naming the set and its errors, if any no longer compiles: serving a
  // subset of the rules would be worse than not starting.
  absl::Status LoadAll();

  // Reports compile times and store errors to `metrics` (not owned; null
  // stops). Call before serving.
  void SetMetrics(Metrics* metrics) { metrics_ = metrics; }

  // A validate_only put stores nothing, so it leaves `audit` alone.
  absl::StatusOr<v1::PutRuleSetResponse> Put(const v1::PutRuleSetRequest& request,
                                             const std::string& author,
                                             v1::AuditEvent* audit = nullptr);
  absl::StatusOr<v1::VersionInfo> Activate(const std::string& name, int64_t version,
                                           v1::AuditEvent* audit = nullptr);
  absl::Status Delete(const std::string& name, v1::AuditEvent* audit = nullptr);

  absl::StatusOr<v1::GetRuleSetResponse> Get(const std::string& name, int64_t version);
  absl::StatusOr<std::vector<v1::VersionInfo>> List();
  absl::StatusOr<std::vector<v1::VersionInfo>> Versions(const std::string& name);

  // The audit trail: records a call that changed nothing (a read, a failed
  // or refused call) in a transaction of its own, and lists events.
  absl::Status Record(v1::AuditEvent* event) { return store_->AppendAuditEvent(event); }
  absl::StatusOr<AuditPage> AuditEvents(const AuditQuery& query) {
    return store_->ListAuditEvents(query);
  }

 private:
  Store* const store_;
  PolicyRegistry* const registry_;
  const engine::CompileOptions options_;
  Metrics* metrics_ = nullptr;
  absl::Mutex mu_;  // serializes changes

  // Compiles `rule_set` and reports how long it took.
  engine::CompileResult Compile(const v1::RuleSet& rule_set,
                                const engine::CompileOptions& options);
  // Passes `status` through, counting it as a store error when it is one
  // (a failure of the store itself, not an answer such as NOT_FOUND).
  absl::Status Observed(const char* operation, absl::Status status);
  template <typename T>
  absl::StatusOr<T> Observed(const char* operation, absl::StatusOr<T> result) {
    if (!result.ok()) Observed(operation, result.status()).IgnoreError();  // counted only
    return result;
  }
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_RULE_SET_MANAGER_H_
