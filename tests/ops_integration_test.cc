// Operations end to end: a real pdpd (mTLS, SQLite, tests/support/
// pdpd_process.h) with --decision_log and --metrics_listen on. Authorize,
// BatchAuthorize and Envoy Check calls over mTLS; then the decision log's
// lines (one per decision, with caller, request id, path, decision, rules,
// version, masked sensitive attributes; all written by a graceful stop)
// and the scraped /metrics (counters moved by exactly the calls made,
// rule-set gauges, compile time, failed TLS handshakes from clients without
// a trusted certificate).
#include <httplib.h>

#include <sched.h>
#include <sys/resource.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "pdp/v1/decision_log.pb.h"
#include "service/worker.h"
#include "tests/support/gateway_support.h"
#include "tests/support/pdpd_process.h"
#include "tests/support/prometheus_text.h"

namespace pdp {
namespace {

namespace auth = ::envoy::service::auth::v3;
using e2e::ContextWithDeadline;
using e2e::PdpdProcess;
using e2e::TempDir;
using testing_support::Exposition;
using testing_support::ParseExposition;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRules[] = R"({
  "name": "ops",
  "sensitive_attributes": ["subject.ssn", "environment.header.authorization"],
  "rules": [
    {"id": "read-docs", "effect": "permit",
     "target": {"resource_types": ["doc"], "actions": ["read"]}},
    {"id": "no-delete", "effect": "deny",
     "target": {"resource_types": ["doc"], "actions": ["delete"]}},
    {"id": "http-get", "effect": "permit",
     "target": {"resource_types": ["http"], "actions": ["get"]}}
  ]
})";

constexpr char kGateway[] = "spiffe://pdp.local/gateway/dev";

// Polls `condition` until it holds or `deadline` passes.
template <typename F>
bool WaitFor(F condition, std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

v1::DecisionLogEntry Parse(const std::string& line) {
  v1::DecisionLogEntry entry;
  const auto status = google::protobuf::util::JsonStringToMessage(line, &entry);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << line;
  return entry;
}

v1::AuthorizeRequest Request(const std::string& action, const std::string& rule_set = "ops") {
  v1::AuthorizeRequest r;
  r.set_rule_set(rule_set);
  r.mutable_subject()->set_id("alice");
  (*r.mutable_subject()->mutable_attributes())["ssn"].set_string_value("078-05-1120");
  (*r.mutable_subject()->mutable_attributes())["team"].set_string_value("blue");
  r.set_action(action);
  r.mutable_resource()->set_type("doc");
  r.mutable_resource()->set_id("d-1");
  return r;
}

auth::CheckRequest Check(const std::string& method, const std::string& request_id) {
  auth::CheckRequest check;
  auth::AttributeContext* a = check.mutable_attributes();
  a->mutable_source()->mutable_address()->mutable_socket_address()->set_address("203.0.113.7");
  auto* http = a->mutable_request()->mutable_http();
  http->set_id(request_id);
  http->set_method(method);
  http->set_path("/docs/1");
  http->set_host("api.example.com");
  (*http->mutable_headers())["authorization"] = "Bearer very-secret";
  (*http->mutable_headers())["user-agent"] = "curl/8";
  (*a->mutable_context_extensions())["pdp_rule_set"] = "ops";
  return check;
}

class OpsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    e2e::WriteFile(dir_.File("ops.json"), kRules);
    std::vector<std::string> flags =
        PdpdProcess::StandardFlags(dir_.File("pdp.db"), dir_.File("ops.json"));
    flags.push_back("--decision_log=" + log_path_);
    flags.push_back("--metrics_listen=127.0.0.1:0");
    flags.push_back("--metrics_port_file=" + dir_.File("metrics.port"));
    flags.push_back("--envoy_header_attributes=user-agent,authorization");
    flags.push_back("--forward_auth_listen=127.0.0.1:0");
    flags.push_back("--forward_auth_port_file=" + dir_.File("forward_auth.port"));
    ASSERT_TRUE(pdpd_.Start(flags));
    ASSERT_TRUE(WaitFor([&] {
      std::ifstream in(dir_.File("forward_auth.port"));
      return static_cast<bool>(in >> forward_auth_port_) && forward_auth_port_ > 0;
    })) << "no forward-auth port file";
    ASSERT_TRUE(WaitFor([&] {
      std::ifstream in(dir_.File("metrics.port"));
      return static_cast<bool>(in >> metrics_port_) && metrics_port_ > 0;
    })) << "no metrics port file";
  }

  Exposition Scrape() {
    httplib::Client client("127.0.0.1", metrics_port_);
    auto response = client.Get("/metrics");
    if (!response) {
      ADD_FAILURE() << "scrape failed";
      return {};
    }
    EXPECT_EQ(response->status, 200);
    return ParseExposition(response->body);
  }

  static double Decisions(const Exposition& e, const std::string& path,
                          const std::string& rule_set, const std::string& decision) {
    return e.Value("pdp_decisions_total",
                   {{"path", path}, {"rule_set", rule_set}, {"decision", decision}});
  }

  TempDir dir_;
  std::string log_path_ = dir_.File("decisions.log");
  PdpdProcess pdpd_{dir_.path()};
  int metrics_port_ = 0;
  int forward_auth_port_ = 0;
};

