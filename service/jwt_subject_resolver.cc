// The subject from a verified bearer token; see jwt_subject_resolver.h.
// Tested by tests/jwt_gateway_test.cc.
#include "service/jwt_subject_resolver.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/absl_compat.h"

namespace pdp::service {

SubjectResolution JwtSubjectResolver::Resolve(
    const EnvoyAttributes&, const std::vector<std::pair<std::string, std::string>>& headers,
    v1::Subject* subject) const {
  const std::string* authorization = nullptr;
  for (const auto& [name, value] : headers) {
    if (name == "authorization") {
      authorization = &value;
      break;
    }
  }
  if (authorization == nullptr) return SubjectResolution::None();
  // Only the Bearer scheme is ours; other schemes are left to other resolvers.
  const absl::string_view value = absl::StripLeadingAsciiWhitespace(*authorization);
  if (!absl::StartsWithIgnoreCase(value, "bearer ") && !absl::EqualsIgnoreCase(value, "bearer")) {
    return SubjectResolution::None();
  }
  absl::StatusOr<std::string_view> token = BearerToken(FromAbsl(value));
  if (!token.ok()) return SubjectResolution::Rejected(std::string(token.status().message()));
  absl::StatusOr<VerifiedToken> verified = verifier_->Verify(*token, clock_());
  if (!verified.ok()) {
    return SubjectResolution::Rejected(
        absl::StrCat("bearer token rejected: ", verified.status().message()));
  }
  ApplyToSubject(*verified, subject);
  return SubjectResolution::Resolved();
}

}  // namespace pdp::service
