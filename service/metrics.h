// pdpd's Prometheus metrics: what it decided (by path, rule set and
// decision), how long deciding took, which rule-set versions are active,
// how long compiling took, store errors, dropped decision-log lines and
// failed TLS handshakes.
//
// The decision path never takes a lock here. CountDecision adds to
// per-thread shards of relaxed atomic counters (a thread picks its shard
// once), found for a rule set in a fixed-size, lock-free, insert-only hash
// table; only a rule-set name never seen before allocates (once). Everything
// else (compile times, store errors) is rare and takes a mutex. A scrape
// sums the shards, so it sees each counter's value at some moment during
// the scrape; counters never go backwards.
//
// Names and labels (the README's "Operations" section lists them all):
//   pdp_decisions_total{path,rule_set,decision}  counter
//   pdp_decision_duration_seconds{path}           histogram
//   pdp_rule_set_active_version{rule_set}, pdp_rule_set_rules{rule_set},
//   pdp_rule_set_memory_bytes{rule_set}           gauges, read at scrape time
//   pdp_rule_set_compile_seconds{rule_set}        gauge: the last compile
//   pdp_store_errors_total{operation,code}        counter
//   pdp_decision_log_{lines,dropped,write_errors}_total  counters
//   pdp_tls_handshake_failures_total              counter (see
//                                                 InstallGrpcLogHook)
//
// The rule_set label takes only names of rule sets that were loaded when
// they decided (at most kMaxRuleSetLabels of them; later ones count as
// "(other)"); a decision no loaded version made (an unknown or deleted set,
// or an Envoy Check refused before any rule ran) counts as "(none)", so
// callers cannot grow the label set.
//
// Thread-safe. Tested by tests/metrics_test.cc and
// tests/ops_integration_test.cc.
#ifndef PDP_SERVICE_METRICS_H_
#define PDP_SERVICE_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "pdp/v1/authorization.pb.h"
#include "prometheus/metric_family.h"

namespace pdp::service {

// Which API a decision was asked through.
enum class DecisionPath : uint8_t { kAuthorize, kBatch, kEnvoy, kForwardAuth };
inline constexpr int kDecisionPathCount = 4;
// "authorize", "batch", "envoy", "forward_auth".
const char* DecisionPathName(DecisionPath path);

// Counts the decision log reports (service/decision_log.h).
struct DecisionLogStats {
  uint64_t lines = 0;         // written
  uint64_t dropped = 0;       // queue full: never written
  uint64_t write_errors = 0;  // a write to the file failed (its lines are lost)
};

// One active rule set as the registry holds it (read at scrape time).
struct ActiveRuleSet {
  std::string name;
  int64_t version = 0;
  size_t rules = 0;
  size_t memory_bytes = 0;
};

class Metrics {
 public:
  // Upper bounds of the latency histogram's buckets, in nanoseconds (1 µs
  // to 100 ms; +Inf is implicit).
  static constexpr std::array<int64_t, 13> kLatencyBoundsNs = {
      1'000,   2'500,   5'000,     10'000,    25'000,    50'000,     100'000,
      250'000, 500'000, 1'000'000, 2'500'000, 10'000'000, 100'000'000};
  static constexpr int kBuckets = kLatencyBoundsNs.size() + 1;
  static constexpr int kDecisionKinds = 5;  // v1::Decision values 0..4
  static constexpr int kShards = 8;
  static constexpr size_t kMaxRuleSetLabels = 256;

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // ---- The decision path: lock-free.

  // One decision: its result, rule set and how long it took.
  void CountDecision(DecisionPath path, const v1::AuthorizeResponse& response,
                     int64_t latency_ns);

  // ---- Off the decision path.

  // A rule set compiled (push, activation or startup) in `seconds`.
  void RecordCompile(const std::string& rule_set, double seconds);
  // A store operation ("put", "activate", ...) failed with `code`.
  void CountStoreError(std::string_view operation, absl::StatusCode code);
  // A TLS handshake with a client failed.
  void CountTlsHandshakeFailure() { tls_handshake_failures_.fetch_add(1, std::memory_order_relaxed); }

  // Where scrapes read the active rule sets and the decision log's counts
  // (either may be left unset). Set before serving.
  void SetActiveRuleSetsSource(std::function<std::vector<ActiveRuleSet>()> source);
  void SetDecisionLogSource(std::function<DecisionLogStats()> source);

  // Every metric, for prometheus::TextSerializer.
  std::vector<prometheus::MetricFamily> Collect() const;
  // Collect() in the Prometheus text exposition format (version 0.0.4).
  std::string ExpositionText() const;

 private:
  // One thread's share of the counters of one rule set.
  struct alignas(64) DecisionShard {
    std::atomic<uint64_t> count[kDecisionPathCount][kDecisionKinds] = {};
  };
  struct RuleSetCounters {
    explicit RuleSetCounters(std::string n) : name(std::move(n)) {}
    const std::string name;
    DecisionShard shards[kShards];
  };
  struct alignas(64) LatencyShard {
    std::atomic<uint64_t> buckets[kDecisionPathCount][kBuckets] = {};
    std::atomic<uint64_t> sum_ns[kDecisionPathCount] = {};
  };

  // The counters of `name`, inserting them on first sight.
  RuleSetCounters* CountersFor(std::string_view name);
  static int Shard();

  // Open addressing over kTableSize slots; a slot, once set, never changes.
  static constexpr size_t kTableSize = 2 * kMaxRuleSetLabels;
  std::unique_ptr<std::atomic<RuleSetCounters*>[]> table_;
  std::atomic<size_t> table_entries_{0};
  RuleSetCounters no_rule_set_{"(none)"};
  RuleSetCounters other_{"(other)"};
  LatencyShard latency_[kShards];
  std::atomic<uint64_t> tls_handshake_failures_{0};

  mutable std::mutex mu_;  // the rest: rare events and configuration
  std::map<std::string, double> compile_seconds_;
  std::map<std::pair<std::string, std::string>, uint64_t> store_errors_;
  std::function<std::vector<ActiveRuleSet>()> active_source_;
  std::function<DecisionLogStats()> log_source_;
};

// Routes gRPC's own log lines (gpr_log) through pdpd: every line is still
// written to stderr, and a server-side "Handshake failed" error from gRPC's
// TLS layer (ssl_transport_security.cc) also counts as a TLS handshake
// failure in `metrics`. gRPC 1.51 offers no other hook that sees failed
// handshakes: the server's certificate verifier is only called for
// certificates OpenSSL already accepted, and channelz counts calls, not
// handshakes. So the count depends on gRPC logging that error, which it
// does at its default verbosity (GRPC_VERBOSITY=ERROR or lower; NONE hides
// them). Process-wide; pass null to stop counting.
void InstallGrpcLogHook(Metrics* metrics);

}  // namespace pdp::service

#endif  // PDP_SERVICE_METRICS_H_
