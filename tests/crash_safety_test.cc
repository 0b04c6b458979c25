// Crash safety of the rule-set store, end to end (issue 4, item 5): the real
// pdpd over mutual TLS on an ephemeral port with a real SQLite file in a
// fresh temporary directory (tests/support/pdpd_process.h).
//
// 1. KillDuringPutsLosesNoAcknowledgedVersion: one admin client streams
//    PutRuleSet calls (distinct content per put) while the test SIGKILLs pdpd
//    after a random delay (seeded RNG; set PDP_CRASH_SEED to replay a run),
//    restarts it on the same file, and checks the crash image and the
//    restarted server. Several kill/restart rounds. (A SIGKILL loses the
//    process, not the kernel's page cache: this is process-crash safety;
//    power-loss durability rests on the store's synchronous=FULL.)
// 2. Faults on a running server, each of which must make a put fail with a
//    clear error while Authorize keeps deciding with the active version, and
//    must leave puts working once the fault is gone:
//    - FullDiskFailsPutsButServingContinues: the database on a small tmpfs
//      (in a private mount namespace) that the test fills up;
//    - ReadOnlyDbFileFailsPutsButServingContinues: the database and its WAL
//      made immutable (chattr +i; the tests run as root, and root ignores
//      permission bits but not the immutable attribute);
//    - LockedDbFailsPutsButServingContinues: another process holds SQLite's
//      write lock for longer than the store's 5 s busy timeout.
//    Each skips (with the reason) where the machine cannot create the fault.
// After every test the database passes PRAGMA integrity_check and
// foreign_key_check, read with the SQLite C API while pdpd is not running.
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gtest/gtest.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "tests/support/pdpd_process.h"
#include "tests/support/store_hash.h"

namespace pdp::e2e {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Helpers.

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}

std::vector<std::string> Flags(const std::string& db) {
  // No bootstrap: every version in these tests is one the test put.
  return PdpdProcess::StandardFlags(db, /*bootstrap_file=*/"");
}

// The one request these tests decide: subject "u" reads a "doc".
v1::AuthorizeRequest DocRead(const std::string& rule_set) {
  v1::AuthorizeRequest request;
  request.set_rule_set(rule_set);
  request.set_action("read");
  request.mutable_resource()->set_type("doc");
  request.mutable_resource()->set_id("d-1");
  request.mutable_subject()->set_id("u");
  return request;
}

// What a version of a test rule set decides for DocRead.
struct Expected {
  v1::Decision decision = v1::DECISION_UNSPECIFIED;
  std::string rule;  // the only determining rule
};

// A rule set named `name` whose rule `rule` decides DocRead with `effect`;
// `description` tells versions apart and pads the content, and `fillers`
// extra rules (on other resource types) vary its shape.
v1::RuleSet DocRuleSet(const std::string& name, const std::string& rule, bool permit,
                       const std::string& description, int fillers) {
  v1::RuleSet rule_set;
  rule_set.set_name(name);
  rule_set.set_description(description);
  v1::Rule* main = rule_set.add_rules();
  main->set_id(rule);
  main->set_effect(permit ? "permit" : "deny");
  main->mutable_target()->add_resource_types("doc");
  main->mutable_target()->add_actions("read");
  for (int i = 0; i < fillers; ++i) {
    v1::Rule* filler = rule_set.add_rules();
    filler->set_id(absl::StrCat(rule, "-filler-", i));
    filler->set_effect(i % 2 == 0 ? "permit" : "deny");
    filler->mutable_target()->add_resource_types(absl::StrCat("other-", i));
    filler->mutable_target()->add_actions("*");
  }
  return rule_set;
}

// Calls to a server that is up wait for the connection (wait_for_ready), so
// that a failed or slow connection attempt on a loaded machine delays a
// first call instead of failing it. Only the crash client, whose calls must
// fail as soon as pdpd dies, does not wait (it connects first).
std::unique_ptr<grpc::ClientContext> WaitingContext(
    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto context = ContextWithDeadline(timeout);
  context->set_wait_for_ready(true);
  return context;
}

grpc::Status Put(v1::Admin::Stub& admin, const v1::RuleSet& rule_set,
                 v1::PutRuleSetResponse* response,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10),
                 bool wait_for_ready = true) {
  v1::PutRuleSetRequest request;
  *request.mutable_rule_set() = rule_set;
  request.set_comment("crash-safety test");
  auto context = ContextWithDeadline(timeout);
  context->set_wait_for_ready(wait_for_ready);
  return admin.PutRuleSet(context.get(), request, response);
}

