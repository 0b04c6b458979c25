// Bearer tokens on the gateway paths (service/jwt_subject_resolver.h).
//
// Unit level: JwtSubjectResolver on header lists (no header, another scheme,
// a valid token and the subject it gives, each kind of bad token).
//
// End to end: a real pdpd over real mTLS with --jwt_* flags and the shipped
// docker/nginx/rules-orders.json, asked through Envoy's Check: a valid token
// permits; an expired token, a wrong issuer or audience, a bad signature and
// an unknown kid are each a 401 invalid_token deny with the reason; keys
// rotate by replacing the JWKS file; bad --jwt_* flags stop pdpd at start.
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/jwt.h"
#include "service/jwt_subject_resolver.h"
#include "tests/support/gateway_support.h"
#include "tests/support/pdpd_process.h"

namespace pdp {
namespace {

namespace auth = ::envoy::service::auth::v3;
using e2e::Claims;
using e2e::EcKey;
using e2e::JwksJson;
using e2e::SignEs256;
using service::JwksKeySet;
using service::JwtSubjectResolver;
using service::JwtVerifier;
using service::JwtVerifierOptions;
using service::SubjectResolution;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kIssuer[] = "https://idp.example.com";
constexpr char kAudience[] = "orders-api";
using Headers = std::vector<std::pair<std::string, std::string>>;

const EcKey& Key1() {
  static const EcKey* key = new EcKey();
  return *key;
}
const EcKey& Key2() {
  static const EcKey* key = new EcKey();
  return *key;
}

std::string Token(const EcKey& key, const std::string& kid, const std::string& extra,
                  std::chrono::seconds exp = std::chrono::seconds(600),
                  const std::string& issuer = kIssuer, const std::string& audience = kAudience) {
  return SignEs256(key, kid, Claims(issuer, audience, "alice", exp, extra));
}

std::unique_ptr<JwtSubjectResolver> Resolver() {
  auto keys = JwksKeySet::FromJson(JwksJson({Key1().Jwk("k1")}));
  EXPECT_TRUE(keys.ok()) << keys.status();
  JwtVerifierOptions options;
  options.issuers = {kIssuer};
  options.audiences = {kAudience};
  auto verifier = JwtVerifier::Create(options, *keys);
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return std::make_unique<JwtSubjectResolver>(*std::move(verifier));
}

SubjectResolution Resolve(const JwtSubjectResolver& resolver, const Headers& headers,
                          v1::Subject* subject) {
  return resolver.Resolve(service::EnvoyAttributes(), headers, subject);
}

TEST(JwtSubjectResolverTest, NoTokenOrAnotherSchemeIsLeftToOtherResolvers) {
  auto resolver = Resolver();
  v1::Subject subject;
  EXPECT_EQ(Resolve(*resolver, {}, &subject).outcome, SubjectResolution::Outcome::kNone);
  EXPECT_EQ(Resolve(*resolver, {{"authorization", "Basic YWxpY2U6cHc="}}, &subject).outcome,
            SubjectResolution::Outcome::kNone);
  EXPECT_EQ(Resolve(*resolver, {{"x-other", "Bearer x"}}, &subject).outcome,
            SubjectResolution::Outcome::kNone);
  EXPECT_EQ(subject.id(), "");
}

TEST(JwtSubjectResolverTest, ValidTokenGivesIdRolesAndAuthenticationContext) {
  auto resolver = Resolver();
  v1::Subject subject;
  const std::string token =
      Token(Key1(), "k1", R"("roles":["support","auditor"],"amr":["pwd","otp"],"email":"a@x")");
  SubjectResolution r = Resolve(*resolver, {{"authorization", "Bearer " + token}}, &subject);
  ASSERT_EQ(r.outcome, SubjectResolution::Outcome::kResolved) << r.reason;
  EXPECT_EQ(subject.id(), "alice");
  EXPECT_THAT(subject.roles(), ElementsAre("support", "auditor"));
  EXPECT_TRUE(subject.attributes().at("mfa").bool_value());
  EXPECT_EQ(subject.attributes().at("iss").string_value(), kIssuer);
  EXPECT_EQ(subject.attributes().at("token.email").string_value(), "a@x");
  // The scheme is case-insensitive.
  v1::Subject again;
  EXPECT_EQ(Resolve(*resolver, {{"authorization", "bearer " + token}}, &again).outcome,
            SubjectResolution::Outcome::kResolved);
}

TEST(JwtSubjectResolverTest, BadTokensAreRejectedWithTheReason) {
  auto resolver = Resolver();
  const std::string roles = R"("roles":["support"])";
  struct Bad {
    std::string token;
    std::string reason;
  };
  const std::vector<Bad> cases = {
      {Token(Key1(), "k1", roles, std::chrono::seconds(-600)), "expired"},
      {Token(Key1(), "k1", roles, std::chrono::seconds(600), "https://evil.example"), "issuer"},
      {Token(Key1(), "k1", roles, std::chrono::seconds(600), kIssuer, "billing"), "audience"},
      {Token(Key2(), "k1", roles), "signature"},
      {Token(Key1(), "k9", roles), "k9"},
      {"not-a-token", "malformed"},
      {"", "no token"},
  };
  for (const Bad& bad : cases) {
    v1::Subject subject;
    SubjectResolution r =
        Resolve(*resolver, {{"authorization", "Bearer " + bad.token}}, &subject);
    EXPECT_EQ(r.outcome, SubjectResolution::Outcome::kRejected) << bad.reason;
    EXPECT_THAT(r.reason, HasSubstr(bad.reason));
    EXPECT_EQ(subject.id(), "") << "no claim of a rejected token is used";
  }
}

// ---------------------------------------------------------------------------
// End to end.

constexpr int kOk = 0;
constexpr int kUnauthenticated = 16;

auth::CheckRequest OrderCheck(const std::string& method, const std::string& path,
                              const std::string& authorization) {
  auth::CheckRequest check;
  auto& attributes = *check.mutable_attributes();
  (*attributes.mutable_context_extensions())["pdp_rule_set"] = "orders";
  (*attributes.mutable_context_extensions())["pdp_resource_type"] = "order";
  attributes.mutable_source()->mutable_address()->mutable_socket_address()->set_address(
      "192.0.2.10");
  auto& http = *attributes.mutable_request()->mutable_http();
  http.set_method(method);
  http.set_path(path);
  http.set_host("api.example.com");
  if (!authorization.empty()) (*http.mutable_headers())["authorization"] = authorization;
  return check;
}

class JwtGatewayE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    jwks_ = dir_.File("jwks.json");
    e2e::ReplaceFile(jwks_, JwksJson({Key1().Jwk("k1")}));
  }