TEST_F(OpsE2eTest, DecisionsAreLoggedAndCounted) {
  const Exposition before = Scrape();
  EXPECT_EQ(before.Value("pdp_rule_set_active_version", {{"rule_set", "ops"}}), 1);
  EXPECT_EQ(before.Value("pdp_rule_set_rules", {{"rule_set", "ops"}}), 3);
  EXPECT_GT(before.Value("pdp_rule_set_memory_bytes", {{"rule_set", "ops"}}), 0);
  EXPECT_GT(before.Value("pdp_rule_set_compile_seconds", {{"rule_set", "ops"}}), 0);
  EXPECT_EQ(before.Get("pdp_store_errors_total"), std::nullopt);

  auto stub = pdpd_.AuthorizationStub("gateway");
  // Authorize: permit (with a request id), permit, deny, unknown rule set.
  for (const auto& [action, rule_set, request_id] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"read", "ops", "req-1"}, {"read", "ops", ""}, {"delete", "ops", ""},
           {"read", "missing", ""}}) {
    auto context = ContextWithDeadline();
    if (!request_id.empty()) context->AddMetadata("x-request-id", request_id);
    v1::AuthorizeResponse response;
    ASSERT_TRUE(stub->Authorize(context.get(), Request(action, rule_set), &response).ok());
  }
  // BatchAuthorize: permit, deny; the subject, resource and rule set are
  // sent once, in the common part, and logged with each decision.
  {
    v1::BatchAuthorizeRequest batch;
    *batch.mutable_common() = Request("");
    batch.add_requests()->set_action("read");
    batch.add_requests()->set_action("delete");
    auto context = ContextWithDeadline();
    context->AddMetadata("x-request-id", "batch-7");
    v1::BatchAuthorizeResponse response;
    ASSERT_TRUE(stub->BatchAuthorize(context.get(), batch, &response).ok());
    ASSERT_EQ(response.responses_size(), 2);
  }
  // Envoy Check: GET allowed, DELETE denied (no rule: NOT_APPLICABLE).
  auto envoy = pdpd_.EnvoyAuthorizationStub("gateway");
  for (const auto& [method, id, code] :
       std::vector<std::tuple<std::string, std::string, int>>{{"GET", "envoy-1", 0},
                                                              {"DELETE", "envoy-2", 7}}) {
    auto context = ContextWithDeadline();
    auth::CheckResponse response;
    ASSERT_TRUE(envoy->Check(context.get(), Check(method, id), &response).ok());
    EXPECT_EQ(response.status().code(), code) << method;
  }

  // Metrics moved by exactly the calls made.
  const Exposition after = Scrape();
  auto delta = [&](const std::string& path, const std::string& rule_set,
                   const std::string& decision) {
    return Decisions(after, path, rule_set, decision) - Decisions(before, path, rule_set, decision);
  };
  EXPECT_EQ(delta("authorize", "ops", "permit"), 2);
  EXPECT_EQ(delta("authorize", "ops", "deny"), 1);
  EXPECT_EQ(delta("authorize", "(none)", "indeterminate"), 1);
  EXPECT_EQ(delta("batch", "ops", "permit"), 1);
  EXPECT_EQ(delta("batch", "ops", "deny"), 1);
  EXPECT_EQ(delta("envoy", "ops", "permit"), 1);
  EXPECT_EQ(delta("envoy", "ops", "not_applicable"), 1);
  double total_before = 0, total_after = 0;
  for (const auto& [key, value] : before.samples) {
    if (absl::StartsWith(key, "pdp_decisions_total{")) total_before += value;
  }
  for (const auto& [key, value] : after.samples) {
    if (absl::StartsWith(key, "pdp_decisions_total{")) total_after += value;
  }
  EXPECT_EQ(total_after - total_before, 8);
  auto count = [](const Exposition& e, const std::string& path) {
    return e.Value("pdp_decision_duration_seconds_count", {{"path", path}});
  };
  EXPECT_EQ(count(after, "authorize") - count(before, "authorize"), 4);
  EXPECT_EQ(count(after, "batch") - count(before, "batch"), 2);
  EXPECT_EQ(count(after, "envoy") - count(before, "envoy"), 2);
  EXPECT_EQ(after.Value("pdp_decision_duration_seconds_bucket", {{"path", "envoy"}, {"le", "+Inf"}}),
            count(after, "envoy"));

  // The log: one line per decision, in order per connection.
  ASSERT_TRUE(WaitFor([&] { return Lines(log_path_).size() >= 8; }))
      << Lines(log_path_).size() << " lines";
  const std::vector<std::string> lines = Lines(log_path_);
  ASSERT_EQ(lines.size(), 8u);
  std::vector<v1::DecisionLogEntry> e;
  for (const std::string& line : lines) {
    EXPECT_THAT(line, Not(HasSubstr("078-05-1120")));
    EXPECT_THAT(line, Not(HasSubstr("very-secret")));
    e.push_back(Parse(line));
  }
  for (const auto& entry : e) {
    EXPECT_EQ(entry.caller(), kGateway);
    EXPECT_FALSE(entry.request_id().empty());
    EXPECT_GE(entry.latency_us(), 0.0);
  }
  EXPECT_EQ(e[0].path(), "authorize");
  EXPECT_EQ(e[0].request_id(), "req-1");
  EXPECT_EQ(e[0].decision(), v1::PERMIT);
  EXPECT_TRUE(e[0].allowed());
  EXPECT_THAT(e[0].determining_rules(), ElementsAre("read-docs"));
  EXPECT_EQ(e[0].rule_set(), "ops");
  EXPECT_EQ(e[0].rule_set_version(), 1);
  EXPECT_EQ(e[0].subject_id(), "alice");
  EXPECT_EQ(e[0].action(), "read");
  EXPECT_EQ(e[0].resource().type(), "doc");
  EXPECT_EQ(e[0].resource().id(), "d-1");
  EXPECT_EQ(e[0].attributes().subject().at("ssn").string_value(), "****");
  EXPECT_EQ(e[0].attributes().subject().at("team").string_value(), "blue");
  EXPECT_THAT(e[0].masked(), ElementsAre("subject.ssn"));
  EXPECT_NE(e[1].request_id(), e[0].request_id());
  EXPECT_EQ(e[2].decision(), v1::DENY);
  EXPECT_FALSE(e[2].allowed());
  EXPECT_THAT(e[2].determining_rules(), ElementsAre("no-delete"));
  EXPECT_EQ(e[3].decision(), v1::INDETERMINATE);
  EXPECT_EQ(e[3].rule_set(), "missing");
  EXPECT_THAT(e[3].reason(), HasSubstr("not loaded"));
  EXPECT_THAT(e[3].masked(), ElementsAre("*"));  // nothing known about "missing"
  EXPECT_EQ(e[3].attributes().subject().at("team").string_value(), "****");
  for (int i : {4, 5}) {
    EXPECT_EQ(e[i].path(), "batch");
    EXPECT_EQ(e[i].request_id(), "batch-7");
    EXPECT_EQ(e[i].batch_index(), i - 4);
    EXPECT_EQ(e[i].rule_set(), "ops");
    EXPECT_EQ(e[i].subject_id(), "alice");
    EXPECT_EQ(e[i].resource().id(), "d-1");
    EXPECT_EQ(e[i].attributes().subject().at("ssn").string_value(), "****");
    EXPECT_EQ(e[i].attributes().subject().at("team").string_value(), "blue");
  }
  EXPECT_EQ(e[4].action(), "read");
  EXPECT_EQ(e[5].action(), "delete");
  EXPECT_EQ(e[4].decision(), v1::PERMIT);
  EXPECT_EQ(e[5].decision(), v1::DENY);
  EXPECT_EQ(e[6].path(), "envoy");
  EXPECT_EQ(e[6].request_id(), "envoy-1");
  EXPECT_EQ(e[6].decision(), v1::PERMIT);
  EXPECT_TRUE(e[6].allowed());
  EXPECT_EQ(e[6].action(), "get");
  EXPECT_EQ(e[6].client_ip(), "203.0.113.7");
  EXPECT_EQ(e[6].attributes().environment().at("header.authorization").string_value(), "****");
  EXPECT_EQ(e[6].attributes().environment().at("header.user-agent").string_value(), "curl/8");
  EXPECT_EQ(e[7].request_id(), "envoy-2");
  EXPECT_EQ(e[7].decision(), v1::NOT_APPLICABLE);
  EXPECT_FALSE(e[7].allowed());

  // A graceful stop writes every decision made before it.
  for (int i = 0; i < 3; ++i) {
    auto context = ContextWithDeadline();
    v1::AuthorizeResponse response;
    ASSERT_TRUE(stub->Authorize(context.get(), Request("read"), &response).ok());
  }
  EXPECT_EQ(pdpd_.Stop(), 0);
  EXPECT_EQ(Lines(log_path_).size(), 11u);
  EXPECT_THAT(pdpd_.Log(), HasSubstr("decision log: 11 lines written, 0 dropped"));
}

