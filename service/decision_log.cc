// The decision log and DecisionRecorder; see decision_log.h. Tested by
// tests/decision_log_test.cc and tests/ops_integration_test.cc.
#include "service/decision_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/absl_compat.h"
#include "google/protobuf/util/json_util.h"
#include "service/access.h"

namespace pdp::service {

// ---------------------------------------------------------------------------
// The queue: a bounded multi-producer queue of pointers (Dmitry Vyukov's
// array of sequenced cells). A push claims a cell with one compare-and-swap
// and fails at once when the queue is full; only the writer thread pops.

class DecisionLog::Queue {
 public:
  explicit Queue(size_t capacity) {
    size_t size = 2;
    while (size < capacity) size <<= 1;
    mask_ = size - 1;
    cells_ = std::make_unique<Cell[]>(size);
    for (size_t i = 0; i < size; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }
  ~Queue() {
    while (PendingDecision* p = Pop()) delete p;
  }

  bool Push(PendingDecision* value) {
    size_t pos = push_pos_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[pos & mask_];
      const size_t seq = cell.seq.load(std::memory_order_acquire);
      const intptr_t diff = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
      if (diff == 0) {
        if (push_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          cell.value = value;
          cell.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = push_pos_.load(std::memory_order_relaxed);
      }
    }
  }

  // Single consumer.
  PendingDecision* Pop() {
    const size_t pos = pop_pos_.load(std::memory_order_relaxed);
    Cell& cell = cells_[pos & mask_];
    if (cell.seq.load(std::memory_order_acquire) != pos + 1) return nullptr;
    PendingDecision* value = cell.value;
    pop_pos_.store(pos + 1, std::memory_order_relaxed);
    cell.seq.store(pos + mask_ + 1, std::memory_order_release);
    return value;
  }

  bool HasItem() const {
    const size_t pos = pop_pos_.load(std::memory_order_relaxed);
    return cells_[pos & mask_].seq.load(std::memory_order_acquire) == pos + 1;
  }

 private:
  struct Cell {
    std::atomic<size_t> seq{0};
    PendingDecision* value = nullptr;
  };
  std::unique_ptr<Cell[]> cells_;
  size_t mask_ = 0;
  alignas(64) std::atomic<size_t> push_pos_{0};
  alignas(64) std::atomic<size_t> pop_pos_{0};
};

// ---------------------------------------------------------------------------
// Sinks.

namespace {

absl::Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat(what, ": write: ", std::strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

class StdoutSink final : public DecisionLogSink {
 public:
  absl::Status Write(std::string_view lines) override {
    return WriteAll(STDOUT_FILENO, lines, "stdout");
  }
};

class RotatingFileSink final : public DecisionLogSink {
 public:
  RotatingFileSink(std::string path, int64_t max_bytes, int max_files)
      : path_(std::move(path)), max_bytes_(max_bytes), max_files_(max_files) {}
  ~RotatingFileSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Open() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0) return absl::UnavailableError(absl::StrCat(path_, ": ", std::strerror(errno)));
    struct stat st;
    size_ = ::fstat(fd_, &st) == 0 ? st.st_size : 0;
    return absl::OkStatus();
  }