grpc::Status ListVersions(v1::Admin::Stub& admin, const std::string& name,
                          v1::ListVersionsResponse* response) {
  v1::ListVersionsRequest request;
  request.set_name(name);
  auto context = WaitingContext();
  return admin.ListVersions(context.get(), request, response);
}

grpc::Status Decide(v1::Authorization::Stub& gateway, const v1::AuthorizeRequest& request,
                    v1::AuthorizeResponse* response) {
  auto context = WaitingContext();
  return gateway.Authorize(context.get(), request, response);
}

// Checks one decision: OK, made by `version` of the set, with the expected
// decision and determining rule.
void ExpectDecision(v1::Authorization::Stub& gateway, const std::string& rule_set,
                    int64_t version, const Expected& expected) {
  v1::AuthorizeResponse response;
  grpc::Status status = Decide(gateway, DocRead(rule_set), &response);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(response.rule_set(), rule_set);
  EXPECT_EQ(response.rule_set_version(), version) << response.DebugString();
  EXPECT_EQ(response.decision(), expected.decision) << response.DebugString();
  EXPECT_THAT(response.determining_rules(), ::testing::ElementsAre(expected.rule))
      << response.DebugString();
}

// ---------------------------------------------------------------------------
// Reading the database file directly (pdpd must not be running).

struct StoredVersion {
  int64_t version = 0;
  std::string sha256;   // as stored
  std::string content;  // canonical bytes as stored
};

struct DbImage {
  std::string integrity;          // PRAGMA integrity_check, rows joined by "\n"
  std::string foreign_key_check;  // "" when there are no violations
  std::vector<StoredVersion> versions;  // of one set, ascending
  int64_t active = 0;                   // 0: none
};

std::string Join(const std::vector<std::string>& rows) {
  std::string out;
  for (const std::string& row : rows) absl::StrAppend(&out, out.empty() ? "" : "\n", row);
  return out;
}

// Opens `db` read-write (SQLite recovers a WAL left by a crash exactly as
// pdpd's next start would) and reads the integrity checks and every version
// of `name`. A fatal failure when the file cannot be opened or queried.
void ReadDbImage(const std::string& db, const std::string& name, DbImage* image) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> handle(raw, &sqlite3_close);
  ASSERT_EQ(rc, SQLITE_OK) << db << ": " << sqlite3_errstr(rc);
  auto query = [&](const char* sql, const std::function<void(sqlite3_stmt*)>& bind,
                   const std::function<void(sqlite3_stmt*)>& row) -> bool {
    sqlite3_stmt* stmt_raw = nullptr;
    if (sqlite3_prepare_v2(handle.get(), sql, -1, &stmt_raw, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(handle.get());
      return false;
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(stmt_raw, &sqlite3_finalize);
    if (bind) bind(stmt.get());
    int step;
    while ((step = sqlite3_step(stmt.get())) == SQLITE_ROW) row(stmt.get());
    if (step != SQLITE_DONE) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(handle.get());
      return false;
    }
    return true;
  };
  auto text = [](sqlite3_stmt* stmt, int column) {
    const unsigned char* value = sqlite3_column_text(stmt, column);
    return value == nullptr ? std::string()
                            : std::string(reinterpret_cast<const char*>(value),
                                          sqlite3_column_bytes(stmt, column));
  };
  std::vector<std::string> integrity, fk;
  ASSERT_TRUE(query("PRAGMA integrity_check", nullptr,
                    [&](sqlite3_stmt* s) { integrity.push_back(text(s, 0)); }));
  ASSERT_TRUE(query("PRAGMA foreign_key_check", nullptr, [&](sqlite3_stmt* s) {
    fk.push_back(absl::StrCat(text(s, 0), " rowid ", sqlite3_column_int64(s, 1), " -> ",
                              text(s, 2)));
  }));
  image->integrity = Join(integrity);
  image->foreign_key_check = Join(fk);
  auto bind_name = [&](sqlite3_stmt* s) {
    sqlite3_bind_text(s, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  };
  image->versions.clear();
  ASSERT_TRUE(query("SELECT version, sha256, content FROM rule_set_versions WHERE name = ?1 "
                    "ORDER BY version",
                    bind_name, [&](sqlite3_stmt* s) {
                      StoredVersion v;
                      v.version = sqlite3_column_int64(s, 0);
                      v.sha256 = text(s, 1);
                      const void* blob = sqlite3_column_blob(s, 2);
                      v.content.assign(static_cast<const char*>(blob),
                                       blob == nullptr ? 0 : sqlite3_column_bytes(s, 2));
                      image->versions.push_back(std::move(v));
                    }));
  image->active = 0;
  ASSERT_TRUE(query("SELECT active_version FROM rule_sets WHERE name = ?1", bind_name,
                    [&](sqlite3_stmt* s) {
                      if (sqlite3_column_type(s, 0) != SQLITE_NULL) {
                        image->active = sqlite3_column_int64(s, 0);
                      }
                    }));
}

// Copies the database file and its WAL (as a crash left them) to
// `scratch_dir` and reads the copy, so that the test's own recovery of the
// copy cannot change what the restarted pdpd recovers from the original.
void ReadCrashImage(const std::string& db, const std::string& scratch_dir,
                    const std::string& name, DbImage* image) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(scratch_dir, ec);
  ASSERT_TRUE(fs::create_directories(scratch_dir, ec)) << scratch_dir << ": " << ec.message();
  const std::string copy = scratch_dir + "/copy.db";
  ASSERT_TRUE(fs::copy_file(db, copy, ec)) << db << ": " << ec.message();
  // No -shm: SQLite rebuilds the WAL index from the WAL, as the first
  // connection after a crash does anyway.
  if (fs::exists(db + "-wal")) {
    ASSERT_TRUE(fs::copy_file(db + "-wal", copy + "-wal", ec)) << ec.message();
  }
  ReadDbImage(copy, name, image);
}