// The HTTP forward-auth path is logged and counted like the others, with
// the gateway's X-Request-Id, and header bytes that are not UTF-8 still
// give a parseable line.
TEST_F(OpsE2eTest, ForwardAuthDecisionsAreLoggedAndCounted) {
  const Exposition before = Scrape();
  e2e::HttpResult allowed = e2e::HttpsGet(
      forward_auth_port_, "gateway", "/auth?pdp_rule_set=ops",
      {{"X-Original-Method", "GET"}, {"X-Original-URI", "/docs/1"}, {"X-Request-Id", "fa-1"},
       {"Authorization", "Bearer very-secret"}, {"User-Agent", std::string("agent\xff\xfe", 7)}});
  EXPECT_EQ(allowed.status, 200) << allowed.error << allowed.body;
  e2e::HttpResult denied = e2e::HttpsGet(forward_auth_port_, "gateway", "/auth?pdp_rule_set=ops",
                                         {{"X-Original-Method", "DELETE"},
                                          {"X-Original-URI", "/docs/1"},
                                          {"X-Request-Id", "fa-2"}});
  EXPECT_EQ(denied.status, 403) << denied.error << denied.body;

  ASSERT_TRUE(WaitFor([&] { return Lines(log_path_).size() >= 2; }));
  const std::vector<std::string> lines = Lines(log_path_);
  ASSERT_EQ(lines.size(), 2u);
  const v1::DecisionLogEntry first = Parse(lines[0]);
  const v1::DecisionLogEntry second = Parse(lines[1]);
  EXPECT_THAT(lines[0], Not(HasSubstr("very-secret")));
  EXPECT_EQ(first.path(), "forward_auth");
  EXPECT_EQ(first.caller(), kGateway);
  EXPECT_EQ(first.request_id(), "fa-1");
  EXPECT_EQ(first.decision(), v1::PERMIT);
  EXPECT_TRUE(first.allowed());
  EXPECT_EQ(first.attributes().environment().at("header.authorization").string_value(), "****");
  EXPECT_EQ(second.path(), "forward_auth");
  EXPECT_EQ(second.request_id(), "fa-2");
  EXPECT_EQ(second.decision(), v1::NOT_APPLICABLE);
  EXPECT_FALSE(second.allowed());

  const Exposition after = Scrape();
  EXPECT_EQ(Decisions(after, "forward_auth", "ops", "permit") -
                Decisions(before, "forward_auth", "ops", "permit"),
            1);
  EXPECT_EQ(Decisions(after, "forward_auth", "ops", "not_applicable") -
                Decisions(before, "forward_auth", "ops", "not_applicable"),
            1);
}

