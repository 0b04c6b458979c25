// The decision log (service/decision_log.h), without a server: lines parse
// back with protobuf's JSON parser and carry every field; sensitive
// attributes are masked (and everything is masked when the deciding
// version is unknown); sampling keeps the configured share of permits and
// every deny; nothing is built for a decision that is not logged; a full
// queue with a blocked writer drops and counts, never waits; the file sink
// rotates by size and keeps N files; destruction writes what was queued.
#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "engine/absl_compat.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "service/decision_log.h"
#include "tests/support/engine_test_util.h"
#include "tests/support/pdpd_process.h"

namespace pdp {
namespace {

using service::CallInfo;
using service::DecisionEvent;
using service::DecisionLog;
using service::DecisionLogSink;
using service::DecisionPath;
using service::DecisionRecorder;
using service::PendingDecision;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr auto kTimeout = std::chrono::seconds(10);

// Collects written lines; can hold the writer inside Write until released.
class CaptureSink final : public DecisionLogSink {
 public:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> lines;
    bool block = false;
    int writers_inside = 0;
  };
  explicit CaptureSink(std::shared_ptr<State> state) : state_(std::move(state)) {}

  absl::Status Write(std::string_view data) override {
    std::unique_lock<std::mutex> lock(state_->mu);
    ++state_->writers_inside;
    state_->cv.notify_all();
    state_->cv.wait(lock, [&] { return !state_->block; });
    --state_->writers_inside;
    for (absl::string_view line : absl::StrSplit(ToAbsl(data), '\n', absl::SkipEmpty())) {
      state_->lines.emplace_back(line);
    }
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<State> state_;
};

constexpr char kRules[] = R"({
  "name": "shop",
  "sensitive_attributes": ["subject.ssn", "subject.id", "resource.owner_email",
                           "environment.header.authorization"],
  "rules": [
    {"id": "read-orders", "effect": "permit",
     "target": {"resource_types": ["order"], "actions": ["read"]}},
    {"id": "no-delete", "effect": "deny",
     "target": {"resource_types": ["order"], "actions": ["delete"]}}
  ]
})";

constexpr char kRequest[] = R"({
  "subject": {"id": "alice@example.com", "roles": ["support"],
              "attributes": {"ssn": "078-05-1120", "department": "care"}},
  "action": "read",
  "resource": {"type": "order", "id": "o-17",
               "attributes": {"owner_email": "bob@example.com", "total": 12.5}},
  "environment": {"client_ip": "10.1.2.3", "time": "2026-11-24T10:00:00Z",
                  "attributes": {"header.authorization": "Bearer secret-token",
                                 "header.user-agent": "curl/8"}}
})";

struct Fixture {
  std::shared_ptr<const engine::Policy> policy =
      engine_testing::CompileOrDie(kRules, {.version = 3});
  std::shared_ptr<CaptureSink::State> state = std::make_shared<CaptureSink::State>();

  std::unique_ptr<DecisionLog> MakeLog(size_t capacity = 1024) {
    return std::make_unique<DecisionLog>(
        std::make_unique<CaptureSink>(state), DecisionLog::Options{capacity},
        [this](const std::string& name) {
          return name == policy->name() ? policy : nullptr;
        });
  }
  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> lock(state->mu);
    return state->lines;
  }
};

v1::DecisionLogEntry ParseLine(const std::string& line) {
  v1::DecisionLogEntry entry;
  const auto status = google::protobuf::util::JsonStringToMessage(line, &entry);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << line;
  return entry;
}

// An event received now, not in a batch, with no explicit gateway answer.
DecisionEvent EventFor(DecisionPath path, const v1::AuthorizeRequest& request,
                       const v1::AuthorizeResponse& response) {
  DecisionEvent event;
  event.path = path;
  event.start = DecisionRecorder::Clock::now();
  event.request = &request;
  event.response = &response;
  return event;
}

void Record(const DecisionRecorder& recorder, const v1::AuthorizeRequest& request,
            const v1::AuthorizeResponse& response, DecisionPath path = DecisionPath::kAuthorize,
            CallInfo call = {"spiffe://pdp.local/gateway/dev", "req-42"}) {
  recorder.Record(EventFor(path, request, response),
                  [&](CallInfo* out) { *out = call; });
}