void ExpectIntact(const DbImage& image) {
  EXPECT_EQ(image.integrity, "ok");
  EXPECT_EQ(image.foreign_key_check, "");
}

// ---------------------------------------------------------------------------
// 1. SIGKILL at random moments during a stream of puts.

constexpr char kCrashSet[] = "crash";

// The content of the put with sequence number `seq` (0, 1, ...): even puts
// permit DocRead, odd ones deny it, each through its own rule "put-<seq>";
// descriptions of up to ~20 KB make the content span several database pages
// (and overflow pages), so a torn write would have something to tear.
v1::RuleSet CrashContent(int seq) {
  const int padding = (seq * 7919) % 20000;
  return DocRuleSet(kCrashSet, absl::StrCat("put-", seq), seq % 2 == 0,
                    absl::StrCat("put ", seq, " ", std::string(padding, 'a' + seq % 26)),
                    seq % 5);
}

Expected CrashExpected(int seq) {
  return {seq % 2 == 0 ? v1::PERMIT : v1::DENY, absl::StrCat("put-", seq)};
}

struct Acked {
  int64_t version = 0;
  std::string sha256;
  int seq = 0;
};

// What the admin client saw in one round, between a start and a kill.
struct RoundLog {
  std::vector<Acked> acked;        // in order
  std::optional<int> in_doubt;     // the put whose call failed at the kill
  std::string in_doubt_error;
  std::vector<std::string> errors;  // failures before the kill: product bugs
  std::vector<std::pair<int, std::string>> sent;  // (seq, sha256) of every put sent
};

uint64_t CrashSeed() {
  if (const char* env = std::getenv("PDP_CRASH_SEED"); env != nullptr && *env != '\0') {
    uint64_t seed = 0;
    if (absl::SimpleAtoi(env, &seed)) return seed;
    ADD_FAILURE() << "PDP_CRASH_SEED=" << env << " is not a number";
  }
  return std::random_device()();
}

