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

std::shared_ptr<const PolicyRegistry::Map> PolicyRegistry::Swap(
    std::shared_ptr<const Map> next) {
  absl::MutexLock lock(&mu_);
  snapshot_.swap(next);
  return next;
}

void PolicyRegistry::Set(std::shared_ptr<const engine::Policy> policy) {
  std::shared_ptr<const Map> old;  // freed last, after both locks
  absl::MutexLock write(&write_mu_);
  auto next = std::make_shared<Map>(*Snapshot());
  (*next)[policy->name()] = std::move(policy);
  old = Swap(std::move(next));
}

void PolicyRegistry::Remove(const std::string& name) {
  std::shared_ptr<const Map> old;
  absl::MutexLock write(&write_mu_);
  auto next = std::make_shared<Map>(*Snapshot());
  next->erase(name);
  old = Swap(std::move(next));
}

void PolicyRegistry::Reset(Map map) {
  std::shared_ptr<const Map> old;
  absl::MutexLock write(&write_mu_);
  old = Swap(std::make_shared<const Map>(std::move(map)));
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
