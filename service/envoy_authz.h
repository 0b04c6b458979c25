// Envoy external authorization (ext_authz, gRPC v3) served by pdpd:
// envoy.service.auth.v3.Authorization/Check, which Envoy, Istio, Gloo,
// Contour and Emissary call for every HTTP request they guard.
//
// A Check is three steps, each a plain function so that it can be tested
// without a server:
//   1. MapCheckRequest: CheckRequest -> pdp.v1.AuthorizeRequest, by the
//      configurable mapping in EnvoyMapping (documented field by field
//      below and in the README's "Envoy ext_authz" section);
//   2. the decision, inline in the reactor, exactly as
//      pdp.v1.Authorization/Authorize makes it (the same registry snapshot);
//   3. BuildCheckResponse: decision -> CheckResponse. Only a PERMIT whose
//      every obligation the gateway path can fulfil is allowed (status 0,
//      obligations as upstream headers and as dynamic_metadata); anything
//      else is PERMISSION_DENIED (7) with a 403 denied_response, or 401 with
//      WWW-Authenticate when MFA step-up or an identity is needed.
//
// Who may call Check: the caller's mTLS certificate must have the gateway
// or admin role (service/access.h); any other caller gets the RPC status
// PERMISSION_DENIED, not a CheckResponse.
//
// Who the end user is: SubjectResolvers, asked in order (trusted gateway
// headers today; verified tokens plug in here as another resolver), then the
// source principal (the downstream peer certificate that Envoy verified).
//
// Thread-safe: the mapping is immutable after construction and the service
// holds no mutable state. Tested by tests/envoy_authz_test.cc.
#ifndef PDP_SERVICE_ENVOY_AUTHZ_H_
#define PDP_SERVICE_ENVOY_AUTHZ_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "pdp/v1/authorization.pb.h"
#include "service/access.h"
#include "service/decision_log.h"
#include "service/services.h"

namespace pdp::service {

using EnvoyAttributes = ::envoy::service::auth::v3::AttributeContext;

// The outcome of one SubjectResolver.
struct SubjectResolution {
  enum class Outcome {
    // Nothing for this resolver in the request: ask the next one.
    kNone,
    // The subject was filled in; no later resolver is asked.
    kResolved,
    // A credential was presented and is not acceptable (bad signature,
    // expired token): the request is denied with 401 and `reason`, whatever
    // later resolvers would have said.
    kRejected,
  };
  Outcome outcome = Outcome::kNone;
  // Why, for kRejected (sent to the client in the 401 unless reasons are
  // hidden).
  std::string reason;