// The invariant, checked on the crash image of every round:
//
//   (a) the file is intact (integrity_check "ok", no foreign-key violation);
//   (b) the stored versions are exactly: those verified after the previous
//       round, unchanged; then every version ACKNOWLEDGED in this round, with
//       the version number and SHA-256 its response named; then at most one
//       more, and only if a put was in flight when pdpd died: a put may be
//       committed (its commit record written to the WAL) and the process
//       killed before its response is sent, so that put is "in doubt" and
//       may or may not be there, but if it is, it is that put's content and
//       nothing else.
//       No other version can appear (the client puts one at a time), none
//       may vanish, and every stored SHA-256 matches its stored content;
//   (c) the active version is the newest stored version: every put activates
//       the version it stores in the same transaction and this test never
//       rolls back, so the active version is the newest committed one, which
//       is the last acknowledged version or the committed in-doubt put;
//   (d) the restarted pdpd lists exactly these versions, active flag
//       included, and decides DocRead with the active version's content.
TEST(CrashSafetyTest, KillDuringPutsLosesNoAcknowledgedVersion) {
  Pki();
  const uint64_t seed = CrashSeed();
  SCOPED_TRACE(absl::StrCat("PDP_CRASH_SEED=", seed, " replays this run's kill delays"));
  std::cout << "[ crash ] PDP_CRASH_SEED=" << seed << "\n";
  std::mt19937_64 rng(seed);

  constexpr int kRounds = 8;
  // The delay from the round's first acknowledged put (the client then has
  // its next put in flight at once) to SIGKILL. A put takes a few ms when
  // the machine is idle (one fsync'ed transaction) and much longer when it
  // is loaded, so a round sees from one to some hundreds of puts and the
  // kill lands anywhere in one: before the request is read, while it
  // compiles, inside the transaction, between commit and response.
  constexpr int kMaxKillDelayMs = 300;
  constexpr int kMaxPutsPerRound = 5000;  // bound; never reached in practice

  TempDir dir;
  const std::string db = dir.File("pdp.db");
  PdpdProcess pdpd(dir.path());

  std::map<std::string, int> seq_of_sha;  // every content ever sent
  std::vector<StoredVersion> verified;  // the state after the previous round
  int next_seq = 0;
  int total_acked = 0, total_in_doubt_committed = 0, total_in_doubt_lost = 0;

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ASSERT_TRUE(pdpd.Start(Flags(db)));

    // (d) The restarted server agrees with the verified state.
    if (!verified.empty()) {
      auto admin = pdpd.AdminStub("admin");
      v1::ListVersionsResponse listed;
      grpc::Status status = ListVersions(*admin, kCrashSet, &listed);
      ASSERT_TRUE(status.ok()) << StatusText(status);
      ASSERT_EQ(listed.versions_size(), static_cast<int>(verified.size())) << listed.DebugString();
      for (int i = 0; i < listed.versions_size(); ++i) {
        // Newest first.
        const v1::VersionInfo& info = listed.versions(i);
        const StoredVersion& want = verified[verified.size() - 1 - i];
        EXPECT_EQ(info.version(), want.version);
        EXPECT_EQ(info.sha256(), want.sha256);
        EXPECT_EQ(info.active(), i == 0) << "the newest version must be the active one";
      }
      const int active_seq = seq_of_sha.at(verified.back().sha256);
      auto gateway = pdpd.AuthorizationStub("gateway");
      ExpectDecision(*gateway, kCrashSet, verified.back().version, CrashExpected(active_seq));
      if (HasFatalFailure()) return;
    }

    // The admin client: one put at a time until the first failure.
    RoundLog log;
    std::atomic<bool> killed{false};
    std::atomic<bool> client_done{false};
    std::atomic<int> acked_now{0};
    const int64_t first_version = static_cast<int64_t>(verified.size()) + 1;
    const int first_seq = next_seq;
    std::thread client([&] {
      struct Done {
        std::atomic<bool>& done;
        ~Done() { done = true; }
      } done{client_done};
      std::shared_ptr<grpc::Channel> channel = pdpd.Channel("admin");
      if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                     std::chrono::seconds(30))) {
        log.errors.push_back("could not connect within 30 s");
        return;
      }
      auto admin = v1::Admin::NewStub(channel);
      for (int i = 0; i < kMaxPutsPerRound; ++i) {
        const int seq = first_seq + i;
        const v1::RuleSet content = CrashContent(seq);
        const std::string sha = Sha256Hex(CanonicalBytes(content));
        log.sent.push_back({seq, sha});
        v1::PutRuleSetResponse response;
        grpc::Status status = Put(*admin, content, &response, std::chrono::seconds(10),
                                  /*wait_for_ready=*/false);
        if (!status.ok()) {
          if (killed) {
            log.in_doubt = seq;
            log.in_doubt_error = StatusText(status);
          } else {
            log.errors.push_back(absl::StrCat("put ", seq, " failed before any kill: ",
                                              StatusText(status)));
          }
          return;
        }
        const int64_t want_version = first_version + static_cast<int64_t>(log.acked.size());
        if (response.version().version() != want_version || response.version().sha256() != sha ||
            !response.version().active() || response.version().rule_set() != kCrashSet) {
          log.errors.push_back(absl::StrCat("put ", seq, ": expected version ", want_version,
                                            " sha256 ", sha, ", got ",
                                            response.version().ShortDebugString()));
        }
        log.acked.push_back({response.version().version(), response.version().sha256(), seq});
        ++acked_now;
      }
    });

    // Kill after a random delay from the first acknowledged put. Polling,
    // bounded (the client gives up connecting after 30 s, a put after 10 s).
    const auto first_ack_deadline = Clock::now() + std::chrono::seconds(45);
    while (acked_now == 0 && !client_done && Clock::now() < first_ack_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const int delay_ms = std::uniform_int_distribution<int>(0, kMaxKillDelayMs)(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    killed = true;
    const int acked_at_kill = acked_now.load();
    pdpd.Kill();
    client.join();
    std::cout << "[ crash ] round " << round << ": kill after " << delay_ms << " ms, "
              << log.acked.size() << " acknowledged puts (" << acked_at_kill
              << " when the kill was sent), in doubt: "
              << (log.in_doubt ? absl::StrCat("put ", *log.in_doubt, " (", log.in_doubt_error, ")")
                               : std::string("none"))
              << "\n";
    EXPECT_THAT(log.errors, ::testing::IsEmpty());
    std::string in_doubt_sha;
    for (const auto& [seq, sha] : log.sent) {
      seq_of_sha[sha] = seq;
      if (log.in_doubt == seq) in_doubt_sha = sha;
    }
    next_seq += static_cast<int>(log.sent.size());

    // (a)-(c) on the crash image.
    DbImage image;
    ReadCrashImage(db, dir.File(absl::StrCat("image-", round)), kCrashSet, &image);
    if (HasFatalFailure()) return;
    ExpectIntact(image);
    const size_t base = verified.size();
    const size_t with_acked = base + log.acked.size();
    ASSERT_GE(image.versions.size(), with_acked) << "acknowledged versions are missing";
    ASSERT_LE(image.versions.size(), with_acked + (log.in_doubt ? 1 : 0))
        << "versions nobody put appeared";
    for (size_t i = 0; i < image.versions.size(); ++i) {
      const StoredVersion& got = image.versions[i];
      SCOPED_TRACE(absl::StrCat("stored version ", got.version));
      EXPECT_EQ(got.version, static_cast<int64_t>(i) + 1) << "version numbers must be 1..N";
      EXPECT_EQ(Sha256Hex(got.content), got.sha256) << "stored content does not match its hash";
      if (i < base) {
        EXPECT_EQ(got.sha256, verified[i].sha256) << "an earlier version changed";
        EXPECT_EQ(got.content, verified[i].content);
      } else if (i < with_acked) {
        const Acked& acked = log.acked[i - base];
        EXPECT_EQ(got.version, acked.version);
        EXPECT_EQ(got.sha256, acked.sha256) << "acknowledged put " << acked.seq;
      } else {
        ASSERT_TRUE(log.in_doubt.has_value());
        EXPECT_EQ(got.sha256, in_doubt_sha)
            << "the extra version is not the put that was in flight";
      }
    }
    EXPECT_EQ(image.active, static_cast<int64_t>(image.versions.size()))
        << "the active version must be the newest committed one";
    if (HasFailure()) return;

    total_acked += static_cast<int>(log.acked.size());
    if (log.in_doubt) {
      if (image.versions.size() > with_acked) {
        ++total_in_doubt_committed;
      } else {
        ++total_in_doubt_lost;
      }
    }
    verified = image.versions;
  }

  // A last start: the server serves the final state and stops gracefully,
  // and the file is intact after a clean shutdown as well.
  ASSERT_TRUE(pdpd.Start(Flags(db)));
  if (!verified.empty()) {
    auto gateway = pdpd.AuthorizationStub("gateway");
    ExpectDecision(*gateway, kCrashSet, verified.back().version,
                   CrashExpected(seq_of_sha.at(verified.back().sha256)));
  }
  EXPECT_EQ(pdpd.Stop(), 0);
  DbImage final_image;
  ReadDbImage(db, kCrashSet, &final_image);
  if (HasFatalFailure()) return;
  ExpectIntact(final_image);
  EXPECT_EQ(final_image.versions.size(), verified.size());

  std::cout << "[ crash ] " << kRounds << " kills, " << total_acked
            << " acknowledged puts, in-doubt puts committed/lost: " << total_in_doubt_committed
            << "/" << total_in_doubt_lost << "\n";
  // Not an assertion on timing, only that the test exercised something.
  EXPECT_GT(total_acked, 0) << "no put was acknowledged in any round";
}

