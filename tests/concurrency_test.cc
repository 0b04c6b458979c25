// Concurrency, end to end (issue 4, item 6): the real pdpd over mutual TLS
// with a real SQLite file (tests/support/pdpd_process.h). Many gateway
// clients, each on a connection of its own, decide continuously while two
// admin clients continuously push new versions of the same rule set and roll
// it back (ActivateVersion) to random earlier versions.
//
// Every version's content is built so that what it decides for the test's
// one request is known from what was pushed: version v's content carries one
// deciding rule "c<seq>" that permits, denies, or (targeting another action)
// does not apply. The admins record version -> (decision, determining rule)
// from each put's response. Checked at the end, when that map is complete:
//   - no call of any kind failed;
//   - every decision equals what the version named in its response decides,
//     determining rule included (a decision made with one version but
//     labelled with another, or made with a half-swapped set, would not);
//   - pdpd's resident memory stayed flat (see kRssGrowthBoundKb).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <latch>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "tests/support/pdpd_process.h"

// Under a sanitizer, resident memory is not a leak signal: ASan keeps freed
// memory in its quarantine (up to 256 MB) and TSan keeps shadow memory and
// access histories, both growing with the work done. There LeakSanitizer
// finds leaks instead, and this test reports pdpd's RSS without asserting
// on it.
#if defined(PDP_SANITIZED) || defined(__SANITIZE_ADDRESS__)
#define PDP_RSS_IS_MEANINGLESS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define PDP_RSS_IS_MEANINGLESS 1
#endif
#endif

namespace pdp::e2e {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kSet[] = "conc";

constexpr int kGatewayThreads = 6;
constexpr int kAdminThreads = 2;
// The load runs this long (each gateway also stops after kMaxCallsPerThread
// calls, a bound that a fast machine may reach first).
constexpr auto kLoadDuration = std::chrono::seconds(14);
constexpr int kMaxCallsPerThread = 400000;
// Memory is sampled from here on: the first seconds fill gRPC's and the
// allocator's pools, SQLite's page cache and the per-connection buffers,
// which is growth that stops, not a leak.
constexpr auto kWarmup = std::chrono::seconds(4);
// Fillers per version, so that every compiled version is big enough
// (a few hundred KB) that leaking versions shows: with hundreds of pushes and
// rollbacks in the run, leaking each replaced version would grow RSS by
// tens of MB.
constexpr int kFillerRules = 60;
// How much pdpd's RSS may grow between the end of the warmup and the end of
// the run (about 10 s, some 10^5 decisions and some hundreds of puts and
// rollbacks on a 2-core machine). A healthy pdpd grows by 0-2 MB in that
// window: glibc arenas settling, SQLite's page cache (2 MB at most), gRPC
// slice pools, the WAL index growing with the WAL. Leaks grow linearly with
// the work done; checked by running this test against a deliberately broken
// pdpd (built in a scratch copy of the tree): keeping every replaced
// compiled version alive grew RSS by 136 MB, and leaking ~250 bytes per
// decision by 22 MB. The bound sits between the two with a 6x margin over
// the healthy growth. It is absolute rather than a percentage because
// pdpd's baseline (~25-35 MB) is small next to the noise a percentage would
// have to allow; on a slower machine fewer decisions make a per-decision
// leak of that size grow less, so the test is less sensitive there, never
// flakier.
constexpr int64_t kRssGrowthBoundKb = 12 * 1024;

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}

v1::AuthorizeRequest DocRead() {
  v1::AuthorizeRequest request;
  request.set_rule_set(kSet);
  request.set_action("read");
  request.mutable_resource()->set_type("doc");
  request.mutable_resource()->set_id("d-7");
  request.mutable_subject()->set_id("reader");
  request.mutable_subject()->add_roles("staff");
  return request;
}

// What a version decides for DocRead; `rules` joins the determining rules.
struct Outcome {
  v1::Decision decision = v1::DECISION_UNSPECIFIED;
  std::string rules;
  bool operator==(const Outcome&) const = default;
  std::string ToString() const { return absl::StrCat(v1::Decision_Name(decision), " [", rules, "]"); }
  friend std::ostream& operator<<(std::ostream& out, const Outcome& o) {
    return out << o.ToString();
  }
};