  std::vector<std::string> Flags() {
    std::vector<std::string> flags = e2e::PdpdProcess::StandardFlags(
        dir_.File("pdp.db"), e2e::SourcePath("docker/nginx/rules-orders.json"));
    flags.push_back("--jwt_jwks_file=" + jwks_);
    flags.push_back(absl::StrCat("--jwt_issuers=", kIssuer));
    flags.push_back(absl::StrCat("--jwt_audiences=", kAudience));
    flags.push_back("--jwt_refresh_seconds=1");
    return flags;
  }

  auth::CheckResponse Check(const auth::CheckRequest& request) {
    auth::CheckResponse response;
    auto context = e2e::ContextWithDeadline();
    context->set_wait_for_ready(true);
    grpc::Status s = stub_->Check(context.get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
    return response;
  }

  static std::string Header(const auth::CheckResponse& response, const std::string& name) {
    for (const auto& h : response.denied_response().headers()) {
      if (h.header().key() == name) return h.header().value();
    }
    return "";
  }

  e2e::TempDir dir_;
  e2e::PdpdProcess pdpd_{dir_.path()};
  std::string jwks_;
  std::unique_ptr<auth::Authorization::Stub> stub_;
};

TEST_F(JwtGatewayE2eTest, ValidTokenPermitsAndBadTokensAre401WithTheReason) {
  ASSERT_TRUE(pdpd_.Start(Flags()));
  stub_ = pdpd_.EnvoyAuthorizationStub("gateway");
  const std::string roles = R"("roles":["support"])";

  auth::CheckResponse ok =
      Check(OrderCheck("GET", "/orders/o-1", "Bearer " + Token(Key1(), "k1", roles)));
  EXPECT_EQ(ok.status().code(), kOk) << ok.status().message();

  struct Bad {
    std::string name;
    std::string token;
    std::string reason;
  };
  const std::vector<Bad> cases = {
      {"expired", Token(Key1(), "k1", roles, std::chrono::seconds(-3600)), "expired"},
      {"wrong issuer", Token(Key1(), "k1", roles, std::chrono::seconds(600), "https://evil"),
       "issuer"},
      {"wrong audience", Token(Key1(), "k1", roles, std::chrono::seconds(600), kIssuer, "other"),
       "audience"},
      {"bad signature", Token(Key2(), "k1", roles), "signature does not verify"},
      {"unknown kid", Token(Key1(), "k7", roles), "no key with kid \"k7\""},
  };
  for (const Bad& bad : cases) {
    auth::CheckResponse r = Check(OrderCheck("GET", "/orders/o-1", "Bearer " + bad.token));
    EXPECT_EQ(r.status().code(), kUnauthenticated) << bad.name;
    EXPECT_EQ(r.denied_response().status().code(), 401) << bad.name;
    EXPECT_THAT(r.status().message(), HasSubstr(bad.reason)) << bad.name;
    EXPECT_THAT(r.denied_response().body(), HasSubstr(bad.reason)) << bad.name;
    EXPECT_THAT(Header(r, "www-authenticate"), HasSubstr("error=\"invalid_token\"")) << bad.name;
    EXPECT_EQ(r.dynamic_metadata().fields().at("decision").string_value(), "unauthenticated");
  }

  // A valid token without MFA asking for a refund: step up, naming the level.
  auth::CheckResponse step_up =
      Check(OrderCheck("POST", "/orders/o-1/refund", "Bearer " + Token(Key1(), "k1", roles)));
  EXPECT_EQ(step_up.denied_response().status().code(), 401);
  EXPECT_THAT(Header(step_up, "www-authenticate"),
              HasSubstr("error=\"insufficient_user_authentication\""));
  EXPECT_THAT(Header(step_up, "www-authenticate"), HasSubstr("acr_values=\"totp\""));
  // With MFA in the token's amr, the same request is allowed.
  auth::CheckResponse with_mfa = Check(OrderCheck(
      "POST", "/orders/o-1/refund",
      "Bearer " + Token(Key1(), "k1", R"("roles":["support"],"amr":["pwd","otp"])")));
  EXPECT_EQ(with_mfa.status().code(), kOk) << with_mfa.status().message();
}

TEST_F(JwtGatewayE2eTest, RotatedJwksFileIsPickedUp) {
  ASSERT_TRUE(pdpd_.Start(Flags()));
  stub_ = pdpd_.EnvoyAuthorizationStub("gateway");
  const std::string new_token = Token(Key2(), "k2", R"("roles":["support"])");
  const std::string old_token = Token(Key1(), "k1", R"("roles":["support"])");
  auth::CheckResponse before = Check(OrderCheck("GET", "/orders/o-1", "Bearer " + new_token));
  EXPECT_EQ(before.status().code(), kUnauthenticated);

  // The IdP publishes k2 next to k1: both verify once pdpd has reloaded.
  e2e::ReplaceFile(jwks_, JwksJson({Key1().Jwk("k1"), Key2().Jwk("k2")}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int code = kUnauthenticated;
  while (std::chrono::steady_clock::now() < deadline) {
    code = Check(OrderCheck("GET", "/orders/o-1", "Bearer " + new_token)).status().code();
    if (code == kOk) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(code, kOk) << "the new key was not picked up within 20 s";
  EXPECT_EQ(Check(OrderCheck("GET", "/orders/o-1", "Bearer " + old_token)).status().code(), kOk);

  // k1 retired: its tokens stop verifying.
  e2e::ReplaceFile(jwks_, JwksJson({Key2().Jwk("k2")}));
  const auto deadline2 = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  code = kOk;
  while (std::chrono::steady_clock::now() < deadline2) {
    code = Check(OrderCheck("GET", "/orders/o-1", "Bearer " + old_token)).status().code();
    if (code != kOk) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(code, kUnauthenticated) << "the retired key still verifies after 20 s";

  // A broken JWKS file keeps the last good keys (once pdpd has tried it).
  e2e::ReplaceFile(jwks_, "{ not json");
  const auto deadline3 = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline3 &&
         pdpd_.Log().find("failed, keeping the previous keys") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(pdpd_.Log(), HasSubstr("failed, keeping the previous keys"));
  EXPECT_EQ(Check(OrderCheck("GET", "/orders/o-1", "Bearer " + new_token)).status().code(), kOk);
}

TEST_F(JwtGatewayE2eTest, BadJwtFlagsStopPdpd) {
  std::filesystem::permissions(jwks_, std::filesystem::perms::owner_read |
                                          std::filesystem::perms::owner_write |
                                          std::filesystem::perms::group_read |
                                          std::filesystem::perms::others_read);
  struct BadFlags {
    std::string flag;
    std::string message;
  };
  for (const BadFlags& bad : std::vector<BadFlags>{
           {"--jwt_issuers=", "issuer"},
           {"--jwt_jwks_file=" + dir_.File("missing.json"), "missing.json"},
           {"--jwt_clock_skew_seconds=900", "skew"},
           // HS256 secrets in a file others can read.
           {"--jwt_allow_hs256", "readable by group or others"},
       }) {
    std::vector<std::string> flags = Flags();
    flags.push_back(bad.flag);
    flags.push_back("--listen=127.0.0.1:0");
    pdpd_.Spawn(flags);
    std::optional<int> status = pdpd_.WaitForExit(std::chrono::seconds(20));
    ASSERT_TRUE(status.has_value()) << bad.flag;
    EXPECT_EQ(*status, 2) << bad.flag;
    EXPECT_THAT(pdpd_.Log(), HasSubstr(bad.message)) << bad.flag;
  }
}

}  // namespace
}  // namespace pdp