  static SubjectResolution None() { return {}; }
  static SubjectResolution Resolved() { return {Outcome::kResolved, ""}; }
  static SubjectResolution Rejected(std::string reason) {
    return {Outcome::kRejected, std::move(reason)};
  }
};

// Finds the end user in a CheckRequest. The seam for every way a gateway
// can tell pdp who is calling: identity headers set by a trusted gateway
// (TrustedHeaderSubjectResolver below), and verified bearer tokens (JWT,
// service/jwt.*), which plug in as another implementation.
//
// Implementations must be thread-safe (Resolve is called concurrently) and
// must not trust anything in the request that the gateway does not vouch
// for.
class SubjectResolver {
 public:
  virtual ~SubjectResolver() = default;
  // Short name, recorded as the subject attribute `identity_source` when this
  // resolver resolves ("headers", "jwt").
  virtual std::string name() const = 0;
  // Looks at `attributes` and, for kResolved, fills `subject` (id, roles,
  // attributes). `headers` are the request headers with lower-case names
  // (from `headers` or `header_map`, repeated ones comma-joined).
  virtual SubjectResolution Resolve(
      const EnvoyAttributes& attributes,
      const std::vector<std::pair<std::string, std::string>>& headers,
      v1::Subject* subject) const = 0;
};

// How a CheckRequest becomes an AuthorizeRequest, and a decision a
// CheckResponse. The defaults are pdpd's flag defaults (pdpd_main.cc).
struct EnvoyMapping {
  // Rule set when the route names none; empty means pdpd's
  // --default_rule_set.
  std::string default_rule_set;
  // Resource type when the route names none.
  std::string default_resource_type = "http";
  // context_extensions keys (set per route in Envoy) that choose the rule
  // set, the resource type and the action (overriding the method).
  std::string rule_set_key = "pdp_rule_set";
  std::string resource_type_key = "pdp_resource_type";
  std::string action_key = "pdp_action";
  // The action is the HTTP method lower-cased ("get"); false keeps it as
  // Envoy sends it ("GET").
  bool lowercase_method = true;
  // Request headers copied to environment attributes `header.<name>`:
  // lower-case names, or prefixes ending in '*' ("x-pdp-*"; "*" is every
  // header). authorization, proxy-authorization, cookie and pseudo-headers
  // (":path") are copied only when named exactly, never by a pattern. The
  // identity headers below are never copied.
  std::vector<std::string> header_attributes = {"user-agent", "x-request-id", "x-pdp-*"};
  // Identity headers read by TrustedHeaderSubjectResolver (only installed
  // when pdpd runs with --envoy_trust_identity_headers).
  std::string subject_header = "x-pdp-subject";
  std::string roles_header = "x-pdp-roles";
  std::string subject_attribute_header_prefix = "x-pdp-subject-";
  // When no resolver finds a subject, use the source principal (the
  // downstream certificate Envoy verified) as subject.id.
  bool principal_as_subject = true;
  // When no subject id is found at all, answer 401 instead of deciding.
  bool require_identity = false;
  // Where add_header obligations go.
  enum class AddHeaderTarget { kUpstream, kClient, kBoth };
  AddHeaderTarget add_header_to = AddHeaderTarget::kUpstream;
  // Obligation types, besides the built-in ones, that a PERMIT may carry:
  // they travel in dynamic_metadata only (the enforcement beyond Envoy must
  // fulfil them). "*" admits every type. Any other unknown type turns a
  // PERMIT into a deny, since nothing would fulfil it.
  std::vector<std::string> passthrough_obligations;
  // Put the decision's reason in what the client sees (the deny body and
  // WWW-Authenticate's error_description); false sends a generic text. The
  // reason always goes to Envoy in status.message and dynamic_metadata,
  // which Envoy does not forward to the client.
  bool reason_in_body = true;
  // Asked in order before the source principal; shared, immutable.
  std::vector<std::shared_ptr<const SubjectResolver>> resolvers;
};

// Parses "upstream", "client" or "both".
bool ParseAddHeaderTarget(std::string_view text, EnvoyMapping::AddHeaderTarget* out);

// Subject from identity headers that the gateway sets after authenticating
// the user: `subject_header` -> subject.id, `roles_header` (comma-separated)
// -> subject.roles, `<subject_attribute_header_prefix><name>` -> subject
// attribute <name> ("true"/"false" become bools, JSON numbers numbers,
// anything else a string). Resolves only when `subject_header` is present
// and non-empty.
//
// TRUST: anyone can send these headers. Install this resolver only when the
// gateway removes them from every client request before setting its own
// (Envoy: request_headers_to_remove on the route or an earlier filter);
// otherwise any client can claim any identity.
class TrustedHeaderSubjectResolver final : public SubjectResolver {
 public:
  explicit TrustedHeaderSubjectResolver(const EnvoyMapping& mapping)
      : subject_header_(mapping.subject_header),
        roles_header_(mapping.roles_header),
        attribute_prefix_(mapping.subject_attribute_header_prefix) {}
  std::string name() const override { return "headers"; }
  SubjectResolution Resolve(const EnvoyAttributes& attributes,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            v1::Subject* subject) const override;