TEST_F(OpsE2eTest, FailedTlsHandshakesAreCounted) {
  EXPECT_EQ(Scrape().Get("pdp_tls_handshake_failures_total"), 0);
  for (const char* identity : {"foreign", "none"}) {
    auto stub = pdpd_.AuthorizationStub(identity);
    auto context = ContextWithDeadline(std::chrono::seconds(5));
    v1::AuthorizeResponse response;
    const grpc::Status status = stub->Authorize(context.get(), Request("read"), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << identity;
  }
  // Each refused client failed at least one handshake (gRPC may retry the
  // connection within the call's deadline).
  EXPECT_TRUE(WaitFor([&] {
    return Scrape().Value("pdp_tls_handshake_failures_total") >= 2;
  })) << Scrape().Value("pdp_tls_handshake_failures_total");
  // None of them got a decision made.
  EXPECT_EQ(Scrape().Get("pdp_decision_duration_seconds_count", {{"path", "authorize"}}), 0);
}

TEST_F(OpsE2eTest, MetricsEndpointIsPlainHttpOnItsOwnPort) {
  httplib::Client client("127.0.0.1", metrics_port_);
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->body, HasSubstr("# TYPE pdp_decisions_total counter"));
  EXPECT_THAT(response->body, HasSubstr("# TYPE pdp_decision_duration_seconds histogram"));
  EXPECT_NE(metrics_port_, pdpd_.port());
  EXPECT_EQ(client.Get("/admin")->status, 404);
}

