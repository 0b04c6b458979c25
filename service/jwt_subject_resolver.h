// JwtSubjectResolver: the end user from a verified bearer token, for every
// gateway path that maps requests through EnvoyMapping (Envoy ext_authz and
// HTTP forward-auth).
//
// It reads the `authorization` request header:
//   - absent, or another scheme ("Basic ...")  -> kNone (the next resolver
//     is asked);
//   - "Bearer <token>" that verifies (service/jwt.h: signature first, then
//     exp/nbf/iat with the configured skew, iss, aud) -> kResolved, with the
//     subject replaced by what the token establishes (ApplyToSubject: id,
//     roles from the configured claim, attributes mfa, acr, amr, iss,
//     token.<claim>);
//   - "Bearer <token>" that does not verify (bad signature, unknown kid,
//     expired, wrong issuer or audience, malformed) -> kRejected with the
//     verifier's reason, which the gateway paths turn into
//     401 WWW-Authenticate: Bearer error="invalid_token". No claim of such a
//     token reaches the decision.
//
// Keys rotate by replacing the JWKS file; whoever owns the JwksKeySet calls
// ReloadIfChanged() (pdpd does, every --jwt_refresh_seconds).
//
// Thread-safe: Resolve is const and the verifier and key set are.
// Tested by tests/jwt_gateway_test.cc.
#ifndef PDP_SERVICE_JWT_SUBJECT_RESOLVER_H_
#define PDP_SERVICE_JWT_SUBJECT_RESOLVER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/envoy_authz.h"
#include "service/jwt.h"

namespace pdp::service {

class JwtSubjectResolver final : public SubjectResolver {
 public:
  using Clock = std::function<absl::Time()>;

  // `verifier` holds the key set; `clock` gives "now" for exp/nbf (tests pass
  // a fixed time).
  explicit JwtSubjectResolver(std::unique_ptr<const JwtVerifier> verifier,
                              Clock clock = [] { return absl::Now(); })
      : verifier_(std::move(verifier)), clock_(std::move(clock)) {}

  std::string name() const override { return "jwt"; }
  SubjectResolution Resolve(const EnvoyAttributes& attributes,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            v1::Subject* subject) const override;

 private:
  const std::unique_ptr<const JwtVerifier> verifier_;
  const Clock clock_;
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_JWT_SUBJECT_RESOLVER_H_
