// End-to-end tests of pdpd: the real binary as a child process on an
// ephemeral port, real mutual TLS with certificates from scripts/
// dev-certs.sh (plus an independent "foreign" CA), and a real SQLite file in
// a fresh temporary directory per test (tests/support/pdpd_process.h).
//
// Covered: decisions for every demo request (single and batch) and role
// enforcement per identity; rule-set administration (put, versions, get,
// validate-only, optimistic concurrency, rejected puts with every error
// named); rollback and delete; persistence across a graceful restart;
// refusing to start without TLS or with a stored version that no longer
// compiles or no longer matches its hash; hot swaps under concurrent load;
// INDETERMINATE for unknown rule sets and malformed request fields.
#include <openssl/evp.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/rule_set_io.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "tests/support/pdpd_process.h"
#include "tests/support/store_hash.h"

namespace pdp::e2e {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr char kAdminIdentity[] = "spiffe://pdp.local/admin/dev";

// ---------------------------------------------------------------------------
// Helpers.

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}

template <typename Stub, typename Request, typename Response>
grpc::Status Call(Stub& stub,
                  grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request, Response* response) {
  auto context = ContextWithDeadline();
  return (stub.*method)(context.get(), request, response);
}

v1::RuleSet RuleSetFile(const std::string& relative) {
  auto rule_set = engine::ReadRuleSetFile(SourcePath(relative));
  EXPECT_TRUE(rule_set.ok()) << rule_set.status();
  return rule_set.ok() ? *rule_set : v1::RuleSet();
}

v1::RuleSet RuleSetJson(absl::string_view json) {
  auto rule_set = engine::ParseRuleSetJson(std::string_view(json.data(), json.size()));
  EXPECT_TRUE(rule_set.ok()) << rule_set.status();
  return rule_set.ok() ? *rule_set : v1::RuleSet();
}

// rules/demo.json with the rule that permits request 01 turned into a deny.
v1::RuleSet FlippedShop() {
  v1::RuleSet shop = RuleSetFile("rules/demo.json");
  bool found = false;
  for (v1::Rule& rule : *shop.mutable_rules()) {
    if (rule.id() == "support-reads-customers-in-business-hours") {
      rule.set_effect("deny");
      found = true;
    }
  }
  EXPECT_TRUE(found) << "rules/demo.json no longer has the rule this test flips";
  return shop;
}

struct DemoRequest {
  std::string file;  // e.g. "01-support-reads-customer.permit.json"
  v1::AuthorizeRequest request;
  v1::Decision expected = v1::DECISION_UNSPECIFIED;
};

// rules/requests/NN-name.DECISION.json, in file name order.
std::vector<DemoRequest> DemoRequests() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(SourcePath("rules/requests"))) {
    if (entry.path().extension() == ".json") files.push_back(entry.path().filename());
  }
  std::sort(files.begin(), files.end());
  std::vector<DemoRequest> out;
  for (const std::string& file : files) {
    DemoRequest demo;
    demo.file = file;
    const std::string stem = file.substr(0, file.size() - std::string(".json").size());
    const std::string decision = stem.substr(stem.rfind('.') + 1);
    if (decision == "permit") {
      demo.expected = v1::PERMIT;
    } else if (decision == "deny") {
      demo.expected = v1::DENY;
    } else if (decision == "not_applicable") {
      demo.expected = v1::NOT_APPLICABLE;
    } else {
      ADD_FAILURE() << file << ": no decision in the file name";
      continue;
    }
    const std::string json = ReadFileOrEmpty(SourcePath("rules/requests/" + file));
    auto status = google::protobuf::util::JsonStringToMessage(json, &demo.request);
    EXPECT_TRUE(status.ok()) << file << ": " << status.ToString();
    out.push_back(std::move(demo));
  }
  EXPECT_EQ(out.size(), 10u) << "expected the ten demo requests";
  return out;
}

const DemoRequest& Demo(const std::vector<DemoRequest>& demos, absl::string_view prefix) {
  for (const DemoRequest& demo : demos) {
    if (absl::StartsWith(demo.file, prefix)) return demo;
  }
  ADD_FAILURE() << "no demo request " << prefix;
  static const DemoRequest kNone;
  return kNone;
}

v1::AuthorizeResponse Authorize(v1::Authorization::Stub& stub,
                                const v1::AuthorizeRequest& request) {
  v1::AuthorizeResponse response;
  grpc::Status status = Call(stub, &v1::Authorization::Stub::Authorize, request, &response);
  EXPECT_TRUE(status.ok()) << StatusText(status);
  return response;
}

v1::PutRuleSetRequest PutRequest(const v1::RuleSet& rule_set, const std::string& comment,
                                 int64_t expected_version = 0, bool validate_only = false) {
  v1::PutRuleSetRequest request;
  *request.mutable_rule_set() = rule_set;
  request.set_comment(comment);
  request.set_expected_version(expected_version);
  request.set_validate_only(validate_only);
  return request;
}

// Puts and expects OK; returns the stored version number (0 on failure).
int64_t MustPut(v1::Admin::Stub& admin, const v1::RuleSet& rule_set, const std::string& comment,
                int64_t expected_version = 0) {
  v1::PutRuleSetResponse response;
  grpc::Status status = Call(admin, &v1::Admin::Stub::PutRuleSet,
                             PutRequest(rule_set, comment, expected_version), &response);
  EXPECT_TRUE(status.ok()) << StatusText(status);
  return response.version().version();
}

