// Compile -> persist -> swap; see rule_set_manager.h.
#include "service/rule_set_manager.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pdp::service {

engine::CompileResult RuleSetManager::Compile(const v1::RuleSet& rule_set,
                                              const engine::CompileOptions& options) {
  const absl::Time start = absl::Now();
  engine::CompileResult compiled = engine::Compile(rule_set, options);
  if (metrics_ != nullptr && compiled.ok()) {
    metrics_->RecordCompile(rule_set.name(), absl::ToDoubleSeconds(absl::Now() - start));
  }
  return compiled;
}

absl::Status RuleSetManager::Observed(const char* operation, absl::Status status) {
  if (metrics_ == nullptr || status.ok()) return status;
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
      return status;  // answers to the caller, not failures of the store
    default:
      metrics_->CountStoreError(operation, status.code());
      return status;
  }
}

absl::Status RuleSetManager::LoadAll() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<std::pair<v1::RuleSet, v1::VersionInfo>>> active =
      Observed("load", store_->LoadActive());
  if (!active.ok()) return active.status();
  PolicyRegistry::Map map;
  for (const auto& [rule_set, info] : *active) {
    engine::CompileOptions options = options_;
    options.version = info.version();
    engine::CompileResult compiled = Compile(rule_set, options);
    if (!compiled.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stored rule set '", info.rule_set(), "' version ", info.version(),
          " no longer compiles; refusing to serve partial rules. Activate a "
          "version that compiles or fix the engine. ",
          compiled.ToStatus().message()));
    }
    map[info.rule_set()] = std::move(compiled.policy);
  }
  registry_->Reset(std::move(map));
  return absl::OkStatus();
}

absl::StatusOr<v1::PutRuleSetResponse> RuleSetManager::Put(
    const v1::PutRuleSetRequest& request, const std::string& author,
    v1::AuditEvent* audit) {
  // A dry run is not a push: its compile time is not reported.
  engine::CompileResult compiled = request.validate_only()
                                       ? engine::Compile(request.rule_set(), options_)
                                       : Compile(request.rule_set(), options_);
  if (!compiled.ok()) return compiled.ToStatus();
  v1::PutRuleSetResponse response;
  response.set_rule_count(static_cast<int32_t>(compiled.policy->rule_count()));
  if (request.validate_only()) return response;

  absl::MutexLock lock(&mu_);
  absl::StatusOr<v1::VersionInfo> info =
      Observed("put", store_->PutVersion(request.rule_set(), response.rule_count(), author,
                                         request.comment(), request.expected_version(), audit));
  if (!info.ok()) return info.status();
  registry_->Set(compiled.policy->WithVersion(info->version()));
  *response.mutable_version() = *std::move(info);
  return response;
}

absl::StatusOr<v1::VersionInfo> RuleSetManager::Activate(const std::string& name,
                                                         int64_t version,
                                                         v1::AuditEvent* audit) {
  if (version <= 0) return absl::InvalidArgumentError("version: must be positive");
  absl::MutexLock lock(&mu_);
  auto stored = Observed("get", store_->Get(name, version));
  if (!stored.ok()) return stored.status();
  engine::CompileOptions options = options_;
  options.version = version;
  engine::CompileResult compiled = Compile(stored->first, options);
  if (!compiled.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("version ", version, " of '", name,
                     "' does not compile with this server: ",
                     compiled.ToStatus().message()));
  }
  absl::StatusOr<v1::VersionInfo> info =
      Observed("activate", store_->Activate(name, version, audit));
  if (!info.ok()) return info.status();
  registry_->Set(std::move(compiled.policy));
  return info;
}

absl::Status RuleSetManager::Delete(const std::string& name, v1::AuditEvent* audit) {
  absl::MutexLock lock(&mu_);
  absl::Status status = Observed("deactivate", store_->Deactivate(name, audit));
  if (!status.ok()) return status;
  registry_->Remove(name);
  return absl::OkStatus();
}

absl::StatusOr<v1::GetRuleSetResponse> RuleSetManager::Get(const std::string& name,
                                                           int64_t version) {
  if (version < 0) return absl::InvalidArgumentError("version: must be 0 (active) or positive");
  auto stored = Observed("get", store_->Get(name, version));
  if (!stored.ok()) return stored.status();
  v1::GetRuleSetResponse response;
  *response.mutable_rule_set() = std::move(stored->first);
  *response.mutable_version() = std::move(stored->second);
  return response;
}

absl::StatusOr<std::vector<v1::VersionInfo>> RuleSetManager::List() {
  return Observed("list", store_->ListActive());
}

absl::StatusOr<std::vector<v1::VersionInfo>> RuleSetManager::Versions(
    const std::string& name) {
  return Observed("list_versions", store_->ListVersions(name));
}

}  // namespace pdp::service
