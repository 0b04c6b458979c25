// The decision log and the one call every decision path makes.
//
// DecisionRecorder::Record is called once per decision by each API that
// decides (Authorize, BatchAuthorize, Envoy's Check; the HTTP forward-auth
// path hooks in the same way). It counts the decision in Metrics and, when
// the decision log is on and the decision is sampled in, queues one log
// line. With the log off or the decision sampled out nothing is built: no
// copy, no string, no allocation, and the caller's identity is never asked
// for.
//
// DecisionLog writes the lines off the request path: a bounded lock-free
// queue (a full queue drops the line and counts it; a decision never
// waits), one writer thread that masks sensitive attributes, prints each
// line with protobuf's JSON printer (pdp.v1.DecisionLogEntry, one object
// per line) and writes batches to a DecisionLogSink: stdout, or a file
// rotated by size that keeps N old files. Its destructor writes everything
// queued, then returns.
//
// Masking: the writer looks the line's rule set up (PolicyLookup) and
// replaces the value of every attribute the active version marks sensitive
// (RuleSet.sensitive_attributes) by "****". If that version is not the one
// that decided (it was replaced meanwhile) or the set is not loaded, every
// attribute value is masked: what is sensitive is then unknown.
//
// Example (pdpd_main.cc):
//   DecisionLog log(*OpenDecisionLogSink("/var/log/pdp/decisions.log",
//                                        100 << 20, 5),
//                   {.queue_capacity = 65536}, [&](const std::string& name) {
//                     return registry.Find(name);
//                   });
//   DecisionRecorder recorder(&metrics, &log, {.permit_sample = 0.1});
//   ...
//   recorder.Record({DecisionPath::kAuthorize, start, &request, &response},
//                   [&](CallInfo* call) { *call = GrpcCallInfo(*context); });
//
// Thread-safe. Tested by tests/decision_log_test.cc and
// tests/ops_integration_test.cc.
#ifndef PDP_SERVICE_DECISION_LOG_H_
#define PDP_SERVICE_DECISION_LOG_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/policy.h"
#include "grpcpp/grpcpp.h"
#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/decision_log.pb.h"
#include "service/metrics.h"

namespace pdp::service {

// The replacement for a masked value.
inline constexpr char kMaskedValue[] = "****";

// Where log lines go. Write gets whole lines ("...\n" each), in order, from
// the writer thread only.
class DecisionLogSink {
 public:
  virtual ~DecisionLogSink() = default;
  virtual absl::Status Write(std::string_view lines) = 0;
};

// "-": stdout. Otherwise the file `path` (created 0600, appended to); when
// writing a line would take it past `max_bytes` (0: never), it is renamed
// to path.1 (path.1 to path.2, ...; path.<max_files> is deleted; with
// max_files 0 the old lines are simply dropped) and a new file started.
// Fails when the file cannot be opened.
absl::StatusOr<std::unique_ptr<DecisionLogSink>> OpenDecisionLogSink(const std::string& path,
                                                                     int64_t max_bytes,
                                                                     int max_files);

// Replaces every sensitive attribute value of `entry` (see the file
// comment). `policy` is the version that decided, or null when unknown
// (then every attribute value is masked). Sets entry->masked.
void MaskSensitive(const engine::Policy* policy, v1::DecisionLogEntry* entry);

// The JSON line for `entry` (protobuf's JSON printer, proto field names,
// no whitespace), ending in "\n".
std::string DecisionLogLine(const v1::DecisionLogEntry& entry);

// A decision waiting to be written: the line without its attributes, and
// the request they come from (masked and copied in by the writer).
struct PendingDecision {
  v1::DecisionLogEntry entry;
  v1::AuthorizeRequest request;
};

class DecisionLog {
 public:
  struct Options {
    // Lines that may wait for the writer (rounded up to a power of two).
    size_t queue_capacity = 65536;
  };
  // The active policy of a rule set, or null (PolicyRegistry::Find).
  using PolicyLookup = std::function<std::shared_ptr<const engine::Policy>(const std::string&)>;

  DecisionLog(std::unique_ptr<DecisionLogSink> sink, Options options, PolicyLookup lookup);
  // Writes every queued line, then stops the writer.
  ~DecisionLog();
  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  // Queues a line without ever waiting. False (and counted as dropped) when
  // the queue is full.
  bool Enqueue(std::unique_ptr<PendingDecision> decision);

  // Waits until every line queued before the call is written (or failed to
  // write), at most `timeout`; false on timeout. For tests and shutdown.
  bool Flush(std::chrono::milliseconds timeout);

  DecisionLogStats stats() const;

 private:
  class Queue;
  struct SensitiveCache;
  void WriterLoop();
  // Pops and writes one batch; returns how many lines it handled.
  size_t WriteBatch(std::string* buffer);
  void Wake();

  std::unique_ptr<DecisionLogSink> sink_;
  PolicyLookup lookup_;
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<SensitiveCache> cache_;  // writer thread only

  std::atomic<uint64_t> enqueued_{0};
  std::atomic<uint64_t> handled_{0};
  std::atomic<uint64_t> lines_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> write_errors_{0};

  // The writer sleeps on cv_ only after announcing it in sleeping_; the
  // first Enqueue that sees the announcement wakes it.
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;       // wakes the writer
  std::condition_variable flushed_;  // handled_ moved
  std::thread writer_;
};

// Who asked, filled in only for decisions that are logged.
struct CallInfo {
  // Verified identity of the caller (the gateway's certificate).
  std::string caller;
  // The request id the caller sent; one is generated when empty.
  std::string request_id;
};

// Caller identity and x-request-id metadata of a gRPC call.
CallInfo GrpcCallInfo(const grpc::ServerContextBase& context);

// One decision, as a decision path hands it to the recorder.
struct DecisionEvent {
  DecisionPath path = DecisionPath::kAuthorize;
  // When the path received the request (DecisionRecorder::Clock::now()).
  std::chrono::steady_clock::time_point start;
  const v1::AuthorizeRequest* request = nullptr;
  const v1::AuthorizeResponse* response = nullptr;
  // What the gateway was told; unset means decision == PERMIT.
  std::optional<bool> allowed;
  // Position in a batch; -1 for none.
  int batch_index = -1;
  // The batch's common part, which completes `request`; null for none.
  const v1::AuthorizeRequest* common = nullptr;
};

// Which decisions the log keeps.
struct DecisionSampling {
  // Fraction of PERMIT decisions logged (0..1).
  double permit = 1.0;
  // Fraction of every other decision (DENY, NOT_APPLICABLE, INDETERMINATE)
  // logged (0..1).
  double other = 1.0;
};

class DecisionRecorder {
 public:
  using Clock = std::chrono::steady_clock;
  using Sampling = DecisionSampling;

  // Either may be null: no metrics, no log. Neither is owned.
  DecisionRecorder(Metrics* metrics, DecisionLog* log, Sampling sampling = {});

  // Counts `event` and, if it is sampled in, queues its log line;
  // `describe_call` is called only then.
  void Record(const DecisionEvent& event, absl::FunctionRef<void(CallInfo*)> describe_call) const;

  // Whether Record does anything at all (callers may skip reading the
  // clock when it does not).
  bool active() const { return metrics_ != nullptr || log_ != nullptr; }

 private:
  bool SampledIn(v1::Decision decision) const;

  Metrics* const metrics_;
  DecisionLog* const log_;
  const Sampling sampling_;
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_DECISION_LOG_H_
