// Metrics (service/metrics.h) and the /metrics endpoint
// (service/metrics_server.h), without pdpd: exact decision counts by path,
// rule set and decision, also from many threads at once; the latency
// histogram's buckets; the rule_set label budget; gauges and counters fed
// from their sources; the exposition text parses; the gRPC log hook counts
// TLS handshake failures and nothing else; the HTTP endpoint serves it.
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <httplib.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/metrics.h"
#include "service/metrics_server.h"
#include "service/registry.h"
#include "service/rule_set_manager.h"
#include "service/store.h"
#include "tests/support/engine_test_util.h"
#include "tests/support/pdpd_process.h"
#include "tests/support/prometheus_text.h"

namespace pdp {
namespace {

using service::DecisionPath;
using service::Metrics;
using testing_support::Exposition;
using testing_support::ParseExposition;
using ::testing::HasSubstr;

v1::AuthorizeResponse Response(v1::Decision decision, const std::string& rule_set,
                               int64_t version) {
  v1::AuthorizeResponse r;
  r.set_decision(decision);
  r.set_rule_set(rule_set);
  r.set_rule_set_version(version);
  return r;
}

double Decisions(const Exposition& e, const std::string& path, const std::string& rule_set,
                 const std::string& decision) {
  return e.Value("pdp_decisions_total",
                 {{"path", path}, {"rule_set", rule_set}, {"decision", decision}});
}

TEST(MetricsTest, CountsDecisionsByPathRuleSetAndDecision) {
  Metrics m;
  m.CountDecision(DecisionPath::kAuthorize, Response(v1::PERMIT, "shop", 3), 800);
  m.CountDecision(DecisionPath::kAuthorize, Response(v1::PERMIT, "shop", 3), 800);
  m.CountDecision(DecisionPath::kAuthorize, Response(v1::DENY, "shop", 3), 800);
  m.CountDecision(DecisionPath::kBatch, Response(v1::NOT_APPLICABLE, "web", 1), 800);
  m.CountDecision(DecisionPath::kEnvoy, Response(v1::INDETERMINATE, "nope", 0), 800);
  m.CountDecision(DecisionPath::kForwardAuth, Response(v1::PERMIT, "web", 1), 800);

  const std::string text = m.ExpositionText();
  const Exposition e = ParseExposition(text);
  EXPECT_EQ(e.types.at("pdp_decisions_total"), "counter");
  EXPECT_EQ(Decisions(e, "authorize", "shop", "permit"), 2);
  EXPECT_EQ(Decisions(e, "authorize", "shop", "deny"), 1);
  EXPECT_EQ(Decisions(e, "batch", "web", "not_applicable"), 1);
  EXPECT_EQ(Decisions(e, "forward_auth", "web", "permit"), 1);
  // A name no loaded version answered for never becomes a label.
  EXPECT_EQ(Decisions(e, "envoy", "(none)", "indeterminate"), 1);
  EXPECT_THAT(text, ::testing::Not(HasSubstr("nope")));
  // Series that never counted are not exported.
  EXPECT_FALSE(e.Get("pdp_decisions_total",
                     {{"path", "batch"}, {"rule_set", "shop"}, {"decision", "permit"}}));
}

TEST(MetricsTest, LatencyHistogramBuckets) {
  Metrics m;
  const v1::AuthorizeResponse r = Response(v1::PERMIT, "shop", 1);
  m.CountDecision(DecisionPath::kAuthorize, r, 500);          // <= 1 µs
  m.CountDecision(DecisionPath::kAuthorize, r, 1'000);        // <= 1 µs (bounds inclusive)
  m.CountDecision(DecisionPath::kAuthorize, r, 3'000);        // <= 5 µs
  m.CountDecision(DecisionPath::kAuthorize, r, 2'000'000);    // <= 2.5 ms
  m.CountDecision(DecisionPath::kAuthorize, r, 900'000'000);  // +Inf
  const Exposition e = ParseExposition(m.ExpositionText());
  EXPECT_EQ(e.types.at("pdp_decision_duration_seconds"), "histogram");
  auto bucket = [&](const std::string& le) {
    return e.Get("pdp_decision_duration_seconds_bucket", {{"path", "authorize"}, {"le", le}});
  };
  EXPECT_EQ(bucket("1e-06"), 2);
  EXPECT_EQ(bucket("2.5e-06"), 2);
  EXPECT_EQ(bucket("5e-06"), 3);
  EXPECT_EQ(bucket("0.001"), 3);
  EXPECT_EQ(bucket("0.0025"), 4);
  EXPECT_EQ(bucket("0.1"), 4);
  EXPECT_EQ(bucket("+Inf"), 5);
  EXPECT_EQ(e.Value("pdp_decision_duration_seconds_count", {{"path", "authorize"}}), 5);
  EXPECT_NEAR(e.Value("pdp_decision_duration_seconds_sum", {{"path", "authorize"}}),
              (500 + 1'000 + 3'000 + 2'000'000 + 900'000'000) / 1e9, 1e-9);
  EXPECT_EQ(e.Value("pdp_decision_duration_seconds_count", {{"path", "envoy"}}), 0);
}

TEST(MetricsTest, ExactCountsFromManyThreads) {
  Metrics m;
  constexpr int kThreads = 6;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      // Every thread also names a set of its own (inserted concurrently).
      const v1::AuthorizeResponse shared = Response(v1::PERMIT, "shop", 1);
      const v1::AuthorizeResponse own = Response(v1::DENY, absl::StrCat("set-", t), 1);
      for (int i = 0; i < kPerThread; ++i) {
        m.CountDecision(DecisionPath::kAuthorize, shared, 1000);
        m.CountDecision(DecisionPath::kEnvoy, own, 1000);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const Exposition e = ParseExposition(m.ExpositionText());
  EXPECT_EQ(Decisions(e, "authorize", "shop", "permit"), kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(Decisions(e, "envoy", absl::StrCat("set-", t), "deny"), kPerThread);
  }
  EXPECT_EQ(e.Value("pdp_decision_duration_seconds_count", {{"path", "authorize"}}),
            kThreads * kPerThread);
}

TEST(MetricsTest, RuleSetLabelsAreBounded) {
  Metrics m;
  const int n = static_cast<int>(Metrics::kMaxRuleSetLabels) + 20;
  for (int i = 0; i < n; ++i) {
    m.CountDecision(DecisionPath::kAuthorize, Response(v1::PERMIT, absl::StrCat("s", i), 1), 1);
  }
  const Exposition e = ParseExposition(m.ExpositionText());
  int labelled = 0;
  for (int i = 0; i < n; ++i) {
    if (e.Get("pdp_decisions_total",
              {{"path", "authorize"}, {"rule_set", absl::StrCat("s", i)}, {"decision", "permit"}})) {
      ++labelled;
    }
  }
  EXPECT_EQ(labelled, static_cast<int>(Metrics::kMaxRuleSetLabels));
  EXPECT_EQ(Decisions(e, "authorize", "(other)", "permit"), 20);
}

TEST(MetricsTest, GaugesAndCountersFromTheirSources) {
  Metrics m;
  m.SetActiveRuleSetsSource([] {
    return std::vector<service::ActiveRuleSet>{{"shop", 4, 12, 9000}, {"web", 1, 3, 800}};
  });
  m.SetDecisionLogSource([] { return service::DecisionLogStats{10, 2, 1}; });
  m.RecordCompile("shop", 0.25);
  m.RecordCompile("shop", 0.125);  // the last one counts
  m.CountStoreError("put", absl::StatusCode::kResourceExhausted);
  m.CountStoreError("put", absl::StatusCode::kResourceExhausted);
  m.CountStoreError("activate", absl::StatusCode::kUnavailable);
  m.CountTlsHandshakeFailure();

  const Exposition e = ParseExposition(m.ExpositionText());
  EXPECT_EQ(e.Value("pdp_rule_set_active_version", {{"rule_set", "shop"}}), 4);
  EXPECT_EQ(e.Value("pdp_rule_set_rules", {{"rule_set", "shop"}}), 12);
  EXPECT_EQ(e.Value("pdp_rule_set_memory_bytes", {{"rule_set", "web"}}), 800);
  EXPECT_EQ(e.Value("pdp_rule_set_active_version", {{"rule_set", "web"}}), 1);
  EXPECT_EQ(e.types.at("pdp_rule_set_active_version"), "gauge");
  EXPECT_EQ(e.Value("pdp_rule_set_compile_seconds", {{"rule_set", "shop"}}), 0.125);
  EXPECT_EQ(e.Value("pdp_store_errors_total", {{"operation", "put"}, {"code", "RESOURCE_EXHAUSTED"}}),
            2);
  EXPECT_EQ(e.Value("pdp_store_errors_total", {{"operation", "activate"}, {"code", "UNAVAILABLE"}}),
            1);
  EXPECT_EQ(e.Get("pdp_decision_log_lines_total"), 10);
  EXPECT_EQ(e.Get("pdp_decision_log_dropped_total"), 2);
  EXPECT_EQ(e.Get("pdp_decision_log_write_errors_total"), 1);
  EXPECT_EQ(e.Get("pdp_tls_handshake_failures_total"), 1);
}

TEST(MetricsTest, GrpcLogHookCountsOnlyFailedTlsHandshakes) {
  grpc_init();  // gpr_log delivers nothing before gRPC is initialized
  Metrics m;
  service::InstallGrpcLogHook(&m);
  // What gRPC 1.51's TLS layer logs for a client without a valid
  // certificate, and two lines that are not that.
  gpr_log("src/core/tsi/ssl_transport_security.cc", 1493, GPR_LOG_SEVERITY_ERROR,
          "Handshake failed with fatal error SSL_ERROR_SSL: error:0A0000C7:SSL "
          "routines::peer did not return a certificate.");
  gpr_log("src/core/tsi/ssl_transport_security.cc", 200, GPR_LOG_SEVERITY_ERROR,
          "ssl_info_callback: error occured.");
  gpr_log("src/core/lib/surface/server.cc", 10, GPR_LOG_SEVERITY_ERROR, "Handshake failed");
  service::InstallGrpcLogHook(nullptr);
  gpr_log("src/core/tsi/ssl_transport_security.cc", 1493, GPR_LOG_SEVERITY_ERROR,
          "Handshake failed with fatal error SSL_ERROR_SSL: after unhooking");
  EXPECT_EQ(ParseExposition(m.ExpositionText()).Get("pdp_tls_handshake_failures_total"), 1);
  grpc_shutdown();
}

// RuleSetManager reports compile times of pushes and failures of the store
// itself, not answers such as NOT_FOUND or a version conflict.
TEST(MetricsTest, RuleSetManagerReportsCompileTimesAndStoreErrors) {
  e2e::TempDir dir;
  const std::string db = dir.File("pdp.db");
  v1::PutRuleSetRequest put;
  *put.mutable_rule_set() = engine_testing::RuleSetFromJson(
      engine_testing::RuleSetJson("deny-overrides", {engine_testing::RuleJson("r", "permit")},
                                  "shop"));
  Metrics m;
  {
    auto store = service::Store::Open(db);
    ASSERT_TRUE(store.ok()) << store.status();
    service::PolicyRegistry registry;
    service::RuleSetManager manager(store->get(), &registry);
    manager.SetMetrics(&m);
    ASSERT_TRUE(manager.Put(put, "admin").ok());
    EXPECT_EQ(manager.Activate("shop", 9).status().code(), absl::StatusCode::kNotFound);
    v1::PutRuleSetRequest stale = put;
    stale.set_expected_version(5);
    EXPECT_EQ(manager.Put(stale, "admin").status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  Exposition e = ParseExposition(m.ExpositionText());
  EXPECT_GT(e.Value("pdp_rule_set_compile_seconds", {{"rule_set", "shop"}}), 0);
  EXPECT_EQ(e.Get("pdp_store_errors_total", {{"operation", "put"}, {"code", "UNAVAILABLE"}}),
            std::nullopt);
  EXPECT_THAT(m.ExpositionText(), ::testing::Not(HasSubstr("pdp_store_errors_total{")));

  // The same file read-only: every write fails in the store.
  service::StoreOptions options;
  options.read_only = true;
  auto store = service::Store::Open(db, options);
  ASSERT_TRUE(store.ok()) << store.status();
  service::PolicyRegistry registry;
  service::RuleSetManager manager(store->get(), &registry);
  manager.SetMetrics(&m);
  ASSERT_TRUE(manager.LoadAll().ok());
  EXPECT_EQ(manager.Put(put, "admin").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(manager.Put(put, "admin").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(manager.Delete("shop").code(), absl::StatusCode::kUnavailable);
  e = ParseExposition(m.ExpositionText());
  EXPECT_EQ(e.Value("pdp_store_errors_total", {{"operation", "put"}, {"code", "UNAVAILABLE"}}), 2);
  EXPECT_EQ(
      e.Value("pdp_store_errors_total", {{"operation", "deactivate"}, {"code", "UNAVAILABLE"}}), 1);
}

TEST(MetricsServerTest, ServesTheExpositionAtSlashMetrics) {
  Metrics m;
  m.CountDecision(DecisionPath::kAuthorize, Response(v1::PERMIT, "shop", 2), 1000);
  auto server = service::MetricsServer::Start("127.0.0.1:0", [&m] { return m.ExpositionText(); });
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  httplib::Client client("127.0.0.1", (*server)->port());
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_EQ(Decisions(ParseExposition(response->body), "authorize", "shop", "permit"), 1);
  auto other = client.Get("/");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
}

TEST(MetricsServerTest, BadOrBusyAddressesFail) {
  EXPECT_FALSE(service::MetricsServer::Start("no-port", [] { return std::string(); }).ok());
  EXPECT_FALSE(service::MetricsServer::Start("127.0.0.1:99999", [] { return std::string(); }).ok());
  auto first = service::MetricsServer::Start("127.0.0.1:0", [] { return std::string(); });
  ASSERT_TRUE(first.ok());
  auto second = service::MetricsServer::Start(absl::StrCat("127.0.0.1:", (*first)->port()),
                                              [] { return std::string(); });
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace pdp