// The content of push `seq`: rule "c<seq>" permits DocRead (seq % 3 == 0),
// denies it (1), or targets "write" and so does not apply (2).
v1::RuleSet Content(int seq) {
  v1::RuleSet rule_set;
  rule_set.set_name(kSet);
  rule_set.set_description(absl::StrCat("push ", seq));
  v1::Rule* main = rule_set.add_rules();
  main->set_id(absl::StrCat("c", seq));
  main->set_effect(seq % 3 == 1 ? "deny" : "permit");
  main->mutable_target()->add_resource_types("doc");
  main->mutable_target()->add_actions(seq % 3 == 2 ? "write" : "read");
  main->mutable_target()->add_roles("staff");
  for (int i = 0; i < kFillerRules; ++i) {
    v1::Rule* filler = rule_set.add_rules();
    filler->set_id(absl::StrCat("c", seq, "-filler-", i));
    filler->set_effect(i % 2 == 0 ? "permit" : "deny");
    for (int t = 0; t < 8; ++t) {
      filler->mutable_target()->add_resource_types(absl::StrCat("type-", i, "-", t));
    }
    filler->mutable_target()->add_actions("read");
    filler->mutable_target()->add_actions("list:*");
    v1::AttributeCondition* condition = filler->mutable_conditions()->add_attributes();
    condition->set_attribute("subject.department");
    condition->set_op("in");
    for (int v = 0; v < 8; ++v) {
      condition->mutable_value()->mutable_list_value()->add_values()->set_string_value(
          absl::StrCat("dept-", seq, "-", i, "-", v));
    }
  }
  return rule_set;
}

Outcome ExpectedOutcome(int seq) {
  switch (seq % 3) {
    case 0: return {v1::PERMIT, absl::StrCat("c", seq)};
    case 1: return {v1::DENY, absl::StrCat("c", seq)};
    default: return {v1::NOT_APPLICABLE, ""};
  }
}

// VmRSS of `pid` in kB, or -1.
int64_t RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      std::istringstream fields(line.substr(6));
      int64_t kb = -1;
      fields >> kb;
      return kb;
    }
  }
  return -1;
}

// Collects the first few problems from any thread.
class Problems {
 public:
  void Add(std::string problem) {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    if (first_.size() < 20) first_.push_back(std::move(problem));
  }
  int count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }
  std::string Describe() const {
    std::lock_guard<std::mutex> lock(mu_);
    return absl::StrCat(count_, " problem(s); the first ones:\n  ", absl::StrJoin(first_, "\n  "));
  }

 private:
  mutable std::mutex mu_;
  int count_ = 0;
  std::vector<std::string> first_;
};

