// Envoy ext_authz v3 (service/envoy_authz.h).
//
// Unit level, no server: MapCheckRequest field by field (method, path,
// query, host, headers and the allow-list, header_map, context_extensions,
// source address and principal, trusted identity headers and their typing,
// resolver order and rejection, require_identity, non-HTTP requests) and
// BuildCheckResponse for every answer shape (allow with obligation headers
// and dynamic_metadata, 403, 401 step-up, unfulfillable obligations,
// add_header targets, hidden reasons); then the whole Check against a
// compiled rule set through EnvoyAuthorizationService::Decide.
//
// End to end: real CheckRequests, built as protos, sent over real mTLS to a
// real pdpd (tests/support/pdpd_process.h) with a rule set that permits and
// denies by method, path, roles, MFA and client IP.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/compiler.h"
#include "engine/rule_set_io.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "service/envoy_authz.h"
#include "tests/support/pdpd_process.h"

namespace pdp {
namespace {

namespace auth = ::envoy::service::auth::v3;
namespace core = ::envoy::config::core::v3;
using service::BuildCheckResponse;
using service::EnvoyAuthorizationService;
using service::EnvoyMapping;
using service::MapCheckRequest;
using service::MappedCheck;
using service::SubjectResolution;
using service::SubjectResolver;
using service::TrustedHeaderSubjectResolver;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// ---------------------------------------------------------------------------
// Helpers.

constexpr int kOk = 0;
constexpr int kPermissionDenied = 7;
constexpr int kUnauthenticated = 16;

// A CheckRequest as Envoy's HTTP ext_authz filter sends it.
struct Http {
  std::string method = "GET";
  std::string path = "/";
  std::string host = "api.example.com";
  std::map<std::string, std::string> headers;
  std::map<std::string, std::string> extensions;
  std::string source_ip = "203.0.113.7";
  std::string principal;
};

auth::CheckRequest MakeCheck(const Http& h) {
  auth::CheckRequest check;
  auth::AttributeContext* a = check.mutable_attributes();
  if (!h.source_ip.empty()) {
    core::SocketAddress* sa = a->mutable_source()->mutable_address()->mutable_socket_address();
    sa->set_address(h.source_ip);
    sa->set_port_value(54321);
  }
  a->mutable_source()->set_principal(h.principal);
  a->mutable_destination()->mutable_address()->mutable_socket_address()->set_address("10.9.9.9");
  a->mutable_destination()->mutable_address()->mutable_socket_address()->set_port_value(8080);
  auth::AttributeContext::HttpRequest* http = a->mutable_request()->mutable_http();
  http->set_id("req-1");
  http->set_method(h.method);
  http->set_path(h.path);
  http->set_host(h.host);
  http->set_scheme("https");
  http->set_protocol("HTTP/2");
  auto& headers = *http->mutable_headers();
  headers[":method"] = h.method;
  headers[":path"] = h.path;
  headers[":authority"] = h.host;
  for (const auto& [k, v] : h.headers) headers[k] = v;
  for (const auto& [k, v] : h.extensions) (*a->mutable_context_extensions())[k] = v;
  return check;
}

// Upstream (or client, or denied) headers as a map; a repeated name is a
// failure.
std::map<std::string, std::string> HeaderMap(
    const google::protobuf::RepeatedPtrField<core::HeaderValueOption>& headers) {
  std::map<std::string, std::string> out;
  for (const core::HeaderValueOption& h : headers) {
    EXPECT_EQ(h.append_action(), core::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD)
        << h.header().key();
    // The deprecated `append` stays unset.
    EXPECT_FALSE(h.GetReflection()->HasField(h, h.GetDescriptor()->FindFieldByName("append")))
        << h.header().key();
    EXPECT_TRUE(out.emplace(h.header().key(), h.header().value()).second)
        << "header twice: " << h.header().key();
  }
  return out;
}

std::string Str(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? "<absent>" : it->second.string_value();
}

const google::protobuf::Value& Field(const google::protobuf::Struct& s, const std::string& key) {
  static const google::protobuf::Value kNull;
  auto it = s.fields().find(key);
  return it == s.fields().end() ? kNull : it->second;
}

std::vector<std::string> StringList(const google::protobuf::Value& v) {
  std::vector<std::string> out;
  for (const auto& e : v.list_value().values()) out.push_back(e.string_value());
  return out;
}

EnvoyMapping TrustingMapping() {
  EnvoyMapping m;
  m.resolvers.push_back(std::make_shared<TrustedHeaderSubjectResolver>(m));
  return m;
}

v1::AuthorizeResponse Decision(v1::Decision d, const std::string& reason = "because") {
  v1::AuthorizeResponse r;
  r.set_decision(d);
  r.set_rule_set("web");
  r.set_rule_set_version(4);
  r.add_determining_rules("rule-a");
  r.set_reason(reason);
  return r;
}

v1::ObligationResult* AddObligation(v1::AuthorizeResponse* r, const std::string& type,
                                    const std::string& params_json) {
  v1::ObligationResult* o = r->add_obligations();
  o->set_type(type);
  o->set_rule_id("rule-a");
  // Params from a tiny rule-set JSON, parsed by the project's own parser.
  auto rs = engine::ParseRuleSetJson(absl::StrCat(
      R"({"name":"x","rules":[{"id":"r","effect":"permit","target":{"resource_types":["*"],)",
      R"("actions":["*"]},"obligations":[{"type":"t","params":)", params_json, "}]}]}"));
  EXPECT_TRUE(rs.ok()) << rs.status();
  if (rs.ok()) *o->mutable_params() = rs->rules(0).obligations(0).params();
  return o;
}

auth::CheckResponse Build(const v1::AuthorizeResponse& decision,
                          const EnvoyMapping& mapping = EnvoyMapping()) {
  MappedCheck mapped;
  auth::CheckResponse response;
  BuildCheckResponse(mapped, decision, mapping, &response);
  return response;
}

// ---------------------------------------------------------------------------
// MapCheckRequest.

TEST(EnvoyMapCheckRequest, MapsMethodPathHostAddressAndAttributes) {
  Http h;
  h.method = "PATCH";
  h.path = "/Orders/42?expand=items&x=%2F";
  h.host = "API.Example.com:8443";
  h.principal = "spiffe://example.org/ns/shop/sa/frontend";
  h.headers = {{"user-agent", "curl/8"},
               {"x-request-id", "abc"},
               {"x-pdp-tenant", "acme"},
               {"x-other", "no"},
               {"authorization", "Bearer secret"},
               {"cookie", "s=1"}};
  h.extensions = {{"team", "payments"}};
  auth::CheckRequest check = MakeCheck(h);
  check.mutable_attributes()->mutable_request()->mutable_time()->set_seconds(1795000000);
  check.mutable_attributes()->mutable_tls_session()->set_sni("api.example.com");
  check.mutable_attributes()->mutable_destination()->set_principal("spiffe://example.org/gw");

  MappedCheck m = MapCheckRequest(check, EnvoyMapping());
  ASSERT_EQ(m.refusal, MappedCheck::Refusal::kNone);
  const v1::AuthorizeRequest& r = m.request;
  EXPECT_EQ(r.action(), "patch");
  EXPECT_EQ(r.rule_set(), "");  // the server's default
  EXPECT_EQ(r.resource().type(), "http");
  EXPECT_EQ(r.resource().id(), "/Orders/42");  // not decoded, query stripped
  EXPECT_EQ(r.resource().attributes().at("path").string_value(), "/Orders/42");
  EXPECT_EQ(r.resource().attributes().at("query").string_value(), "expand=items&x=%2F");
  EXPECT_EQ(r.resource().attributes().at("host").string_value(), "api.example.com:8443");
  EXPECT_EQ(r.environment().client_ip(), "203.0.113.7");
  EXPECT_EQ(r.environment().time().seconds(), 1795000000);

  std::map<std::string, std::string> env;
  for (const auto& [k, v] : r.environment().attributes()) env[k] = v.string_value();
  EXPECT_EQ(env, (std::map<std::string, std::string>{
                     {"header.user-agent", "curl/8"},
                     {"header.x-request-id", "abc"},
                     {"header.x-pdp-tenant", "acme"},
                     {"context.team", "payments"},
                     {"method", "PATCH"},
                     {"scheme", "https"},
                     {"protocol", "HTTP/2"},
                     {"sni", "api.example.com"},
                     {"source_principal", "spiffe://example.org/ns/shop/sa/frontend"},
                     {"destination_principal", "spiffe://example.org/gw"},
                 }));
  // No better subject: the source principal is the subject.
  EXPECT_EQ(r.subject().id(), "spiffe://example.org/ns/shop/sa/frontend");
  EXPECT_EQ(r.subject().roles_size(), 0);
  EXPECT_EQ(r.subject().attributes().at("identity_source").string_value(), "peer_certificate");
}

TEST(EnvoyMapCheckRequest, ContextExtensionsChooseRuleSetResourceTypeAndAction) {
  Http h;
  h.method = "POST";
  h.path = "/v1/invoices/7:void";
  h.extensions = {{"pdp_rule_set", "billing"},
                  {"pdp_resource_type", "invoice"},
                  {"pdp_action", "void"}};
  MappedCheck m = MapCheckRequest(MakeCheck(h), EnvoyMapping());
  EXPECT_EQ(m.request.rule_set(), "billing");
  EXPECT_EQ(m.request.resource().type(), "invoice");
  EXPECT_EQ(m.request.action(), "void");
  EXPECT_EQ(m.request.resource().id(), "/v1/invoices/7:void");

  // Other key names, other defaults, method as sent.
  EnvoyMapping custom;
  custom.rule_set_key = "policy";
  custom.resource_type_key = "kind";
  custom.action_key = "verb";
  custom.default_rule_set = "edge";
  custom.default_resource_type = "route";
  custom.lowercase_method = false;
  m = MapCheckRequest(MakeCheck(h), custom);
  EXPECT_EQ(m.request.rule_set(), "edge");
  EXPECT_EQ(m.request.resource().type(), "route");
  EXPECT_EQ(m.request.action(), "POST");
  h.extensions = {{"policy", "p"}, {"kind", "k"}, {"verb", "v"}, {"pdp_action", "ignored"}};
  m = MapCheckRequest(MakeCheck(h), custom);
  EXPECT_EQ(m.request.rule_set(), "p");
  EXPECT_EQ(m.request.resource().type(), "k");
  EXPECT_EQ(m.request.action(), "v");
  // An empty extension value counts as absent.
  h.extensions = {{"policy", ""}};
  m = MapCheckRequest(MakeCheck(h), custom);
  EXPECT_EQ(m.request.rule_set(), "edge");
}

TEST(EnvoyMapCheckRequest, HeaderAllowList) {
  Http h;
  h.headers = {{"user-agent", "ua"}, {"x-forwarded-for", "1.2.3.4"}, {"authorization", "x"},
               {"cookie", "c"},      {"x-b3-traceid", "t"}};
  EnvoyMapping m;
  m.header_attributes = {"*"};
  std::vector<std::string> names;
  MappedCheck mapped = MapCheckRequest(MakeCheck(h), m);
  for (const auto& [k, v] : mapped.request.environment().attributes()) {
    if (absl::StartsWith(k, "header.")) names.push_back(k);
  }
  // "*" never copies credentials or pseudo-headers.
  EXPECT_THAT(names, UnorderedElementsAre("header.user-agent", "header.x-forwarded-for",
                                          "header.x-b3-traceid"));
  // Named exactly, they are copied.
  m.header_attributes = {"authorization", ":path", "x-b3-*"};
  names.clear();
  mapped = MapCheckRequest(MakeCheck(h), m);
  for (const auto& [k, v] : mapped.request.environment().attributes()) {
    if (absl::StartsWith(k, "header.")) names.push_back(k);
  }
  EXPECT_THAT(names,
              UnorderedElementsAre("header.authorization", "header.:path", "header.x-b3-traceid"));
}

TEST(EnvoyMapCheckRequest, HeaderMapIsPreferredAndRepeatedHeadersAreJoined) {
  auth::CheckRequest check = MakeCheck(Http());
  auto* http = check.mutable_attributes()->mutable_request()->mutable_http();
  http->mutable_headers()->clear();
  auto add = [&](const std::string& k, const std::string& v, bool raw) {
    core::HeaderValue* hv = http->mutable_header_map()->add_headers();
    hv->set_key(k);
    if (raw) hv->set_raw_value(v); else hv->set_value(v);
  };
  add("X-Request-Id", "one", false);
  add("x-request-id", "two", true);
  add("user-agent", "ua", true);
  MappedCheck m = MapCheckRequest(check, EnvoyMapping());
  const auto& env = m.request.environment().attributes();
  EXPECT_EQ(env.at("header.x-request-id").string_value(), "one,two");
  EXPECT_EQ(env.at("header.user-agent").string_value(), "ua");
}

TEST(EnvoyMapCheckRequest, IdentityHeadersAreIgnoredUnlessTrusted) {
  Http h;
  h.principal = "spiffe://example.org/client";
  h.headers = {{"x-pdp-subject", "mallory"},
               {"x-pdp-roles", "admin"},
               {"x-pdp-subject-mfa", "true"},
               {"x-pdp-tenant", "acme"}};
  MappedCheck m = MapCheckRequest(MakeCheck(h), EnvoyMapping());
  EXPECT_EQ(m.request.subject().id(), "spiffe://example.org/client");
  EXPECT_EQ(m.request.subject().roles_size(), 0);
  EXPECT_FALSE(m.request.subject().attributes().contains("mfa"));
  // Never copied as environment attributes either, trusted or not.
  for (const EnvoyMapping& mapping : {EnvoyMapping(), TrustingMapping()}) {
    const MappedCheck mapped = MapCheckRequest(MakeCheck(h), mapping);
    const auto& env = mapped.request.environment().attributes();
    EXPECT_FALSE(env.contains("header.x-pdp-subject"));
    EXPECT_FALSE(env.contains("header.x-pdp-roles"));
    EXPECT_FALSE(env.contains("header.x-pdp-subject-mfa"));
    EXPECT_TRUE(env.contains("header.x-pdp-tenant"));
  }
}

TEST(EnvoyMapCheckRequest, TrustedHeadersGiveSubjectRolesAndTypedAttributes) {
  Http h;
  h.principal = "spiffe://example.org/client";
  h.headers = {{"x-pdp-subject", " alice "},
               {"x-pdp-roles", "support, finance,,admin "},
               {"x-pdp-subject-mfa", "true"},
               {"x-pdp-subject-clearance", "2"},
               {"x-pdp-subject-ratio", "-0.5e1"},
               {"x-pdp-subject-badge", "007"},
               {"x-pdp-subject-region", "eu"}};
  MappedCheck m = MapCheckRequest(MakeCheck(h), TrustingMapping());
  const v1::Subject& s = m.request.subject();
  EXPECT_EQ(s.id(), "alice");
  EXPECT_THAT(s.roles(), ElementsAre("support", "finance", "admin"));
  EXPECT_TRUE(s.attributes().at("mfa").bool_value());
  EXPECT_EQ(s.attributes().at("clearance").number_value(), 2);
  EXPECT_EQ(s.attributes().at("ratio").number_value(), -5);
  EXPECT_EQ(s.attributes().at("badge").string_value(), "007");
  EXPECT_EQ(s.attributes().at("region").string_value(), "eu");
  EXPECT_EQ(s.attributes().at("identity_source").string_value(), "headers");
  // The principal stays visible as an attribute.
  EXPECT_EQ(m.request.environment().attributes().at("source_principal").string_value(),
            "spiffe://example.org/client");

  // Roles without a subject header resolve nothing: the principal is used.
  h.headers = {{"x-pdp-roles", "admin"}};
  m = MapCheckRequest(MakeCheck(h), TrustingMapping());
  EXPECT_EQ(m.request.subject().id(), "spiffe://example.org/client");
  EXPECT_EQ(m.request.subject().roles_size(), 0);
}

class FakeResolver final : public SubjectResolver {
 public:
  FakeResolver(std::string name, SubjectResolution result, std::string id = "")
      : name_(std::move(name)), result_(std::move(result)), id_(std::move(id)) {}
  std::string name() const override { return name_; }
  SubjectResolution Resolve(const service::EnvoyAttributes&,
                            const std::vector<std::pair<std::string, std::string>>&,
                            v1::Subject* subject) const override {
    subject->set_id(id_);
    return result_;
  }

