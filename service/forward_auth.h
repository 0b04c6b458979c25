// HTTP forward-auth (nginx auth_request, Traefik ForwardAuth, Caddy
// forward_auth) as a thin translation onto the Envoy ext_authz path, so that
// the same EnvoyMapping, subject resolvers (trusted headers, JWT) and
// obligation handling apply to every gateway:
//
//   gateway's auth subrequest --ForwardAuthCheckRequest--> CheckRequest
//     --EnvoyAuthorizationService::Decide--> CheckResponse
//     --ForwardAuthAnswerFrom--> HTTP answer (2xx allow, 401/403 deny)
//
// The request facts come from the headers the gateway sets on its auth
// subrequest:
//   method      X-Forwarded-Method (Traefik, Caddy), else X-Original-Method
//               (nginx convention: proxy_set_header X-Original-Method
//               $request_method)
//   path+query  X-Forwarded-Uri, else X-Original-URI (nginx: $request_uri)
//   host        X-Forwarded-Host, else X-Original-Host
//   scheme      X-Forwarded-Proto
//   client IP   the LAST entry of X-Forwarded-For (the address the gateway
//               itself saw; earlier entries are client-supplied), else
//               X-Real-IP
//   headers     every other request header, as the gateway sent them
// The query parameters of the auth URL itself are the route's
// context_extensions ("/auth?pdp_rule_set=shop&pdp_resource_type=order"), so
// a gateway location chooses its rule set, resource type and action exactly
// as an Envoy route does.
//
// The answer: Envoy's OK becomes 200 with the upstream headers (x-pdp-*,
// add_header obligations) as response headers for the gateway to copy; a
// deny keeps Envoy's denied_response status (401 or 403), headers
// (WWW-Authenticate) and body.
//
// Pure functions, no I/O: tested by tests/forward_auth_test.cc; served over
// HTTPS by service/forward_auth_server.h.
#ifndef PDP_SERVICE_FORWARD_AUTH_H_
#define PDP_SERVICE_FORWARD_AUTH_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/service/auth/v3/external_auth.pb.h"

namespace pdp::service {

// One forward-auth request as the HTTP server received it.
struct ForwardAuthRequest {
  // Request headers in arrival order, names as sent (any case).
  std::vector<std::pair<std::string, std::string>> headers;
  // The auth URL's query parameters, decoded, in order.
  std::vector<std::pair<std::string, std::string>> query;
};

// What pdp answers the gateway.
struct ForwardAuthAnswer {
  int status = 403;
  // Lower-case names, each at most once.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// The CheckRequest for `request` (see the file comment). InvalidArgument,
// naming the header or parameter, when the method or URI header is missing
// or malformed, or a query parameter is repeated: the gateway is
// misconfigured and the answer is 400 (which every gateway treats as "not
// allowed").
absl::StatusOr<::envoy::service::auth::v3::CheckRequest> ForwardAuthCheckRequest(
    const ForwardAuthRequest& request);

// The HTTP answer for an ext_authz CheckResponse. Only status code 0 with an
// ok_response allows (200); anything else is the denied_response's status
// (403 when it has none).
ForwardAuthAnswer ForwardAuthAnswerFrom(const ::envoy::service::auth::v3::CheckResponse& response);

// 400 with `why` in the body, for a request that cannot be mapped.
ForwardAuthAnswer ForwardAuthBadRequest(const std::string& why);

}  // namespace pdp::service

#endif  // PDP_SERVICE_FORWARD_AUTH_H_