v1::ListVersionsResponse Versions(v1::Admin::Stub& admin, const std::string& name) {
  v1::ListVersionsRequest request;
  request.set_name(name);
  v1::ListVersionsResponse response;
  grpc::Status status = Call(admin, &v1::Admin::Stub::ListVersions, request, &response);
  EXPECT_TRUE(status.ok()) << name << ": " << StatusText(status);
  return response;
}

v1::ListRuleSetsResponse ListRuleSets(v1::Admin::Stub& admin) {
  v1::ListRuleSetsResponse response;
  grpc::Status status =
      Call(admin, &v1::Admin::Stub::ListRuleSets, v1::ListRuleSetsRequest(), &response);
  EXPECT_TRUE(status.ok()) << StatusText(status);
  return response;
}

std::map<std::string, int64_t> ActiveVersions(v1::Admin::Stub& admin) {
  std::map<std::string, int64_t> active;
  const v1::ListRuleSetsResponse list = ListRuleSets(admin);
  for (const v1::VersionInfo& info : list.rule_sets()) {
    active[info.rule_set()] = info.version();
  }
  return active;
}

bool HasObligation(const v1::AuthorizeResponse& response, const std::string& type) {
  return std::any_of(response.obligations().begin(), response.obligations().end(),
                     [&](const v1::ObligationResult& o) { return o.type() == type; });
}

// ---------------------------------------------------------------------------
// Fixture: a temp dir with the database and log, and one pdpd.

class PdpdTest : public ::testing::Test {
 protected:
  void SetUp() override { Pki(); }

  std::string db() const { return dir_.File("pdp.db"); }
  // Starts pdpd with the standard flags (demo.json bootstrapped unless
  // `bootstrap` is false) on this test's database.
  ::testing::AssertionResult StartPdpd(bool bootstrap = true) {
    return pdpd_.Start(PdpdProcess::StandardFlags(
        db(), bootstrap ? SourcePath("rules/demo.json") : std::string()));
  }

  TempDir dir_;
  PdpdProcess pdpd_{dir_.path()};
};

// ---------------------------------------------------------------------------
// 1. Gateway: decisions for every demo request, single and batched; no admin.

TEST_F(PdpdTest, GatewayDecidesEveryDemoRequestAndIsRefusedAdmin) {
  ASSERT_TRUE(StartPdpd());
  auto gateway = pdpd_.AuthorizationStub("gateway");
  const std::vector<DemoRequest> demos = DemoRequests();

  v1::BatchAuthorizeRequest batch;
  std::vector<v1::AuthorizeResponse> singles;
  for (const DemoRequest& demo : demos) {
    SCOPED_TRACE(demo.file);
    v1::AuthorizeResponse response = Authorize(*gateway, demo.request);
    EXPECT_EQ(response.decision(), demo.expected)
        << v1::Decision_Name(response.decision()) << ": " << response.reason();
    EXPECT_EQ(response.rule_set(), "shop");
    EXPECT_EQ(response.rule_set_version(), 1);
    EXPECT_FALSE(response.reason().empty());
    if (demo.expected == v1::PERMIT || demo.expected == v1::DENY) {
      EXPECT_GT(response.determining_rules_size(), 0);
    }
    singles.push_back(response);
    *batch.add_requests() = demo.request;
  }
  const v1::AuthorizeResponse& first = singles.at(0);
  EXPECT_TRUE(HasObligation(first, "filter_fields")) << first.DebugString();
  EXPECT_THAT(first.determining_rules(),
              ::testing::ElementsAre("support-reads-customers-in-business-hours"));
  const v1::AuthorizeResponse& fourth = singles.at(3);
  EXPECT_TRUE(HasObligation(fourth, "require_mfa")) << fourth.DebugString();

  v1::BatchAuthorizeResponse batched;
  grpc::Status status = Call(*gateway, &v1::Authorization::Stub::BatchAuthorize, batch, &batched);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  ASSERT_EQ(batched.responses_size(), static_cast<int>(singles.size()));
  for (size_t i = 0; i < singles.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(batched.responses(static_cast<int>(i)), singles[i]))
        << demos[i].file << "\nbatched: " << batched.responses(static_cast<int>(i)).DebugString()
        << "\nsingle: " << singles[i].DebugString();
  }

  // The same decisions with everything but the action sent once, in the
  // batch's common part; a request's own rule set wins over the common one.
  for (size_t i = 0; i < demos.size(); ++i) {
    v1::BatchAuthorizeRequest shared;
    *shared.mutable_common() = demos[i].request;
    shared.mutable_common()->set_rule_set("shop");
    shared.mutable_common()->clear_action();
    shared.add_requests()->set_action(demos[i].request.action());
    v1::AuthorizeRequest* elsewhere = shared.add_requests();
    elsewhere->set_action(demos[i].request.action());
    elsewhere->set_rule_set("not-loaded");
    v1::BatchAuthorizeResponse answered;
    status = Call(*gateway, &v1::Authorization::Stub::BatchAuthorize, shared, &answered);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    ASSERT_EQ(answered.responses_size(), 2);
    EXPECT_TRUE(MessageDifferencer::Equals(answered.responses(0), singles[i]))
        << demos[i].file << "\nwith common: " << answered.responses(0).DebugString()
        << "\nsingle: " << singles[i].DebugString();
    EXPECT_EQ(answered.responses(1).decision(), v1::INDETERMINATE);
    EXPECT_EQ(answered.responses(1).rule_set(), "not-loaded");
  }

  // A batch over the limit is refused as a whole.
  v1::BatchAuthorizeRequest too_many;
  for (int i = 0; i < 1001; ++i) *too_many.add_requests() = demos[0].request;
  v1::BatchAuthorizeResponse refused;
  status = Call(*gateway, &v1::Authorization::Stub::BatchAuthorize, too_many, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << StatusText(status);
  EXPECT_EQ(refused.responses_size(), 0);

  // Every Admin method refuses the gateway role, and nothing changes.
  auto admin_as_gateway = pdpd_.AdminStub("gateway");
  {
    v1::PutRuleSetResponse r;
    status = Call(*admin_as_gateway, &v1::Admin::Stub::PutRuleSet,
                  PutRequest(RuleSetFile("rules/examples/location.json"), "by gateway"), &r);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
  }
  {
    v1::GetRuleSetRequest q;
    q.set_name("shop");
    v1::GetRuleSetResponse r;
    status = Call(*admin_as_gateway, &v1::Admin::Stub::GetRuleSet, q, &r);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
    EXPECT_FALSE(r.has_rule_set());
  }
  {
    v1::ListRuleSetsResponse r;
    status = Call(*admin_as_gateway, &v1::Admin::Stub::ListRuleSets, v1::ListRuleSetsRequest(), &r);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
  }
  {
    v1::ListVersionsRequest q;
    q.set_name("shop");
    v1::ListVersionsResponse r;
    status = Call(*admin_as_gateway, &v1::Admin::Stub::ListVersions, q, &r);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
  }
  {
    v1::ActivateVersionRequest q;
    q.set_name("shop");
    q.set_version(1);
    v1::ActivateVersionResponse r;
    status = Call(*admin_as_gateway, &v1::Admin::Stub::ActivateVersion, q, &r);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
  }
  {
    v1::DeleteRuleSetRequest q;
    q.set_name("shop");
    v1::DeleteRuleSetResponse r;
    status = Call(*admin_as_gateway, &v1::Admin::Stub::DeleteRuleSet, q, &r);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
  }
  auto admin = pdpd_.AdminStub("admin");
  EXPECT_EQ(ActiveVersions(*admin), (std::map<std::string, int64_t>{{"shop", 1}}));
  EXPECT_EQ(Authorize(*gateway, demos[0].request).decision(), v1::PERMIT);
}

