// Prometheus metrics; see metrics.h. Tested by tests/metrics_test.cc and
// tests/ops_integration_test.cc.
#include "service/metrics.h"

#include <grpc/support/log.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/absl_compat.h"
#include "prometheus/text_serializer.h"

namespace pdp::service {

const char* DecisionPathName(DecisionPath path) {
  switch (path) {
    case DecisionPath::kAuthorize:
      return "authorize";
    case DecisionPath::kBatch:
      return "batch";
    case DecisionPath::kEnvoy:
      return "envoy";
    case DecisionPath::kForwardAuth:
      return "forward_auth";
  }
  return "unknown";
}

namespace {

const char* DecisionLabel(int decision) {
  switch (decision) {
    case v1::PERMIT:
      return "permit";
    case v1::DENY:
      return "deny";
    case v1::NOT_APPLICABLE:
      return "not_applicable";
    case v1::INDETERMINATE:
      return "indeterminate";
    default:
      return "unspecified";
  }
}

prometheus::ClientMetric::Label Label(std::string name, std::string value) {
  return prometheus::ClientMetric::Label{std::move(name), std::move(value)};
}

prometheus::MetricFamily Family(std::string name, std::string help,
                                prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddCounter(prometheus::MetricFamily& family,
                std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric& m = family.metric.emplace_back();
  m.label = std::move(labels);
  m.counter.value = value;
}

void AddGauge(prometheus::MetricFamily& family,
              std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric& m = family.metric.emplace_back();
  m.label = std::move(labels);
  m.gauge.value = value;
}

}  // namespace

Metrics::Metrics() : table_(new std::atomic<RuleSetCounters*>[kTableSize]) {
  for (size_t i = 0; i < kTableSize; ++i) table_[i].store(nullptr, std::memory_order_relaxed);
}

Metrics::~Metrics() {
  for (size_t i = 0; i < kTableSize; ++i) delete table_[i].load(std::memory_order_relaxed);
}

int Metrics::Shard() {
  static std::atomic<int> next{0};
  thread_local const int shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

Metrics::RuleSetCounters* Metrics::CountersFor(std::string_view name) {
  const size_t start = absl::Hash<absl::string_view>()(ToAbsl(name)) % kTableSize;
  for (size_t probe = 0; probe < kTableSize; ++probe) {
    std::atomic<RuleSetCounters*>& slot = table_[(start + probe) % kTableSize];
    RuleSetCounters* entry = slot.load(std::memory_order_acquire);
    if (entry == nullptr) {
      // First sight of this name: claim the slot, unless the table holds as
      // many names as the label budget allows.
      if (table_entries_.fetch_add(1, std::memory_order_relaxed) >= kMaxRuleSetLabels) {
        table_entries_.fetch_sub(1, std::memory_order_relaxed);
        return &other_;
      }
      auto fresh = std::make_unique<RuleSetCounters>(std::string(name));
      if (slot.compare_exchange_strong(entry, fresh.get(), std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return fresh.release();
      }
      table_entries_.fetch_sub(1, std::memory_order_relaxed);
      // Another thread filled the slot first; `entry` is what it stored.
    }
    if (entry->name == name) return entry;
  }
  return &other_;
}

void Metrics::CountDecision(DecisionPath path, const v1::AuthorizeResponse& response,
                            int64_t latency_ns) {
  const int p = static_cast<int>(path);
  const int shard = Shard();
  int decision = response.decision();
  if (decision < 0 || decision >= kDecisionKinds) decision = 0;
  // A set that was not loaded answers with version 0: its name came from the
  // caller and never becomes a label.
  RuleSetCounters* counters =
      response.rule_set_version() > 0 ? CountersFor(response.rule_set()) : &no_rule_set_;
  counters->shards[shard].count[p][decision].fetch_add(1, std::memory_order_relaxed);

  int bucket = 0;
  while (bucket < static_cast<int>(kLatencyBoundsNs.size()) &&
         latency_ns > kLatencyBoundsNs[bucket]) {
    ++bucket;
  }
  LatencyShard& l = latency_[shard];
  l.buckets[p][bucket].fetch_add(1, std::memory_order_relaxed);
  l.sum_ns[p].fetch_add(static_cast<uint64_t>(latency_ns > 0 ? latency_ns : 0),
                        std::memory_order_relaxed);
}

void Metrics::RecordCompile(const std::string& rule_set, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  compile_seconds_[rule_set] = seconds;
}

void Metrics::CountStoreError(std::string_view operation, absl::StatusCode code) {
  std::lock_guard<std::mutex> lock(mu_);
  ++store_errors_[{std::string(operation), absl::StatusCodeToString(code)}];
}

void Metrics::SetActiveRuleSetsSource(std::function<std::vector<ActiveRuleSet>()> source) {
  std::lock_guard<std::mutex> lock(mu_);
  active_source_ = std::move(source);
}

void Metrics::SetDecisionLogSource(std::function<DecisionLogStats()> source) {
  std::lock_guard<std::mutex> lock(mu_);
  log_source_ = std::move(source);
}

std::vector<prometheus::MetricFamily> Metrics::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;

  // Decisions, by rule set in name order.
  prometheus::MetricFamily decisions =
      Family("pdp_decisions_total", "Decisions made, by API path, rule set and decision.",
             MetricType::Counter);
  std::vector<const RuleSetCounters*> sets;
  for (size_t i = 0; i < kTableSize; ++i) {
    if (const RuleSetCounters* c = table_[i].load(std::memory_order_acquire)) sets.push_back(c);
  }
  std::sort(sets.begin(), sets.end(),
            [](const RuleSetCounters* a, const RuleSetCounters* b) { return a->name < b->name; });
  sets.push_back(&no_rule_set_);
  sets.push_back(&other_);
  for (const RuleSetCounters* c : sets) {
    for (int p = 0; p < kDecisionPathCount; ++p) {
      for (int d = 0; d < kDecisionKinds; ++d) {
        uint64_t total = 0;
        for (const DecisionShard& s : c->shards) total += s.count[p][d].load(std::memory_order_relaxed);
        if (total == 0) continue;  // series appear once they count something
        AddCounter(decisions,
                   {Label("decision", DecisionLabel(d)),
                    Label("path", DecisionPathName(static_cast<DecisionPath>(p))),
                    Label("rule_set", c->name)},
                   static_cast<double>(total));
      }
    }
  }
  out.push_back(std::move(decisions));

  prometheus::MetricFamily latency = Family(
      "pdp_decision_duration_seconds",
      "Time inside pdpd from receiving a decision request to its answer being ready.",
      MetricType::Histogram);
  for (int p = 0; p < kDecisionPathCount; ++p) {
    uint64_t buckets[kBuckets] = {};
    uint64_t sum_ns = 0;
    for (const LatencyShard& s : latency_) {
      for (int b = 0; b < kBuckets; ++b) buckets[b] += s.buckets[p][b].load(std::memory_order_relaxed);
      sum_ns += s.sum_ns[p].load(std::memory_order_relaxed);
    }
    prometheus::ClientMetric& m = latency.metric.emplace_back();
    m.label = {Label("path", DecisionPathName(static_cast<DecisionPath>(p)))};
    uint64_t cumulative = 0;
    for (int b = 0; b < kBuckets; ++b) {
      cumulative += buckets[b];
      m.histogram.bucket.push_back(
          {cumulative, b < static_cast<int>(kLatencyBoundsNs.size())
                           ? static_cast<double>(kLatencyBoundsNs[b]) / 1e9
                           : std::numeric_limits<double>::infinity()});
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(sum_ns) / 1e9;
  }
  out.push_back(std::move(latency));

  std::function<std::vector<ActiveRuleSet>()> active_source;
  std::function<DecisionLogStats()> log_source;
  std::map<std::string, double> compile_seconds;
  std::map<std::pair<std::string, std::string>, uint64_t> store_errors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_source = active_source_;
    log_source = log_source_;
    compile_seconds = compile_seconds_;
    store_errors = store_errors_;
  }

  prometheus::MetricFamily version = Family(
      "pdp_rule_set_active_version", "Active version of each loaded rule set.", MetricType::Gauge);
  prometheus::MetricFamily rules =
      Family("pdp_rule_set_rules", "Rules in the active version of each rule set.",
             MetricType::Gauge);
  prometheus::MetricFamily memory =
      Family("pdp_rule_set_memory_bytes",
             "Approximate bytes of the compiled decision structure of each rule set.",
             MetricType::Gauge);
  if (active_source) {
    std::vector<ActiveRuleSet> active = active_source();
    std::sort(active.begin(), active.end(),
              [](const ActiveRuleSet& a, const ActiveRuleSet& b) { return a.name < b.name; });
    for (const ActiveRuleSet& set : active) {
      AddGauge(version, {Label("rule_set", set.name)}, static_cast<double>(set.version));
      AddGauge(rules, {Label("rule_set", set.name)}, static_cast<double>(set.rules));
      AddGauge(memory, {Label("rule_set", set.name)}, static_cast<double>(set.memory_bytes));
    }
  }
  out.push_back(std::move(version));
  out.push_back(std::move(rules));
  out.push_back(std::move(memory));

  prometheus::MetricFamily compile = Family(
      "pdp_rule_set_compile_seconds",
      "How long the last compile of each rule set took (push, activation or startup).",
      MetricType::Gauge);
  for (const auto& [name, seconds] : compile_seconds) {
    AddGauge(compile, {Label("rule_set", name)}, seconds);
  }
  out.push_back(std::move(compile));

  prometheus::MetricFamily store = Family(
      "pdp_store_errors_total",
      "Failed store operations (I/O, full disk, read-only or locked database, corruption).",
      MetricType::Counter);
  for (const auto& [key, count] : store_errors) {
    AddCounter(store, {Label("code", key.second), Label("operation", key.first)},
               static_cast<double>(count));
  }
  out.push_back(std::move(store));

  const DecisionLogStats log = log_source ? log_source() : DecisionLogStats{};
  prometheus::MetricFamily lines = Family(
      "pdp_decision_log_lines_total", "Decision-log lines written.", MetricType::Counter);
  AddCounter(lines, {}, static_cast<double>(log.lines));
  out.push_back(std::move(lines));
  prometheus::MetricFamily dropped =
      Family("pdp_decision_log_dropped_total",
             "Decision-log lines dropped because the queue was full.", MetricType::Counter);
  AddCounter(dropped, {}, static_cast<double>(log.dropped));
  out.push_back(std::move(dropped));
  prometheus::MetricFamily errors =
      Family("pdp_decision_log_write_errors_total",
             "Failed writes to the decision log (their lines are lost).", MetricType::Counter);
  AddCounter(errors, {}, static_cast<double>(log.write_errors));
  out.push_back(std::move(errors));

  prometheus::MetricFamily tls = Family(
      "pdp_tls_handshake_failures_total",
      "TLS handshakes with clients that failed (no, expired or foreign certificate, not TLS).",
      MetricType::Counter);
  AddCounter(tls, {},
             static_cast<double>(tls_handshake_failures_.load(std::memory_order_relaxed)));
  out.push_back(std::move(tls));
  return out;
}

std::string Metrics::ExpositionText() const {
  return prometheus::TextSerializer().Serialize(Collect());
}

namespace {

std::atomic<Metrics*> g_log_metrics{nullptr};

void GrpcLog(gpr_log_func_args* args) {
  const char* file = args->file != nullptr ? args->file : "";
  const char* message = args->message != nullptr ? args->message : "";
  if (args->severity == GPR_LOG_SEVERITY_ERROR &&
      absl::EndsWith(file, "ssl_transport_security.cc") &&
      absl::StartsWith(message, "Handshake failed")) {
    if (Metrics* metrics = g_log_metrics.load(std::memory_order_acquire)) {
      metrics->CountTlsHandshakeFailure();
    }
  }
  const char* base = std::strrchr(file, '/');
  const std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
      gpr_log_severity_string(args->severity), " grpc ", base != nullptr ? base + 1 : file, ":",
      args->line, "] ", message, "\n");
  std::fputs(line.c_str(), stderr);
}

}  // namespace

void InstallGrpcLogHook(Metrics* metrics) {
  g_log_metrics.store(metrics, std::memory_order_release);
  gpr_set_log_function(&GrpcLog);
}

}  // namespace pdp::service
