// Who is calling, and what they may do.
//
// A caller's identity is read from its verified client certificate: the URI
// SAN (e.g. a SPIFFE ID), else the DNS SAN, else the subject CN. Configured
// patterns map identities to roles: exact strings, or prefixes ending in
// '*' ("spiffe://pdp.local/gateway/*"). Admins may call everything; gateways
// may call Authorize and BatchAuthorize; anyone else is refused.
//
// Immutable after construction; thread-safe. Tested by tests/service_test.cc
// and tests/integration_test.cc.
#ifndef PDP_SERVICE_ACCESS_H_
#define PDP_SERVICE_ACCESS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace pdp::service {

enum class Role { kNone, kGateway, kAdmin };

const char* RoleName(Role role);

struct Caller {
  std::string identity;  // empty when no certificate was verified
  Role role = Role::kNone;
};

// URI SAN, else DNS SAN, else CN; empty when the peer is not authenticated.
std::string PeerIdentity(const grpc::AuthContext& context);

class AccessPolicy {
 public:
  // With `insecure`, there are no certificates: every caller is an admin
  // named "insecure" (for local experiments only).
  AccessPolicy(std::vector<std::string> admin_patterns,
               std::vector<std::string> gateway_patterns, bool insecure);

  Role RoleOf(absl::string_view identity) const;
  Caller Identify(const grpc::ServerContextBase& context) const;
  // The same role as Identify(context).role, for the hot path: read from
  // the call's auth context through gRPC's C API, with the identity a view
  // into it, so it allocates nothing (no AuthContext object, no property
  // vector, no identity string). Nothing is cached: each call reads its own
  // connection's verified certificate, so rotation needs no invalidation.
  Role CallerRole(grpc::ServerContextBase& context) const;

  // Gateways and admins may decide; only admins may administer.
  static bool MayAuthorize(Role role) { return role != Role::kNone; }
  static bool MayAdminister(Role role) { return role == Role::kAdmin; }

 private:
  static bool Matches(const std::vector<std::string>& patterns, absl::string_view identity);
  std::vector<std::string> admin_patterns_;
  std::vector<std::string> gateway_patterns_;
  bool insecure_;
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_ACCESS_H_