// ---------------------------------------------------------------------------
// 2. Admin: put, versions, get; an admin may also decide.

TEST_F(PdpdTest, AdminPutsVersionsAndGetsRuleSets) {
  ASSERT_TRUE(StartPdpd());
  auto admin = pdpd_.AdminStub("admin");
  v1::RuleSet first = RuleSetFile("rules/examples/location.json");
  ASSERT_EQ(first.name(), "example-location");
  v1::RuleSet second = first;
  second.set_description("second revision");

  v1::PutRuleSetResponse put1;
  grpc::Status status =
      Call(*admin, &v1::Admin::Stub::PutRuleSet, PutRequest(first, "first push"), &put1);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(put1.version().rule_set(), "example-location");
  EXPECT_EQ(put1.version().version(), 1);
  EXPECT_EQ(put1.version().author(), kAdminIdentity);
  EXPECT_EQ(put1.version().comment(), "first push");
  EXPECT_TRUE(put1.version().active());
  EXPECT_EQ(put1.rule_count(), first.rules_size());
  EXPECT_EQ(put1.version().rule_count(), first.rules_size());
  EXPECT_EQ(put1.version().sha256(), Sha256Hex(CanonicalBytes(first)));

  v1::PutRuleSetResponse put2;
  status = Call(*admin, &v1::Admin::Stub::PutRuleSet, PutRequest(second, "second push"), &put2);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(put2.version().version(), 2);
  EXPECT_EQ(put2.version().sha256(), Sha256Hex(CanonicalBytes(second)));

  v1::ListVersionsResponse versions = Versions(*admin, "example-location");
  ASSERT_EQ(versions.versions_size(), 2);
  const v1::VersionInfo& newest = versions.versions(0);
  const v1::VersionInfo& oldest = versions.versions(1);
  EXPECT_EQ(newest.version(), 2);
  EXPECT_EQ(oldest.version(), 1);
  EXPECT_TRUE(newest.active());
  EXPECT_FALSE(oldest.active());
  EXPECT_EQ(newest.comment(), "second push");
  EXPECT_EQ(oldest.comment(), "first push");
  for (const v1::VersionInfo& info : versions.versions()) {
    EXPECT_EQ(info.rule_set(), "example-location");
    EXPECT_EQ(info.author(), kAdminIdentity);
    EXPECT_THAT(info.sha256(), MatchesRegex("[0-9a-f]{64}"));
    EXPECT_EQ(info.rule_count(), first.rules_size());
    EXPECT_GT(info.created_at().seconds(), 0);
  }
  EXPECT_NE(newest.sha256(), oldest.sha256());
  EXPECT_EQ(oldest.sha256(), put1.version().sha256());
  EXPECT_GE(newest.created_at().seconds(), oldest.created_at().seconds());

  v1::GetRuleSetRequest get;
  get.set_name("example-location");
  v1::GetRuleSetResponse active;
  status = Call(*admin, &v1::Admin::Stub::GetRuleSet, get, &active);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_TRUE(MessageDifferencer::Equals(active.rule_set(), second))
      << active.rule_set().DebugString();
  EXPECT_EQ(active.version().version(), 2);
  EXPECT_TRUE(active.version().active());
  get.set_version(1);
  v1::GetRuleSetResponse old;
  status = Call(*admin, &v1::Admin::Stub::GetRuleSet, get, &old);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_TRUE(MessageDifferencer::Equals(old.rule_set(), first));
  EXPECT_FALSE(old.version().active());

  EXPECT_EQ(ActiveVersions(*admin),
            (std::map<std::string, int64_t>{{"example-location", 2}, {"shop", 1}}));

  // The admin role may decide too, with the new set and the default one.
  auto as_admin = pdpd_.AuthorizationStub("admin");
  v1::AuthorizeRequest request;
  request.set_rule_set("example-location");
  request.set_action("read");
  request.mutable_resource()->set_type("account");
  request.mutable_environment()->mutable_location()->set_country("AT");
  v1::AuthorizeResponse response = Authorize(*as_admin, request);
  EXPECT_EQ(response.decision(), v1::PERMIT) << response.reason();
  EXPECT_EQ(response.rule_set_version(), 2);
  response = Authorize(*as_admin, Demo(DemoRequests(), "01-").request);
  EXPECT_EQ(response.decision(), v1::PERMIT) << response.reason();
}

