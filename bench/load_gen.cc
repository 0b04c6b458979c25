// load_gen: a closed-loop gRPC load generator for pdp.v1.Authorization, over
// mTLS like a real gateway. See bench/README.md.
//
// --in_flight calls are kept outstanding at all times, spread round-robin
// over --channels connections (each channel has its own subchannel, so its
// own TCP+TLS connection). Each "slot" issues a call with gRPC's callback
// API, and its completion callback records the latency and issues the next
// call, until the measured window ends. Calls that complete during
// --warmup_seconds are not measured; errors are counted whenever they
// happen (warmup, window or drain), never dropped.
//
// Prints one JSON object on stdout: calls/s, decisions/s, latency
// percentiles in µs (exact, from every sample of the window), errors by
// status code, wrong decisions (when --check), and CPU use of the client and,
// with --server_pid, of the server during the window.
//
// With --push_every_seconds, a thread also pushes the same rule set as a new
// version on that period (an admin's PutRuleSet: compile, store, swap on
// the server) and the JSON reports the pushes, their failures and times.
//
//   load_gen --port_file=port --ca=ca.pem --cert=gateway.pem --key=gateway.key
//            --mode=authorize --in_flight=32 --duration_seconds=10   (one command)
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/workload.h"
#include "grpcpp/grpcpp.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "service/tls.h"

ABSL_FLAG(std::string, target, "", "Server address host:port (or use --port_file).");
ABSL_FLAG(std::string, port_file, "", "File holding the server's port; target 127.0.0.1:PORT.");
ABSL_FLAG(std::string, ca, "", "CA bundle that signs the server (PEM).");
ABSL_FLAG(std::string, cert, "", "Client (gateway) certificate (PEM).");
ABSL_FLAG(std::string, key, "", "Client (gateway) private key (PEM).");
ABSL_FLAG(bool, insecure, false, "Plaintext (for a server started with --insecure).");
ABSL_FLAG(std::string, mode, "authorize", "authorize (one decision per call) or batch.");
ABSL_FLAG(int, channels, 4, "Connections; calls in flight are spread over them.");
ABSL_FLAG(int, in_flight, 32, "Calls kept outstanding (closed loop).");
ABSL_FLAG(int, batch_size, 50, "batch: requests per BatchAuthorize call.");
ABSL_FLAG(bool, batch_common, false,
          "batch: each call is one user's requests, the subject and environment "
          "sent once in BatchAuthorizeRequest.common (MakeCommonBatches in "
          "bench/workload.h); false: complete requests of the --requests mix.");
ABSL_FLAG(double, duration_seconds, 10, "Length of the measured window.");
ABSL_FLAG(double, warmup_seconds, 2, "Load before the window, not measured.");
ABSL_FLAG(int, rules, 10000,
          "Rule count of the set on the server: requests are built for "
          "MakeRuleSet(--rules, --rule_set) (bench/workload.h).");
ABSL_FLAG(std::string, rule_set, "bench", "Rule set the requests name.");
ABSL_FLAG(int, requests, 3000, "Distinct requests cycled through (a third each permit, "
                               "deny, not applicable).");
ABSL_FLAG(bool, check, true,
          "Count decisions that differ from the workload's expectation (turn off "
          "against floor_server, which answers with empty responses).");
ABSL_FLAG(int, deadline_ms, 5000, "Deadline of each call; a call past it is an error.");
ABSL_FLAG(int, server_pid, 0, "Also report this process's CPU time during the window.");
ABSL_FLAG(std::string, label, "", "Copied into the JSON output.");
ABSL_FLAG(double, push_every_seconds, 0,
          "Also push the rule set again (a new version, same rules) this often, from "
          "the start of the warmup to the end of the window, over its own connection "
          "with --push_cert/--push_key (an admin identity). 0: no pushes.");
ABSL_FLAG(std::string, push_cert, "", "Admin certificate for --push_every_seconds (PEM).");
ABSL_FLAG(std::string, push_key, "", "Admin private key for --push_every_seconds (PEM).");

namespace pdp::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kCodes = 17;  // grpc::StatusCode 0..16