TEST(DecisionLogTest, LineIsJsonWithEveryField) {
  Fixture f;
  auto log = f.MakeLog();
  DecisionRecorder recorder(nullptr, log.get());
  const v1::AuthorizeRequest request = engine_testing::RequestFromJson(kRequest);
  const v1::AuthorizeResponse response = engine_testing::Decide(*f.policy, request);
  ASSERT_EQ(response.decision(), v1::PERMIT);
  const absl::Time before = absl::Now();
  Record(recorder, request, response);
  ASSERT_TRUE(log->Flush(kTimeout));

  const std::vector<std::string> lines = f.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find('\n'), std::string::npos);
  const v1::DecisionLogEntry e = ParseLine(lines[0]);
  EXPECT_EQ(e.request_id(), "req-42");
  EXPECT_EQ(e.caller(), "spiffe://pdp.local/gateway/dev");
  EXPECT_EQ(e.path(), "authorize");
  EXPECT_FALSE(e.has_batch_index());
  EXPECT_EQ(e.decision(), v1::PERMIT);
  EXPECT_TRUE(e.allowed());
  EXPECT_THAT(e.determining_rules(), ElementsAre("read-orders"));
  EXPECT_EQ(e.rule_set(), "shop");
  EXPECT_EQ(e.rule_set_version(), 3);
  EXPECT_EQ(e.reason(), response.reason());
  EXPECT_GT(e.latency_us(), 0.0);
  EXPECT_LT(e.latency_us(), 10e6);
  EXPECT_EQ(e.action(), "read");
  EXPECT_EQ(e.resource().type(), "order");
  EXPECT_EQ(e.resource().id(), "o-17");
  EXPECT_THAT(e.subject_roles(), ElementsAre("support"));
  EXPECT_EQ(e.client_ip(), "10.1.2.3");
  EXPECT_EQ(e.request_time().seconds(), absl::ToUnixSeconds(engine_testing::UtcTime("2026-11-24T10:00:00Z")));
  const absl::Time logged = absl::FromUnixSeconds(e.time().seconds()) + absl::Nanoseconds(e.time().nanos());
  EXPECT_GE(logged, before - absl::Seconds(1));
  EXPECT_LE(logged, absl::Now());
  EXPECT_EQ(e.attributes().subject().at("department").string_value(), "care");
  EXPECT_EQ(e.attributes().resource().at("total").number_value(), 12.5);
  EXPECT_EQ(e.attributes().environment().at("header.user-agent").string_value(), "curl/8");
  // Field names as in the proto (what the README documents), enum by name.
  EXPECT_THAT(lines[0], HasSubstr(R"("decision":"PERMIT")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("rule_set_version":"3")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("determining_rules":["read-orders"])"));
}

TEST(DecisionLogTest, SensitiveAttributesAreMasked) {
  Fixture f;
  auto log = f.MakeLog();
  DecisionRecorder recorder(nullptr, log.get());
  const v1::AuthorizeRequest request = engine_testing::RequestFromJson(kRequest);
  Record(recorder, request, engine_testing::Decide(*f.policy, request));
  ASSERT_TRUE(log->Flush(kTimeout));
  const std::vector<std::string> lines = f.Lines();
  ASSERT_EQ(lines.size(), 1u);
  for (const char* secret : {"078-05-1120", "alice@example.com", "bob@example.com",
                             "secret-token"}) {
    EXPECT_THAT(lines[0], Not(HasSubstr(secret)));
  }
  const v1::DecisionLogEntry e = ParseLine(lines[0]);
  EXPECT_EQ(e.subject_id(), "****");
  EXPECT_EQ(e.attributes().subject().at("ssn").string_value(), "****");
  EXPECT_EQ(e.attributes().resource().at("owner_email").string_value(), "****");
  EXPECT_EQ(e.attributes().environment().at("header.authorization").string_value(), "****");
  // What is not marked stays readable.
  EXPECT_EQ(e.attributes().subject().at("department").string_value(), "care");
  EXPECT_EQ(e.resource().id(), "o-17");
  EXPECT_EQ(e.client_ip(), "10.1.2.3");
  EXPECT_THAT(e.masked(),
              UnorderedElementsAre("subject.id", "subject.ssn", "resource.owner_email",
                                   "environment.header.authorization"));
}