  absl::Status Write(std::string_view lines) override {
    if (fd_ < 0) {
      if (absl::Status s = Open(); !s.ok()) return s;
    }
    // Whole lines go into the current file as long as they fit; a line that
    // would overflow it starts a new one (a single line longer than
    // max_bytes gets a file of its own).
    while (!lines.empty()) {
      size_t take = 0;
      while (take < lines.size()) {
        size_t end = lines.find('\n', take);
        end = end == std::string_view::npos ? lines.size() : end + 1;
        if (max_bytes_ > 0 && size_ + static_cast<int64_t>(end) > max_bytes_ &&
            (size_ > 0 || take > 0)) {
          break;
        }
        take = end;
      }
      if (take > 0) {
        if (absl::Status s = WriteAll(fd_, lines.substr(0, take), path_); !s.ok()) return s;
        size_ += static_cast<int64_t>(take);
        lines.remove_prefix(take);
      }
      if (!lines.empty()) {
        if (absl::Status s = Rotate(); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  std::string Numbered(int n) const { return absl::StrCat(path_, ".", n); }

  absl::Status Rotate() {
    ::close(fd_);
    fd_ = -1;
    if (max_files_ <= 0) {
      ::unlink(path_.c_str());
    } else {
      ::unlink(Numbered(max_files_).c_str());
      for (int i = max_files_ - 1; i >= 1; --i) {
        ::rename(Numbered(i).c_str(), Numbered(i + 1).c_str());  // may not exist yet
      }
      if (::rename(path_.c_str(), Numbered(1).c_str()) != 0 && errno != ENOENT) {
        return absl::UnavailableError(
            absl::StrCat("rotate ", path_, ": ", std::strerror(errno)));
      }
    }
    return Open();
  }

  const std::string path_;
  const int64_t max_bytes_;
  const int max_files_;
  int fd_ = -1;
  int64_t size_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DecisionLogSink>> OpenDecisionLogSink(const std::string& path,
                                                                     int64_t max_bytes,
                                                                     int max_files) {
  if (path == "-") return std::make_unique<StdoutSink>();
  if (path.empty()) return absl::InvalidArgumentError("decision log: empty path");
  if (max_bytes < 0) return absl::InvalidArgumentError("decision log: max_bytes < 0");
  if (max_files < 0) return absl::InvalidArgumentError("decision log: max_files < 0");
  auto sink = std::make_unique<RotatingFileSink>(path, max_bytes, max_files);
  if (absl::Status s = sink->Open(); !s.ok()) return s;
  return sink;
}

// ---------------------------------------------------------------------------
// Lines.

namespace {

google::protobuf::Value MaskedValue() {
  google::protobuf::Value v;
  v.set_string_value(kMaskedValue);
  return v;
}

// Masks with `is_sensitive` (null: everything that is an attribute value,
// the client IP and the location).
template <typename Pred>
void MaskWith(const Pred* is_sensitive, v1::DecisionLogEntry* entry) {
  entry->clear_masked();
  if (is_sensitive == nullptr) {
    auto mask_all = [&](google::protobuf::Map<std::string, google::protobuf::Value>* map) {
      for (auto& [key, value] : *map) value = MaskedValue();
    };
    v1::DecisionLogEntry::Attributes* a = entry->mutable_attributes();
    mask_all(a->mutable_subject());
    mask_all(a->mutable_resource());
    mask_all(a->mutable_environment());
    if (!entry->client_ip().empty()) entry->set_client_ip(kMaskedValue);
    if (entry->has_location()) {
      entry->mutable_location()->set_country(kMaskedValue);
      entry->mutable_location()->clear_region();
    }
    entry->add_masked("*");
    return;
  }
  auto sensitive = [&](std::string_view path) {
    if (!(*is_sensitive)(path)) return false;
    entry->add_masked(std::string(path));
    return true;
  };
  if (!entry->subject_id().empty() && sensitive("subject.id")) entry->set_subject_id(kMaskedValue);
  if (entry->subject_roles_size() > 0 && sensitive("subject.roles")) {
    entry->clear_subject_roles();
    entry->add_subject_roles(kMaskedValue);
  }
  if (!entry->action().empty() && sensitive("action")) entry->set_action(kMaskedValue);
  if (!entry->resource().type().empty() && sensitive("resource.type")) {
    entry->mutable_resource()->set_type(kMaskedValue);
  }
  if (!entry->resource().id().empty() && sensitive("resource.id")) {
    entry->mutable_resource()->set_id(kMaskedValue);
  }
  auto mask_map = [&](const char* scope,
                      google::protobuf::Map<std::string, google::protobuf::Value>* map) {
    // Sorted so that `masked` does not depend on the map's order.
    std::vector<std::string> keys;
    for (const auto& [key, value] : *map) keys.push_back(key);
    std::sort(keys.begin(), keys.end());
    for (const std::string& key : keys) {
      if (sensitive(absl::StrCat(scope, ".", key))) (*map)[key] = MaskedValue();
    }
  };
  v1::DecisionLogEntry::Attributes* a = entry->mutable_attributes();
  mask_map("subject", a->mutable_subject());
  mask_map("resource", a->mutable_resource());
  mask_map("environment", a->mutable_environment());
  if (!entry->client_ip().empty() && sensitive("environment.client_ip")) {
    entry->set_client_ip(kMaskedValue);
  }
  if (entry->has_location() && sensitive("environment.location")) {
    entry->mutable_location()->set_country(kMaskedValue);
    entry->mutable_location()->clear_region();
  }
}

// Moves the request's fields into the entry (the request is consumed).
void TakeRequest(v1::AuthorizeRequest* request, v1::DecisionLogEntry* entry) {
  v1::Subject* subject = request->mutable_subject();
  entry->set_subject_id(std::move(*subject->mutable_id()));
  entry->mutable_subject_roles()->Swap(subject->mutable_roles());
  entry->set_action(std::move(*request->mutable_action()));
  entry->mutable_resource()->set_type(std::move(*request->mutable_resource()->mutable_type()));
  entry->mutable_resource()->set_id(std::move(*request->mutable_resource()->mutable_id()));
  v1::DecisionLogEntry::Attributes* a = entry->mutable_attributes();
  a->mutable_subject()->swap(*subject->mutable_attributes());
  a->mutable_resource()->swap(*request->mutable_resource()->mutable_attributes());
  v1::Environment* env = request->mutable_environment();
  a->mutable_environment()->swap(*env->mutable_attributes());
  entry->set_client_ip(std::move(*env->mutable_client_ip()));
  if (env->has_location()) entry->mutable_location()->Swap(env->mutable_location());
  if (env->has_time()) entry->mutable_request_time()->Swap(env->mutable_time());
}

}  // namespace

void MaskSensitive(const engine::Policy* policy, v1::DecisionLogEntry* entry) {
  if (policy == nullptr) {
    MaskWith<std::function<bool(std::string_view)>>(nullptr, entry);
    return;
  }
  const std::function<bool(std::string_view)> pred = [policy](std::string_view path) {
    return policy->IsSensitive(path);
  };
  MaskWith(&pred, entry);
}

std::string DecisionLogLine(const v1::DecisionLogEntry& entry) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string line;
  if (!google::protobuf::util::MessageToJsonString(entry, &line, options).ok()) {
    // Cannot happen for this message (no Any, no invalid enum); keep the
    // line count honest anyway.
    line = R"({"error":"decision log entry could not be printed"})";
  }
  line.push_back('\n');
  return line;
}

// ---------------------------------------------------------------------------
// DecisionLog.

DecisionLog::DecisionLog(std::unique_ptr<DecisionLogSink> sink, Options options,
                         PolicyLookup lookup)
    : sink_(std::move(sink)),
      lookup_(std::move(lookup)),
      queue_(std::make_unique<Queue>(options.queue_capacity)),
      cache_(std::make_unique<SensitiveCache>()) {
  writer_ = std::thread([this] { WriterLoop(); });
}

DecisionLog::~DecisionLog() {
  stopping_.store(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_one();
  }
  writer_.join();
}

bool DecisionLog::Enqueue(std::unique_ptr<PendingDecision> decision) {
  if (!queue_->Push(decision.get())) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  decision.release();
  enqueued_.fetch_add(1, std::memory_order_release);
  // Pairs with the fence in WriterLoop: either the writer sees the line
  // before it sleeps, or this sees that it sleeps and wakes it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed) && sleeping_.exchange(false)) Wake();
  return true;
}

void DecisionLog::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_one();
}

bool DecisionLog::Flush(std::chrono::milliseconds timeout) {
  const uint64_t target = enqueued_.load(std::memory_order_acquire);
  sleeping_.store(false);
  std::unique_lock<std::mutex> lock(mu_);
  cv_.notify_one();
  return flushed_.wait_for(lock, timeout, [&] {
    return handled_.load(std::memory_order_acquire) >= target;
  });
}

DecisionLogStats DecisionLog::stats() const {
  DecisionLogStats s;
  s.lines = lines_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.write_errors = write_errors_.load(std::memory_order_relaxed);
  return s;
}

// The sensitive paths of the versions lines named lately, so that the
// writer looks a rule set up once per version, not once per line.
struct DecisionLog::SensitiveCache {
  struct Known {
    int64_t version = 0;
    absl::flat_hash_set<std::string> paths;
  };
  absl::flat_hash_map<std::string, Known> by_rule_set;
};

size_t DecisionLog::WriteBatch(std::string* buffer) {
  auto& known = cache_->by_rule_set;
  using Known = SensitiveCache::Known;

  constexpr size_t kMaxBatchBytes = 256 << 10;
  size_t count = 0;
  buffer->clear();
  while (buffer->size() < kMaxBatchBytes) {
    std::unique_ptr<PendingDecision> p(queue_->Pop());
    if (!p) break;
    ++count;
    v1::DecisionLogEntry& entry = p->entry;
    TakeRequest(&p->request, &entry);
    const Known* sensitive = nullptr;
    if (entry.rule_set_version() > 0) {
      auto it = known.find(entry.rule_set());
      if (it == known.end() || it->second.version != entry.rule_set_version()) {
        std::shared_ptr<const engine::Policy> policy = lookup_ ? lookup_(entry.rule_set()) : nullptr;
        if (policy && policy->version() == entry.rule_set_version()) {
          if (known.size() > 1024) known.clear();
          Known& k = known[entry.rule_set()];
          k.version = policy->version();
          k.paths.clear();
          for (std::string& path : policy->sensitive_attributes()) k.paths.insert(std::move(path));
          it = known.find(entry.rule_set());
        } else {
          it = known.end();
        }
      }
      if (it != known.end()) sensitive = &it->second;
    }
    if (sensitive == nullptr) {
      MaskWith<std::function<bool(std::string_view)>>(nullptr, &entry);
    } else {
      const std::function<bool(std::string_view)> pred = [sensitive](std::string_view path) {
        return sensitive->paths.contains(ToAbsl(path));
      };
      MaskWith(&pred, &entry);
    }
    buffer->append(DecisionLogLine(entry));
  }
  if (count == 0) return 0;
  if (absl::Status s = sink_->Write(*buffer); s.ok()) {
    lines_.fetch_add(count, std::memory_order_relaxed);
  } else {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  handled_.fetch_add(count, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    flushed_.notify_all();
  }
  return count;
}

void DecisionLog::WriterLoop() {
  std::string buffer;
  for (;;) {
    if (WriteBatch(&buffer) > 0) continue;
    if (stopping_.load()) {
      if (!queue_->HasItem()) return;
      continue;
    }
    sleeping_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (queue_->HasItem()) {
      sleeping_.store(false, std::memory_order_relaxed);
      continue;
    }
    std::unique_lock<std::mutex> lock(mu_);
    // The timeout is a safety net only; Enqueue wakes the writer.
    cv_.wait_for(lock, std::chrono::seconds(1),
                 [&] { return !sleeping_.load() || stopping_.load(); });
    sleeping_.store(false);
  }
}

// ---------------------------------------------------------------------------
// Recording.

namespace {

std::string NewRequestId() {
  static const uint32_t process_nonce = std::random_device()();
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat("pdp-", absl::Hex(process_nonce, absl::kZeroPad8), "-",
                      counter.fetch_add(1, std::memory_order_relaxed) + 1);
}

// A fast per-thread generator for sampling (splitmix64).
double UniformUnit() {
  thread_local uint64_t state =
      std::random_device()() ^ (static_cast<uint64_t>(std::random_device()()) << 32);
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace

CallInfo GrpcCallInfo(const grpc::ServerContextBase& context) {
  CallInfo info;
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context()) {
    info.caller = PeerIdentity(*auth);
  }
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("x-request-id"); it != metadata.end()) {
    info.request_id.assign(it->second.data(), it->second.size());
  }
  return info;
}

DecisionRecorder::DecisionRecorder(Metrics* metrics, DecisionLog* log, Sampling sampling)
    : metrics_(metrics), log_(log), sampling_(sampling) {}

bool DecisionRecorder::SampledIn(v1::Decision decision) const {
  const double rate = decision == v1::PERMIT ? sampling_.permit : sampling_.other;
  if (rate >= 1.0) return true;
  if (rate <= 0.0) return false;
  return UniformUnit() < rate;
}

void DecisionRecorder::Record(const DecisionEvent& event,
                              absl::FunctionRef<void(CallInfo*)> describe_call) const {
  if (!active()) return;
  const v1::AuthorizeResponse& response = *event.response;
  const int64_t latency_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - event.start).count();
  if (metrics_ != nullptr) metrics_->CountDecision(event.path, response, latency_ns);
  if (log_ == nullptr || !SampledIn(response.decision())) return;

  auto pending = std::make_unique<PendingDecision>();
  v1::DecisionLogEntry& e = pending->entry;
  const absl::Time now = absl::Now();
  const int64_t seconds = absl::ToUnixSeconds(now);
  e.mutable_time()->set_seconds(seconds);
  e.mutable_time()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(now - absl::FromUnixSeconds(seconds))));
  CallInfo call;
  describe_call(&call);
  e.set_request_id(call.request_id.empty() ? NewRequestId() : std::move(call.request_id));
  e.set_caller(std::move(call.caller));
  e.set_path(DecisionPathName(event.path));
  if (event.batch_index >= 0) e.set_batch_index(event.batch_index);
  e.set_decision(response.decision());
  e.set_allowed(event.allowed.value_or(response.decision() == v1::PERMIT));
  *e.mutable_determining_rules() = response.determining_rules();
  e.set_rule_set(response.rule_set());
  e.set_rule_set_version(response.rule_set_version());
  e.set_reason(response.reason());
  e.set_latency_us(static_cast<double>(latency_ns) / 1000.0);
  pending->request = event.common != nullptr ? engine::WithCommon(*event.request, *event.common)
                                             : *event.request;
  log_->Enqueue(std::move(pending));
}

}  // namespace pdp::service
