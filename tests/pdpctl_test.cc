// End-to-end tests of the pdpctl CLI: the real binary, run as a child
// process with its stdout, stderr and exit status captured, against a real
// pdpd (tests/support/pdpd_process.h) over mutual TLS, or offline.
//
// Covered: validate (every shipped rule file; a broken file names each rule
// and field), push / list / history / get / rollback / delete as an admin,
// authorize with a gateway certificate, from stdin and offline with --rules,
// gateway and role-less identities refused admin commands, and usage errors
// (exit status 2, also when the certificate files cannot be read).
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/rule_set_io.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "pdp/v1/admin.pb.h"
#include "pdp/v1/authorization.pb.h"
#include "tests/support/pdpd_process.h"

namespace pdp::e2e {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

// Prints a command's outcome when an expectation about it fails.
std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\n--- stdout ---\n", r.out, "--- stderr ---\n", r.err);
}

template <typename Message>
Message FromJson(const std::string& json) {
  Message message;
  auto status = google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return message;
}

std::vector<std::string> RuleFiles() {
  std::vector<std::string> files = {SourcePath("rules/demo.json")};
  for (const auto& entry : std::filesystem::directory_iterator(SourcePath("rules/examples"))) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// rules/requests/*.json with the decision named in each file name.
std::vector<std::pair<std::string, std::string>> RequestFiles() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& entry : std::filesystem::directory_iterator(SourcePath("rules/requests"))) {
    const std::string name = entry.path().filename();
    if (entry.path().extension() != ".json") continue;
    const std::string stem = entry.path().stem();  // "01-....permit"
    std::string decision = stem.substr(stem.rfind('.') + 1);
    std::transform(decision.begin(), decision.end(), decision.begin(), ::toupper);
    out.emplace_back(entry.path(), decision);
  }
  std::sort(out.begin(), out.end());
  EXPECT_EQ(out.size(), 10u);
  return out;
}

// Runs pdpctl with `args`.
CommandResult Pdpctl(std::vector<std::string> args) {
  args.insert(args.begin(), PdpctlBinary());
  return RunCommand(args);
}

// ---------------------------------------------------------------------------
// Offline commands.

TEST(PdpctlOfflineTest, ValidateAcceptsEveryShippedRuleFile) {
  const std::vector<std::string> files = RuleFiles();
  ASSERT_GE(files.size(), 8u);
  for (const std::string& file : files) {
    CommandResult r = Pdpctl({"validate", file});
    EXPECT_EQ(r.exit_code, 0) << file << "\n" << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(file + ": ok")) << Describe(r);
  }
  std::vector<std::string> all = {"validate"};
  all.insert(all.end(), files.begin(), files.end());
  CommandResult r = Pdpctl(all);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("rule set 'shop', 13 rules")) << Describe(r);
}