TEST(DecisionLogTest, EverythingMaskedWhenTheDecidingVersionIsUnknown) {
  Fixture f;
  auto log = f.MakeLog();
  DecisionRecorder recorder(nullptr, log.get());
  const v1::AuthorizeRequest request = engine_testing::RequestFromJson(kRequest);

  // A set that is not loaded: nothing says what is sensitive.
  v1::AuthorizeResponse unknown;
  unknown.set_decision(v1::INDETERMINATE);
  unknown.set_rule_set("nope");
  unknown.set_reason("rule set 'nope' is not loaded; nothing can be permitted");
  Record(recorder, request, unknown);
  // The set is loaded, but the version that decided was replaced meanwhile.
  v1::AuthorizeResponse replaced = engine_testing::Decide(*f.policy, request);
  replaced.set_rule_set_version(2);
  Record(recorder, request, replaced);
  ASSERT_TRUE(log->Flush(kTimeout));

  const std::vector<std::string> lines = f.Lines();
  ASSERT_EQ(lines.size(), 2u);
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    const v1::DecisionLogEntry e = ParseLine(line);
    EXPECT_THAT(e.masked(), ElementsAre("*"));
    EXPECT_EQ(e.attributes().subject().at("department").string_value(), "****");
    EXPECT_EQ(e.attributes().subject().at("ssn").string_value(), "****");
    EXPECT_EQ(e.attributes().resource().at("total").string_value(), "****");
    EXPECT_EQ(e.attributes().environment().at("header.user-agent").string_value(), "****");
    EXPECT_EQ(e.client_ip(), "****");
    EXPECT_THAT(line, Not(HasSubstr("078-05-1120")));
    EXPECT_THAT(line, Not(HasSubstr("secret-token")));
  }
}

TEST(DecisionLogTest, MaskSensitiveWithAPolicyAndWithout) {
  Fixture f;
  v1::DecisionLogEntry entry;
  (*entry.mutable_attributes()->mutable_subject())["ssn"].set_string_value("078-05-1120");
  (*entry.mutable_attributes()->mutable_subject())["level"].set_number_value(2);
  v1::DecisionLogEntry all = entry;
  service::MaskSensitive(f.policy.get(), &entry);
  EXPECT_EQ(entry.attributes().subject().at("ssn").string_value(), "****");
  EXPECT_EQ(entry.attributes().subject().at("level").number_value(), 2);
  EXPECT_THAT(entry.masked(), ElementsAre("subject.ssn"));
  service::MaskSensitive(nullptr, &all);
  EXPECT_EQ(all.attributes().subject().at("level").string_value(), "****");
  EXPECT_THAT(all.masked(), ElementsAre("*"));
}

TEST(DecisionLogTest, SamplingKeepsItsShareOfPermitsAndEveryDeny) {
  Fixture f;
  auto log = f.MakeLog(1 << 14);
  const v1::AuthorizeRequest permit_request = engine_testing::RequestFromJson(kRequest);
  v1::AuthorizeRequest deny_request = permit_request;
  deny_request.set_action("delete");
  const v1::AuthorizeResponse permit = engine_testing::Decide(*f.policy, permit_request);
  const v1::AuthorizeResponse deny = engine_testing::Decide(*f.policy, deny_request);
  ASSERT_EQ(permit.decision(), v1::PERMIT);
  ASSERT_EQ(deny.decision(), v1::DENY);

  DecisionRecorder none(nullptr, log.get(), {.permit = 0.0, .other = 1.0});
  DecisionRecorder half(nullptr, log.get(), {.permit = 0.5, .other = 1.0});
  constexpr int kN = 4000;
  for (int i = 0; i < kN; ++i) {
    Record(none, permit_request, permit);
    Record(none, deny_request, deny);
  }
  ASSERT_TRUE(log->Flush(kTimeout));
  std::vector<std::string> lines = f.Lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(kN));
  for (const std::string& line : lines) ASSERT_THAT(line, HasSubstr(R"("decision":"DENY")"));

  {
    std::lock_guard<std::mutex> lock(f.state->mu);
    f.state->lines.clear();
  }
  for (int i = 0; i < kN; ++i) Record(half, permit_request, permit);
  ASSERT_TRUE(log->Flush(kTimeout));
  // Binomial(4000, 0.5): sd ~32; ±300 is ~9 sd.
  EXPECT_GT(f.Lines().size(), static_cast<size_t>(kN / 2 - 300));
  EXPECT_LT(f.Lines().size(), static_cast<size_t>(kN / 2 + 300));
  EXPECT_EQ(log->stats().dropped, 0u);
}