TEST(ConcurrencyTest, DecisionsMatchTheirVersionWhileAdminsPushAndRollBack) {
  Pki();
  TempDir dir;
  PdpdProcess pdpd(dir.path());
  // The gateways keep both cores busy, so admin work waiting in SCHED_IDLE
  // would mostly wait for its escalation: 50 ms instead of 2 s keeps the
  // versions coming, and moves the admin worker in and out of SCHED_IDLE
  // on nearly every call.
  std::vector<std::string> flags =
      PdpdProcess::StandardFlags(dir.File("pdp.db"), /*bootstrap_file=*/"");
  flags.push_back("--background_idle_ms=50");
  // pdpd turns Abseil's lock-order checking off by default; this test, the
  // busiest mix of locks, keeps it on, so that a lock-order inversion in
  // pdpd or gRPC aborts pdpd and fails the test.
  flags.push_back("--mutex_deadlock_detection=true");
  ASSERT_TRUE(pdpd.Start(flags));
  EXPECT_THAT(pdpd.Log(), ::testing::HasSubstr("mutex deadlock detection on"));

  // version -> what it decides; complete once the admins have stopped.
  std::mutex versions_mu;
  std::map<int64_t, Outcome> expected_by_version;
  std::atomic<int> next_seq{0};
  {
    auto admin = pdpd.AdminStub("admin");
    v1::PutRuleSetRequest request;
    const int seq = next_seq++;
    *request.mutable_rule_set() = Content(seq);
    v1::PutRuleSetResponse response;
    auto context = ContextWithDeadline();
    // A fresh connection: wait for it (see `connect` below).
    context->set_wait_for_ready(true);
    grpc::Status status = admin->PutRuleSet(context.get(), request, &response);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    ASSERT_EQ(response.version().version(), 1);
    expected_by_version[1] = ExpectedOutcome(seq);
  }

  Problems problems;
  std::atomic<bool> stop{false};
  std::latch connected(kGatewayThreads + kAdminThreads);
  std::atomic<int64_t> decisions{0}, puts{0}, rollbacks{0};
  // Per gateway thread: version -> the outcome it saw (checked against the
  // complete map at the end).
  std::vector<std::map<int64_t, Outcome>> seen(kGatewayThreads);

  auto connect = [&](const std::string& identity, const std::string& who) {
    std::shared_ptr<grpc::Channel> channel = pdpd.Channel(identity);
    // Connection setup is not what this test is about: every client is
    // connected before the load starts (a TLS handshake on a loaded machine
    // can be slow; WaitForConnected retries until its own deadline).
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
      problems.Add(absl::StrCat(who, ": could not connect within 30 s"));
      channel.reset();
    }
    connected.count_down();
    connected.wait();
    return channel;
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kGatewayThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string who = absl::StrCat("gateway ", t);
      std::shared_ptr<grpc::Channel> channel = connect("gateway", who);
      if (!channel) return;
      auto stub = v1::Authorization::NewStub(channel);
      const v1::AuthorizeRequest request = DocRead();
      std::map<int64_t, Outcome>& mine = seen[t];
      for (int i = 0; i < kMaxCallsPerThread && !stop; ++i) {
        v1::AuthorizeResponse response;
        auto context = ContextWithDeadline();
        grpc::Status status = stub->Authorize(context.get(), request, &response);
        if (!status.ok()) {
          problems.Add(absl::StrCat(who, " call ", i, ": ", StatusText(status)));
          continue;
        }
        ++decisions;
        if (response.rule_set() != kSet || response.rule_set_version() < 1) {
          problems.Add(absl::StrCat(who, " call ", i, ": ", response.ShortDebugString()));
          continue;
        }
        const Outcome outcome{response.decision(),
                              absl::StrJoin(response.determining_rules(), ",")};
        auto [it, inserted] = mine.emplace(response.rule_set_version(), outcome);
        if (!inserted && !(it->second == outcome)) {
          problems.Add(absl::StrCat(who, " call ", i, ": version ", response.rule_set_version(),
                                    " decided ", outcome.ToString(), " but earlier ",
                                    it->second.ToString()));
        }
      }
    });
  }
  for (int a = 0; a < kAdminThreads; ++a) {
    threads.emplace_back([&, a] {
      const std::string who = absl::StrCat("admin ", a);
      std::shared_ptr<grpc::Channel> channel = connect("admin", who);
      if (!channel) return;
      auto stub = v1::Admin::NewStub(channel);
      std::mt19937 rng(1000 + a);
      // Bounded by the run's duration; each call takes at least one
      // fsync'ed transaction.
      for (int i = 0; i < 100000 && !stop; ++i) {
        int64_t known_max;
        {
          std::lock_guard<std::mutex> lock(versions_mu);
          known_max = expected_by_version.rbegin()->first;
        }
        const bool roll_back = known_max > 1 && std::uniform_int_distribution<int>(0, 9)(rng) < 4;
        auto context = ContextWithDeadline();
        if (roll_back) {
          v1::ActivateVersionRequest request;
          request.set_name(kSet);
          request.set_version(std::uniform_int_distribution<int64_t>(1, known_max - 1)(rng));
          request.set_comment(absl::StrCat(who, " rolls back"));
          v1::ActivateVersionResponse response;
          grpc::Status status = stub->ActivateVersion(context.get(), request, &response);
          if (!status.ok()) {
            problems.Add(absl::StrCat(who, " activate ", request.version(), ": ",
                                      StatusText(status)));
            continue;
          }
          if (response.version().version() != request.version()) {
            problems.Add(absl::StrCat(who, " activate ", request.version(), " answered ",
                                      response.ShortDebugString()));
          }
          ++rollbacks;
        } else {
          const int seq = next_seq++;
          v1::PutRuleSetRequest request;
          *request.mutable_rule_set() = Content(seq);
          request.set_comment(absl::StrCat(who, " push ", seq));
          v1::PutRuleSetResponse response;
          grpc::Status status = stub->PutRuleSet(context.get(), request, &response);
          if (!status.ok()) {
            problems.Add(absl::StrCat(who, " put ", seq, ": ", StatusText(status)));
            continue;
          }
          std::lock_guard<std::mutex> lock(versions_mu);
          auto [it, inserted] =
              expected_by_version.emplace(response.version().version(), ExpectedOutcome(seq));
          if (!inserted) {
            problems.Add(absl::StrCat(who, " put ", seq, ": version ",
                                      response.version().version(), " was given out twice"));
          }
          ++puts;
        }
      }
    });
  }

  // The run, with memory samples from the end of the warmup on.
  connected.wait();
  const auto start = Clock::now();
  std::vector<std::pair<double, int64_t>> rss;  // (seconds into the run, kB)
  std::this_thread::sleep_until(start + kWarmup);
  for (auto next = start + kWarmup; next <= start + kLoadDuration;
       next += std::chrono::seconds(1)) {
    std::this_thread::sleep_until(next);
    rss.emplace_back(std::chrono::duration<double>(Clock::now() - start).count(),
                     RssKb(pdpd.pid()));
  }
  stop = true;
  for (std::thread& thread : threads) thread.join();

  std::vector<std::string> samples;
  for (const auto& [when, kb] : rss) samples.push_back(absl::StrCat(when, "s:", kb / 1024, "MB"));
  std::cout << "[ concurrency ] " << decisions << " decisions, " << puts << " puts, " << rollbacks
            << " rollbacks; pdpd RSS " << absl::StrJoin(samples, " ") << "\n";

  EXPECT_EQ(problems.count(), 0) << problems.Describe();

  // Every decision against the version it names.
  std::set<int64_t> versions_seen;
  int mismatches = 0;
  for (int t = 0; t < kGatewayThreads; ++t) {
    for (const auto& [version, outcome] : seen[t]) {
      versions_seen.insert(version);
      auto it = expected_by_version.find(version);
      if (it == expected_by_version.end()) {
        ADD_FAILURE() << "gateway " << t << " got a decision from version " << version
                      << ", which no admin pushed";
      } else if (!(it->second == outcome) && ++mismatches <= 10) {
        ADD_FAILURE() << "gateway " << t << ": version " << version << " decided "
                      << outcome.ToString() << ", but its content decides "
                      << it->second.ToString();
      }
    }
  }
  EXPECT_EQ(mismatches, 0);

  // The run exercised what it is about.
  EXPECT_GE(puts.load(), 10);
  EXPECT_GE(rollbacks.load(), 10);
  EXPECT_GE(versions_seen.size(), 10u) << "the gateways saw too few versions to mean anything";
  EXPECT_GE(decisions.load(), 1000);

  // Memory: flat after the warmup.
  ASSERT_GE(rss.size(), 2u);
  for (const auto& [when, kb] : rss) ASSERT_GT(kb, 0) << "cannot read pdpd's VmRSS";
  const int64_t growth = rss.back().second - rss.front().second;
#ifndef PDP_RSS_IS_MEANINGLESS
  EXPECT_LT(growth, kRssGrowthBoundKb)
      << "pdpd's RSS grew by " << growth / 1024 << " MB after the warmup: "
      << absl::StrJoin(samples, " ");
#else
  std::cout << "[ concurrency ] sanitizer build: RSS growth " << growth / 1024
            << " MB not asserted\n";
#endif

  // The server still decides, with the version it last activated, and
  // stops gracefully.
  {
    auto stub = pdpd.AuthorizationStub("gateway");
    v1::AuthorizeResponse response;
    auto context = ContextWithDeadline();
    context->set_wait_for_ready(true);
    grpc::Status status = stub->Authorize(context.get(), DocRead(), &response);
    EXPECT_TRUE(status.ok()) << StatusText(status);
    auto it = expected_by_version.find(response.rule_set_version());
    ASSERT_NE(it, expected_by_version.end()) << response.ShortDebugString();
    EXPECT_EQ(it->second,
              (Outcome{response.decision(), absl::StrJoin(response.determining_rules(), ",")}));
  }
  EXPECT_EQ(pdpd.Stop(), 0);
}

}  // namespace
}  // namespace pdp::e2e