 private:
  std::string name_;
  SubjectResolution result_;
  std::string id_;
};

TEST(EnvoyMapCheckRequest, ResolversRunInOrderAndARejectionIs401) {
  Http h;
  h.principal = "spiffe://example.org/client";
  EnvoyMapping m;
  m.resolvers = {std::make_shared<FakeResolver>("none", SubjectResolution::None(), "ignored"),
                 std::make_shared<FakeResolver>("jwt", SubjectResolution::Resolved(), "bob"),
                 std::make_shared<FakeResolver>("late", SubjectResolution::Resolved(), "eve")};
  MappedCheck mapped = MapCheckRequest(MakeCheck(h), m);
  EXPECT_EQ(mapped.request.subject().id(), "bob");
  EXPECT_EQ(mapped.request.subject().attributes().at("identity_source").string_value(), "jwt");

  m.resolvers.insert(m.resolvers.begin(),
                     std::make_shared<FakeResolver>(
                         "jwt", SubjectResolution::Rejected("token expired at 12:00")));
  mapped = MapCheckRequest(MakeCheck(h), m);
  ASSERT_EQ(mapped.refusal, MappedCheck::Refusal::kRejectedIdentity);
  auth::CheckResponse response;
  BuildCheckResponse(mapped, v1::AuthorizeResponse(), m, &response);
  EXPECT_EQ(response.status().code(), kUnauthenticated);
  EXPECT_EQ(response.denied_response().status().code(), envoy::type::v3::Unauthorized);
  EXPECT_EQ(HeaderMap(response.denied_response().headers())["www-authenticate"],
            R"(Bearer realm="pdp", error="invalid_token", error_description="token expired at 12:00")");
  EXPECT_THAT(response.denied_response().body(), HasSubstr("token expired"));
  EXPECT_EQ(Str(response.dynamic_metadata(), "decision"), "unauthenticated");
  EXPECT_FALSE(Field(response.dynamic_metadata(), "allowed").bool_value());
}

TEST(EnvoyMapCheckRequest, RequireIdentity) {
  EnvoyMapping m;
  m.require_identity = true;
  Http h;  // no principal, no headers
  MappedCheck mapped = MapCheckRequest(MakeCheck(h), m);
  ASSERT_EQ(mapped.refusal, MappedCheck::Refusal::kMissingIdentity);
  auth::CheckResponse response;
  BuildCheckResponse(mapped, v1::AuthorizeResponse(), m, &response);
  EXPECT_EQ(response.status().code(), kUnauthenticated);
  EXPECT_EQ(response.denied_response().status().code(), 401);
  EXPECT_EQ(HeaderMap(response.denied_response().headers())["www-authenticate"],
            R"(Bearer realm="pdp")");

  // The principal is an identity...
  h.principal = "spiffe://example.org/client";
  EXPECT_EQ(MapCheckRequest(MakeCheck(h), m).refusal, MappedCheck::Refusal::kNone);
  // ...unless it may not stand for the subject.
  m.principal_as_subject = false;
  mapped = MapCheckRequest(MakeCheck(h), m);
  EXPECT_EQ(mapped.refusal, MappedCheck::Refusal::kMissingIdentity);
  EXPECT_EQ(mapped.request.subject().id(), "");
}

TEST(EnvoyMapCheckRequest, NotAnHttpRequestIsDenied) {
  auth::CheckRequest check;
  check.mutable_attributes()->mutable_source()->mutable_address()->mutable_socket_address()
      ->set_address("10.0.0.1");
  MappedCheck mapped = MapCheckRequest(check, EnvoyMapping());
  ASSERT_EQ(mapped.refusal, MappedCheck::Refusal::kNotHttp);
  auth::CheckResponse response;
  BuildCheckResponse(mapped, v1::AuthorizeResponse(), EnvoyMapping(), &response);
  EXPECT_EQ(response.status().code(), kPermissionDenied);
  EXPECT_EQ(response.denied_response().status().code(), 403);
}

TEST(EnvoyMapCheckRequest, UnixSocketPeerHasNoClientIp) {
  auth::CheckRequest check = MakeCheck(Http());
  check.mutable_attributes()->mutable_source()->mutable_address()->mutable_pipe()->set_path(
      "/run/envoy.sock");
  EXPECT_EQ(MapCheckRequest(check, EnvoyMapping()).request.environment().client_ip(), "");
}

// ---------------------------------------------------------------------------
// BuildCheckResponse.

TEST(EnvoyBuildCheckResponse, PermitCarriesObligationsAsHeadersAndMetadata) {
  v1::AuthorizeResponse d = Decision(v1::PERMIT, "permitted by rule rule-a");
  AddObligation(&d, "filter_fields", R"({"fields": ["payment.card_number", "ssn"]})");
  AddObligation(&d, "filter_fields", R"({"fields": ["ssn", "dob"]})");
  AddObligation(&d, "mask_fields", R"({"fields": ["email"], "mask": "###"})");
  AddObligation(&d, "add_header", R"({"name": "Cache-Control", "value": "private, no-store"})");
  auth::CheckResponse r = Build(d);

  EXPECT_EQ(r.status().code(), kOk);
  ASSERT_TRUE(r.has_ok_response());
  EXPECT_EQ(HeaderMap(r.ok_response().headers()),
            (std::map<std::string, std::string>{
                {"x-pdp-decision", "permit"},
                {"x-pdp-rule-set", "web"},
                {"x-pdp-rule-set-version", "4"},
                {"x-pdp-filter-fields", "payment.card_number,ssn,dob"},
                {"x-pdp-mask-fields", "email"},
                {"x-pdp-mask", "###"},
                {"cache-control", "private, no-store"},
            }));
  EXPECT_EQ(r.ok_response().response_headers_to_add_size(), 0);
  EXPECT_EQ(r.ok_response().headers_to_remove_size(), 0);

  const google::protobuf::Struct& md = r.dynamic_metadata();
  EXPECT_EQ(Str(md, "decision"), "permit");
  EXPECT_EQ(Str(md, "rule_set"), "web");
  EXPECT_EQ(Field(md, "rule_set_version").number_value(), 4);
  EXPECT_THAT(StringList(Field(md, "determining_rules")), ElementsAre("rule-a"));
  EXPECT_TRUE(Field(md, "allowed").bool_value());
  const auto& obligations = Field(md, "obligations").list_value().values();
  ASSERT_EQ(obligations.size(), 4);
  EXPECT_EQ(Str(obligations[2].struct_value(), "type"), "mask_fields");
  EXPECT_EQ(Str(obligations[2].struct_value(), "rule_id"), "rule-a");
  EXPECT_EQ(Str(Field(obligations[2].struct_value(), "params").struct_value(), "mask"), "###");
}

TEST(EnvoyBuildCheckResponse, PermitWithoutFieldObligationsRemovesForgedHeaders) {
  auth::CheckResponse r = Build(Decision(v1::PERMIT));
  EXPECT_EQ(r.status().code(), kOk);
  EXPECT_THAT(r.ok_response().headers_to_remove(),
              UnorderedElementsAre("x-pdp-filter-fields", "x-pdp-mask-fields", "x-pdp-mask"));
  // The default mask is named when masking.
  v1::AuthorizeResponse d = Decision(v1::PERMIT);
  AddObligation(&d, "mask_fields", R"({"fields": ["email"]})");
  r = Build(d);
  EXPECT_EQ(HeaderMap(r.ok_response().headers())["x-pdp-mask"], "****");
  EXPECT_THAT(r.ok_response().headers_to_remove(), ElementsAre("x-pdp-filter-fields"));
}

TEST(EnvoyBuildCheckResponse, AddHeaderTargets) {
  v1::AuthorizeResponse d = Decision(v1::PERMIT);
  AddObligation(&d, "add_header", R"({"name": "X-Admin-Access", "value": "granted"})");
  EnvoyMapping m;
  m.add_header_to = EnvoyMapping::AddHeaderTarget::kClient;
  auth::CheckResponse r = Build(d, m);
  EXPECT_FALSE(HeaderMap(r.ok_response().headers()).contains("x-admin-access"));
  EXPECT_EQ(HeaderMap(r.ok_response().response_headers_to_add())["x-admin-access"], "granted");
  m.add_header_to = EnvoyMapping::AddHeaderTarget::kBoth;
  r = Build(d, m);
  EXPECT_EQ(HeaderMap(r.ok_response().headers())["x-admin-access"], "granted");
  EXPECT_EQ(HeaderMap(r.ok_response().response_headers_to_add())["x-admin-access"], "granted");
  EnvoyMapping::AddHeaderTarget t;
  EXPECT_TRUE(service::ParseAddHeaderTarget("both", &t));
  EXPECT_FALSE(service::ParseAddHeaderTarget("sideways", &t));
}

TEST(EnvoyBuildCheckResponse, DenyNotApplicableAndIndeterminateAre403) {
  for (v1::Decision d : {v1::DENY, v1::NOT_APPLICABLE, v1::INDETERMINATE}) {
    auth::CheckResponse r = Build(Decision(d, "rule set 'x' is not loaded"));
    EXPECT_EQ(r.status().code(), kPermissionDenied);
    EXPECT_THAT(r.status().message(), HasSubstr("rule set 'x' is not loaded"));
    ASSERT_TRUE(r.has_denied_response());
    EXPECT_EQ(r.denied_response().status().code(), envoy::type::v3::Forbidden);
    EXPECT_EQ(r.denied_response().body(), "rule set 'x' is not loaded\n");
    auto headers = HeaderMap(r.denied_response().headers());
    EXPECT_EQ(headers["content-type"], "text/plain; charset=utf-8");
    EXPECT_FALSE(headers.contains("www-authenticate"));
    EXPECT_FALSE(Field(r.dynamic_metadata(), "allowed").bool_value());
  }
}

TEST(EnvoyBuildCheckResponse, RequireMfaOnDenyIs401StepUp) {
  v1::AuthorizeResponse d = Decision(v1::DENY, "denied by rule deny-delete-without-mfa");
  AddObligation(&d, "require_mfa", R"({"level": "phishing-resistant"})");
  auth::CheckResponse r = Build(d);
  EXPECT_EQ(r.status().code(), kUnauthenticated);
  EXPECT_EQ(r.denied_response().status().code(), envoy::type::v3::Unauthorized);
  const std::string challenge = HeaderMap(r.denied_response().headers())["www-authenticate"];
  EXPECT_THAT(challenge, HasSubstr(R"(error="insufficient_user_authentication")"));
  EXPECT_THAT(challenge, HasSubstr(R"(acr_values="phishing-resistant")"));
  EXPECT_THAT(challenge, ::testing::StartsWith(R"(Bearer realm="pdp", )"));
  EXPECT_THAT(r.denied_response().body(), HasSubstr("phishing-resistant"));

  // Without a level: no acr_values. Quotes in the reason are escaped.
  d = Decision(v1::DENY, R"(denied by rule "q")");
  AddObligation(&d, "require_mfa", "{}");
  r = Build(d);
  EXPECT_EQ(HeaderMap(r.denied_response().headers())["www-authenticate"],
            R"x(Bearer realm="pdp", error="insufficient_user_authentication", )x"
            R"x(error_description="multi-factor authentication required (denied by rule \"q\")")x");
}

TEST(EnvoyBuildCheckResponse, PermitThatCannotBeFulfilledIsDenied) {
  // An unknown obligation type: nothing would fulfil it.
  v1::AuthorizeResponse d = Decision(v1::PERMIT, "permitted by rule rule-a");
  AddObligation(&d, "log_access", R"({"sink": "audit"})");
  auth::CheckResponse r = Build(d);
  EXPECT_EQ(r.status().code(), kPermissionDenied);
  EXPECT_EQ(r.denied_response().status().code(), 403);
  EXPECT_THAT(r.denied_response().body(), HasSubstr("'log_access'"));
  EXPECT_EQ(Str(r.dynamic_metadata(), "decision"), "permit");
  EXPECT_FALSE(Field(r.dynamic_metadata(), "allowed").bool_value());
  // ...unless configured to pass through (in dynamic_metadata).
  EnvoyMapping m;
  m.passthrough_obligations = {"log_access"};
  EXPECT_EQ(Build(d, m).status().code(), kOk);
  m.passthrough_obligations = {"*"};
  EXPECT_EQ(Build(d, m).status().code(), kOk);

  // Two different masks cannot travel in one header.
  d = Decision(v1::PERMIT);
  AddObligation(&d, "mask_fields", R"({"fields": ["a"], "mask": "#"})");
  AddObligation(&d, "mask_fields", R"({"fields": ["b"]})");
  EXPECT_EQ(Build(d).status().code(), kPermissionDenied);
  // A field path with a comma cannot either.
  d = Decision(v1::PERMIT);
  AddObligation(&d, "filter_fields", R"({"fields": ["a,b"]})");
  EXPECT_EQ(Build(d).status().code(), kPermissionDenied);
  // A permit that still requires MFA sends the client to step up.
  d = Decision(v1::PERMIT);
  AddObligation(&d, "require_mfa", R"({"level": "totp"})");
  r = Build(d);
  EXPECT_EQ(r.denied_response().status().code(), 401);
  EXPECT_THAT(HeaderMap(r.denied_response().headers())["www-authenticate"],
              HasSubstr(R"(acr_values="totp")"));
}

TEST(EnvoyBuildCheckResponse, ReasonsCanBeHiddenFromClients) {
  EnvoyMapping m;
  m.reason_in_body = false;
  v1::AuthorizeResponse d = Decision(v1::DENY, "denied by rule secret-rule");
  auth::CheckResponse r = Build(d, m);
  EXPECT_EQ(r.denied_response().body(), "access denied\n");
  EXPECT_FALSE(HeaderMap(r.denied_response().headers()).contains("x-pdp-decision"));
  // Envoy (not the client) still sees it.
  EXPECT_THAT(r.status().message(), HasSubstr("secret-rule"));
  AddObligation(&d, "require_mfa", R"({"level": "totp"})");
  r = Build(d, m);
  EXPECT_EQ(HeaderMap(r.denied_response().headers())["www-authenticate"],
            R"(Bearer realm="pdp", error="insufficient_user_authentication", acr_values="totp")");
}

// ---------------------------------------------------------------------------
// The test rule sets, used with a compiled policy and with a real pdpd.

constexpr char kWebRules[] = R"json({
  "name": "web",
  "combining_algorithm": "deny-overrides",
  "rules": [
    {"id": "public-get", "effect": "permit",
     "target": {"resource_types": ["http"], "actions": ["get", "head"]},
     "conditions": {"attributes": [{"attribute": "resource.path", "op": "regex",
                                    "value": "/public/.*"}]},
     "obligations": [{"type": "add_header", "params": {"name": "X-Cache-Policy", "value": "public"}}]},
    {"id": "support-reads-orders", "effect": "permit",
     "target": {"resource_types": ["http"], "actions": ["get"], "roles": ["support"]},
     "conditions": {"attributes": [{"attribute": "resource.id", "op": "regex",
                                    "value": "/orders/[0-9]+"}]},
     "obligations": [
       {"type": "filter_fields", "params": {"fields": ["payment.card_number", "ssn"]}},
       {"type": "mask_fields", "params": {"fields": ["email"], "mask": "###"}}]},
    {"id": "admin-deletes-orders", "effect": "permit",
     "target": {"resource_types": ["http"], "actions": ["delete"], "roles": ["admin"]}},
    {"id": "deny-delete-without-mfa", "effect": "deny",
     "target": {"resource_types": ["http"], "actions": ["delete"]},
     "conditions": {"attributes": [{"attribute": "subject.mfa", "op": "ne", "value": true}]},
     "obligations": [{"type": "require_mfa", "params": {"level": "phishing-resistant"}}]},
    {"id": "deny-delete-without-mfa-claim", "effect": "deny",
     "target": {"resource_types": ["http"], "actions": ["delete"]},
     "conditions": {"attributes": [{"attribute": "subject.mfa", "op": "exists", "value": false}]},
     "obligations": [{"type": "require_mfa", "params": {"level": "phishing-resistant"}}]},
    {"id": "internal-jobs-from-office", "effect": "permit",
     "target": {"resource_types": ["http"], "actions": ["post"]},
     "conditions": {"client_ip": {"in": ["10.0.0.0/8", "2001:db8::/32"]},
                    "attributes": [{"attribute": "resource.path", "op": "regex",
                                    "value": "/internal/.*"}]}},
    {"id": "tenant-header", "effect": "permit",
     "target": {"resource_types": ["http"], "actions": ["get"]},
     "conditions": {"attributes": [
       {"attribute": "resource.path", "op": "eq", "value": "/tenant"},
       {"attribute": "environment.header.x-pdp-tenant", "op": "eq", "value": "acme"},
       {"attribute": "resource.host", "op": "eq", "value": "api.example.com"}]}}
  ]
})json";

constexpr char kBillingRules[] = R"json({
  "name": "billing",
  "rules": [
    {"id": "finance-reads-invoices", "effect": "permit",
     "target": {"resource_types": ["invoice"], "actions": ["read"], "roles": ["finance"]},
     "obligations": [{"type": "filter_fields", "params": {"fields": ["iban"]}}]}
  ]
})json";

v1::RuleSet ParseRules(const char* json) {
  auto rs = engine::ParseRuleSetJson(json);
  EXPECT_TRUE(rs.ok()) << rs.status();
  return rs.ok() ? *rs : v1::RuleSet();
}

Http AsUser(Http h, const std::string& id, const std::string& roles) {
  h.headers["x-pdp-subject"] = id;
  if (!roles.empty()) h.headers["x-pdp-roles"] = roles;
  return h;
}

// Every end-to-end case, run against a compiled policy in process and
// against a real pdpd.
struct Case {
  std::string name;
  Http http;
  int rpc_code;
  int http_status;  // 0 for an allow
  // Upstream headers on an allow, client headers on a deny; for
  // www-authenticate, a substring.
  std::map<std::string, std::string> expect_headers;
  std::string body_contains;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  Http orders;
  orders.path = "/orders/42?expand=items";
  cases.push_back({"support reads an order", AsUser(orders, "alice", "support"), kOk, 0,
                   {{"x-pdp-decision", "permit"},
                    {"x-pdp-rule-set", "web"},
                    {"x-pdp-rule-set-version", "1"},
                    {"x-pdp-filter-fields", "payment.card_number,ssn"},
                    {"x-pdp-mask-fields", "email"},
                    {"x-pdp-mask", "###"}},
                   ""});
  cases.push_back({"customer may not read an order", AsUser(orders, "carol", "customer"),
                   kPermissionDenied, 403, {{"x-pdp-decision", "not_applicable"}},
                   "no rule"});
  Http pub;
  pub.path = "/public/logo.png";
  cases.push_back({"anonymous public get", pub, kOk, 0,
                   {{"x-cache-policy", "public"}, {"x-pdp-decision", "permit"}}, ""});
  Http pub_post = pub;
  pub_post.method = "POST";
  cases.push_back({"anonymous public post", pub_post, kPermissionDenied, 403, {}, ""});
  Http del;
  del.method = "DELETE";
  del.path = "/orders/42";
  cases.push_back({"admin delete without mfa claim", AsUser(del, "root", "admin"),
                   kUnauthenticated, 401,
                   {{"www-authenticate", "acr_values=\"phishing-resistant\""}},
                   "phishing-resistant"});
  Http del_no_mfa = AsUser(del, "root", "admin");
  del_no_mfa.headers["x-pdp-subject-mfa"] = "false";
  cases.push_back({"admin delete with mfa false", del_no_mfa, kUnauthenticated, 401, {},
                   "multi-factor"});
  Http del_mfa = AsUser(del, "root", "admin");
  del_mfa.headers["x-pdp-subject-mfa"] = "true";
  cases.push_back({"admin delete with mfa", del_mfa, kOk, 0, {{"x-pdp-decision", "permit"}}, ""});
  Http invoice;
  invoice.path = "/invoices/7";
  invoice.extensions = {{"pdp_rule_set", "billing"},
                        {"pdp_resource_type", "invoice"},
                        {"pdp_action", "read"}};
  cases.push_back({"route selects billing", AsUser(invoice, "fred", "finance"), kOk, 0,
                   {{"x-pdp-rule-set", "billing"}, {"x-pdp-filter-fields", "iban"}}, ""});
  Http invoice_default = AsUser(invoice, "fred", "finance");
  invoice_default.extensions.clear();
  cases.push_back({"without the route's extensions", invoice_default, kPermissionDenied, 403,
                   {}, ""});
  Http unknown = invoice;
  unknown.extensions["pdp_rule_set"] = "nope";
  cases.push_back({"unknown rule set", AsUser(unknown, "fred", "finance"), kPermissionDenied,
                   403, {{"x-pdp-decision", "indeterminate"}},
                   "rule set 'nope' is not loaded"});
  Http job;
  job.method = "POST";
  job.path = "/internal/jobs";
  job.source_ip = "10.1.2.3";
  cases.push_back({"job from office ipv4", job, kOk, 0, {}, ""});
  job.source_ip = "2001:db8::5";
  cases.push_back({"job from office ipv6", job, kOk, 0, {}, ""});
  job.source_ip = "192.0.2.1";
  cases.push_back({"job from outside", job, kPermissionDenied, 403, {}, ""});
  job.source_ip = "";
  cases.push_back({"job from nowhere", job, kPermissionDenied, 403, {}, ""});
  Http tenant;
  tenant.path = "/tenant";
  tenant.host = "API.example.com";
  tenant.headers["x-pdp-tenant"] = "acme";
  cases.push_back({"tenant header", tenant, kOk, 0, {}, ""});
  tenant.headers["x-pdp-tenant"] = "other";
  cases.push_back({"other tenant header", tenant, kPermissionDenied, 403, {}, ""});
  return cases;
}

void ExpectCase(const Case& c, const auth::CheckResponse& r) {
  SCOPED_TRACE(c.name);
  EXPECT_EQ(r.status().code(), c.rpc_code) << r.ShortDebugString();
  std::map<std::string, std::string> headers;
  if (c.http_status == 0) {
    ASSERT_TRUE(r.has_ok_response()) << r.ShortDebugString();
    headers = HeaderMap(r.ok_response().headers());
    EXPECT_TRUE(Field(r.dynamic_metadata(), "allowed").bool_value());
    EXPECT_EQ(Str(r.dynamic_metadata(), "decision"), "permit");
  } else {
    ASSERT_TRUE(r.has_denied_response()) << r.ShortDebugString();
    EXPECT_EQ(r.denied_response().status().code(), c.http_status);
    headers = HeaderMap(r.denied_response().headers());
    EXPECT_FALSE(Field(r.dynamic_metadata(), "allowed").bool_value());
  }
  for (const auto& [k, v] : c.expect_headers) {
    if (k == "www-authenticate") {
      EXPECT_THAT(headers[k], HasSubstr(v));
    } else {
      EXPECT_EQ(headers[k], v) << k;
    }
  }
  if (c.http_status == 401) {
    EXPECT_THAT(headers["www-authenticate"],
                ::testing::StartsWith(
                    R"(Bearer realm="pdp", error="insufficient_user_authentication", )"));
  }
  if (!c.body_contains.empty()) {
    EXPECT_THAT(r.denied_response().body(), HasSubstr(c.body_contains));
  }
}

TEST(EnvoyAuthorizationServiceTest, DecidesAgainstACompiledPolicy) {
  std::map<std::string, std::shared_ptr<const engine::Policy>> policies;
  for (const char* json : {kWebRules, kBillingRules}) {
    engine::CompileResult compiled = engine::Compile(ParseRules(json), {.version = 1});
    ASSERT_TRUE(compiled.ok());
    policies[compiled.policy->name()] = compiled.policy;
  }
  EnvoyMapping mapping = TrustingMapping();
  mapping.default_rule_set = "web";
  EnvoyAuthorizationService service(
      nullptr,
      [&](const v1::AuthorizeRequest& request, v1::AuthorizeResponse* response) {
        auto it = policies.find(request.rule_set());
        if (it == policies.end()) {
          response->set_rule_set(request.rule_set());
          engine::SetIndeterminate(
              absl::StrCat("rule set '", request.rule_set(), "' is not loaded"), response);
          return;
        }
        it->second->Evaluate(request, absl::Now(), response);
      },
      mapping);
  for (const Case& c : Cases()) {
    auth::CheckResponse response;
    service.Decide(MakeCheck(c.http), &response);
    ExpectCase(c, response);
  }
}

// The shipped example (docker/envoy/): its rule set compiles and answers as
// its descriptions say, and envoy.yaml uses the keys and settings pdpd
// expects.
TEST(EnvoyShippedExample, RulesAndConfigAgreeWithTheService) {
  auto rule_set = engine::ReadRuleSetFile(e2e::SourcePath("docker/envoy/rules-web.json"));
  ASSERT_TRUE(rule_set.ok()) << rule_set.status();
  engine::CompileResult compiled = engine::Compile(*rule_set, {.version = 1});
  ASSERT_TRUE(compiled.ok());
  EnvoyMapping mapping = TrustingMapping();
  EnvoyAuthorizationService service(
      nullptr,
      [&](const v1::AuthorizeRequest& request, v1::AuthorizeResponse* response) {
        EXPECT_EQ(request.rule_set(), "web");
        compiled.policy->Evaluate(request, absl::Now(), response);
      },
      mapping);
  auto check = [&](Http h) {
    if (!h.extensions.contains("pdp_rule_set")) h.extensions["pdp_rule_set"] = "web";
    auth::CheckResponse response;
    service.Decide(MakeCheck(h), &response);
    return response;
  };
  Http pub;
  pub.path = "/public/logo.png";
  EXPECT_EQ(check(pub).status().code(), kOk);
  Http order;
  order.path = "/api/orders/42";
  EXPECT_EQ(check(order).denied_response().status().code(), 403);
  auth::CheckResponse r = check(AsUser(order, "sam", "support"));
  EXPECT_EQ(HeaderMap(r.ok_response().headers())["x-pdp-filter-fields"],
            "payment.card_number,ssn");
  Http del = AsUser(order, "root", "admin");
  del.method = "DELETE";
  r = check(del);
  EXPECT_EQ(r.denied_response().status().code(), 401);
  EXPECT_THAT(HeaderMap(r.denied_response().headers())["www-authenticate"],
              HasSubstr(R"(acr_values="totp")"));
  del.headers["x-pdp-subject-mfa"] = "true";
  EXPECT_EQ(check(del).status().code(), kOk);
  Http invoice = AsUser(Http(), "fay", "finance");
  invoice.path = "/api/invoices/7";
  invoice.extensions["pdp_resource_type"] = "invoice";
  r = check(invoice);
  EXPECT_EQ(r.status().code(), kOk);
  EXPECT_EQ(HeaderMap(r.ok_response().headers())["x-audit-purpose"], "finance-invoice-read");
  EXPECT_EQ(HeaderMap(r.ok_response().headers())["x-pdp-mask-fields"], "iban");
  Http internal;
  internal.method = "POST";
  internal.path = "/internal/reindex";
  internal.source_ip = "10.20.30.40";
  EXPECT_EQ(check(internal).status().code(), kOk);
  internal.source_ip = "198.51.100.1";
  EXPECT_EQ(check(internal).status().code(), kPermissionDenied);
  Http catalog;
  catalog.path = "/api/catalog/items";
  catalog.principal = "spiffe://cluster.local/ns/shop/sa/frontend";
  EXPECT_EQ(check(catalog).status().code(), kOk);
  catalog.principal = "spiffe://cluster.local/ns/other/sa/frontend";
  EXPECT_EQ(check(catalog).status().code(), kPermissionDenied);

  const std::string yaml = e2e::ReadFileOrEmpty(e2e::SourcePath("docker/envoy/envoy.yaml"));
  for (const char* needle :
       {"envoy.filters.http.ext_authz", "transport_api_version: V3",
        "failure_mode_allow: false", "cluster_name: pdpd", "port_value: 50051",
        "pdp_rule_set: web", "pdp_resource_type: invoice", "UpstreamTlsContext",
        "gateway.pem", "service_name: envoy.service.auth.v3.Authorization"}) {
    EXPECT_THAT(yaml, HasSubstr(needle));
  }
  EXPECT_THAT(yaml, ::testing::Not(HasSubstr("with_request_body:")));
}

// ---------------------------------------------------------------------------
// End to end: a real pdpd over mTLS.

using e2e::ContextWithDeadline;
using e2e::PdpdProcess;
using e2e::TempDir;

std::string GrpcStatusText(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), ": ", status.error_message());
}