// pdpd started with the standard flags plus `extra` exits with status 2 and
// logs `message`.
void ExpectRefusesToStart(const TempDir& dir, const std::vector<std::string>& extra,
                          const std::string& message) {
  PdpdProcess pdpd(dir.path());
  std::vector<std::string> flags = PdpdProcess::StandardFlags(dir.File("pdp.db"));
  flags.insert(flags.end(), extra.begin(), extra.end());
  pdpd.Spawn(flags);
  EXPECT_EQ(pdpd.WaitForExit(std::chrono::seconds(20)), 2) << extra.back();
  EXPECT_THAT(pdpd.Log(), HasSubstr(message)) << extra.back();
}

TEST(OpsFlagsTest, BadDecisionLogFlagsRefuseToStart) {
  TempDir dir;
  for (const std::string& bad :
       {std::string("--decision_log_sample=1.5"), std::string("--decision_log_queue=0")}) {
    ExpectRefusesToStart(dir, {"--decision_log=" + dir.File("d.log"), bad},
                         bad.substr(2, bad.find('=') - 2));
  }
  PdpdProcess pdpd(dir.path());
  std::vector<std::string> flags = PdpdProcess::StandardFlags(dir.File("pdp.db"));
  flags.push_back("--decision_log=/nonexistent-dir/d.log");
  pdpd.Spawn(flags);
  EXPECT_EQ(pdpd.WaitForExit(std::chrono::seconds(20)), 2);
  EXPECT_THAT(pdpd.Log(), HasSubstr("/nonexistent-dir/d.log"));
}

// (scheduling policy, nice) of each of process `pid`'s threads, from
// /proc/PID/task/TID/stat (fields 41 and 19).
std::vector<std::pair<int, int>> ThreadScheduling(pid_t pid) {
  std::vector<std::pair<int, int>> threads;
  for (const auto& task : std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"))) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // After the command name, which is in parentheses and may hold spaces,
    // come fields 3 (state) onward.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::vector<std::string> fields =
        absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
    int policy = -1, nice = 100;
    if (fields.size() > 38 && absl::SimpleAtoi(fields[38], &policy) &&
        absl::SimpleAtoi(fields[16], &nice)) {
      threads.emplace_back(policy, nice);
    }
  }
  return threads;
}

TEST(OpsFlagsTest, BackgroundWorkWaitsInSchedIdleUnlessTheFlagSaysNot) {
  TempDir dir;
  ExpectRefusesToStart(dir, {"--background_idle_ms=-1"},
                       "--background_idle_ms=-1: must be 0 or more");
  // pdpd has the test's privileges and limits, so the same probe says what
  // it can do: its two background threads (admin work, freeing replaced
  // sets) wait in SCHED_IDLE, or else run at nice +10, and it says which.
  const bool idle = service::BackgroundClassFor(10) == service::BackgroundClass::kIdle;
  const int own_nice = getpriority(PRIO_PROCESS, 0);
  for (const char* flag : {"--background_idle_ms=2000", "--background_idle_ms=0"}) {
    const bool expect_idle = idle && std::string(flag) != "--background_idle_ms=0";
    PdpdProcess pdpd(dir.path());
    std::vector<std::string> flags = PdpdProcess::StandardFlags(dir.File("pdp.db"));
    flags.push_back(flag);
    ASSERT_TRUE(pdpd.Start(flags)) << flag;
    int in_idle = 0, at_nice_10 = 0;
    for (const auto& [policy, nice] : ThreadScheduling(pdpd.pid())) {
      in_idle += policy == SCHED_IDLE;
      at_nice_10 += policy == SCHED_OTHER && nice == std::min(own_nice + 10, 19);
    }
    EXPECT_EQ(in_idle, expect_idle ? 2 : 0) << flag;
    EXPECT_EQ(at_nice_10, expect_idle ? 0 : 2) << flag;
    if (expect_idle) {
      EXPECT_THAT(pdpd.Log(), HasSubstr("runs in SCHED_IDLE; a task still running after 2000 ms "
                                        "moves to nice +10")) << flag;
    } else if (std::string(flag) != "--background_idle_ms=0") {
      EXPECT_THAT(pdpd.Log(), HasSubstr("background work runs at nice +10, not in SCHED_IDLE"));
    }
    EXPECT_EQ(pdpd.Stop(), 0) << flag;
  }
}

}  // namespace
}  // namespace pdp