// ---------------------------------------------------------------------------
// 2. Faults on a running server.

constexpr char kGuardSet[] = "guard";

v1::RuleSet GuardV1() {
  return DocRuleSet(kGuardSet, "v1-permits", true, "version 1", 0);
}
// The put that the fault makes fail; large enough to need new pages in
// the WAL (and on the full file system).
v1::RuleSet GuardV2() {
  return DocRuleSet(kGuardSet, "v2-denies", false,
                    absl::StrCat("version 2 ", std::string(64 * 1024, 'p')), 20);
}
const Expected kV1{v1::PERMIT, "v1-permits"};
const Expected kV2{v1::DENY, "v2-denies"};

// The steps every fault test shares, on a started pdpd:
//   Prepare(): puts version 1 and checks it decides;
//   ExpectServingV1Only(): while the fault lasts, decisions still come from
//     version 1 and the store lists version 1 only (reads work);
//   ExpectRecovered(): once the fault is gone, the same put stores version 2
//     (the failed put consumed no version number) and decides with it.
class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override { Pki(); }

  void Prepare() {
    admin_ = pdpd_.AdminStub("admin");
    gateway_ = pdpd_.AuthorizationStub("gateway");
    v1::PutRuleSetResponse response;
    grpc::Status status = Put(*admin_, GuardV1(), &response);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    ASSERT_EQ(response.version().version(), 1);
    ExpectDecision(*gateway_, kGuardSet, 1, kV1);
  }

  void ExpectServingV1Only() {
    for (int i = 0; i < 20; ++i) {
      ExpectDecision(*gateway_, kGuardSet, 1, kV1);
      if (HasFatalFailure()) return;
    }
    v1::ListVersionsResponse listed;
    grpc::Status status = ListVersions(*admin_, kGuardSet, &listed);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    ASSERT_EQ(listed.versions_size(), 1) << listed.DebugString();
    EXPECT_EQ(listed.versions(0).version(), 1);
    EXPECT_TRUE(listed.versions(0).active());
  }

  void ExpectRecovered() {
    v1::PutRuleSetResponse response;
    grpc::Status status = Put(*admin_, GuardV2(), &response);
    ASSERT_TRUE(status.ok()) << "a put after the fault is gone: " << StatusText(status);
    EXPECT_EQ(response.version().version(), 2) << "the failed put must not use a version number";
    ExpectDecision(*gateway_, kGuardSet, 2, kV2);
    v1::ListVersionsResponse listed;
    status = ListVersions(*admin_, kGuardSet, &listed);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    EXPECT_EQ(listed.versions_size(), 2) << listed.DebugString();
  }

  // Stops pdpd gracefully and checks the file.
  void StopAndCheck(const std::string& db) {
    admin_.reset();
    gateway_.reset();
    EXPECT_EQ(pdpd_.Stop(), 0);
    DbImage image;
    ReadDbImage(db, kGuardSet, &image);
    if (HasFatalFailure()) return;
    ExpectIntact(image);
    EXPECT_EQ(image.versions.size(), 2u);
    EXPECT_EQ(image.active, 2);
  }

  TempDir dir_;
  PdpdProcess pdpd_{dir_.path()};
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<v1::Authorization::Stub> gateway_;
};