// A context for a caller whose handshake is expected to succeed: the call
// rides out a slow first connection (a sanitizer build) instead of failing
// on the harness's short connect timeout.
std::unique_ptr<grpc::ClientContext> ReadyContext() {
  auto context = ContextWithDeadline();
  context->set_wait_for_ready(true);
  return context;
}

class EnvoyE2eTest : public ::testing::Test {
 protected:
  // pdpd with `web` bootstrapped (version 1) and `billing` pushed by the
  // admin, trusting identity headers.
  void StartPdpd(std::vector<std::string> extra_flags) {
    e2e::WriteFile(dir_.File("web.json"), kWebRules);
    std::vector<std::string> flags =
        PdpdProcess::StandardFlags(dir_.File("pdp.db"), dir_.File("web.json"));
    flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
    ASSERT_TRUE(pdpd_.Start(flags));
    v1::PutRuleSetRequest put;
    *put.mutable_rule_set() = ParseRules(kBillingRules);
    v1::PutRuleSetResponse put_response;
    auto context = ReadyContext();
    grpc::Status s = pdpd_.AdminStub("admin")->PutRuleSet(context.get(), put, &put_response);
    ASSERT_TRUE(s.ok()) << GrpcStatusText(s);
  }

  // Check as `identity`; only "none" and "foreign" are expected to fail the
  // handshake, so every other identity waits for the connection.
  grpc::Status Check(const std::string& identity, const auth::CheckRequest& request,
                     auth::CheckResponse* response) {
    auto context = identity == "none" || identity == "foreign" ? ContextWithDeadline()
                                                                : ReadyContext();
    return pdpd_.EnvoyAuthorizationStub(identity)->Check(context.get(), request, response);
  }

