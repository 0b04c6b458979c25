// HTTP forward-auth (service/forward_auth.h, service/forward_auth_server.h).
//
// Unit level: how a gateway's auth subrequest becomes an ext_authz
// CheckRequest (Traefik/Caddy X-Forwarded-* and nginx X-Original-* headers,
// the client IP from X-Forwarded-For, query parameters as
// context_extensions, precise errors for a misconfigured gateway) and how a
// CheckResponse becomes the HTTP answer.
//
// End to end: a real pdpd with --forward_auth_listen, called over HTTPS with
// the test PKI's client certificates (cpp-httplib's client): allow with
// obligation headers, 403, 401 step-up with WWW-Authenticate, 401 for a bad
// token, 400 for a misconfigured gateway, callers without the gateway role
// refused, no or foreign client certificate failing the handshake, and
// --insecure refused; TLS 1.2 and newer only (openssl s_client); the server
// certificate and the client CA bundle rotated without a restart. nginx in
// front: tests/nginx_e2e_test.cc.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/access.h"
#include "service/forward_auth.h"
#include "service/forward_auth_server.h"
#include "tests/support/gateway_support.h"
#include "tests/support/pdpd_process.h"

namespace pdp {
namespace {

namespace auth = ::envoy::service::auth::v3;
namespace core = ::envoy::config::core::v3;
using service::ForwardAuthAnswer;
using service::ForwardAuthAnswerFrom;
using service::ForwardAuthCheckRequest;
using service::ForwardAuthRequest;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

std::map<std::string, std::string> HeaderMap(const auth::AttributeContext::HttpRequest& http) {
  std::map<std::string, std::string> out;
  for (const auto& h : http.header_map().headers()) out[h.key()] = h.value();
  return out;
}

TEST(ForwardAuthMapping, TraefikAndCaddyHeaders) {
  ForwardAuthRequest request;
  request.headers = {{"Host", "pdp.internal:8443"},
                     {"X-Forwarded-Method", "post"},
                     {"X-Forwarded-Uri", "/orders/o-1/refund?amount=12"},
                     {"X-Forwarded-Host", "shop.example.com"},
                     {"X-Forwarded-Proto", "HTTPS"},
                     {"X-Forwarded-For", "203.0.113.9, 10.1.2.3"},
                     {"Authorization", "Bearer abc"},
                     {"User-Agent", "curl/8"}};
  request.query = {{"pdp_rule_set", "orders"}, {"pdp_resource_type", "order"}};
  absl::StatusOr<auth::CheckRequest> check = ForwardAuthCheckRequest(request);
  ASSERT_TRUE(check.ok()) << check.status();
  const auto& attributes = check->attributes();
  const auto& http = attributes.request().http();
  EXPECT_EQ(http.method(), "POST");
  EXPECT_EQ(http.path(), "/orders/o-1/refund?amount=12");
  EXPECT_EQ(http.host(), "shop.example.com");
  EXPECT_EQ(http.scheme(), "https");
  // The last X-Forwarded-For entry: the address the gateway itself saw.
  EXPECT_EQ(attributes.source().address().socket_address().address(), "10.1.2.3");
  EXPECT_THAT(attributes.context_extensions(),
              UnorderedElementsAre(Pair("pdp_rule_set", "orders"),
                                   Pair("pdp_resource_type", "order")));
  const auto headers = HeaderMap(http);
  EXPECT_EQ(headers.at("authorization"), "Bearer abc");
  EXPECT_EQ(headers.at("user-agent"), "curl/8");
  EXPECT_EQ(headers.count("host"), 0u) << "pdp's own Host is not the request's";
}

TEST(ForwardAuthMapping, NginxOriginalHeaders) {
  ForwardAuthRequest request;
  request.headers = {{"X-Original-Method", "GET"},
                     {"X-Original-URI", "/orders/o-1"},
                     {"X-Original-Host", "shop.example.com"},
                     {"X-Real-IP", "2001:db8::7"}};
  absl::StatusOr<auth::CheckRequest> check = ForwardAuthCheckRequest(request);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->attributes().request().http().method(), "GET");
  EXPECT_EQ(check->attributes().request().http().path(), "/orders/o-1");
  EXPECT_EQ(check->attributes().request().http().host(), "shop.example.com");
  EXPECT_EQ(check->attributes().source().address().socket_address().address(), "2001:db8::7");
  EXPECT_TRUE(check->attributes().context_extensions().empty());
}

TEST(ForwardAuthMapping, MisconfiguredGatewayGetsAPreciseError) {
  struct Bad {
    ForwardAuthRequest request;
    std::string message;
  };
  const std::vector<Bad> cases = {
      {{{{"X-Forwarded-Uri", "/a"}}, {}}, "X-Forwarded-Method or X-Original-Method"},
      {{{{"X-Forwarded-Method", "GET"}}, {}}, "X-Forwarded-Uri or X-Original-URI"},
      {{{{"X-Forwarded-Method", "G E T"}, {"X-Forwarded-Uri", "/a"}}, {}},
       "x-forwarded-method: not an HTTP method"},
      {{{{"X-Original-Method", "GET"}, {"X-Original-URI", "http://x/a"}}, {}},
       "x-original-uri: must be an origin-form path"},
      {{{{"X-Original-Method", "GET"}, {"X-Original-URI", "/a\x01"}}, {}}, "control characters"},
      {{{{"X-Original-Method", "GET"}, {"X-Original-URI", "/a"}},
        {{"pdp_rule_set", "a"}, {"pdp_rule_set", "b"}}},
       "'pdp_rule_set' is given more than once"},
  };
  for (const Bad& bad : cases) {
    absl::StatusOr<auth::CheckRequest> check = ForwardAuthCheckRequest(bad.request);
    ASSERT_FALSE(check.ok()) << bad.message;
    EXPECT_EQ(check.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(check.status().message()), HasSubstr(bad.message));
  }
  ForwardAuthAnswer answer = service::ForwardAuthBadRequest("why");
  EXPECT_EQ(answer.status, 400);
  EXPECT_THAT(answer.body, HasSubstr("why"));
}

void AddHeader(google::protobuf::RepeatedPtrField<core::HeaderValueOption>* headers,
               const std::string& name, const std::string& value) {
  auto* option = headers->Add();
  option->mutable_header()->set_key(name);
  option->mutable_header()->set_value(value);
}

TEST(ForwardAuthAnswerTest, OkIs200WithTheUpstreamHeaders) {
  auth::CheckResponse response;
  response.mutable_status()->set_code(0);
  AddHeader(response.mutable_ok_response()->mutable_headers(), "x-pdp-filter-fields", "a,b.c");
  AddHeader(response.mutable_ok_response()->mutable_headers(), "x-pdp-decision", "permit");
  AddHeader(response.mutable_ok_response()->mutable_response_headers_to_add(), "X-Cache", "no");
  ForwardAuthAnswer answer = ForwardAuthAnswerFrom(response);
  EXPECT_EQ(answer.status, 200);
  EXPECT_THAT(answer.headers, UnorderedElementsAre(Pair("x-pdp-filter-fields", "a,b.c"),
                                                   Pair("x-pdp-decision", "permit"),
                                                   Pair("x-cache", "no")));
}

TEST(ForwardAuthAnswerTest, DeniesKeepTheirStatusHeadersAndBody) {
  auth::CheckResponse response;
  response.mutable_status()->set_code(16);
  response.mutable_denied_response()->mutable_status()->set_code(
      envoy::type::v3::Unauthorized);
  AddHeader(response.mutable_denied_response()->mutable_headers(), "www-authenticate",
            "Bearer realm=\"pdp\"");
  response.mutable_denied_response()->set_body("mfa\n");
  ForwardAuthAnswer answer = ForwardAuthAnswerFrom(response);
  EXPECT_EQ(answer.status, 401);
  EXPECT_THAT(answer.headers, UnorderedElementsAre(Pair("www-authenticate", "Bearer realm=\"pdp\"")));
  EXPECT_EQ(answer.body, "mfa\n");

  // Fail closed: not OK without a denied_response, or OK without an
  // ok_response, is a 403.
  auth::CheckResponse odd;
  odd.mutable_status()->set_code(7);
  EXPECT_EQ(ForwardAuthAnswerFrom(odd).status, 403);
  auth::CheckResponse empty;
  EXPECT_EQ(ForwardAuthAnswerFrom(empty).status, 403);
}

// ---------------------------------------------------------------------------
// The server in process, with a stand-in decision.

service::ForwardAuthServerOptions InProcessOptions() {
  const e2e::TestPki& pki = e2e::Pki();
  service::ForwardAuthServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls = {pki.dir + "/server.pem", pki.dir + "/server.key", pki.dir + "/ca.pem"};
  options.threads = 2;
  return options;
}

TEST(ForwardAuthServerTest, AsksTheCheckFunctionOncePerRequest) {
  service::AccessPolicy access({}, {"spiffe://pdp.local/gateway/*"}, false);
  std::atomic<int> calls{0};
  auto server = service::ForwardAuthServer::Start(
      InProcessOptions(), &access,
      [&calls](const auth::CheckRequest& request, const std::string&,
               auth::CheckResponse* response) {
        ++calls;
        response->mutable_status()->set_code(0);
        AddHeader(response->mutable_ok_response()->mutable_headers(), "x-seen-path",
                  request.attributes().request().http().path());
      });
  ASSERT_TRUE(server.ok()) << server.status();
  e2e::HttpResult r = e2e::HttpsGet((*server)->port(), "gateway", "/auth?pdp_rule_set=x",
                                    {{"X-Original-Method", "GET"}, {"X-Original-URI", "/p?q=1"}});
  EXPECT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_EQ(r.headers["x-seen-path"], "/p?q=1");
  EXPECT_EQ(calls.load(), 1);
  // Refused callers and bad requests never reach the decision.
  EXPECT_EQ(e2e::HttpsGet((*server)->port(), "admin", "/auth",
                          {{"X-Original-Method", "GET"}, {"X-Original-URI", "/"}})
                .status,
            403);
  EXPECT_EQ(e2e::HttpsGet((*server)->port(), "gateway", "/auth", {}).status, 400);
  EXPECT_EQ(calls.load(), 1);
}

TEST(ForwardAuthServerTest, StopsRightAfterStarting) {
  service::AccessPolicy access({}, {}, false);
  for (int i = 0; i < 20; ++i) {
    auto server = service::ForwardAuthServer::Start(InProcessOptions(), &access,
                                                     [](const auto&, const auto&, auto*) {});
    ASSERT_TRUE(server.ok()) << server.status();
    EXPECT_GT((*server)->port(), 0);
    (*server)->Stop();
  }
}

TEST(ForwardAuthServerTest, RefusesBadAddressesAndTlsFiles) {
  service::AccessPolicy access({}, {}, false);
  auto check = [](const auth::CheckRequest&, const std::string&, auth::CheckResponse*) {};
  service::ForwardAuthServerOptions options = InProcessOptions();
  options.listen = "8443";
  auto bad = service::ForwardAuthServer::Start(options, &access, check);
  EXPECT_THAT(bad.status().ToString(), HasSubstr("is not host:port"));
  options = InProcessOptions();
  options.tls.key = e2e::Pki().dir + "/gateway.key";
  bad = service::ForwardAuthServer::Start(options, &access, check);
  EXPECT_THAT(bad.status().ToString(), HasSubstr("does not match the certificate"));
  options = InProcessOptions();
  options.tls.ca = e2e::Pki().dir + "/missing.pem";
  bad = service::ForwardAuthServer::Start(options, &access, check);
  EXPECT_THAT(bad.status().ToString(), HasSubstr("missing.pem"));
}

// ---------------------------------------------------------------------------
// End to end.

constexpr char kIssuer[] = "https://idp.example.com";
constexpr char kAudience[] = "orders-api";

class ForwardAuthE2eTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    e2e::ReplaceFile(dir_.File("jwks.json"), e2e::JwksJson({key_.Jwk("k1")}));
    std::vector<std::string> flags = e2e::PdpdProcess::StandardFlags(
        dir_.File("pdp.db"), e2e::SourcePath("docker/nginx/rules-orders.json"));
    flags.insert(flags.end(),
                 {"--forward_auth_listen=127.0.0.1:0",
                  "--forward_auth_port_file=" + dir_.File("forward_auth.port"),
                  "--jwt_jwks_file=" + dir_.File("jwks.json"),
                  absl::StrCat("--jwt_issuers=", kIssuer),
                  absl::StrCat("--jwt_audiences=", kAudience)});
    flags.insert(flags.end(), extra.begin(), extra.end());
    ASSERT_TRUE(pdpd_.Start(flags));
    port_ = e2e::WaitForPortFile(dir_.File("forward_auth.port"), std::chrono::seconds(5));
    ASSERT_GT(port_, 0) << "no forward-auth port file";
  }

  std::string Bearer(const std::string& extra, std::chrono::seconds exp = std::chrono::seconds(600)) {
    return "Bearer " +
           e2e::SignEs256(key_, "k1", e2e::Claims(kIssuer, kAudience, "alice", exp, extra));
  }

  // A Traefik-style forward-auth call for `method` `uri`.
  e2e::HttpResult Ask(const std::string& method, const std::string& uri,
                      const std::string& authorization, const std::string& identity = "gateway",
                      const std::string& query = "?pdp_rule_set=orders&pdp_resource_type=order") {
    std::map<std::string, std::string> headers = {{"X-Forwarded-Method", method},
                                                  {"X-Forwarded-Uri", uri},
                                                  {"X-Forwarded-Host", "shop.example.com"},
                                                  {"X-Forwarded-For", "192.0.2.1"}};
    if (!authorization.empty()) headers["Authorization"] = authorization;
    return e2e::HttpsGet(port_, identity, "/auth" + query, headers);
  }

  e2e::TempDir dir_;
  e2e::PdpdProcess pdpd_{dir_.path()};
  e2e::EcKey key_;
  int port_ = 0;
};