double CpuSeconds(int pid) {
  if (pid == 0) {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
           (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  }
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the ")" that ends the command name: state is field 3,
  // utime 14 and stime 15.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::vector<std::string> fields;
  size_t pos = paren + 2;
  while (pos < stat.size() && fields.size() < 13) {
    size_t end = stat.find(' ', pos);
    if (end == std::string::npos) end = stat.size();
    fields.push_back(stat.substr(pos, end - pos));
    pos = end + 1;
  }
  if (fields.size() < 13) return -1;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

struct Shared {
  std::vector<std::unique_ptr<v1::Authorization::Stub>> stubs;
  std::vector<WorkloadRequest> requests;
  std::vector<v1::BatchAuthorizeRequest> batches;
  std::vector<std::vector<v1::Decision>> batch_expected;
  std::atomic<uint64_t> next{0};
  bool batch = false;
  bool check = true;
  std::chrono::milliseconds deadline{5000};
  Clock::time_point warm_end, measure_end;

  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
};

// One closed-loop call slot: exactly one call outstanding at a time, so its
// fields are touched by one callback at a time (gRPC orders them).
class Slot {
 public:
  Slot(Shared* shared, v1::Authorization::Stub* stub) : shared_(shared), stub_(stub) {
    samples_.reserve(1 << 16);
  }

  void Start() {
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + shared_->deadline);
    const uint64_t n = shared_->next.fetch_add(1, std::memory_order_relaxed);
    start_ = Clock::now();
    if (shared_->batch) {
      batch_index_ = n % shared_->batches.size();
      stub_->async()->BatchAuthorize(context_.get(), &shared_->batches[batch_index_],
                                     &batch_response_,
                                     [this](grpc::Status s) { Done(std::move(s)); });
    } else {
      request_index_ = n % shared_->requests.size();
      stub_->async()->Authorize(context_.get(), &shared_->requests[request_index_].request,
                                &response_, [this](grpc::Status s) { Done(std::move(s)); });
    }
  }

  const std::vector<uint32_t>& samples() const { return samples_; }
  uint64_t calls() const { return calls_; }
  uint64_t decisions() const { return decisions_; }
  uint64_t wrong() const { return wrong_; }
  uint64_t errors_in_window() const { return errors_in_window_; }
  const std::array<uint64_t, kCodes>& errors() const { return errors_; }
  const std::array<std::string, kCodes>& messages() const { return messages_; }

 private:
  void Done(grpc::Status status) {
    const Clock::time_point end = Clock::now();
    const bool in_window = end >= shared_->warm_end && end < shared_->measure_end;
    if (!status.ok()) {
      const int code = std::clamp(static_cast<int>(status.error_code()), 0, kCodes - 1);
      if (errors_[code]++ == 0) messages_[code] = status.error_message();
      errors_in_window_ += in_window;
    } else if (in_window) {
      const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start_).count();
      samples_.push_back(static_cast<uint32_t>(std::min<int64_t>(ns, UINT32_MAX)));
      ++calls_;
      if (shared_->batch) {
        decisions_ += batch_response_.responses_size();
        if (shared_->check) {
          const auto& expected = shared_->batch_expected[batch_index_];
          if (batch_response_.responses_size() != static_cast<int>(expected.size())) {
            wrong_ += expected.size();
          } else {
            for (int i = 0; i < batch_response_.responses_size(); ++i) {
              wrong_ += batch_response_.responses(i).decision() != expected[i];
            }
          }
        }
      } else {
        ++decisions_;
        if (shared_->check) {
          wrong_ += response_.decision() !=
                    DecisionOf(shared_->requests[request_index_].expect);
        }
      }
    }
    if (Clock::now() < shared_->measure_end) {
      Start();
      return;
    }
    context_.reset();
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (--shared_->running == 0) shared_->cv.notify_all();
  }

  Shared* shared_;
  v1::Authorization::Stub* stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  v1::AuthorizeResponse response_;
  v1::BatchAuthorizeResponse batch_response_;
  size_t request_index_ = 0, batch_index_ = 0;
  Clock::time_point start_;
  std::vector<uint32_t> samples_;
  uint64_t calls_ = 0, decisions_ = 0, wrong_ = 0, errors_in_window_ = 0;
  std::array<uint64_t, kCodes> errors_{};
  std::array<std::string, kCodes> messages_;
};