  TempDir dir_;
  PdpdProcess pdpd_{dir_.path()};
};

TEST_F(EnvoyE2eTest, ChecksOverMtls) {
  StartPdpd({"--envoy_trust_identity_headers", "--envoy_default_rule_set=web"});
  auto stub = pdpd_.EnvoyAuthorizationStub("gateway");
  for (const Case& c : Cases()) {
    auth::CheckResponse response;
    auto context = ReadyContext();
    grpc::Status s = stub->Check(context.get(), MakeCheck(c.http), &response);
    ASSERT_TRUE(s.ok()) << c.name << ": " << GrpcStatusText(s);
    ExpectCase(c, response);
  }

  // The dynamic_metadata of an allowed request, in full.
  auth::CheckResponse response;
  Http orders;
  orders.path = "/orders/42";
  ASSERT_TRUE(Check("gateway", MakeCheck(AsUser(orders, "alice", "support")), &response).ok());
  const google::protobuf::Struct& md = response.dynamic_metadata();
  EXPECT_EQ(Str(md, "decision"), "permit");
  EXPECT_EQ(Str(md, "rule_set"), "web");
  EXPECT_EQ(Field(md, "rule_set_version").number_value(), 1);
  EXPECT_THAT(StringList(Field(md, "determining_rules")), ElementsAre("support-reads-orders"));
  const auto& obligations = Field(md, "obligations").list_value().values();
  ASSERT_EQ(obligations.size(), 2);
  EXPECT_EQ(Str(obligations[0].struct_value(), "type"), "filter_fields");
  EXPECT_THAT(StringList(Field(Field(obligations[0].struct_value(), "params").struct_value(),
                               "fields")),
              ElementsAre("payment.card_number", "ssn"));
  EXPECT_EQ(Str(obligations[1].struct_value(), "type"), "mask_fields");
  EXPECT_THAT(Str(md, "reason"), HasSubstr("support-reads-orders"));

  // The admin certificate may call Check too.
  ASSERT_TRUE(Check("admin", MakeCheck(AsUser(orders, "alice", "support")), &response).ok());
  EXPECT_EQ(response.status().code(), kOk);
}