TEST_F(ForwardAuthE2eTest, AllowDenyAndStepUpOverMtls) {
  Start();
  // Allowed, with the field obligation for the upstream.
  e2e::HttpResult allowed = Ask("GET", "/orders/o-1", Bearer(R"("roles":["support"])"));
  ASSERT_EQ(allowed.status, 200) << allowed.error << allowed.body;
  EXPECT_EQ(allowed.headers["x-pdp-decision"], "permit");
  EXPECT_EQ(allowed.headers["x-pdp-rule-set"], "orders");
  EXPECT_EQ(allowed.headers["x-pdp-filter-fields"], "payment.card_number,customer.ssn");
  // The admin certificate may ask too.
  EXPECT_EQ(Ask("GET", "/orders/o-1", Bearer(R"("roles":["support"])"), "admin").status, 200);

  // Masking: fields, and the mask.
  e2e::HttpResult masked = Ask("GET", "/orders/o-1", Bearer(R"("roles":["auditor"])"));
  ASSERT_EQ(masked.status, 200) << masked.body;
  EXPECT_EQ(masked.headers["x-pdp-mask-fields"], "customer.email,payment.card_number");
  EXPECT_EQ(masked.headers["x-pdp-mask"], "###");

  // Denied: a role no rule permits, and no token at all.
  e2e::HttpResult denied = Ask("GET", "/orders/o-1", Bearer(R"("roles":["customer"])"));
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(denied.headers["x-pdp-decision"], "not_applicable");
  EXPECT_THAT(denied.body, HasSubstr("no rule"));
  EXPECT_EQ(Ask("GET", "/orders/o-1", "").status, 403);

  // Step-up: a refund without MFA is 401 naming the level; with MFA, 200.
  e2e::HttpResult step_up = Ask("POST", "/orders/o-1/refund", Bearer(R"("roles":["support"])"));
  EXPECT_EQ(step_up.status, 401) << step_up.body;
  EXPECT_THAT(step_up.headers["www-authenticate"],
              HasSubstr("error=\"insufficient_user_authentication\""));
  EXPECT_THAT(step_up.headers["www-authenticate"], HasSubstr("acr_values=\"totp\""));
  EXPECT_EQ(
      Ask("POST", "/orders/o-1/refund", Bearer(R"("roles":["support"],"amr":["otp"])")).status,
      200);

  // A bad token: 401 invalid_token with the reason.
  e2e::HttpResult expired =
      Ask("GET", "/orders/o-1", Bearer(R"("roles":["support"])", std::chrono::seconds(-3600)));
  EXPECT_EQ(expired.status, 401);
  EXPECT_THAT(expired.headers["www-authenticate"], HasSubstr("error=\"invalid_token\""));
  EXPECT_THAT(expired.body, HasSubstr("expired"));

  // A client cannot smuggle obligations or identities through.
  e2e::HttpResult forged = e2e::HttpsGet(
      port_, "gateway", "/auth?pdp_rule_set=orders&pdp_resource_type=order",
      {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/orders/o-1"},
       {"X-Pdp-Subject", "mallory"}, {"X-Pdp-Roles", "support"}});
  EXPECT_EQ(forged.status, 403) << "identity headers are not trusted by default";

  // A misconfigured gateway: 400 naming the missing header.
  e2e::HttpResult bad = e2e::HttpsGet(port_, "gateway", "/auth", {{"X-Forwarded-Uri", "/a"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("X-Forwarded-Method"));
  // An unknown rule set: INDETERMINATE, 403.
  e2e::HttpResult unknown = Ask("GET", "/orders/o-1", Bearer(R"("roles":["support"])"),
                                "gateway", "?pdp_rule_set=nope");
  EXPECT_EQ(unknown.status, 403);
  EXPECT_THAT(unknown.body, HasSubstr("not loaded"));
}

TEST_F(ForwardAuthE2eTest, CallersWithoutTheGatewayRoleAreRefused) {
  Start();
  e2e::HttpResult other = Ask("GET", "/orders/o-1", Bearer(R"("roles":["support"])"), "other");
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(other.headers["x-pdp-decision"], "caller_refused");
  EXPECT_THAT(other.body, HasSubstr("spiffe://pdp.local/other/dev"));
  // No client certificate, or one from another CA: no HTTP answer at all.
  for (const char* identity : {"none", "foreign"}) {
    e2e::HttpResult r = Ask("GET", "/orders/o-1", Bearer(R"("roles":["support"])"), identity);
    EXPECT_EQ(r.status, 0) << identity << " got an answer: " << r.body;
  }
}

TEST_F(ForwardAuthE2eTest, RefusedWithoutMtls) {
  std::vector<std::string> flags = {"--insecure", "--db=" + dir_.File("pdp.db"),
                                    "--forward_auth_listen=127.0.0.1:0",
                                    "--listen=127.0.0.1:0"};
  pdpd_.Spawn(flags);
  std::optional<int> status = pdpd_.WaitForExit(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 2);
  EXPECT_THAT(pdpd_.Log(), HasSubstr("--forward_auth_listen needs mTLS"));
}

// ---------------------------------------------------------------------------
// TLS of the forward-auth port.

constexpr char kOpenssl[] = "/usr/bin/openssl";

bool Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kOpenssl};
  argv.insert(argv.end(), args.begin(), args.end());
  e2e::CommandResult r = e2e::RunCommand(argv);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return r.exit_code == 0;
}