// ---------------------------------------------------------------------------
// 3. Identities without a role, without a certificate, or from another CA.

TEST_F(PdpdTest, RefusesOtherIdentitiesMissingAndForeignCertificates) {
  ASSERT_TRUE(StartPdpd());
  const v1::AuthorizeRequest request = Demo(DemoRequests(), "01-").request;

  // Trusted CA, no role: the call reaches pdpd and is refused.
  {
    auto other = pdpd_.AuthorizationStub("other");
    v1::AuthorizeResponse response;
    grpc::Status status = Call(*other, &v1::Authorization::Stub::Authorize, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
    EXPECT_EQ(response.decision(), v1::DECISION_UNSPECIFIED);
    v1::BatchAuthorizeRequest batch;
    *batch.add_requests() = request;
    v1::BatchAuthorizeResponse batched;
    status = Call(*other, &v1::Authorization::Stub::BatchAuthorize, batch, &batched);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
    EXPECT_EQ(batched.responses_size(), 0);
    auto other_admin = pdpd_.AdminStub("other");
    v1::ListRuleSetsResponse list;
    status = Call(*other_admin, &v1::Admin::Stub::ListRuleSets, v1::ListRuleSetsRequest(), &list);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
    v1::PutRuleSetResponse put;
    status = Call(*other_admin, &v1::Admin::Stub::PutRuleSet,
                  PutRequest(RuleSetFile("rules/examples/location.json"), "by other"), &put);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
  }

  // No client certificate, or one from a CA pdpd does not trust (carrying an
  // admin identity): the handshake fails, so no call gets through.
  for (const char* identity : {"none", "foreign"}) {
    SCOPED_TRACE(identity);
    auto authorization = pdpd_.AuthorizationStub(identity);
    v1::AuthorizeResponse response;
    grpc::Status status =
        Call(*authorization, &v1::Authorization::Stub::Authorize, request, &response);
    EXPECT_FALSE(status.ok());
    EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << "the TLS handshake should fail, not the role check: " << StatusText(status);
    EXPECT_EQ(response.decision(), v1::DECISION_UNSPECIFIED);
    auto admin = pdpd_.AdminStub(identity);
    v1::PutRuleSetResponse put;
    status = Call(*admin, &v1::Admin::Stub::PutRuleSet,
                  PutRequest(RuleSetFile("rules/examples/location.json"), identity), &put);
    EXPECT_FALSE(status.ok());
    EXPECT_FALSE(put.has_version());
  }

  // Nothing was stored by anyone.
  auto admin = pdpd_.AdminStub("admin");
  EXPECT_EQ(ActiveVersions(*admin), (std::map<std::string, int64_t>{{"shop", 1}}));
  v1::ListVersionsRequest q;
  q.set_name("example-location");
  v1::ListVersionsResponse r;
  EXPECT_EQ(Call(*admin, &v1::Admin::Stub::ListVersions, q, &r).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(pdpd_.HealthServing(std::chrono::seconds(5)));
}

// ---------------------------------------------------------------------------
// 4. Rejected puts change nothing; validate_only and expected_version.

TEST_F(PdpdTest, BadPutsChangeNothingAndValidateOnlyStoresNothing) {
  ASSERT_TRUE(StartPdpd());
  auto admin = pdpd_.AdminStub("admin");
  auto gateway = pdpd_.AuthorizationStub("gateway");
  const std::vector<DemoRequest> demos = DemoRequests();
  const v1::ListVersionsResponse before = Versions(*admin, "shop");
  ASSERT_EQ(before.versions_size(), 1);

  const v1::RuleSet bad = RuleSetJson(R"json({
    "name": "shop",
    "rules": [
      {"id": "bad-cidr", "effect": "permit",
       "target": {"resource_types": ["*"], "actions": ["*"]},
       "conditions": {"client_ip": {"in": ["10.0.0.0/8", "10.1.2.3/8"]}}},
      {"id": "bad-zone", "effect": "permit",
       "target": {"resource_types": ["*"], "actions": ["*"]},
       "conditions": {"time_windows": [{"start": "08:00", "end": "18:00",
                                        "time_zone": "Mars/Olympus_Mons"}]}},
      {"id": "twice", "effect": "permit",
       "target": {"resource_types": ["*"], "actions": ["*"]}},
      {"id": "twice", "effect": "deny",
       "target": {"resource_types": ["*"], "actions": ["*"]}}
    ]})json");
  for (bool validate_only : {false, true}) {
    SCOPED_TRACE(validate_only ? "validate_only" : "put");
    v1::PutRuleSetResponse response;
    grpc::Status status = Call(*admin, &v1::Admin::Stub::PutRuleSet,
                               PutRequest(bad, "broken", 0, validate_only), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << StatusText(status);
    const std::string& message = status.error_message();
    EXPECT_THAT(message, HasSubstr("bad-cidr"));
    EXPECT_THAT(message, HasSubstr("rules[0].conditions.client_ip.in[1]"));
    EXPECT_THAT(message, HasSubstr("bad-zone"));
    EXPECT_THAT(message, HasSubstr("rules[1].conditions.time_windows[0].time_zone"));
    EXPECT_THAT(message, HasSubstr("twice"));
    EXPECT_THAT(message, HasSubstr("rules[3].id"));
    EXPECT_THAT(message, ::testing::Not(HasSubstr("rules[0].conditions.client_ip.in[0]")));
    EXPECT_FALSE(response.has_version());
  }
  EXPECT_TRUE(MessageDifferencer::Equals(Versions(*admin, "shop"), before));
  for (const DemoRequest& demo : demos) {
    v1::AuthorizeResponse response = Authorize(*gateway, demo.request);
    EXPECT_EQ(response.decision(), demo.expected) << demo.file << ": " << response.reason();
    EXPECT_EQ(response.rule_set_version(), 1) << demo.file;
  }

  // validate_only of a good set: its rule count, and nothing stored.
  {
    const v1::RuleSet location = RuleSetFile("rules/examples/location.json");
    v1::PutRuleSetResponse response;
    grpc::Status status = Call(*admin, &v1::Admin::Stub::PutRuleSet,
                               PutRequest(location, "just checking", 0, true), &response);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    EXPECT_EQ(response.rule_count(), location.rules_size());
    EXPECT_FALSE(response.has_version());
    v1::ListVersionsRequest q;
    q.set_name(location.name());
    v1::ListVersionsResponse r;
    status = Call(*admin, &v1::Admin::Stub::ListVersions, q, &r);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << StatusText(status);
    EXPECT_EQ(ActiveVersions(*admin), (std::map<std::string, int64_t>{{"shop", 1}}));
  }
  // validate_only of a changed shop leaves shop's decisions alone.
  {
    v1::PutRuleSetResponse response;
    grpc::Status status = Call(*admin, &v1::Admin::Stub::PutRuleSet,
                               PutRequest(FlippedShop(), "dry run", 0, true), &response);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    EXPECT_FALSE(response.has_version());
    EXPECT_TRUE(MessageDifferencer::Equals(Versions(*admin, "shop"), before));
    EXPECT_EQ(Authorize(*gateway, demos[0].request).decision(), v1::PERMIT);
  }

  // Optimistic concurrency.
  for (int64_t wrong : {int64_t{2}, int64_t{7}, int64_t{-1}}) {
    SCOPED_TRACE(absl::StrCat("expected_version ", wrong));
    v1::PutRuleSetResponse response;
    grpc::Status status = Call(*admin, &v1::Admin::Stub::PutRuleSet,
                               PutRequest(FlippedShop(), "stale", wrong), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << StatusText(status);
    EXPECT_FALSE(response.has_version());
  }
  EXPECT_TRUE(MessageDifferencer::Equals(Versions(*admin, "shop"), before));
  EXPECT_EQ(Authorize(*gateway, demos[0].request).decision(), v1::PERMIT);
  EXPECT_EQ(MustPut(*admin, FlippedShop(), "current", /*expected_version=*/1), 2);
  const v1::AuthorizeResponse after = Authorize(*gateway, demos[0].request);
  EXPECT_NE(after.decision(), v1::PERMIT);
  EXPECT_EQ(after.rule_set_version(), 2);
  // A set that must be new.
  EXPECT_EQ(MustPut(*admin, RuleSetFile("rules/examples/location.json"), "new", -1), 1);
}

// ---------------------------------------------------------------------------
// 5. Rollback, delete, and version numbers after a delete.

TEST_F(PdpdTest, RollbackAndDelete) {
  ASSERT_TRUE(StartPdpd());
  auto admin = pdpd_.AdminStub("admin");
  auto gateway = pdpd_.AuthorizationStub("gateway");
  const v1::AuthorizeRequest request01 = Demo(DemoRequests(), "01-").request;

  ASSERT_EQ(MustPut(*admin, FlippedShop(), "flip support reads"), 2);
  v1::AuthorizeResponse response = Authorize(*gateway, request01);
  EXPECT_NE(response.decision(), v1::PERMIT) << response.reason();
  EXPECT_EQ(response.decision(), v1::DENY) << response.reason();
  EXPECT_EQ(response.rule_set_version(), 2);

  v1::ActivateVersionRequest activate;
  activate.set_name("shop");
  activate.set_version(1);
  activate.set_comment("roll back");
  v1::ActivateVersionResponse activated;
  grpc::Status status = Call(*admin, &v1::Admin::Stub::ActivateVersion, activate, &activated);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(activated.version().version(), 1);
  EXPECT_TRUE(activated.version().active());
  response = Authorize(*gateway, request01);
  EXPECT_EQ(response.decision(), v1::PERMIT) << response.reason();
  EXPECT_EQ(response.rule_set_version(), 1);
  v1::ListVersionsResponse versions = Versions(*admin, "shop");
  ASSERT_EQ(versions.versions_size(), 2);
  EXPECT_EQ(versions.versions(0).version(), 2);
  EXPECT_FALSE(versions.versions(0).active());
  EXPECT_TRUE(versions.versions(1).active());

  // Activating a version that does not exist changes nothing.
  activate.set_version(9);
  status = Call(*admin, &v1::Admin::Stub::ActivateVersion, activate, &activated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << StatusText(status);
  EXPECT_EQ(Authorize(*gateway, request01).rule_set_version(), 1);

  v1::DeleteRuleSetRequest remove;
  remove.set_name("shop");
  v1::DeleteRuleSetResponse removed;
  status = Call(*admin, &v1::Admin::Stub::DeleteRuleSet, remove, &removed);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  response = Authorize(*gateway, request01);
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(response.reason(), HasSubstr("shop"));
  EXPECT_TRUE(response.obligations().empty());
  EXPECT_TRUE(ActiveVersions(*admin).empty());
  v1::GetRuleSetRequest get;
  get.set_name("shop");
  v1::GetRuleSetResponse got;
  status = Call(*admin, &v1::Admin::Stub::GetRuleSet, get, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << StatusText(status);
  // History is kept.
  versions = Versions(*admin, "shop");
  ASSERT_EQ(versions.versions_size(), 2);
  EXPECT_FALSE(versions.versions(0).active());
  EXPECT_FALSE(versions.versions(1).active());

  // A new put continues the numbering.
  EXPECT_EQ(MustPut(*admin, RuleSetFile("rules/demo.json"), "back again"), 3);
  response = Authorize(*gateway, request01);
  EXPECT_EQ(response.decision(), v1::PERMIT) << response.reason();
  EXPECT_EQ(response.rule_set_version(), 3);
  EXPECT_EQ(ActiveVersions(*admin), (std::map<std::string, int64_t>{{"shop", 3}}));
}

// ---------------------------------------------------------------------------
// 6. A graceful restart on the same database serves exactly what it did.

TEST_F(PdpdTest, RestartServesTheSameVersionsAndDecisions) {
  ASSERT_TRUE(StartPdpd());
  const std::vector<DemoRequest> demos = DemoRequests();
  v1::AuthorizeRequest location_request;
  location_request.set_rule_set("example-location");
  location_request.set_action("update");
  location_request.mutable_resource()->set_type("account");
  location_request.mutable_environment()->mutable_location()->set_country("US");
  location_request.mutable_environment()->mutable_location()->set_region("US-TX");

  std::map<std::string, v1::ListVersionsResponse> versions_before;
  std::vector<v1::AuthorizeResponse> decisions_before;
  v1::ListRuleSetsResponse list_before;
  {
    auto admin = pdpd_.AdminStub("admin");
    auto gateway = pdpd_.AuthorizationStub("gateway");
    ASSERT_EQ(MustPut(*admin, FlippedShop(), "flipped"), 2);
    const v1::RuleSet location = RuleSetFile("rules/examples/location.json");
    ASSERT_EQ(MustPut(*admin, location, "location one"), 1);
    v1::RuleSet location2 = location;
    location2.mutable_rules(1)->mutable_conditions()->mutable_location()->clear_not_in();
    ASSERT_EQ(MustPut(*admin, location2, "location two: Texas too"), 2);
    // shop's active version is not its newest one.
    v1::ActivateVersionRequest activate;
    activate.set_name("shop");
    activate.set_version(1);
    v1::ActivateVersionResponse activated;
    grpc::Status status = Call(*admin, &v1::Admin::Stub::ActivateVersion, activate, &activated);
    ASSERT_TRUE(status.ok()) << StatusText(status);

    for (const char* name : {"shop", "example-location"}) {
      versions_before[name] = Versions(*admin, name);
    }
    list_before = ListRuleSets(*admin);
    for (const DemoRequest& demo : demos) {
      decisions_before.push_back(Authorize(*gateway, demo.request));
      EXPECT_EQ(decisions_before.back().decision(), demo.expected) << demo.file;
    }
    decisions_before.push_back(Authorize(*gateway, location_request));
    EXPECT_EQ(decisions_before.back().decision(), v1::PERMIT);
    EXPECT_EQ(decisions_before.back().rule_set_version(), 2);
  }
  ASSERT_EQ(pdpd_.Stop(), 0) << "SIGTERM should shut down gracefully";
  EXPECT_THAT(pdpd_.Log(), HasSubstr("pdpd stopped"));

  ASSERT_TRUE(StartPdpd(/*bootstrap=*/false));
  {
    auto admin = pdpd_.AdminStub("admin");
    auto gateway = pdpd_.AuthorizationStub("gateway");
    for (const auto& [name, before] : versions_before) {
      const v1::ListVersionsResponse after = Versions(*admin, name);
      EXPECT_TRUE(MessageDifferencer::Equals(after, before))
          << name << "\nbefore: " << before.DebugString() << "\nafter: " << after.DebugString();
    }
    const v1::ListRuleSetsResponse list_after = ListRuleSets(*admin);
    EXPECT_TRUE(MessageDifferencer::Equals(list_after, list_before))
        << list_before.DebugString() << "\nafter: " << list_after.DebugString();
    for (size_t i = 0; i < demos.size(); ++i) {
      const v1::AuthorizeResponse after = Authorize(*gateway, demos[i].request);
      EXPECT_TRUE(MessageDifferencer::Equals(after, decisions_before[i]))
          << demos[i].file << "\nbefore: " << decisions_before[i].DebugString()
          << "\nafter: " << after.DebugString();
      EXPECT_EQ(after.rule_set_version(), 1) << demos[i].file;
    }
    EXPECT_TRUE(
        MessageDifferencer::Equals(Authorize(*gateway, location_request), decisions_before.back()));
  }
  // The clients above have disconnected: an idle connection would hold a
  // graceful stop for the whole --shutdown_grace_seconds.
  EXPECT_EQ(pdpd_.Stop(), 0);
}

// ---------------------------------------------------------------------------
// 7. Refusing to start.

TEST_F(PdpdTest, RefusesToStartWithoutTlsFlags) {
  pdpd_.Spawn({"--listen=127.0.0.1:0", "--db=" + db(),
               "--admin_identities=spiffe://pdp.local/admin/*",
               "--bootstrap_rule_set=" + SourcePath("rules/demo.json")});
  std::optional<int> status = pdpd_.WaitForExit(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value()) << "pdpd kept running without TLS flags";
  EXPECT_NE(*status, 0);
  EXPECT_THAT(pdpd_.Log(), HasSubstr("--tls_cert"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("pdpd.port")));
}

// Replaces the content of shop's active version in `db`; with `fix_hash`
// the stored SHA-256 is updated to match, so the content is intact but no
// longer compiles.
void CorruptActiveShop(const std::string& db, const v1::RuleSet& content, bool fix_hash) {
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> closer(handle, &sqlite3_close);
  sqlite3_stmt* raw = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(handle,
                               "UPDATE rule_set_versions SET content = ?1, "
                               "sha256 = CASE WHEN ?2 = '' THEN sha256 ELSE ?2 END "
                               "WHERE name = 'shop' AND version = "
                               "(SELECT active_version FROM rule_sets WHERE name = 'shop')",
                               -1, &raw, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(handle);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, &sqlite3_finalize);
  const std::string bytes = CanonicalBytes(content);
  const std::string hash = fix_hash ? Sha256Hex(bytes) : std::string();
  sqlite3_bind_blob(raw, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(raw, 2, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(raw), SQLITE_DONE) << sqlite3_errmsg(handle);
  ASSERT_EQ(sqlite3_changes(handle), 1);
}

const char kShopThatDoesNotCompile[] = R"json({
  "name": "shop",
  "rules": [{"id": "office-only", "effect": "permit",
             "target": {"resource_types": ["*"], "actions": ["*"]},
             "conditions": {"client_ip": {"in": ["203.0.113.1/24"]}}}]})json";

TEST_F(PdpdTest, RefusesToStartWhenTheActiveVersionNoLongerCompiles) {
  ASSERT_TRUE(StartPdpd());
  ASSERT_EQ(pdpd_.Stop(), 0);
  CorruptActiveShop(db(), RuleSetJson(kShopThatDoesNotCompile), /*fix_hash=*/true);
  if (HasFatalFailure()) return;

  pdpd_.Spawn(PdpdProcess::StandardFlags(db()));
  std::optional<int> status = pdpd_.WaitForExit(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value()) << "pdpd serves although shop no longer compiles";
  EXPECT_NE(*status, 0);
  const std::string log = pdpd_.Log().substr(pdpd_.Log().rfind("===== pdpd start"));
  EXPECT_THAT(log, HasSubstr("shop"));
  EXPECT_THAT(log, HasSubstr("office-only"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("pdpd.port")));
}

TEST_F(PdpdTest, RefusesToStartWhenStoredContentDoesNotMatchItsHash) {
  ASSERT_TRUE(StartPdpd());
  ASSERT_EQ(pdpd_.Stop(), 0);
  CorruptActiveShop(db(), FlippedShop(), /*fix_hash=*/false);
  if (HasFatalFailure()) return;

  pdpd_.Spawn(PdpdProcess::StandardFlags(db()));
  std::optional<int> status = pdpd_.WaitForExit(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value()) << "pdpd serves tampered content";
  EXPECT_NE(*status, 0);
  const std::string log = pdpd_.Log().substr(pdpd_.Log().rfind("===== pdpd start"));
  EXPECT_THAT(log, HasSubstr("shop"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("pdpd.port")));
}

// ---------------------------------------------------------------------------
// 8. Hot swaps under concurrent decisions.

TEST_F(PdpdTest, HotSwapUnderLoadIsAtomic) {
  ASSERT_TRUE(StartPdpd());
  auto admin = pdpd_.AdminStub("admin");
  const v1::RuleSet permit = RuleSetJson(R"json({"name": "flip", "rules": [
      {"id": "allow-reads", "effect": "permit",
       "target": {"resource_types": ["doc"], "actions": ["read"]}}]})json");
  const v1::RuleSet deny = RuleSetJson(R"json({"name": "flip", "rules": [
      {"id": "block-reads", "effect": "deny",
       "target": {"resource_types": ["doc"], "actions": ["read"]}}]})json");
  ASSERT_EQ(MustPut(*admin, permit, "v1 permits", -1), 1);

  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 2000;
  constexpr int kSwaps = 20;
  constexpr int64_t kLastVersion = 1 + kSwaps;
  v1::AuthorizeRequest request;
  request.set_rule_set("flip");
  request.set_action("read");
  request.mutable_resource()->set_type("doc");
  request.mutable_subject()->set_id("reader");

  std::latch started(kThreads);
  std::mutex mu;
  std::vector<std::string> problems;  // first few only
  std::atomic<int> problem_count{0};
  std::set<int64_t> seen_versions;
  auto report = [&](std::string problem) {
    if (problem_count.fetch_add(1) < 10) {
      std::lock_guard<std::mutex> lock(mu);
      problems.push_back(std::move(problem));
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Connection setup is not what this test is about: on a loaded
      // machine a first TLS handshake can be slow, so every client is
      // connected before its load starts.
      std::shared_ptr<grpc::Channel> channel = pdpd_.Channel("gateway");
      if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
        report(absl::StrCat("thread ", t, ": could not connect within 30 s"));
        started.count_down();
        return;
      }
      auto stub = v1::Authorization::NewStub(channel);
      std::set<int64_t> versions;
      int64_t last_version = 0;
      for (int i = 0; i < kCallsPerThread; ++i) {
        v1::AuthorizeResponse response;
        auto context = ContextWithDeadline();
        grpc::Status status = stub->Authorize(context.get(), request, &response);
        if (i == 0) started.count_down();
        if (!status.ok()) {
          report(absl::StrCat("thread ", t, " call ", i, ": ", StatusText(status)));
          continue;
        }
        const int64_t version = response.rule_set_version();
        const v1::Decision expected = version % 2 == 1 ? v1::PERMIT : v1::DENY;
        if (version < 1 || version > kLastVersion || response.decision() != expected ||
            response.rule_set() != "flip") {
          report(absl::StrCat("thread ", t, " call ", i, ": version ", version, " decided ",
                              v1::Decision_Name(response.decision()), " (", response.reason(),
                              ")"));
        }
        if (version < last_version) {
          report(absl::StrCat("thread ", t, " call ", i, ": version went back from ", last_version,
                              " to ", version));
        }
        last_version = std::max(last_version, version);
        versions.insert(version);
      }
      std::lock_guard<std::mutex> lock(mu);
      seen_versions.insert(versions.begin(), versions.end());
    });
  }

  started.wait();
  int64_t active = 1;
  for (int swap = 0; swap < kSwaps; ++swap) {
    const bool to_deny = active % 2 == 1;
    const int64_t stored = MustPut(*admin, to_deny ? deny : permit, absl::StrCat("swap ", swap),
                                   /*expected_version=*/active);
    EXPECT_EQ(stored, active + 1);
    if (stored != active + 1) break;
    active = stored;
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(problem_count.load(), 0) << ::testing::PrintToString(problems);
  EXPECT_GE(seen_versions.size(), 2u) << "no swap happened while the clients were deciding";
  EXPECT_EQ(active, kLastVersion);
  auto gateway = pdpd_.AuthorizationStub("gateway");
  const v1::AuthorizeResponse last = Authorize(*gateway, request);
  EXPECT_EQ(last.rule_set_version(), kLastVersion);
  EXPECT_EQ(last.decision(), v1::PERMIT);
  EXPECT_EQ(Versions(*admin, "flip").versions_size(), kLastVersion);
}