TEST(DecisionLogTest, NothingIsBuiltForADecisionThatIsNotLogged) {
  Fixture f;
  auto log = f.MakeLog();
  const v1::AuthorizeRequest request = engine_testing::RequestFromJson(kRequest);
  const v1::AuthorizeResponse permit = engine_testing::Decide(*f.policy, request);
  int asked = 0;
  auto describe = [&](CallInfo*) { ++asked; };
  const DecisionEvent event = EventFor(DecisionPath::kAuthorize, request, permit);
  DecisionRecorder off(nullptr, nullptr);
  EXPECT_FALSE(off.active());
  off.Record(event, describe);
  DecisionRecorder sampled_out(nullptr, log.get(), {.permit = 0.0, .other = 1.0});
  sampled_out.Record(event, describe);
  EXPECT_EQ(asked, 0);
  ASSERT_TRUE(log->Flush(kTimeout));
  EXPECT_TRUE(f.Lines().empty());
  EXPECT_EQ(log->stats().lines, 0u);
}

TEST(DecisionLogTest, FullQueueWithABlockedWriterDropsAndCounts) {
  Fixture f;
  constexpr size_t kCapacity = 8;
  auto log = f.MakeLog(kCapacity);
  DecisionRecorder recorder(nullptr, log.get());
  const v1::AuthorizeRequest request = engine_testing::RequestFromJson(kRequest);
  const v1::AuthorizeResponse response = engine_testing::Decide(*f.policy, request);

  f.state->block = true;
  Record(recorder, request, response);
  {
    // The writer took the first line and is stuck writing it.
    std::unique_lock<std::mutex> lock(f.state->mu);
    ASSERT_TRUE(f.state->cv.wait_for(lock, kTimeout, [&] { return f.state->writers_inside == 1; }));
  }
  // The queue takes kCapacity more; the next ones are dropped at once.
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < kCapacity + 5; ++i) Record(recorder, request, response);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(log->stats().dropped, 5u);
  EXPECT_EQ(log->stats().lines, 0u);

  {
    std::lock_guard<std::mutex> lock(f.state->mu);
    f.state->block = false;
    f.state->cv.notify_all();
  }
  ASSERT_TRUE(log->Flush(kTimeout));
  EXPECT_EQ(f.Lines().size(), kCapacity + 1);
  EXPECT_EQ(log->stats().lines, kCapacity + 1);
  EXPECT_EQ(log->stats().dropped, 5u);
}

TEST(DecisionLogTest, DestructionWritesEverythingQueued) {
  Fixture f;
  const v1::AuthorizeRequest request = engine_testing::RequestFromJson(kRequest);
  const v1::AuthorizeResponse response = engine_testing::Decide(*f.policy, request);
  {
    auto log = f.MakeLog(1024);
    DecisionRecorder recorder(nullptr, log.get());
    for (int i = 0; i < 500; ++i) Record(recorder, request, response);
  }
  EXPECT_EQ(f.Lines().size(), 500u);
}