TEST_F(EnvoyE2eTest, CallersWithoutTheGatewayRoleAreRefused) {
  StartPdpd({"--envoy_trust_identity_headers"});
  auth::CheckResponse response;
  grpc::Status s = Check("other", MakeCheck(Http()), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << GrpcStatusText(s);
  EXPECT_THAT(s.error_message(), HasSubstr("spiffe://pdp.local/other/dev"));
  EXPECT_FALSE(response.has_status());
  // No client certificate, or one from another CA: the handshake fails.
  for (const char* identity : {"none", "foreign"}) {
    s = Check(identity, MakeCheck(Http()), &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << identity << GrpcStatusText(s);
  }
}

TEST_F(EnvoyE2eTest, UntrustedHeadersPrincipalAndRequiredIdentity) {
  // Identity headers not trusted; an identity is required.
  StartPdpd({"--envoy_require_identity", "--envoy_default_rule_set=web"});
  Http orders = AsUser(Http(), "alice", "support");
  orders.path = "/orders/42";
  auth::CheckResponse response;
  ASSERT_TRUE(Check("gateway", MakeCheck(orders), &response).ok());
  // x-pdp-subject is ignored: no identity, 401.
  EXPECT_EQ(response.status().code(), kUnauthenticated);
  EXPECT_EQ(response.denied_response().status().code(), 401);
  EXPECT_EQ(HeaderMap(response.denied_response().headers())["www-authenticate"],
            R"(Bearer realm="pdp")");
  // A verified downstream certificate is an identity (but has no roles).
  orders.principal = "spiffe://example.org/ns/shop/sa/frontend";
  ASSERT_TRUE(Check("gateway", MakeCheck(orders), &response).ok());
  EXPECT_EQ(response.status().code(), kPermissionDenied);
  EXPECT_EQ(response.denied_response().status().code(), 403);
  // Public paths still work for it.
  orders.path = "/public/x";
  ASSERT_TRUE(Check("gateway", MakeCheck(orders), &response).ok());
  EXPECT_EQ(response.status().code(), kOk);
}

TEST_F(EnvoyE2eTest, CanBeSwitchedOff) {
  StartPdpd({"--envoy_ext_authz=false"});
  auth::CheckResponse response;
  grpc::Status s = Check("gateway", MakeCheck(Http()), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << GrpcStatusText(s);
}

TEST_F(EnvoyE2eTest, BadMappingFlagRefusesToStart) {
  e2e::WriteFile(dir_.File("web.json"), kWebRules);
  std::vector<std::string> flags =
      PdpdProcess::StandardFlags(dir_.File("pdp.db"), dir_.File("web.json"));
  flags.push_back("--envoy_add_header_to=sideways");
  flags.push_back("--listen=127.0.0.1:0");
  pdpd_.Spawn(flags);
  std::optional<int> status = pdpd_.WaitForExit(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 2);
  EXPECT_THAT(pdpd_.Log(), HasSubstr("--envoy_add_header_to=sideways"));
}

}  // namespace
}  // namespace pdp