TEST(PdpctlOfflineTest, ValidateRejectsABrokenFileNamingEveryError) {
  TempDir dir;
  const std::string broken = dir.File("broken.json");
  WriteFile(broken, R"json({
    "name": "broken",
    "rules": [
      {"id": "lab-net", "effect": "permit",
       "target": {"resource_types": ["*"], "actions": ["*"]},
       "conditions": {"client_ip": {"in": ["10.0.0.0/33"]}}},
      {"id": "night-shift", "effect": "permit",
       "target": {"resource_types": ["*"], "actions": ["*"]},
       "conditions": {"time_windows": [{"start": "22:00", "end": "06:00",
                                        "time_zone": "Nowhere/Special"}]}},
      {"id": "lab-net", "effect": "allow",
       "target": {"resource_types": ["*"], "actions": ["*"]}}
    ]})json");
  CommandResult r = Pdpctl({"validate", broken});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(broken)) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("lab-net")) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("rules[0].conditions.client_ip.in[0]")) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("night-shift")) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("rules[1].conditions.time_windows[0].time_zone")) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("rules[2].id")) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("rules[2].effect")) << Describe(r);
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("ok"))) << Describe(r);

  // A good file next to a broken one is still reported ok; the status is 1.
  r = Pdpctl({"validate", SourcePath("rules/demo.json"), broken});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("demo.json: ok")) << Describe(r);

  // Unknown fields are errors, not silently dropped conditions.
  const std::string misspelt = dir.File("misspelt.json");
  WriteFile(misspelt, R"json({"name": "m", "rules": [{"id": "r", "effect": "permit",
      "target": {"resource_types": ["*"], "actions": ["*"]},
      "conditions": {"client_ips": {"in": ["10.0.0.0/8"]}}}]})json");
  r = Pdpctl({"validate", misspelt});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("misspelt.json")) << Describe(r);

  r = Pdpctl({"validate", dir.File("missing.json")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
}

TEST(PdpctlOfflineTest, AuthorizeOfflineWithRulesFile) {
  for (const auto& [file, decision] : RequestFiles()) {
    // --addr names no server: --rules must not need one.
    CommandResult r = Pdpctl(
        {"authorize", "--addr=127.0.0.1:1", "--rules=" + SourcePath("rules/demo.json"), file});
    EXPECT_EQ(r.exit_code, 0) << file << "\n" << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("\"", decision, "\""))) << file << Describe(r);
    const auto response = FromJson<v1::AuthorizeResponse>(r.out);
    EXPECT_EQ(v1::Decision_Name(response.decision()), decision) << file;
    EXPECT_EQ(response.rule_set(), "shop") << file;
  }
  // --explain adds the trace of the candidate rules.
  CommandResult r = Pdpctl({"authorize", "--explain", "--rules=" + SourcePath("rules/demo.json"),
                            RequestFiles().front().first});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_GT(FromJson<v1::AuthorizeResponse>(r.out).trace_size(), 0) << Describe(r);
}

// rules/requests/batches/customer-c-1001.json: one customer, four decisions
// with the subject and action sent once, in the batch's common part.
constexpr const char* kBatchFile = "rules/requests/batches/customer-c-1001.json";
const std::vector<v1::Decision> kBatchDecisions = {v1::PERMIT, v1::NOT_APPLICABLE, v1::PERMIT,
                                                   v1::DENY};

std::vector<v1::Decision> Decisions(const v1::BatchAuthorizeResponse& response) {
  std::vector<v1::Decision> out;
  for (const v1::AuthorizeResponse& r : response.responses()) out.push_back(r.decision());
  return out;
}