TEST(DecisionLogTest, BatchLinesCarryTheirIndexAndAGeneratedRequestId) {
  Fixture f;
  auto log = f.MakeLog();
  DecisionRecorder recorder(nullptr, log.get());
  const v1::AuthorizeRequest request = engine_testing::RequestFromJson(kRequest);
  const v1::AuthorizeResponse response = engine_testing::Decide(*f.policy, request);
  for (int i = 0; i < 2; ++i) {
    DecisionEvent event = EventFor(DecisionPath::kBatch, request, response);
    event.batch_index = i;
    recorder.Record(event, [](CallInfo* call) { call->caller = "gw"; });
  }
  ASSERT_TRUE(log->Flush(kTimeout));
  const std::vector<std::string> lines = f.Lines();
  ASSERT_EQ(lines.size(), 2u);
  const v1::DecisionLogEntry first = ParseLine(lines[0]);
  const v1::DecisionLogEntry second = ParseLine(lines[1]);
  EXPECT_EQ(first.path(), "batch");
  EXPECT_TRUE(first.has_batch_index());
  EXPECT_EQ(first.batch_index(), 0);
  EXPECT_EQ(second.batch_index(), 1);
  EXPECT_TRUE(absl::StartsWith(first.request_id(), "pdp-")) << first.request_id();
  EXPECT_NE(first.request_id(), second.request_id());
}

// ---------------------------------------------------------------------------
// The file sink.

std::vector<std::string> FileLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

off_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST(DecisionLogFileTest, RotatesBySizeAndKeepsNFiles) {
  e2e::TempDir dir;
  const std::string path = dir.File("decisions.log");
  constexpr int64_t kMaxBytes = 1000;
  auto sink = service::OpenDecisionLogSink(path, kMaxBytes, 2);
  ASSERT_TRUE(sink.ok()) << sink.status();
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  // 60 numbered lines of 100 bytes, written in batches of 3: a file holds
  // 10 lines, so 6 files' worth; 3 survive (current, .1, .2).
  std::vector<std::string> written;
  for (int i = 0; i < 60; ++i) {
    std::string line = absl::StrCat("{\"n\":", 1000 + i, ",\"pad\":\"");
    line.append(100 - line.size() - 3, 'x');
    line += "\"}\n";
    ASSERT_EQ(line.size(), 100u);
    written.push_back(line.substr(0, 99));
  }
  for (int i = 0; i < 60; i += 3) {
    ASSERT_TRUE((*sink)->Write(absl::StrCat(written[i], "\n", written[i + 1], "\n",
                                            written[i + 2], "\n"))
                    .ok());
  }
  EXPECT_EQ(FileSize(path + ".3"), -1);
  std::vector<std::string> kept;
  for (const std::string& file : {path + ".2", path + ".1", path}) {
    SCOPED_TRACE(file);
    const off_t size = FileSize(file);
    EXPECT_GT(size, 0);
    EXPECT_LE(size, kMaxBytes);
    for (std::string& line : FileLines(file)) kept.push_back(std::move(line));
  }
  // Oldest file first, the newest lines last: a contiguous tail of what was
  // written, with nothing lost inside it.
  ASSERT_EQ(kept.size(), 30u);
  EXPECT_EQ(kept, std::vector<std::string>(written.end() - 30, written.end()));
}

TEST(DecisionLogFileTest, ZeroKeptFilesStartsOverAndZeroBytesNeverRotates) {
  e2e::TempDir dir;
  auto dropping = service::OpenDecisionLogSink(dir.File("a.log"), 150, 0);
  auto unbounded = service::OpenDecisionLogSink(dir.File("b.log"), 0, 3);
  ASSERT_TRUE(dropping.ok() && unbounded.ok());
  const std::string line(99, 'y');
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*dropping)->Write(line + "\n").ok());
    ASSERT_TRUE((*unbounded)->Write(line + "\n").ok());
  }
  EXPECT_EQ(FileLines(dir.File("a.log")).size(), 1u);
  EXPECT_EQ(FileSize(dir.File("a.log.1")), -1);
  EXPECT_EQ(FileLines(dir.File("b.log")).size(), 20u);
  EXPECT_EQ(FileSize(dir.File("b.log.1")), -1);
}

TEST(DecisionLogFileTest, UnwritablePathFailsClearly) {
  auto sink = service::OpenDecisionLogSink("/nonexistent-dir/decisions.log", 0, 1);
  ASSERT_FALSE(sink.ok());
  EXPECT_THAT(std::string(sink.status().message()), HasSubstr("/nonexistent-dir/decisions.log"));
}

}  // namespace
}  // namespace pdp
