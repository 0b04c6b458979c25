// nginx in front of an upstream, asking pdpd through HTTP forward-auth
// (auth_request), end to end with real processes on loopback ports:
//   client --HTTP--> nginx --auth_request, HTTPS + mTLS--> pdpd forward-auth
//                          --HTTP + x-pdp-* headers--> example_orders_service
// nginx runs the shipped docker/nginx/nginx.conf with only its addresses,
// certificate directory and run directory replaced; pdpd runs with a real
// SQLite file, the shipped docker/nginx/rules-orders.json and bearer tokens
// verified against a JWKS file.
//
// Cases: allowed (the card number filtered out of the body by the upstream,
// from the obligation header nginx passed on); masked fields; denied (403);
// MFA step-up (401 with pdp's WWW-Authenticate reaching the client); a bad
// token (401 invalid_token); a client's forged obligation header never
// reaching the upstream.
//
// nginx must be installed (scripts/install-deps.sh installs it; CI runs
// that): without it this test FAILS with a message saying so.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/gateway_support.h"
#include "tests/support/pdpd_process.h"

namespace pdp {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kIssuer[] = "https://idp.example.com";
constexpr char kAudience[] = "orders-api";

std::string FindNginx() {
  for (const char* path : {"/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

std::string OrdersServiceBinary() { return PDP_BINARY_DIR "/obligations/example_orders_service"; }

// Replaces every occurrence of `from` in *text by `to`; a test failure when
// there is none (the shipped config and this test must agree).
void MustReplace(std::string* text, const std::string& from, const std::string& to) {
  ASSERT_NE(text->find(from), std::string::npos)
      << "docker/nginx/nginx.conf no longer contains \"" << from << "\"";
  *text = absl::StrReplaceAll(*text, {{from, to}});
}

class NginxE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nginx_binary_ = FindNginx();
    ASSERT_FALSE(nginx_binary_.empty())
        << "nginx is not installed: this test needs Debian's nginx package "
           "(scripts/install-deps.sh installs it; CI runs that script)";

    // pdpd with forward-auth and tokens.
    e2e::ReplaceFile(dir_.File("jwks.json"), e2e::JwksJson({key_.Jwk("k1")}));
    std::vector<std::string> flags = e2e::PdpdProcess::StandardFlags(
        dir_.File("pdp.db"), e2e::SourcePath("docker/nginx/rules-orders.json"));
    flags.insert(flags.end(), {"--forward_auth_listen=127.0.0.1:0",
                               "--forward_auth_port_file=" + dir_.File("forward_auth.port"),
                               "--jwt_jwks_file=" + dir_.File("jwks.json"),
                               absl::StrCat("--jwt_issuers=", kIssuer),
                               absl::StrCat("--jwt_audiences=", kAudience)});
    ASSERT_TRUE(pdpd_.Start(flags));
    const int forward_auth_port =
        e2e::WaitForPortFile(dir_.File("forward_auth.port"), std::chrono::seconds(5));
    ASSERT_GT(forward_auth_port, 0);

    // The upstream.
    ASSERT_TRUE(orders_.Spawn({OrdersServiceBinary(), "--listen=127.0.0.1:0",
                               "--port_file=" + dir_.File("orders.port")}));
    const int orders_port =
        e2e::WaitForPortFile(dir_.File("orders.port"), std::chrono::seconds(10), &orders_);
    ASSERT_GT(orders_port, 0) << "example_orders_service did not start";

    // nginx with the shipped config; a port taken meanwhile by someone else
    // makes nginx exit, and another port is tried.
    std::string conf = e2e::ReadFileOrEmpty(e2e::SourcePath("docker/nginx/nginx.conf"));
    MustReplace(&conf, "/tmp/nginx", dir_.path());
    MustReplace(&conf, "server pdpd:8443;", absl::StrCat("server 127.0.0.1:", forward_auth_port, ";"));
    MustReplace(&conf, "server orders:8080;", absl::StrCat("server 127.0.0.1:", orders_port, ";"));
    MustReplace(&conf, "/etc/nginx/pdp/", e2e::Pki().dir + "/");
    for (int attempt = 0; attempt < 5 && port_ == 0; ++attempt) {
      const int port = e2e::PickFreePort();
      ASSERT_GT(port, 0);
      std::string with_port = conf;
      MustReplace(&with_port, "listen 8080;", absl::StrCat("listen 127.0.0.1:", port, ";"));
      e2e::WriteFile(dir_.File("nginx.conf"), with_port);
      nginx_ = std::make_unique<e2e::ChildProcess>("nginx", dir_.File("nginx.log"));
      ASSERT_TRUE(nginx_->Spawn({nginx_binary_, "-p", dir_.path(), "-e", "stderr", "-c",
                                 dir_.File("nginx.conf")}));
      // Ready when /healthz answers; a failed start (port taken) exits.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      while (std::chrono::steady_clock::now() < deadline) {
        if (nginx_->Exited(nullptr)) break;
        if (e2e::HttpRequest(port, "GET", "/healthz", {}).status == 200) {
          port_ = port;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (port_ == 0 && nginx_->running()) nginx_->Stop(SIGKILL);
    }
    ASSERT_GT(port_, 0) << "nginx did not serve (its log follows)\n" << nginx_->Log();
  }

  void TearDown() override {
    if (nginx_ != nullptr && nginx_->running()) nginx_->Stop(SIGQUIT);
    if (orders_.running()) orders_.Stop(SIGTERM);
  }

  std::string Bearer(const std::string& extra,
                     std::chrono::seconds exp = std::chrono::seconds(600)) {
    return "Bearer " +
           e2e::SignEs256(key_, "k1", e2e::Claims(kIssuer, kAudience, "alice", exp, extra));
  }

  e2e::HttpResult Request(const std::string& method, const std::string& path,
                          std::map<std::string, std::string> headers) {
    return e2e::HttpRequest(port_, method, path, headers);
  }

  e2e::TempDir dir_;
  e2e::PdpdProcess pdpd_{dir_.path()};
  e2e::ChildProcess orders_{"example_orders_service", dir_.File("orders.log")};
  std::unique_ptr<e2e::ChildProcess> nginx_;
  std::string nginx_binary_;
  e2e::EcKey key_;
  int port_ = 0;
};

TEST_F(NginxE2eTest, AllowedRequestReachesTheUpstreamWithTheFilterObligation) {
  e2e::HttpResult r =
      Request("GET", "/orders/o-5001", {{"Authorization", Bearer(R"("roles":["support"])")}});
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  // The upstream received the obligation nginx copied from pdp's answer...
  EXPECT_EQ(r.headers["x-applied-filter-fields"], "payment.card_number,customer.ssn");
  // ...and removed the fields from what the client gets.
  EXPECT_THAT(r.body, HasSubstr("\"id\":\"o-5001\""));
  EXPECT_THAT(r.body, HasSubstr("\"expiry\""));
  EXPECT_THAT(r.body, Not(HasSubstr("card_number")));
  EXPECT_THAT(r.body, Not(HasSubstr("4111")));
  EXPECT_THAT(r.body, Not(HasSubstr("078-05-1120")));
}

TEST_F(NginxE2eTest, MaskObligationReachesTheUpstream) {
  e2e::HttpResult r =
      Request("GET", "/orders/o-5001", {{"Authorization", Bearer(R"("roles":["auditor"])")}});
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_EQ(r.headers["x-applied-mask-fields"], "customer.email,payment.card_number");
  EXPECT_THAT(r.body, HasSubstr("\"card_number\":\"###\""));
  EXPECT_THAT(r.body, Not(HasSubstr("ada@example.com")));
}

TEST_F(NginxE2eTest, DeniedIs403) {
  e2e::HttpResult r =
      Request("GET", "/orders/o-5001", {{"Authorization", Bearer(R"("roles":["customer"])")}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_THAT(r.body, Not(HasSubstr("o-5001")));
  // No token at all: no rule applies, 403 as well.
  EXPECT_EQ(Request("GET", "/orders/o-5001", {}).status, 403);
}

TEST_F(NginxE2eTest, StepUpMfaIs401WithWwwAuthenticateAtTheClient) {
  e2e::HttpResult r = Request("POST", "/orders/o-5001/refund",
                              {{"Authorization", Bearer(R"("roles":["support"])")}});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_THAT(r.headers["www-authenticate"],
              HasSubstr("error=\"insufficient_user_authentication\""));
  EXPECT_THAT(r.headers["www-authenticate"], HasSubstr("acr_values=\"totp\""));
}

TEST_F(NginxE2eTest, BadTokenIs401InvalidToken) {
  e2e::HttpResult r = Request(
      "GET", "/orders/o-5001",
      {{"Authorization", Bearer(R"("roles":["support"])", std::chrono::seconds(-3600))}});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_THAT(r.headers["www-authenticate"], HasSubstr("error=\"invalid_token\""));
}

TEST_F(NginxE2eTest, ForgedObligationHeadersNeverReachTheUpstream) {
  // A client sends its own (empty) filter list: nginx overwrites it with
  // pdp's, so the card number stays filtered.
  e2e::HttpResult r = Request("GET", "/orders/o-5001",
                              {{"Authorization", Bearer(R"("roles":["support"])")},
                               {"X-Pdp-Filter-Fields", "nothing"},
                               {"X-Pdp-Mask-Fields", "id"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-applied-filter-fields"], "payment.card_number,customer.ssn");
  EXPECT_EQ(r.headers["x-applied-mask-fields"], "");
  EXPECT_THAT(r.body, Not(HasSubstr("4111")));
  EXPECT_THAT(r.body, HasSubstr("\"id\":\"o-5001\""));
}

}  // namespace
}  // namespace pdp