// Pushes the rule set every `period` until `end`, one call at a time; a
// push that overruns its period is followed at once by the next.
struct PushStats {
  uint64_t pushes = 0, late = 0;
  std::array<uint64_t, kCodes> errors{};
  std::array<std::string, kCodes> messages;
  std::vector<double> ms;
};

void PushLoop(v1::Admin::Stub* admin, v1::PutRuleSetRequest* request,
              Clock::duration period, Clock::time_point end, PushStats* stats) {
  Clock::time_point next = Clock::now();
  while (next < end) {
    std::this_thread::sleep_until(next);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    request->set_comment(absl::StrCat("load_gen update ", stats->pushes));
    v1::PutRuleSetResponse response;
    const Clock::time_point start = Clock::now();
    const grpc::Status status = admin->PutRuleSet(&context, *request, &response);
    const Clock::time_point done = Clock::now();
    ++stats->pushes;
    stats->ms.push_back(std::chrono::duration<double, std::milli>(done - start).count());
    if (!status.ok()) {
      const int code = std::clamp(static_cast<int>(status.error_code()), 0, kCodes - 1);
      if (stats->errors[code]++ == 0) stats->messages[code] = status.error_message();
    }
    next += period;
    if (next < done) {
      ++stats->late;
      next = done;
    }
  }
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

double PercentileUs(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(p * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1] / 1000.0;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "load_gen: %s\n", message.c_str());
  return 2;
}