// A tmpfs of `size` mounted on `dir` in a private mount namespace of the
// calling thread (which the test's child processes inherit), so that it is
// invisible to the rest of the machine and gone when the test ends.
class PrivateTmpfs {
 public:
  // Empty `error()` on success.
  PrivateTmpfs(const std::string& dir, const std::string& size) : dir_(dir) {
    if (unshare(CLONE_NEWNS) != 0) {
      error_ = absl::StrCat("unshare(CLONE_NEWNS): ", std::strerror(errno));
      return;
    }
    // Nothing mounted here may propagate back to the host's namespace.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      error_ = absl::StrCat("mount --make-rprivate /: ", std::strerror(errno));
      return;
    }
    const std::string options = absl::StrCat("size=", size, ",mode=0700");
    if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
      error_ = absl::StrCat("mount -t tmpfs ", dir, ": ", std::strerror(errno));
      return;
    }
    mounted_ = true;
  }
  ~PrivateTmpfs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  std::string error_;
  bool mounted_ = false;
};

// Writes `path` until the file system is full. Returns the bytes written,
// or -1 (and a test failure) if a write fails with anything but ENOSPC.
int64_t FillFileSystem(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    ADD_FAILURE() << path << ": " << std::strerror(errno);
    return -1;
  }
  const std::string chunk(64 * 1024, 'f');
  int64_t written = 0;
  // Bounded: the file system is a few MB.
  for (int i = 0; i < 100000; ++i) {
    const ssize_t n = write(fd, chunk.data(), chunk.size());
    if (n > 0) {
      written += n;
      continue;
    }
    const int error = errno;
    close(fd);
    if (n < 0 && error == ENOSPC) return written;
    ADD_FAILURE() << path << ": write: " << std::strerror(error);
    return -1;
  }
  close(fd);
  ADD_FAILURE() << path << ": the file system never filled up";
  return -1;
}