// ---------------------------------------------------------------------------
// 9. Unknown rule sets and malformed request fields.

TEST_F(PdpdTest, UnknownRuleSetAndMalformedClientIpAreNeverPermitted) {
  ASSERT_TRUE(StartPdpd());
  auto gateway = pdpd_.AuthorizationStub("gateway");
  const std::vector<DemoRequest> demos = DemoRequests();

  v1::AuthorizeRequest unknown = Demo(demos, "01-").request;
  unknown.set_rule_set("no-such-set");
  v1::AuthorizeResponse response = Authorize(*gateway, unknown);
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(response.reason(), HasSubstr("no-such-set"));
  EXPECT_TRUE(response.obligations().empty());

  // An empty rule_set means the server's --default_rule_set.
  v1::AuthorizeRequest by_default = Demo(demos, "01-").request;
  by_default.clear_rule_set();
  response = Authorize(*gateway, by_default);
  EXPECT_EQ(response.decision(), v1::PERMIT) << response.reason();
  EXPECT_EQ(response.rule_set(), "shop");

  // Request 07 is permitted only by a client_ip condition; an unparsable IP
  // makes that permit rule err, which deny-overrides turns into
  // INDETERMINATE.
  for (const char* ip : {"not-an-ip", "203.0.113.300", "2001:db8:ba5e::10::25"}) {
    SCOPED_TRACE(ip);
    v1::AuthorizeRequest malformed = Demo(demos, "07-").request;
    malformed.mutable_environment()->set_client_ip(ip);
    response = Authorize(*gateway, malformed);
    EXPECT_NE(response.decision(), v1::PERMIT) << response.reason();
    EXPECT_EQ(response.decision(), v1::INDETERMINATE) << response.reason();
    EXPECT_THAT(response.determining_rules(), ::testing::Contains("admin-manages-from-office"));
    EXPECT_THAT(response.reason(), HasSubstr("admin-manages-from-office"));
    EXPECT_TRUE(response.obligations().empty());
  }
}

}  // namespace
}  // namespace pdp::e2e
