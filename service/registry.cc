// Snapshot registry of active policies; see registry.h.
#include "service/registry.h"

namespace pdp::service {

std::shared_ptr<const PolicyRegistry::Map> PolicyRegistry::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

std::shared_ptr<const engine::Policy> PolicyRegistry::Find(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = snapshot_->find(name);
  return it == snapshot_->end() ? nullptr : it->second;
}

void PolicyRegistry::Set(std::shared_ptr<const engine::Policy> policy) {
  absl::MutexLock write(&write_mu_);
  auto next = std::make_shared<Map>(*Snapshot());
  (*next)[policy->name()] = std::move(policy);
  absl::MutexLock lock(&mu_);
  snapshot_ = std::move(next);
}

void PolicyRegistry::Remove(const std::string& name) {
  absl::MutexLock write(&write_mu_);
  auto next = std::make_shared<Map>(*Snapshot());
  next->erase(name);
  absl::MutexLock lock(&mu_);
  snapshot_ = std::move(next);
}

void PolicyRegistry::Reset(Map map) {
  absl::MutexLock write(&write_mu_);
  auto next = std::make_shared<const Map>(std::move(map));
  absl::MutexLock lock(&mu_);
  snapshot_ = std::move(next);
}

size_t PolicyRegistry::size() const { return Snapshot()->size(); }

std::vector<std::shared_ptr<const engine::Policy>> PolicyRegistry::List() const {
  std::shared_ptr<const Map> snapshot = Snapshot();
  std::vector<std::shared_ptr<const engine::Policy>> out;
  out.reserve(snapshot->size());
  for (const auto& [name, policy] : *snapshot) out.push_back(policy);
  return out;
}

}  // namespace pdp::service