TEST(PdpctlOfflineTest, AuthorizeABatchOffline) {
  CommandResult r = Pdpctl({"authorize", "--addr=127.0.0.1:1",
                            "--rules=" + SourcePath("rules/demo.json"), SourcePath(kBatchFile)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const auto response = FromJson<v1::BatchAuthorizeResponse>(r.out);
  EXPECT_EQ(Decisions(response), kBatchDecisions) << Describe(r);
  EXPECT_THAT(response.responses(3).determining_rules(),
              ::testing::Contains("deny-sensitive-without-mfa-claim"));
  // --explain traces every request of the batch.
  r = Pdpctl({"authorize", "--explain", "--rules=" + SourcePath("rules/demo.json"),
              SourcePath(kBatchFile)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const auto explained = FromJson<v1::BatchAuthorizeResponse>(r.out);
  ASSERT_EQ(explained.responses_size(), 4) << Describe(r);
  for (const auto& one : explained.responses()) EXPECT_GT(one.trace_size(), 0) << Describe(r);
}

TEST(PdpctlOfflineTest, UsageErrorsExitWithTwo) {
  CommandResult r = Pdpctl({});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  std::vector<std::string> args = {"rollback", "shop", "latest", "--addr=127.0.0.1:1"};
  const std::vector<std::string> tls = PdpctlTlsFlags("admin");
  args.insert(args.end(), tls.begin(), tls.end());
  r = Pdpctl(args);
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  args = {"push", "--addr=127.0.0.1:1"};
  args.insert(args.end(), tls.begin(), tls.end());
  r = Pdpctl(args);
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
}

// A usage error is a usage error whether or not the certificate files can
// be read: it must be reported (status 2) before pdpctl tries to connect.
TEST(PdpctlOfflineTest, UsageErrorsAreReportedBeforeConnecting) {
  const std::vector<std::string> missing_tls = {
      "--ca=/nonexistent/ca.pem", "--cert=/nonexistent/admin.pem", "--key=/nonexistent/admin.key",
      "--addr=127.0.0.1:1"};
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"no-such-command"}, {"rollback", "shop", "latest"}, {"history"}}) {
    const std::string command = absl::StrJoin(args, " ");
    args.insert(args.end(), missing_tls.begin(), missing_tls.end());
    CommandResult r = Pdpctl(args);
    EXPECT_EQ(r.exit_code, 2) << command << "\n" << Describe(r);
    EXPECT_THAT(r.err, ::testing::Not(HasSubstr("cannot open"))) << command << "\n" << Describe(r);
  }
}

// ---------------------------------------------------------------------------
// Against a running pdpd.

class PdpctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pdpd_.Start(PdpdProcess::StandardFlags(dir_.File("pdp.db"))));
  }

  // pdpctl `args` as `identity` against this test's pdpd.
  CommandResult Run(const std::string& identity, std::vector<std::string> args) {
    args.push_back("--addr=" + pdpd_.address());
    const std::vector<std::string> tls = PdpctlTlsFlags(identity);
    args.insert(args.end(), tls.begin(), tls.end());
    return Pdpctl(args);
  }

  TempDir dir_;
  PdpdProcess pdpd_{dir_.path()};
};