int Run() {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const int channels = absl::GetFlag(FLAGS_channels);
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  const int batch_size = absl::GetFlag(FLAGS_batch_size);
  const double duration = absl::GetFlag(FLAGS_duration_seconds);
  const double warmup = absl::GetFlag(FLAGS_warmup_seconds);
  if (mode != "authorize" && mode != "batch") return Fail("--mode is authorize or batch");
  if (channels < 1 || in_flight < 1 || batch_size < 1 || duration <= 0 || warmup < 0 ||
      absl::GetFlag(FLAGS_requests) < 3) {
    return Fail("--channels, --in_flight, --batch_size, --requests (>= 3) and "
                "--duration_seconds must be positive");
  }
  std::string target = absl::GetFlag(FLAGS_target);
  if (const std::string pf = absl::GetFlag(FLAGS_port_file); !pf.empty()) {
    std::ifstream in(pf);
    int port = 0;
    if (!(in >> port) || port <= 0) return Fail(absl::StrCat(pf, ": no port"));
    target = absl::StrCat("127.0.0.1:", port);
  }
  if (target.empty()) return Fail("--target or --port_file is required");

  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (absl::GetFlag(FLAGS_insecure)) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    auto tls = service::MakeClientCredentials(
        {absl::GetFlag(FLAGS_cert), absl::GetFlag(FLAGS_key), absl::GetFlag(FLAGS_ca)});
    if (!tls.ok()) return Fail(std::string(tls.status().message()));
    credentials = *tls;
  }

  Shared shared;
  shared.batch = mode == "batch";
  shared.check = absl::GetFlag(FLAGS_check);
  shared.deadline = std::chrono::milliseconds(absl::GetFlag(FLAGS_deadline_ms));
  shared.requests = MakeRequests(absl::GetFlag(FLAGS_rules), absl::GetFlag(FLAGS_requests),
                                 absl::GetFlag(FLAGS_rule_set));
  if (shared.batch && absl::GetFlag(FLAGS_batch_common)) {
    for (WorkloadBatch& w : MakeCommonBatches(absl::GetFlag(FLAGS_rules), 64, batch_size,
                                              absl::GetFlag(FLAGS_rule_set))) {
      shared.batches.push_back(std::move(w.batch));
      shared.batch_expected.push_back(std::move(w.expected));
    }
  } else if (shared.batch) {
    const size_t count = std::max<size_t>(1, std::min<size_t>(64, shared.requests.size()));
    size_t r = 0;
    for (size_t b = 0; b < count; ++b) {
      v1::BatchAuthorizeRequest batch;
      std::vector<v1::Decision> expected;
      for (int i = 0; i < batch_size; ++i) {
        const WorkloadRequest& w = shared.requests[r++ % shared.requests.size()];
        *batch.add_requests() = w.request;
        expected.push_back(DecisionOf(w.expect));
      }
      shared.batches.push_back(std::move(batch));
      shared.batch_expected.push_back(std::move(expected));
    }
  }

  // Distinct channel arguments and a local subchannel pool: one connection
  // per channel, as separate gateway processes or threads would have.
  std::vector<std::shared_ptr<grpc::Channel>> chans;
  const auto connect_deadline = std::chrono::system_clock::now() + std::chrono::seconds(10);
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("pdp.bench.channel", i);
    args.SetMaxReceiveMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(target, credentials, args);
    if (!channel->WaitForConnected(connect_deadline)) {
      return Fail(absl::StrCat("channel ", i, " to ", target, " did not connect within 10 s"));
    }
    shared.stubs.push_back(v1::Authorization::NewStub(channel));
    chans.push_back(std::move(channel));
  }

  const double push_every = absl::GetFlag(FLAGS_push_every_seconds);
  std::unique_ptr<v1::Admin::Stub> admin;
  v1::PutRuleSetRequest put;
  if (push_every > 0) {
    auto admin_credentials = service::MakeClientCredentials(
        {absl::GetFlag(FLAGS_push_cert), absl::GetFlag(FLAGS_push_key), absl::GetFlag(FLAGS_ca)});
    if (!admin_credentials.ok()) return Fail(std::string(admin_credentials.status().message()));
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetString("pdp.bench.channel", "admin");
    auto channel = grpc::CreateCustomChannel(target, *admin_credentials, args);
    if (!channel->WaitForConnected(connect_deadline)) {
      return Fail(absl::StrCat("admin channel to ", target, " did not connect within 10 s"));
    }
    admin = v1::Admin::NewStub(channel);
    *put.mutable_rule_set() = MakeRuleSet(absl::GetFlag(FLAGS_rules), absl::GetFlag(FLAGS_rule_set));
  }

  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < in_flight; ++i) {
    slots.push_back(std::make_unique<Slot>(&shared, shared.stubs[i % channels].get()));
  }
  const Clock::time_point t0 = Clock::now();
  shared.warm_end = t0 + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(warmup));
  shared.measure_end = shared.warm_end + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(duration));
  shared.running = in_flight;
  for (auto& slot : slots) slot->Start();
  PushStats push_stats;
  std::thread pusher;
  if (admin) {
    pusher = std::thread(PushLoop, admin.get(), &put,
                         std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(push_every)),
                         shared.measure_end, &push_stats);
  }

  const int server_pid = absl::GetFlag(FLAGS_server_pid);
  std::this_thread::sleep_until(shared.warm_end);
  const double client_cpu0 = CpuSeconds(0);
  const double server_cpu0 = server_pid ? CpuSeconds(server_pid) : 0;
  std::this_thread::sleep_until(shared.measure_end);
  const double client_cpu1 = CpuSeconds(0);
  const double server_cpu1 = server_pid ? CpuSeconds(server_pid) : 0;
  if (pusher.joinable()) pusher.join();  // its pushes have deadlines too
  {
    // Outstanding calls finish within their deadline.
    std::unique_lock<std::mutex> lock(shared.mu);
    if (!shared.cv.wait_for(lock, shared.deadline + std::chrono::seconds(5),
                            [&] { return shared.running == 0; })) {
      return Fail("calls still outstanding past their deadline");
    }
  }

  std::vector<uint32_t> samples;
  uint64_t calls = 0, decisions = 0, wrong = 0, errors_in_window = 0;
  std::array<uint64_t, kCodes> errors{};
  std::array<std::string, kCodes> messages;
  for (const auto& slot : slots) {
    samples.insert(samples.end(), slot->samples().begin(), slot->samples().end());
    calls += slot->calls();
    decisions += slot->decisions();
    wrong += slot->wrong();
    errors_in_window += slot->errors_in_window();
    for (int c = 0; c < kCodes; ++c) {
      errors[c] += slot->errors()[c];
      if (messages[c].empty()) messages[c] = slot->messages()[c];
    }
  }
  std::sort(samples.begin(), samples.end());
  double sum = 0;
  for (uint32_t s : samples) sum += s;
  uint64_t error_total = 0;
  std::string by_code, first_messages;
  for (int c = 0; c < kCodes; ++c) {
    if (errors[c] == 0) continue;
    error_total += errors[c];
    const std::string name(absl::StatusCodeToString(static_cast<absl::StatusCode>(c)));
    absl::StrAppend(&by_code, by_code.empty() ? "" : ", ", JsonString(name), ": ", errors[c]);
    absl::StrAppend(&first_messages, first_messages.empty() ? "" : ", ", JsonString(name), ": ",
                    JsonString(messages[c]));
  }

  std::string out = "{\n";
  auto field = [&](const std::string& name, const std::string& value) {
    absl::StrAppend(&out, "  ", JsonString(name), ": ", value, ",\n");
  };
  auto number = [](double v) { return absl::StrFormat("%.3f", v); };
  field("label", JsonString(absl::GetFlag(FLAGS_label)));
  field("mode", JsonString(mode));
  field("target", JsonString(target));
  field("channels", absl::StrCat(channels));
  field("in_flight", absl::StrCat(in_flight));
  field("batch_size", absl::StrCat(shared.batch ? batch_size : 1));
  field("batch_common", shared.batch && absl::GetFlag(FLAGS_batch_common) ? "true" : "false");
  field("rules", absl::StrCat(absl::GetFlag(FLAGS_rules)));
  field("warmup_seconds", number(warmup));
  field("duration_seconds", number(duration));
  field("calls", absl::StrCat(calls));
  field("calls_per_second", number(calls / duration));
  field("decisions_per_second", number(decisions / duration));
  field("latency_us",
        absl::StrFormat("{\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p99.9\": %.1f, "
                        "\"max\": %.1f, \"mean\": %.1f}",
                        PercentileUs(samples, 0.50), PercentileUs(samples, 0.90),
                        PercentileUs(samples, 0.99), PercentileUs(samples, 0.999),
                        samples.empty() ? 0.0 : samples.back() / 1000.0,
                        samples.empty() ? 0.0 : sum / samples.size() / 1000.0));
  field("errors", absl::StrCat(error_total));
  field("errors_in_window", absl::StrCat(errors_in_window));
  field("errors_by_code", absl::StrCat("{", by_code, "}"));
  field("error_messages", absl::StrCat("{", first_messages, "}"));
  field("checked", shared.check ? "true" : "false");
  field("wrong_decisions", absl::StrCat(wrong));
  field("client_cpu_util", number((client_cpu1 - client_cpu0) / duration));
  if (server_pid) {
    field("server_cpu_util", number((server_cpu1 - server_cpu0) / duration));
    field("server_cpu_us_per_call",
          number(calls ? (server_cpu1 - server_cpu0) * 1e6 / calls : 0));
  }
  if (admin) {
    uint64_t failed = 0;
    std::string push_codes;
    for (int c = 0; c < kCodes; ++c) {
      if (push_stats.errors[c] == 0) continue;
      failed += push_stats.errors[c];
      const std::string name(absl::StatusCodeToString(static_cast<absl::StatusCode>(c)));
      absl::StrAppend(&push_codes, push_codes.empty() ? "" : ", ", JsonString(name), ": ",
                      JsonString(absl::StrCat(push_stats.errors[c], " x ",
                                              push_stats.messages[c])));
    }
    std::sort(push_stats.ms.begin(), push_stats.ms.end());
    field("push_every_seconds", number(push_every));
    field("pushes", absl::StrCat(push_stats.pushes));
    field("push_failures", absl::StrCat(failed));
    field("pushes_late", absl::StrCat(push_stats.late));
    field("push_errors", absl::StrCat("{", push_codes, "}"));
    field("push_ms_p50", number(push_stats.ms.empty() ? 0 : push_stats.ms[push_stats.ms.size() / 2]));
    field("push_ms_max", number(push_stats.ms.empty() ? 0 : push_stats.ms.back()));
  }
  out.resize(out.size() - 2);  // the last ",\n"
  out += "\n}\n";
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace pdp::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "load_gen: closed-loop gRPC load on pdp.v1.Authorization; JSON on stdout.\n"
      "  load_gen --port_file=F --ca=ca.pem --cert=gateway.pem --key=gateway.key \\\n"
      "           [--mode=authorize|batch [--batch_size=50] [--batch_common]] \\\n"
      "           [--in_flight=32] [--channels=4] \\\n"
      "           [--duration_seconds=10] [--warmup_seconds=2] [--rules=10000]");
  absl::ParseCommandLine(argc, argv);
  return pdp::bench::Run();
}