TEST_F(FaultTest, FullDiskFailsPutsButServingContinues) {
  const std::string mount_dir = dir_.File("small-disk");
  std::filesystem::create_directory(mount_dir);
  PrivateTmpfs tmpfs(mount_dir, "4m");
  if (!tmpfs.error().empty()) {
    GTEST_SKIP() << "cannot make a small file system to fill (" << tmpfs.error()
                 << "); the full-disk case is covered only by tests/store_test.cc's VFS";
  }
  const std::string db = mount_dir + "/pdp.db";
  ASSERT_TRUE(pdpd_.Start(Flags(db)));
  Prepare();
  if (HasFatalFailure()) return;

  const std::string filler = mount_dir + "/filler";
  const int64_t filled = FillFileSystem(filler);
  ASSERT_GT(filled, 0);
  v1::PutRuleSetResponse response;
  grpc::Status status = Put(*admin_, GuardV2(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << StatusText(status);
  EXPECT_THAT(status.error_message(), HasSubstr("put rule set \"guard\""));
  // The message names the file and SQLite's extended code.
  EXPECT_THAT(status.error_message(), HasSubstr(absl::StrCat("store ", db, ": ")));
  EXPECT_THAT(status.error_message(), HasSubstr("[SQLITE_"));
  EXPECT_THAT(status.error_message(), HasSubstr("disk is full"));
  EXPECT_THAT(status.error_message(), HasSubstr("nothing was written"));
  EXPECT_THAT(status.error_message(), HasSubstr("errno 28: No space left on device"));
  ExpectServingV1Only();
  if (HasFatalFailure()) return;

  ASSERT_EQ(std::remove(filler.c_str()), 0);
  ExpectRecovered();
  if (HasFatalFailure()) return;
  StopAndCheck(db);
}

// chattr +i on the given files for the life of the object (the attribute is
// always removed again: an immutable file cannot even be deleted).
class Immutable {
 public:
  explicit Immutable(std::vector<std::string> files) : files_(std::move(files)) {
    std::vector<std::string> argv = {"/usr/bin/chattr", "+i"};
    argv.insert(argv.end(), files_.begin(), files_.end());
    CommandResult result = RunCommand(argv);
    set_ = result.exit_code == 0;
    if (!set_) error_ = absl::StrCat("chattr +i: exit ", result.exit_code, ": ", result.err);
  }
  ~Immutable() { Clear(); }
  void Clear() {
    if (!set_) return;
    std::vector<std::string> argv = {"/usr/bin/chattr", "-i"};
    argv.insert(argv.end(), files_.begin(), files_.end());
    CommandResult result = RunCommand(argv);
    EXPECT_EQ(result.exit_code, 0) << "chattr -i: " << result.err;
    set_ = false;
  }
  const std::string& error() const { return error_; }

 private:
  std::vector<std::string> files_;
  std::string error_;
  bool set_ = false;
};

TEST_F(FaultTest, ReadOnlyDbFileFailsPutsButServingContinues) {
  const std::string db = dir_.File("pdp.db");
  ASSERT_TRUE(pdpd_.Start(Flags(db)));
  Prepare();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(std::filesystem::exists(db + "-wal")) << "pdpd's store is not in WAL mode";

  // The database and its WAL, the files a commit writes (the -shm index is
  // shared memory, not data).
  Immutable immutable({db, db + "-wal"});
  if (!immutable.error().empty()) {
    GTEST_SKIP() << "cannot make the database read-only for root (" << immutable.error() << ")";
  }
  // The fault is real: not even root may write the file now.
  {
    const int fd = open(db.c_str(), O_WRONLY | O_CLOEXEC);
    EXPECT_LT(fd, 0) << "root can still open the immutable database for writing";
    if (fd >= 0) close(fd);
  }

  v1::PutRuleSetResponse response;
  grpc::Status status = Put(*admin_, GuardV2(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(status);
  EXPECT_THAT(status.error_message(), HasSubstr("put rule set \"guard\""));
  // The message names the file and SQLite's extended code.
  EXPECT_THAT(status.error_message(), HasSubstr(absl::StrCat("store ", db, ": ")));
  EXPECT_THAT(status.error_message(), HasSubstr("[SQLITE_"));
  EXPECT_THAT(status.error_message(), ::testing::AnyOf(HasSubstr("I/O error"),
                                                       HasSubstr("read-only")));
  // The OS's reason: writing an immutable file is EPERM.
  EXPECT_THAT(status.error_message(),
              ::testing::AnyOf(HasSubstr("errno 1: Operation not permitted"),
                               HasSubstr("SQLITE_READONLY")));
  ExpectServingV1Only();
  if (HasFatalFailure()) return;

  immutable.Clear();
  ExpectRecovered();
  if (HasFatalFailure()) return;
  StopAndCheck(db);
}

TEST_F(FaultTest, LockedDbFailsPutsButServingContinues) {
  const std::string db = dir_.File("pdp.db");
  ASSERT_TRUE(pdpd_.Start(Flags(db)));
  Prepare();
  if (HasFatalFailure()) return;

  // Another process (as far as SQLite's locks go: another connection of
  // another process) takes the write lock and holds it.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> holder(raw, &sqlite3_close);
  ASSERT_EQ(sqlite3_exec(holder.get(), "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(holder.get());

  const auto put_started = Clock::now();
  std::future<grpc::Status> put = std::async(std::launch::async, [&] {
    auto admin = pdpd_.AdminStub("admin");
    v1::PutRuleSetResponse response;
    return Put(*admin, GuardV2(), &response, std::chrono::seconds(30));
  });
  // Decisions go on while the put waits for the lock (bounded: the put
  // gives up after the store's 5 s busy timeout).
  int decided = 0;
  while (put.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready &&
         Clock::now() - put_started < std::chrono::seconds(30)) {
    ExpectDecision(*gateway_, kGuardSet, 1, kV1);
    if (HasFatalFailure()) break;
    ++decided;
  }
  const grpc::Status status = put.get();
  const auto waited = Clock::now() - put_started;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(status);
  EXPECT_THAT(status.error_message(), HasSubstr("put rule set \"guard\""));
  // The message names the file and SQLite's extended code.
  EXPECT_THAT(status.error_message(), HasSubstr(absl::StrCat("store ", db, ": ")));
  EXPECT_THAT(status.error_message(), HasSubstr("[SQLITE_"));
  EXPECT_THAT(status.error_message(), HasSubstr("locked"));
  EXPECT_GE(waited, std::chrono::seconds(4)) << "the put did not wait for the busy timeout";
  // One busy timeout, not two: the failed put's audit record is written
  // after the answer, not before it.
  EXPECT_LT(waited, std::chrono::seconds(8)) << "the put's answer waited twice for the lock";
  EXPECT_GT(decided, 0);
  ExpectServingV1Only();
  if (HasFatalFailure()) return;

  ASSERT_EQ(sqlite3_exec(holder.get(), "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  holder.reset();
  ExpectRecovered();
  if (HasFatalFailure()) return;
  StopAndCheck(db);
}

}  // namespace
}  // namespace pdp::e2e