// `openssl s_client` against the forward-auth port with the gateway
// certificate; its stdout (subject of the server certificate, protocol).
e2e::CommandResult SClient(int port, const std::vector<std::string>& extra) {
  const e2e::TestPki& pki = e2e::Pki();
  std::vector<std::string> argv = {kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", port),
                                   "-cert", pki.dir + "/gateway.pem", "-key",
                                   pki.dir + "/gateway.key", "-CAfile", pki.dir + "/ca.pem",
                                   "-verify_return_error"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return e2e::RunCommand(argv, std::chrono::seconds(20));
}

// Polls `condition` every 100 ms for up to 20 s.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

class ForwardAuthTlsTest : public ::testing::Test {
 protected:
  void Start(const std::string& tls_dir) {
    std::vector<std::string> flags = e2e::PdpdProcess::StandardFlags(
        dir_.File("pdp.db"), e2e::SourcePath("docker/nginx/rules-orders.json"));
    flags.insert(flags.end(), {"--tls_cert=" + tls_dir + "/server.pem",
                               "--tls_key=" + tls_dir + "/server.key",
                               "--tls_ca=" + tls_dir + "/ca.pem", "--cert_refresh_seconds=1",
                               "--forward_auth_listen=127.0.0.1:0",
                               "--forward_auth_port_file=" + dir_.File("fa.port")});
    ASSERT_TRUE(pdpd_.Start(flags));
    port_ = e2e::WaitForPortFile(dir_.File("fa.port"), std::chrono::seconds(5));
    ASSERT_GT(port_, 0);
  }

  // An answer from pdp (any status) as the client `cert`/`key`.
  bool Answers(const std::string& cert, const std::string& key) {
    return e2e::HttpsGetWithFiles(port_, cert, key, e2e::Pki().dir + "/ca.pem", "/auth",
                                  {{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/"}})
               .status != 0;
  }

  e2e::TempDir dir_;
  e2e::PdpdProcess pdpd_{dir_.path()};
  int port_ = 0;
};

TEST_F(ForwardAuthTlsTest, OffersTls12AndNewerOnly) {
  Start(e2e::Pki().dir);
  for (const char* version : {"-tls1", "-tls1_1"}) {
    // SECLEVEL=0 lets the client offer the old protocol, so that the
    // refusal is pdpd's.
    e2e::CommandResult r = SClient(port_, {version, "-cipher", "DEFAULT@SECLEVEL=0"});
    EXPECT_NE(r.exit_code, 0) << version;
    EXPECT_THAT(r.out, HasSubstr("Cipher is (NONE)")) << version;
  }
  for (const auto& [flag, name] :
       {std::pair{"-tls1_2", "TLSv1.2"}, std::pair{"-tls1_3", "TLSv1.3"}}) {
    e2e::CommandResult r = SClient(port_, {flag});
    EXPECT_EQ(r.exit_code, 0) << flag << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("New, ", name, ", Cipher is "))) << flag;
  }
}

TEST_F(ForwardAuthTlsTest, RotatesServerCertificateAndClientCaWithoutRestart) {
  const e2e::TestPki& pki = e2e::Pki();
  const std::string tls = dir_.File("tls");
  const std::string made = dir_.File("made");
  std::filesystem::create_directories(tls);
  std::filesystem::create_directories(made);
  for (const char* file : {"server.pem", "server.key", "ca.pem"}) {
    std::filesystem::copy_file(pki.dir + "/" + file, tls + "/" + file);
  }
  // A second server certificate from the same CA, CN pdpd-rotated.
  e2e::WriteFile(made + "/server2.ext",
                 "basicConstraints = critical, CA:FALSE\n"
                 "keyUsage = critical, digitalSignature, keyAgreement\n"
                 "extendedKeyUsage = serverAuth\n"
                 "subjectAltName = DNS:localhost, IP:127.0.0.1\n");
  ASSERT_TRUE(Openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                       "-out", made + "/server2.key"}));
  ASSERT_TRUE(Openssl({"req", "-new", "-sha256", "-key", made + "/server2.key", "-subj",
                       "/O=pdp dev/CN=pdpd-rotated", "-out", made + "/server2.csr"}));
  ASSERT_TRUE(Openssl({"x509", "-req", "-sha256", "-in", made + "/server2.csr", "-CA",
                       pki.dir + "/ca.pem", "-CAkey", pki.dir + "/ca.key", "-set_serial",
                       "0x5e77e73", "-days", "30", "-extfile", made + "/server2.ext", "-out",
                       made + "/server2.pem"}));
  // A new client CA with its own gateway certificate.
  const std::string new_ca = made + "/new-ca";
  e2e::CommandResult made_ca = e2e::RunCommand(
      {"/bin/bash", e2e::SourcePath("scripts/dev-certs.sh"), "--ca-name", "rotated CA", new_ca},
      std::chrono::seconds(60));
  ASSERT_EQ(made_ca.exit_code, 0) << made_ca.out << made_ca.err;

  Start(tls);
  const std::string old_gateway_cert = pki.dir + "/gateway.pem";
  const std::string old_gateway_key = pki.dir + "/gateway.key";
  EXPECT_THAT(SClient(port_, {}).out, HasSubstr("CN = pdpd"));
  EXPECT_TRUE(Answers(old_gateway_cert, old_gateway_key));
  EXPECT_FALSE(Answers(new_ca + "/gateway.pem", new_ca + "/gateway.key"));

  // New server certificate: key and certificate replaced back to back.
  e2e::ReplaceFile(tls + "/server.key", e2e::ReadFileOrEmpty(made + "/server2.key"));
  e2e::ReplaceFile(tls + "/server.pem", e2e::ReadFileOrEmpty(made + "/server2.pem"));
  EXPECT_TRUE(Eventually([&] { return absl::StrContains(SClient(port_, {}).out, "CN = pdpd-rotated"); }))
      << "the new server certificate was not served within 20 s";
  EXPECT_TRUE(Answers(old_gateway_cert, old_gateway_key));

  // Both CAs during the change-over, then only the new one.
  e2e::ReplaceFile(tls + "/ca.pem", e2e::ReadFileOrEmpty(pki.dir + "/ca.pem") +
                                        e2e::ReadFileOrEmpty(new_ca + "/ca.pem"));
  EXPECT_TRUE(Eventually([&] { return Answers(new_ca + "/gateway.pem", new_ca + "/gateway.key"); }))
      << "a client of the added CA was not accepted within 20 s";
  EXPECT_TRUE(Answers(old_gateway_cert, old_gateway_key));
  e2e::ReplaceFile(tls + "/ca.pem", e2e::ReadFileOrEmpty(new_ca + "/ca.pem"));
  EXPECT_TRUE(Eventually([&] { return !Answers(old_gateway_cert, old_gateway_key); }))
      << "a client of the removed CA was still accepted after 20 s";
  EXPECT_TRUE(Answers(new_ca + "/gateway.pem", new_ca + "/gateway.key"));

  // A broken file keeps the previous material.
  e2e::ReplaceFile(tls + "/ca.pem", "not a certificate");
  // Nothing to poll for: that nothing changes shows only after a refresh
  // period has passed.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(Answers(new_ca + "/gateway.pem", new_ca + "/gateway.key"));
}

}  // namespace
}  // namespace pdp
