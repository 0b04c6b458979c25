// Caller identity and roles; see access.h.
#include "service/access.h"

#include "absl/strings/match.h"
#include "grpc/grpc_security.h"
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
                           absl::string_view identity) {
  if (identity.empty()) return false;
  for (const std::string& p : patterns) {
    if (!p.empty() && p.back() == '*') {
      if (absl::StartsWith(identity, absl::string_view(p.data(), p.size() - 1))) {
        return true;
      }
    } else if (absl::string_view(p) == identity) {
      return true;
    }
  }
  return false;
}

Role AccessPolicy::RoleOf(absl::string_view identity) const {
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

Role AccessPolicy::CallerRole(grpc::ServerContextBase& context) const {
  if (insecure_) return Role::kAdmin;
  // What grpc::CreateAuthContext and PeerIdentity do, minus the copies.
  grpc_auth_context* auth = grpc_call_auth_context(context.c_call());
  if (auth == nullptr) return Role::kNone;
  absl::string_view identity;
  if (grpc_auth_context_peer_is_authenticated(auth)) {
    for (const char* name : {GRPC_PEER_URI_PROPERTY_NAME, GRPC_PEER_DNS_PROPERTY_NAME,
                             GRPC_X509_CN_PROPERTY_NAME}) {
      grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(auth, name);
      if (const grpc_auth_property* p = grpc_auth_property_iterator_next(&it)) {
        identity = absl::string_view(p->value, p->value_length);
        break;
      }
    }
  }
  const Role role = RoleOf(identity);  // before the view's owner is released
  grpc_auth_context_release(auth);
  return role;
}

}  // namespace pdp::service