TEST_F(PdpctlTest, AdminPushListHistoryGetRollbackDelete) {
  const std::string file = SourcePath("rules/examples/location.json");
  auto local = engine::ReadRuleSetFile(file);
  ASSERT_TRUE(local.ok()) << local.status();

  CommandResult r = Run("admin", {"push", file, "--comment=first"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto put = FromJson<v1::PutRuleSetResponse>(r.out);
  EXPECT_EQ(put.version().rule_set(), "example-location");
  EXPECT_EQ(put.version().version(), 1);
  EXPECT_EQ(put.version().author(), "spiffe://pdp.local/admin/dev");
  EXPECT_EQ(put.rule_count(), local->rules_size());

  r = Run("admin", {"push", file, "--comment=second", "--expected_version=1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(FromJson<v1::PutRuleSetResponse>(r.out).version().version(), 2);

  // A stale expected version fails with the status name on stderr.
  r = Run("admin", {"push", file, "--expected_version=1"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION")) << Describe(r);
  // validate_only stores nothing.
  r = Run("admin", {"push", file, "--validate_only"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_FALSE(FromJson<v1::PutRuleSetResponse>(r.out).has_version()) << Describe(r);

  r = Run("admin", {"list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto list = FromJson<v1::ListRuleSetsResponse>(r.out);
  ASSERT_EQ(list.rule_sets_size(), 2) << r.out;
  EXPECT_EQ(list.rule_sets(0).rule_set(), "example-location");
  EXPECT_EQ(list.rule_sets(0).version(), 2);
  EXPECT_EQ(list.rule_sets(1).rule_set(), "shop");
  EXPECT_EQ(list.rule_sets(1).version(), 1);

  r = Run("admin", {"history", "example-location"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto history = FromJson<v1::ListVersionsResponse>(r.out);
  ASSERT_EQ(history.versions_size(), 2) << r.out;
  EXPECT_EQ(history.versions(0).version(), 2);
  EXPECT_EQ(history.versions(0).comment(), "second");
  EXPECT_TRUE(history.versions(0).active());
  EXPECT_EQ(history.versions(1).version(), 1);
  EXPECT_EQ(history.versions(1).comment(), "first");
  EXPECT_FALSE(history.versions(1).active());

  r = Run("admin", {"get", "example-location"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto got = FromJson<v1::GetRuleSetResponse>(r.out);
  EXPECT_TRUE(MessageDifferencer::Equals(got.rule_set(), *local)) << r.out;
  EXPECT_EQ(got.version().version(), 2);
  r = Run("admin", {"get", "example-location", "--version=1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(FromJson<v1::GetRuleSetResponse>(r.out).version().version(), 1);

  r = Run("admin", {"rollback", "example-location", "1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto activated = FromJson<v1::ActivateVersionResponse>(r.out);
  EXPECT_EQ(activated.version().version(), 1);
  EXPECT_TRUE(activated.version().active());
  r = Run("admin", {"get", "example-location"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(FromJson<v1::GetRuleSetResponse>(r.out).version().version(), 1);

  r = Run("admin", {"delete", "example-location"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("deleted example-location"));
  r = Run("admin", {"list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  list = FromJson<v1::ListRuleSetsResponse>(r.out);
  ASSERT_EQ(list.rule_sets_size(), 1) << r.out;
  EXPECT_EQ(list.rule_sets(0).rule_set(), "shop");
  r = Run("admin", {"get", "example-location"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND")) << Describe(r);
}

TEST_F(PdpctlTest, AuthorizeWithGatewayCertificate) {
  for (const auto& [file, decision] : RequestFiles()) {
    CommandResult r = Run("gateway", {"authorize", file});
    EXPECT_EQ(r.exit_code, 0) << file << "\n" << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("\"", decision, "\""))) << file << Describe(r);
    const auto response = FromJson<v1::AuthorizeResponse>(r.out);
    EXPECT_EQ(v1::Decision_Name(response.decision()), decision) << file;
    EXPECT_EQ(response.rule_set_version(), 1) << file;
  }
  // A batch with a common part, on the server.
  {
    CommandResult r = Run("gateway", {"authorize", SourcePath(kBatchFile)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    const auto response = FromJson<v1::BatchAuthorizeResponse>(r.out);
    EXPECT_EQ(Decisions(response), kBatchDecisions) << Describe(r);
    EXPECT_EQ(response.responses(0).rule_set_version(), 1);
  }
  // From stdin.
  const std::string first = RequestFiles().front().first;
  std::vector<std::string> args = {PdpctlBinary(), "authorize", "-", "--addr=" + pdpd_.address()};
  const std::vector<std::string> tls = PdpctlTlsFlags("gateway");
  args.insert(args.end(), tls.begin(), tls.end());
  CommandResult r = RunCommand(args, std::chrono::seconds(30), first);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("PERMIT")) << Describe(r);
}

TEST_F(PdpctlTest, HealthIsServingUntilShutdown) {
  CommandResult r = Run("gateway", {"health"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "SERVING\n") << Describe(r);
  r = Run("gateway", {"health", "pdp.v1.Authorization"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  r = Run("gateway", {"health", "no.such.Service"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  ASSERT_EQ(pdpd_.Stop(), 0);
  r = Run("gateway", {"health", "--timeout_seconds=2"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
}

TEST_F(PdpctlTest, GatewayAndOtherIdentitiesCannotAdminister) {
  const std::string file = SourcePath("rules/examples/location.json");
  for (const char* identity : {"gateway", "other"}) {
    SCOPED_TRACE(identity);
    CommandResult r = Run(identity, {"push", file});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED")) << Describe(r);
    EXPECT_TRUE(r.out.empty()) << Describe(r);
    r = Run(identity, {"list"});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED")) << Describe(r);
  }
  CommandResult r = Run("other", {"authorize", RequestFiles().front().first});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED")) << Describe(r);
  r = Run("admin", {"history", "example-location"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND")) << "nothing may have been stored; " << Describe(r);
}

}  // namespace
}  // namespace pdp::e2e