 private:
  std::string subject_header_;
  std::string roles_header_;
  std::string attribute_prefix_;
};

// The result of mapping one CheckRequest.
struct MappedCheck {
  v1::AuthorizeRequest request;
  // Set when the request must be denied before any rule is evaluated.
  enum class Refusal {
    kNone,
    // require_identity and no subject id: 401.
    kMissingIdentity,
    // A resolver rejected a presented credential: 401 invalid_token.
    kRejectedIdentity,
    // Not an HTTP request (e.g. the network ext_authz filter): 403.
    kNotHttp,
  };
  Refusal refusal = Refusal::kNone;
  std::string refusal_reason;
};

// Step 1: CheckRequest -> AuthorizeRequest (see EnvoyMapping).
MappedCheck MapCheckRequest(const ::envoy::service::auth::v3::CheckRequest& check,
                            const EnvoyMapping& mapping);

// Step 3: decision -> CheckResponse. `decision` is what the engine answered
// for `mapped.request` (ignored when mapped.refusal is set).
void BuildCheckResponse(const MappedCheck& mapped, const v1::AuthorizeResponse& decision,
                        const EnvoyMapping& mapping,
                        ::envoy::service::auth::v3::CheckResponse* response);

// Header names pdp sets on allowed requests.
inline constexpr char kDecisionHeader[] = "x-pdp-decision";
inline constexpr char kRuleSetHeader[] = "x-pdp-rule-set";
inline constexpr char kRuleSetVersionHeader[] = "x-pdp-rule-set-version";
inline constexpr char kFilterFieldsHeader[] = "x-pdp-filter-fields";
inline constexpr char kMaskFieldsHeader[] = "x-pdp-mask-fields";
inline constexpr char kMaskHeader[] = "x-pdp-mask";

class EnvoyAuthorizationService final
    : public ::envoy::service::auth::v3::Authorization::CallbackService {
 public:
  // Decides one AuthorizeRequest against the current snapshot (pdpd passes
  // AuthorizationService::Decide).
  using DecideFn = std::function<void(const v1::AuthorizeRequest&, v1::AuthorizeResponse*)>;

  // `recorder` (not owned; may be null) counts and logs every Check,
  // including those refused before any rule was evaluated (as
  // INDETERMINATE with the refusal's reason).
  EnvoyAuthorizationService(const AccessPolicy* access, DecideFn decide, EnvoyMapping mapping,
                            const DecisionRecorder* recorder = nullptr)
      : access_(access),
        decide_(std::move(decide)),
        mapping_(std::move(mapping)),
        recorder_(recorder != nullptr && recorder->active() ? recorder : nullptr) {
    SetMessageAllocatorFor_Check(&allocator_);
  }

  // Counts this service's calls in `tracker` (call before the server
  // starts).
  void TrackCalls(CallTracker* tracker) { allocator_.set_tracker(tracker); }

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const ::envoy::service::auth::v3::CheckRequest* request,
                                  ::envoy::service::auth::v3::CheckResponse* response) override;

  // Steps 1-3 without the caller check (also used by tests).
  void Decide(const ::envoy::service::auth::v3::CheckRequest& request,
              ::envoy::service::auth::v3::CheckResponse* response) const;

  // Steps 1-3 for an already admitted `caller` (its verified identity),
  // counted and logged by the recorder as a decision of `path`: Check's
  // work, and the HTTP forward-auth path's (forward_auth_server.h).
  void DecideAndRecord(const ::envoy::service::auth::v3::CheckRequest& request,
                       const std::string& caller, DecisionPath path,
                       ::envoy::service::auth::v3::CheckResponse* response) const;

  const EnvoyMapping& mapping() const { return mapping_; }

 private:
  const AccessPolicy* access_;
  const DecideFn decide_;
  const EnvoyMapping mapping_;
  const DecisionRecorder* const recorder_;
  ArenaMessageAllocator<::envoy::service::auth::v3::CheckRequest,
                        ::envoy::service::auth::v3::CheckResponse>
      allocator_;
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_ENVOY_AUTHZ_H_
