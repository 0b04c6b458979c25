// Caller identity and roles; see access.h.
#include "service/access.h"

#include "absl/strings/match.h"
#include "grpc/grpc_security_constants.h"

namespace pdp::service {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAdmin: return "admin";
    case Role::kGateway: return "gateway";
    case Role::kNone: break;
  }
  return "none";
}

std::string PeerIdentity(const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) return "";
  for (const char* property : {GRPC_PEER_URI_PROPERTY_NAME, GRPC_PEER_DNS_PROPERTY_NAME,
                               GRPC_X509_CN_PROPERTY_NAME}) {
    std::vector<grpc::string_ref> values = context.FindPropertyValues(property);
    if (!values.empty()) return std::string(values.front().data(), values.front().size());
  }
  return "";
}

AccessPolicy::AccessPolicy(std::vector<std::string> admin_patterns,
                           std::vector<std::string> gateway_patterns, bool insecure)
    : admin_patterns_(std::move(admin_patterns)),
      gateway_patterns_(std::move(gateway_patterns)),
      insecure_(insecure) {}

bool AccessPolicy::Matches(const std::vector<std::string>& patterns,
                           const std::string& identity) {
  if (identity.empty()) return false;
  for (const std::string& p : patterns) {
    if (!p.empty() && p.back() == '*') {
      if (absl::StartsWith(identity, absl::string_view(p.data(), p.size() - 1))) {
        return true;
      }
    } else if (p == identity) {
      return true;
    }
  }
  return false;
}

Role AccessPolicy::RoleOf(const std::string& identity) const {
  if (Matches(admin_patterns_, identity)) return Role::kAdmin;
  if (Matches(gateway_patterns_, identity)) return Role::kGateway;
  return Role::kNone;
}

Caller AccessPolicy::Identify(const grpc::ServerContextBase& context) const {
  if (insecure_) return {"insecure", Role::kAdmin};
  Caller caller;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth) caller.identity = PeerIdentity(*auth);
  caller.role = RoleOf(caller.identity);
  return caller;
}

}  // namespace pdp::service
