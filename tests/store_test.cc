// Tests for service/store.h, the SQLite rule-set store, on real database
// files in a fresh temporary directory per test. Faults (disk full, I/O
// errors) are injected through a SQLite VFS that wraps the default one.
// The audit trail: events committed with their change (and neither without
// the other), failed calls recorded on their own, filters and pages, the
// migration of a version 1 database in place; every error names the file,
// SQLite's extended code and, for I/O errors, the errno.
// After every test the database passes PRAGMA integrity_check and
// foreign_key_check.
#include "service/store.h"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace pdp::service {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Helpers.

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// A rule set with `rules` rules, obligations with Struct params (maps, so
// the canonical encoding depends on deterministic serialization) and
// `tag` in the description to tell versions apart.
v1::RuleSet MakeRuleSet(const std::string& name, int rules,
                        const std::string& tag) {
  v1::RuleSet rule_set;
  rule_set.set_name(name);
  rule_set.set_description(absl::StrCat("rules for ", name, " ", tag));
  rule_set.set_combining_algorithm("deny-overrides");
  rule_set.add_sensitive_attributes("subject.ssn");
  for (int i = 0; i < rules; ++i) {
    v1::Rule* rule = rule_set.add_rules();
    rule->set_id(absl::StrCat("rule-", i));
    rule->set_effect(i % 2 == 0 ? "permit" : "deny");
    rule->mutable_target()->add_resource_types("order");
    rule->mutable_target()->add_actions("read");
    v1::Obligation* obligation = rule->add_obligations();
    obligation->set_type("add_header");
    auto& fields = *obligation->mutable_params()->mutable_fields();
    fields["name"].set_string_value("x-pdp");
    fields["value"].set_string_value(tag);
  }
  return rule_set;
}

// The canonical encoding, computed here rather than by the store.
std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    EXPECT_TRUE(message.SerializeToCodedStream(&coded));
  }
  return bytes;
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EXPECT_EQ(EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(),
                       nullptr),
            1);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), size));
}

int64_t Micros(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

std::vector<int64_t> Versions(const std::vector<v1::VersionInfo>& infos) {
  std::vector<int64_t> versions;
  for (const v1::VersionInfo& info : infos) versions.push_back(info.version());
  return versions;
}

std::vector<int64_t> ActiveVersions(const std::vector<v1::VersionInfo>& infos) {
  std::vector<int64_t> versions;
  for (const v1::VersionInfo& info : infos) {
    if (info.active()) versions.push_back(info.version());
  }
  return versions;
}

// A direct SQLite connection for inspecting and tampering with the file.
class RawDb {
 public:
  explicit RawDb(const std::string& path, bool read_only = false) {
    int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errmsg(db_);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error ? error : "");
    sqlite3_free(error);
  }

  // Every row's columns as text, rows joined by '\n', columns by '|'.
  std::string Query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << sqlite3_errmsg(db_);
    std::string out;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      if (!out.empty()) out += "\n";
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        if (i > 0) out += "|";
        const unsigned char* text = sqlite3_column_text(stmt, i);
        out += text ? reinterpret_cast<const char*>(text) : "NULL";
      }
    }
    EXPECT_EQ(rc, SQLITE_DONE) << sql << ": " << sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    return out;
  }

  // The content blob of one version.
  std::string Content(const std::string& name, int64_t version) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_,
                                 "SELECT content FROM rule_set_versions "
                                 "WHERE name = ?1 AND version = ?2",
                                 -1, &stmt, nullptr),
              SQLITE_OK);
    sqlite3_bind_text(stmt, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 2, version);
    std::string content;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      content.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
                     sqlite3_column_bytes(stmt, 0));
    } else {
      ADD_FAILURE() << "no content for " << name << " v" << version;
    }
    sqlite3_finalize(stmt);
    return content;
  }

  // Overwrites one version's content (and, unless empty, its sha256).
  void SetContent(const std::string& name, int64_t version,
                  const std::string& content, const std::string& sha256) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_,
                                 "UPDATE rule_set_versions SET content = ?3, "
                                 "sha256 = COALESCE(NULLIF(?4, ''), sha256) "
                                 "WHERE name = ?1 AND version = ?2",
                                 -1, &stmt, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db_);
    sqlite3_bind_text(stmt, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 2, version);
    sqlite3_bind_blob64(stmt, 3, content.data(), content.size(),
                        SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, sha256.c_str(), -1, SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db_);
    EXPECT_EQ(sqlite3_changes(db_), 1);
    sqlite3_finalize(stmt);
  }

 private:
  sqlite3* db_ = nullptr;
};

// ---------------------------------------------------------------------------
// A fault-injecting VFS: forwards everything to SQLite's default VFS, except
// that while g_write_fault is not SQLITE_OK every xWrite returns it, with
// errno set to g_write_errno (what the OS would have said).

std::atomic<int> g_write_fault{SQLITE_OK};
std::atomic<int> g_write_errno{EIO};
constexpr char kFaultyVfs[] = "pdp_store_test_faulty";

struct FaultyFile {
  sqlite3_file base;
  sqlite3_file* real;  // Points just past this struct.
};

sqlite3_file* Real(sqlite3_file* file) {
  return reinterpret_cast<FaultyFile*>(file)->real;
}
const sqlite3_io_methods& RealMethods(sqlite3_file* file) {
  return *Real(file)->pMethods;
}

int FaultyClose(sqlite3_file* f) { return RealMethods(f).xClose(Real(f)); }
int FaultyRead(sqlite3_file* f, void* buffer, int amount,
               sqlite3_int64 offset) {
  return RealMethods(f).xRead(Real(f), buffer, amount, offset);
}
int FaultyWrite(sqlite3_file* f, const void* buffer, int amount,
                sqlite3_int64 offset) {
  int fault = g_write_fault.load();
  if (fault != SQLITE_OK) {
    errno = g_write_errno.load();
    return fault;
  }
  return RealMethods(f).xWrite(Real(f), buffer, amount, offset);
}
int FaultyTruncate(sqlite3_file* f, sqlite3_int64 size) {
  return RealMethods(f).xTruncate(Real(f), size);
}
int FaultySync(sqlite3_file* f, int flags) {
  return RealMethods(f).xSync(Real(f), flags);
}
int FaultyFileSize(sqlite3_file* f, sqlite3_int64* size) {
  return RealMethods(f).xFileSize(Real(f), size);
}
int FaultyLock(sqlite3_file* f, int lock) {
  return RealMethods(f).xLock(Real(f), lock);
}
int FaultyUnlock(sqlite3_file* f, int lock) {
  return RealMethods(f).xUnlock(Real(f), lock);
}
int FaultyCheckReservedLock(sqlite3_file* f, int* out) {
  return RealMethods(f).xCheckReservedLock(Real(f), out);
}
int FaultyFileControl(sqlite3_file* f, int op, void* arg) {
  return RealMethods(f).xFileControl(Real(f), op, arg);
}
int FaultySectorSize(sqlite3_file* f) {
  return RealMethods(f).xSectorSize(Real(f));
}
int FaultyDeviceCharacteristics(sqlite3_file* f) {
  return RealMethods(f).xDeviceCharacteristics(Real(f));
}
int FaultyShmMap(sqlite3_file* f, int region, int size, int extend,
                 void volatile** out) {
  return RealMethods(f).xShmMap(Real(f), region, size, extend, out);
}
int FaultyShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return RealMethods(f).xShmLock(Real(f), offset, n, flags);
}
void FaultyShmBarrier(sqlite3_file* f) { RealMethods(f).xShmBarrier(Real(f)); }
int FaultyShmUnmap(sqlite3_file* f, int delete_flag) {
  return RealMethods(f).xShmUnmap(Real(f), delete_flag);
}
int FaultyFetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return RealMethods(f).xFetch(Real(f), offset, amount, out);
}
int FaultyUnfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return RealMethods(f).xUnfetch(Real(f), offset, p);
}

const sqlite3_io_methods kFaultyMethods = {
    3,
    FaultyClose,
    FaultyRead,
    FaultyWrite,
    FaultyTruncate,
    FaultySync,
    FaultyFileSize,
    FaultyLock,
    FaultyUnlock,
    FaultyCheckReservedLock,
    FaultyFileControl,
    FaultySectorSize,
    FaultyDeviceCharacteristics,
    FaultyShmMap,
    FaultyShmLock,
    FaultyShmBarrier,
    FaultyShmUnmap,
    FaultyFetch,
    FaultyUnfetch,
};

int FaultyOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* file,
               int flags, int* out_flags) {
  sqlite3_vfs* real_vfs = static_cast<sqlite3_vfs*>(vfs->pAppData);
  FaultyFile* faulty = reinterpret_cast<FaultyFile*>(file);
  faulty->real = reinterpret_cast<sqlite3_file*>(faulty + 1);
  int rc = real_vfs->xOpen(real_vfs, name, faulty->real, flags, out_flags);
  // SQLite calls xClose only when pMethods is set; mirror the real file.
  faulty->base.pMethods =
      faulty->real->pMethods != nullptr ? &kFaultyMethods : nullptr;
  return rc;
}

void RegisterFaultyVfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    static sqlite3_vfs vfs;
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    ASSERT_NE(real, nullptr);
    ASSERT_GE(real->iVersion, 1);
    vfs = *real;  // Every other method is the real VFS's.
    vfs.zName = kFaultyVfs;
    vfs.szOsFile = static_cast<int>(sizeof(FaultyFile)) + real->szOsFile;
    vfs.pAppData = real;
    vfs.xOpen = FaultyOpen;
    ASSERT_EQ(sqlite3_vfs_register(&vfs, /*makeDflt=*/0), SQLITE_OK);
  });
}

// ---------------------------------------------------------------------------
// Fixture: a fresh directory per test; the store at `path_`.

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "store_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr) << strerror(errno);
    dir_ = dir_template;
    path_ = dir_ + "/rules.db";
  }

  void TearDown() override {
    store_.reset();
    if (check_integrity_ && std::filesystem::exists(path_)) {
      RawDb raw(path_, /*read_only=*/true);
      EXPECT_EQ(raw.Query("PRAGMA integrity_check"), "ok");
      EXPECT_EQ(raw.Query("PRAGMA foreign_key_check"), "");
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Opens (or reopens, after destroying the current Store) `path_`.
  void OpenStore(const StoreOptions& options = {}) {
    store_.reset();
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  v1::VersionInfo MustPut(const v1::RuleSet& rule_set,
                          int64_t expected_version = 0,
                          const std::string& author = "CN=admin",
                          const std::string& comment = "") {
    absl::StatusOr<v1::VersionInfo> info = store_->PutVersion(
        rule_set, rule_set.rules_size(), author, comment, expected_version);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : v1::VersionInfo();
  }

  std::vector<v1::VersionInfo> MustListVersions(const std::string& name) {
    absl::StatusOr<std::vector<v1::VersionInfo>> versions =
        store_->ListVersions(name);
    EXPECT_TRUE(versions.ok()) << versions.status();
    return versions.ok() ? *versions : std::vector<v1::VersionInfo>();
  }

  std::vector<v1::VersionInfo> MustListActive() {
    absl::StatusOr<std::vector<v1::VersionInfo>> active = store_->ListActive();
    EXPECT_TRUE(active.ok()) << active.status();
    return active.ok() ? *active : std::vector<v1::VersionInfo>();
  }

  // The active version of `name`, or 0 if none.
  int64_t ActiveVersion(const std::string& name) {
    auto got = store_->Get(name, 0);
    if (absl::IsNotFound(got.status())) return 0;
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? got->second.version() : -1;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
  bool check_integrity_ = true;
};

// ---------------------------------------------------------------------------
// Basic operations.

TEST_F(StoreTest, PutGetList) {
  OpenStore();
  const v1::RuleSet shop = MakeRuleSet("shop", 3, "a");
  const v1::RuleSet alpha = MakeRuleSet("alpha", 1, "b");

  int64_t before = absl::ToUnixMicros(absl::Now());
  absl::StatusOr<v1::VersionInfo> put =
      store_->PutVersion(shop, 3, "CN=alice", "first", 0);
  int64_t after = absl::ToUnixMicros(absl::Now());
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->rule_set(), "shop");
  EXPECT_EQ(put->version(), 1);
  EXPECT_EQ(put->author(), "CN=alice");
  EXPECT_EQ(put->comment(), "first");
  EXPECT_EQ(put->rule_count(), 3);
  EXPECT_TRUE(put->active());
  EXPECT_EQ(put->sha256().size(), 64u);
  EXPECT_GE(Micros(put->created_at()), before);
  EXPECT_LE(Micros(put->created_at()), after);
  MustPut(alpha, 0, "CN=bob", "alpha first");

  // Get: active and by number, content and info equal to what was put.
  for (int64_t version : {0, 1}) {
    auto got = store_->Get("shop", version);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(MessageDifferencer::Equals(got->first, shop));
    EXPECT_TRUE(MessageDifferencer::Equals(got->second, *put))
        << got->second.DebugString() << " vs " << put->DebugString();
  }

  // ListActive: sorted by name.
  std::vector<v1::VersionInfo> active = MustListActive();
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[0].rule_set(), "alpha");
  EXPECT_EQ(active[0].author(), "CN=bob");
  EXPECT_TRUE(active[0].active());
  EXPECT_TRUE(MessageDifferencer::Equals(active[1], *put));

  std::vector<v1::VersionInfo> versions = MustListVersions("shop");
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(versions[0], *put));

  auto loaded = store_->LoadActive();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_TRUE(MessageDifferencer::Equals((*loaded)[0].first, alpha));
  EXPECT_TRUE(MessageDifferencer::Equals((*loaded)[1].first, shop));
  EXPECT_TRUE(MessageDifferencer::Equals((*loaded)[1].second, *put));

  // Misses.
  EXPECT_TRUE(absl::IsNotFound(store_->Get("nope", 0).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Get("shop", 2).status()));
  EXPECT_THAT(Message(store_->Get("shop", 2).status()),
              HasSubstr("\"shop\" has no version 2"));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Get("shop", -1).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->ListVersions("nope").status()));
}

TEST_F(StoreTest, EmptyStoreListsNothing) {
  OpenStore();
  EXPECT_TRUE(MustListActive().empty());
  auto loaded = store_->LoadActive();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->empty());
}

TEST_F(StoreTest, RejectsInvalidArguments) {
  OpenStore();
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->PutVersion(MakeRuleSet("", 1, "x"), 1, "a", "", 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->PutVersion(MakeRuleSet("s", 1, "x"), 1, "a", "", -2).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->PutVersion(MakeRuleSet("s", 1, "x"), -1, "a", "", 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Activate("s", 0).status()));
  EXPECT_TRUE(MustListActive().empty());
}

TEST_F(StoreTest, VersionsIncreaseAndContinueAfterDeactivate) {
  OpenStore();
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(MustPut(MakeRuleSet("shop", i, absl::StrCat("v", i))).version(),
              i);
  }
  std::vector<v1::VersionInfo> versions = MustListVersions("shop");
  EXPECT_EQ(Versions(versions), (std::vector<int64_t>{3, 2, 1}));
  EXPECT_EQ(ActiveVersions(versions), (std::vector<int64_t>{3}));
  EXPECT_EQ(versions[1].rule_count(), 2);

  ASSERT_TRUE(store_->Deactivate("shop").ok());
  EXPECT_EQ(ActiveVersion("shop"), 0);
  EXPECT_THAT(Message(store_->Get("shop", 0).status()),
              HasSubstr("has no active version"));
  EXPECT_TRUE(MustListActive().empty());
  versions = MustListVersions("shop");
  EXPECT_EQ(Versions(versions), (std::vector<int64_t>{3, 2, 1}));
  EXPECT_TRUE(ActiveVersions(versions).empty());
  // History stays readable.
  auto old = store_->Get("shop", 2);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_FALSE(old->second.active());
  EXPECT_EQ(old->first.rules_size(), 2);

  EXPECT_TRUE(absl::IsNotFound(store_->Deactivate("shop")));
  EXPECT_TRUE(absl::IsNotFound(store_->Deactivate("unknown")));

  // The next put continues after the highest stored version.
  v1::VersionInfo next = MustPut(MakeRuleSet("shop", 1, "v4"), -1);
  EXPECT_EQ(next.version(), 4);
  EXPECT_EQ(ActiveVersion("shop"), 4);
  EXPECT_EQ(Versions(MustListVersions("shop")),
            (std::vector<int64_t>{4, 3, 2, 1}));
}

TEST_F(StoreTest, ExpectedVersionConflictsWriteNothing) {
  OpenStore();
  const v1::RuleSet rule_set = MakeRuleSet("shop", 1, "x");
  auto expect_conflict = [&](int64_t expected, const std::string& text) {
    absl::StatusOr<v1::VersionInfo> put =
        store_->PutVersion(rule_set, 1, "CN=late", "conflict", expected);
    EXPECT_TRUE(absl::IsFailedPrecondition(put.status()))
        << "expected " << expected << ": " << put.status();
    EXPECT_THAT(Message(put.status()), HasSubstr(text));
  };

  // A new set: only 0 and -1 succeed.
  expect_conflict(1, "but it has no active version");
  EXPECT_TRUE(absl::IsNotFound(store_->ListVersions("shop").status()));
  EXPECT_EQ(MustPut(rule_set, -1).version(), 1);
  expect_conflict(-1,
                  "expected no active version, but the active version is 1");
  EXPECT_EQ(MustPut(rule_set, 0).version(), 2);
  // Stale and future expectations.
  expect_conflict(1, "expected active version 1, but the active version is 2");
  expect_conflict(5, "the active version is 2");

  std::vector<v1::VersionInfo> versions = MustListVersions("shop");
  EXPECT_EQ(Versions(versions), (std::vector<int64_t>{2, 1}));
  for (const v1::VersionInfo& info : versions) {
    EXPECT_NE(info.author(), "CN=late");
  }
  EXPECT_EQ(ActiveVersion("shop"), 2);

  EXPECT_EQ(MustPut(rule_set, 2).version(), 3);
  // After a rollback, the expectation is the rolled-back-to version.
  ASSERT_TRUE(store_->Activate("shop", 1).ok());
  expect_conflict(3, "the active version is 1");
  EXPECT_EQ(MustPut(rule_set, 1).version(), 4);
  // After Deactivate, -1 holds again.
  ASSERT_TRUE(store_->Deactivate("shop").ok());
  expect_conflict(4, "but it has no active version");
  EXPECT_EQ(MustPut(rule_set, -1).version(), 5);
}

TEST_F(StoreTest, ActivateEarlierVersionRollsBack) {
  OpenStore();
  const v1::RuleSet first = MakeRuleSet("shop", 1, "first");
  const v1::RuleSet second = MakeRuleSet("shop", 2, "second");
  v1::VersionInfo v1_info = MustPut(first, 0, "CN=alice", "one");
  MustPut(second, 1, "CN=bob", "two");

  absl::StatusOr<v1::VersionInfo> activated = store_->Activate("shop", 1);
  ASSERT_TRUE(activated.ok()) << activated.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*activated, v1_info));

  auto got = store_->Get("shop", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(got->first, first));
  EXPECT_EQ(got->second.version(), 1);
  EXPECT_EQ(got->second.author(), "CN=alice");
  EXPECT_EQ(ActiveVersions(MustListVersions("shop")),
            (std::vector<int64_t>{1}));
  auto not_active = store_->Get("shop", 2);
  ASSERT_TRUE(not_active.ok());
  EXPECT_FALSE(not_active->second.active());

  // Unknown versions and sets change nothing.
  EXPECT_TRUE(absl::IsNotFound(store_->Activate("shop", 3).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Activate("other", 1).status()));
  EXPECT_EQ(ActiveVersion("shop"), 1);
  EXPECT_TRUE(absl::IsNotFound(store_->ListVersions("other").status()));

  // Roll forward again, and re-activate after Deactivate.
  ASSERT_TRUE(store_->Activate("shop", 2).ok());
  EXPECT_EQ(ActiveVersion("shop"), 2);
  ASSERT_TRUE(store_->Deactivate("shop").ok());
  ASSERT_TRUE(store_->Activate("shop", 1).ok());
  EXPECT_EQ(ActiveVersion("shop"), 1);
  // A put after a rollback still takes the next number.
  EXPECT_EQ(MustPut(first, 1).version(), 3);
}

// ---------------------------------------------------------------------------
// Durability and encoding.

TEST_F(StoreTest, RestartKeepsVersionsActivePointersAndMetadata) {
  OpenStore();
  for (int i = 1; i <= 3; ++i) {
    MustPut(MakeRuleSet("shop", i, absl::StrCat("s", i)), 0,
            absl::StrCat("CN=author", i), absl::StrCat("comment ", i));
  }
  ASSERT_TRUE(store_->Activate("shop", 2).ok());
  MustPut(MakeRuleSet("billing", 4, "b"), -1, "CN=carol", "billing");
  MustPut(MakeRuleSet("retired", 1, "r"), -1, "CN=dave", "to retire");
  ASSERT_TRUE(store_->Deactivate("retired").ok());

  const std::vector<std::string> names = {"billing", "retired", "shop"};
  std::map<std::string, std::vector<v1::VersionInfo>> before;
  for (const std::string& name : names) before[name] = MustListVersions(name);
  std::vector<v1::VersionInfo> active_before = MustListActive();
  auto loaded_before = store_->LoadActive();
  ASSERT_TRUE(loaded_before.ok());

  OpenStore();  // Destroys the Store (closing the file) and reopens it.

  for (const std::string& name : names) {
    std::vector<v1::VersionInfo> after = MustListVersions(name);
    ASSERT_EQ(after.size(), before[name].size()) << name;
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_TRUE(MessageDifferencer::Equals(after[i], before[name][i]))
          << after[i].DebugString() << " vs " << before[name][i].DebugString();
    }
  }
  std::vector<v1::VersionInfo> active_after = MustListActive();
  ASSERT_EQ(active_after.size(), 2u);
  EXPECT_EQ(active_after[0].rule_set(), "billing");
  EXPECT_EQ(active_after[1].rule_set(), "shop");
  EXPECT_EQ(active_after[1].version(), 2);
  EXPECT_EQ(active_after[1].author(), "CN=author2");
  EXPECT_EQ(active_after[1].comment(), "comment 2");
  for (size_t i = 0; i < active_after.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(active_after[i], active_before[i]));
  }
  auto loaded_after = store_->LoadActive();
  ASSERT_TRUE(loaded_after.ok()) << loaded_after.status();
  ASSERT_EQ(loaded_after->size(), loaded_before->size());
  for (size_t i = 0; i < loaded_after->size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals((*loaded_after)[i].first,
                                           (*loaded_before)[i].first));
    EXPECT_TRUE(MessageDifferencer::Equals((*loaded_after)[i].second,
                                           (*loaded_before)[i].second));
  }
  // Numbering continues across the restart.
  EXPECT_EQ(MustPut(MakeRuleSet("shop", 1, "s4"), 2).version(), 4);
  EXPECT_EQ(MustPut(MakeRuleSet("retired", 1, "r2"), -1).version(), 2);
}

TEST_F(StoreTest, Sha256IsOfTheDeterministicEncoding) {
  OpenStore();
  // A known vector, independent of protobuf and OpenSSL: RuleSet{name: "a"}
  // encodes as 0a 01 61, whose SHA-256 is (`printf '\x0a\x01\x61' |
  // sha256sum`):
  v1::RuleSet tiny;
  tiny.set_name("a");
  EXPECT_EQ(MustPut(tiny).sha256(),
            "23dca2a7429612378554b0bb5b85012dec00a17cc2c673f17d2b76a50b839cd5");

  // A rule set with maps: the stored bytes are the deterministic encoding,
  // and the hash is over exactly those bytes.
  const v1::RuleSet shop = MakeRuleSet("shop", 5, "t");
  v1::VersionInfo info = MustPut(shop);
  const std::string expected_bytes = DeterministicBytes(shop);
  EXPECT_EQ(info.sha256(), Sha256Hex(expected_bytes));
  {
    RawDb raw(path_, /*read_only=*/true);
    EXPECT_EQ(raw.Content("shop", 1), expected_bytes);
    EXPECT_EQ(raw.Query("SELECT sha256 FROM rule_set_versions "
                        "WHERE name = 'shop'"),
              info.sha256());
  }

  // Map insertion order does not change the hash.
  v1::RuleSet forward;
  forward.set_name("maps");
  v1::RuleSet backward = forward;
  auto* forward_fields = forward.add_rules()
                             ->add_obligations()
                             ->mutable_params()
                             ->mutable_fields();
  auto* backward_fields = backward.add_rules()
                              ->add_obligations()
                              ->mutable_params()
                              ->mutable_fields();
  for (int i = 0; i < 50; ++i) {
    (*forward_fields)[absl::StrCat("k", i)].set_number_value(i);
    (*backward_fields)[absl::StrCat("k", 49 - i)].set_number_value(49 - i);
  }
  std::string forward_sha = MustPut(forward).sha256();
  EXPECT_EQ(MustPut(backward).sha256(), forward_sha);
  EXPECT_EQ(forward_sha, Sha256Hex(DeterministicBytes(backward)));
}

TEST_F(StoreTest, CreatesFilesWithMode0600) {
  mode_t old_umask = umask(0);  // SQLite alone would create 0644 now.
  OpenStore();
  umask(old_umask);
  MustPut(MakeRuleSet("shop", 1, "x"));  // Creates -wal and -shm.
  for (const std::string& file : {path_, path_ + "-wal", path_ + "-shm"}) {
    struct stat st;
    ASSERT_EQ(stat(file.c_str(), &st), 0) << file << ": " << strerror(errno);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << file;
  }
}

TEST_F(StoreTest, UsesWalAndCurrentSchemaVersion) {
  OpenStore();
  MustPut(MakeRuleSet("shop", 1, "x"));
  store_.reset();
  RawDb raw(path_, /*read_only=*/true);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Query("PRAGMA user_version"), "2");
  EXPECT_EQ(raw.Query("SELECT name FROM sqlite_schema WHERE type = 'table' "
                      "ORDER BY name"),
            "audit_events\nrule_set_versions\nrule_sets\nsqlite_sequence");
}

TEST_F(StoreTest, RefusesNewerSchema) {
  OpenStore();
  store_.reset();
  { RawDb(path_).Exec("PRAGMA user_version = 99"); }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_THAT(Message(store.status()), HasSubstr("schema version 99"));
  EXPECT_THAT(Message(store.status()), HasSubstr(path_));
  { RawDb(path_).Exec("PRAGMA user_version = 2"); }
}

TEST_F(StoreTest, CorruptContentIsDataLoss) {
  OpenStore();
  MustPut(MakeRuleSet("shop", 1, "one"));
  MustPut(MakeRuleSet("shop", 2, "two"));
  MustPut(MakeRuleSet("other", 1, "o"));
  store_.reset();

  const std::string garbage("\xff\xff\xff\xff", 4);
  v1::RuleSet renamed = MakeRuleSet("impostor", 1, "i");
  const std::string renamed_bytes = DeterministicBytes(renamed);
  {
    RawDb raw(path_);
    // Version 1: bytes changed behind the hash.
    raw.SetContent("shop", 1, DeterministicBytes(MakeRuleSet("shop", 9, "x")),
                   "");
    // Version 2 (active): unparsable bytes with a matching hash.
    raw.SetContent("shop", 2, garbage, Sha256Hex(garbage));
    // "other": a valid rule set of another name, hash matching.
    raw.SetContent("other", 1, renamed_bytes, Sha256Hex(renamed_bytes));
  }
  OpenStore();

  absl::Status status = store_->Get("shop", 1).status();
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_THAT(Message(status), HasSubstr("\"shop\" version 1"));
  EXPECT_THAT(Message(status), HasSubstr("SHA-256"));

  status = store_->Get("shop", 0).status();
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_THAT(Message(status), HasSubstr("\"shop\" version 2"));
  EXPECT_THAT(Message(status), HasSubstr("does not parse"));

  status = store_->Get("other", 1).status();
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_THAT(Message(status), HasSubstr("\"impostor\""));

  status = store_->LoadActive().status();
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;

  // Metadata stays listable, so an operator can see what to roll to.
  EXPECT_EQ(MustListVersions("shop").size(), 2u);
  EXPECT_EQ(MustListActive().size(), 2u);
}

// ---------------------------------------------------------------------------
// Concurrency.

// Threads race compare-and-set style: read the active version, put with it as
// the expectation, retry on FAILED_PRECONDITION. Every expected version must
// have exactly one winner and the history must have no gaps or duplicates.
TEST_F(StoreTest, ConcurrentPutsOneWinnerPerExpectedVersion) {
  OpenStore();
  MustPut(MakeRuleSet("shop", 1, "seed"), -1);
  constexpr int kThreads = 8;
  constexpr int64_t kLastVersion = 120;

  absl::Mutex mu;
  std::map<int64_t, std::vector<std::string>> winners;  // expected → comments
  std::map<int64_t, std::string> returned;              // version → comment
  std::atomic<int> conflicts{0};
  std::atomic<int> errors{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int attempt = 0;; ++attempt) {
        auto current = store_->Get("shop", 0);
        if (!current.ok()) {
          ++errors;
          return;
        }
        int64_t expected = current->second.version();
        if (expected >= kLastVersion) return;
        std::string comment = absl::StrCat("thread ", t, " attempt ", attempt);
        absl::StatusOr<v1::VersionInfo> put =
            store_->PutVersion(MakeRuleSet("shop", 1, comment), 1,
                               absl::StrCat("CN=t", t), comment, expected);
        if (absl::IsFailedPrecondition(put.status())) {
          ++conflicts;
          continue;
        }
        if (!put.ok()) {
          ++errors;
          return;
        }
        absl::MutexLock lock(&mu);
        winners[expected].push_back(comment);
        EXPECT_TRUE(returned.emplace(put->version(), comment).second)
            << "version " << put->version() << " returned twice";
        EXPECT_EQ(put->version(), expected + 1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(errors.load(), 0);
  for (int64_t expected = 1; expected < kLastVersion; ++expected) {
    EXPECT_EQ(winners[expected].size(), 1u) << "expected " << expected;
  }
  EXPECT_EQ(winners.size(), static_cast<size_t>(kLastVersion - 1));
  // The stored history is exactly 1..kLastVersion, each version the winner's.
  std::vector<v1::VersionInfo> versions = MustListVersions("shop");
  ASSERT_EQ(versions.size(), static_cast<size_t>(kLastVersion));
  for (size_t i = 0; i < versions.size(); ++i) {
    int64_t version = kLastVersion - static_cast<int64_t>(i);
    EXPECT_EQ(versions[i].version(), version);
    if (version > 1) {
      EXPECT_EQ(versions[i].comment(), returned[version]);
    }
  }
  EXPECT_EQ(ActiveVersion("shop"), kLastVersion);
  // Contention is likely but not guaranteed; report it rather than assert.
  RecordProperty("conflicts", conflicts.load());
}

// All threads put with the same expectation at once, round after round:
// exactly one succeeds per round, the rest see FAILED_PRECONDITION.
TEST_F(StoreTest, ConcurrentPutsSameExpectationExactlyOneWins) {
  OpenStore();
  MustPut(MakeRuleSet("shop", 1, "seed"), -1);
  constexpr int kThreads = 8;
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    const int64_t expected = 1 + round;
    std::latch start(kThreads);
    std::atomic<int> ok{0};
    std::atomic<int> conflicts{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        v1::RuleSet rule_set =
            MakeRuleSet("shop", 1, absl::StrCat(round, "/", t));
        start.arrive_and_wait();
        absl::StatusOr<v1::VersionInfo> put =
            store_->PutVersion(rule_set, 1, "CN=t", "", expected);
        if (put.ok()) {
          ++ok;
          EXPECT_EQ(put->version(), expected + 1);
        } else {
          EXPECT_TRUE(absl::IsFailedPrecondition(put.status())) << put.status();
          ++conflicts;
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    ASSERT_EQ(ok.load(), 1) << "round " << round;
    ASSERT_EQ(conflicts.load(), kThreads - 1) << "round " << round;
  }
  std::vector<int64_t> expected_versions;
  for (int64_t v = kRounds + 1; v >= 1; --v) expected_versions.push_back(v);
  EXPECT_EQ(Versions(MustListVersions("shop")), expected_versions);
}

// Two Stores on one file stand in for two processes: each sees the other's
// writes, and expected versions conflict across them.
TEST_F(StoreTest, TwoStoresOnOneFile) {
  OpenStore();
  absl::StatusOr<std::unique_ptr<Store>> other = Store::Open(path_);
  ASSERT_TRUE(other.ok()) << other.status();
  MustPut(MakeRuleSet("shop", 1, "a"), -1);
  auto seen = (*other)->Get("shop", 0);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->second.version(), 1);
  ASSERT_TRUE(
      (*other)->PutVersion(MakeRuleSet("shop", 1, "b"), 1, "o", "", 1).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->PutVersion(MakeRuleSet("shop", 1, "c"), 1, "s", "", 1).status()));
  EXPECT_EQ(ActiveVersion("shop"), 2);
}

// ---------------------------------------------------------------------------
// Failures.

TEST_F(StoreTest, OpeningANonDatabaseFileFails) {
  check_integrity_ = false;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "this is not a database\n";
  {
    std::ofstream out(path_, std::ios::binary);
    out << text;
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_THAT(Message(store.status()), HasSubstr(path_));
  EXPECT_THAT(Message(store.status()), HasSubstr("not a SQLite database"));
  // The file is left as it was.
  std::ifstream in(path_, std::ios::binary);
  std::stringstream read_back;
  read_back << in.rdbuf();
  EXPECT_EQ(read_back.str(), text);

  StoreOptions read_only;
  read_only.read_only = true;
  EXPECT_TRUE(
      absl::IsFailedPrecondition(Store::Open(path_, read_only).status()));
}

TEST_F(StoreTest, OpeningInAMissingDirectoryFails) {
  check_integrity_ = false;
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Open(dir_ + "/missing/rules.db");
  EXPECT_TRUE(absl::IsNotFound(store.status())) << store.status();
  EXPECT_THAT(Message(store.status()), HasSubstr("missing/rules.db"));
}

// Opened with StoreOptions::read_only (SQLITE_OPEN_READONLY), which holds for
// root too: reads work, writes fail with UNAVAILABLE and change nothing.
TEST_F(StoreTest, ReadOnlyStoreRejectsWrites) {
  StoreOptions read_only;
  read_only.read_only = true;
  // A missing file is not created.
  EXPECT_TRUE(absl::IsNotFound(Store::Open(path_, read_only).status()));
  EXPECT_FALSE(std::filesystem::exists(path_));

  OpenStore();
  MustPut(MakeRuleSet("shop", 1, "a"), -1, "CN=alice", "one");
  MustPut(MakeRuleSet("shop", 2, "b"), 1, "CN=alice", "two");
  std::vector<v1::VersionInfo> before = MustListVersions("shop");
  OpenStore(read_only);

  EXPECT_EQ(ActiveVersion("shop"), 2);
  EXPECT_EQ(MustListActive().size(), 1u);
  absl::Status status =
      store_->PutVersion(MakeRuleSet("shop", 1, "c"), 1, "CN=x", "", 0)
          .status();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_THAT(Message(status), HasSubstr("read-only"));
  EXPECT_TRUE(absl::IsUnavailable(store_->Activate("shop", 1).status()));
  EXPECT_TRUE(absl::IsUnavailable(store_->Deactivate("shop")));
  // The connection stays usable for reads after failed writes.
  EXPECT_EQ(ActiveVersion("shop"), 2);

  OpenStore();
  std::vector<v1::VersionInfo> after = MustListVersions("shop");
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(after[i], before[i]));
  }
}

// A file its owner made read-only (chmod 0400). Root bypasses file
// permissions, so this only means something for other users; the
// read_only option above covers the store's behaviour for everyone.
TEST_F(StoreTest, ReadOnlyFileFailsToOpenReadWrite) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "root ignores file permissions; ReadOnlyStoreRejectsWrites "
                    "covers read-only databases";
  }
  OpenStore();
  MustPut(MakeRuleSet("shop", 1, "a"));
  store_.reset();
  ASSERT_EQ(chmod(path_.c_str(), 0400), 0);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_THAT(Message(store.status()), HasSubstr("read-only"));
  StoreOptions read_only;
  read_only.read_only = true;
  OpenStore(read_only);
  EXPECT_EQ(ActiveVersion("shop"), 1);
  store_.reset();
  ASSERT_EQ(chmod(path_.c_str(), 0600), 0);
}

// Another connection holds the write lock: with no busy timeout a write
// fails with UNAVAILABLE at once and succeeds once the lock is released.
TEST_F(StoreTest, BusyDatabaseIsUnavailable) {
  StoreOptions options;
  options.busy_timeout = absl::ZeroDuration();
  OpenStore(options);
  MustPut(MakeRuleSet("shop", 1, "a"));
  {
    RawDb locker(path_);
    locker.Exec("BEGIN IMMEDIATE");
    absl::Status status =
        store_->PutVersion(MakeRuleSet("shop", 1, "b"), 1, "CN=x", "", 1)
            .status();
    EXPECT_TRUE(absl::IsUnavailable(status)) << status;
    EXPECT_THAT(Message(status), HasSubstr("locked"));
    EXPECT_TRUE(absl::IsUnavailable(store_->Activate("shop", 1).status()));
    // Reads are not blocked by a writer in WAL mode.
    EXPECT_EQ(ActiveVersion("shop"), 1);
    locker.Exec("ROLLBACK");
  }
  EXPECT_EQ(MustPut(MakeRuleSet("shop", 1, "b"), 1).version(), 2);
}

// Disk full and I/O errors while writing, injected through the VFS: the
// operation fails with RESOURCE_EXHAUSTED / UNAVAILABLE, nothing of it is
// visible (now or after a restart), and the store works once the fault
// clears.
TEST_F(StoreTest, WriteFaultsRollBackCompletely) {
  RegisterFaultyVfs();
  StoreOptions options;
  options.vfs = kFaultyVfs;
  OpenStore(options);
  MustPut(MakeRuleSet("shop", 1, "a"), -1, "CN=alice", "one");
  MustPut(MakeRuleSet("shop", 1, "b"), 1, "CN=alice", "two");
  ASSERT_TRUE(store_->Activate("shop", 1).ok());
  std::vector<v1::VersionInfo> before = MustListVersions("shop");

  struct Fault {
    int sqlite_code;
    absl::StatusCode status_code;
    const char* text;
  };
  for (const Fault& fault :
       {Fault{SQLITE_FULL, absl::StatusCode::kResourceExhausted, "full"},
        Fault{SQLITE_IOERR_WRITE, absl::StatusCode::kUnavailable,
              "I/O error"}}) {
    g_write_fault = fault.sqlite_code;
    absl::Status put =
        store_->PutVersion(MakeRuleSet("shop", 3, "c"), 3, "CN=x", "", 1)
            .status();
    absl::Status activate = store_->Activate("shop", 2).status();
    absl::Status new_set =
        store_->PutVersion(MakeRuleSet("new", 1, "n"), 1, "CN=x", "", -1)
            .status();
    g_write_fault = SQLITE_OK;
    for (const absl::Status& status : {put, activate, new_set}) {
      EXPECT_EQ(status.code(), fault.status_code) << status;
      EXPECT_THAT(Message(status), HasSubstr(fault.text));
    }

    std::vector<v1::VersionInfo> after = MustListVersions("shop");
    ASSERT_EQ(after.size(), before.size());
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_TRUE(MessageDifferencer::Equals(after[i], before[i]));
    }
    EXPECT_EQ(ActiveVersion("shop"), 1);
    EXPECT_TRUE(absl::IsNotFound(store_->ListVersions("new").status()));
  }

  OpenStore(options);  // Restart: still nothing of the failed writes.
  EXPECT_EQ(Versions(MustListVersions("shop")), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(ActiveVersion("shop"), 1);
  EXPECT_TRUE(absl::IsNotFound(store_->ListVersions("new").status()));
  // And writes work again, numbering unaffected.
  EXPECT_EQ(MustPut(MakeRuleSet("shop", 3, "c"), 1).version(), 3);
  EXPECT_EQ(MustPut(MakeRuleSet("new", 1, "n"), -1).version(), 1);
}

// ---------------------------------------------------------------------------
// Store errors name the file, SQLite's extended code and the OS error.

TEST_F(StoreTest, ErrorsNameTheFileTheExtendedCodeAndTheErrno) {
  RegisterFaultyVfs();
  StoreOptions options;
  options.vfs = kFaultyVfs;
  options.busy_timeout = absl::ZeroDuration();
  OpenStore(options);
  MustPut(MakeRuleSet("shop", 1, "a"), -1);

  // An I/O error: the OS's errno and its text.
  g_write_fault = SQLITE_IOERR_WRITE;
  g_write_errno = EROFS;
  absl::Status io = store_->PutVersion(MakeRuleSet("shop", 2, "b"), 2, "CN=x",
                                       "", 0)
                        .status();
  g_write_fault = SQLITE_FULL;
  g_write_errno = ENOSPC;
  absl::Status full = store_->Activate("shop", 1).status();
  g_write_fault = SQLITE_OK;
  g_write_errno = EIO;
  EXPECT_TRUE(absl::IsUnavailable(io)) << io;
  EXPECT_THAT(Message(io), HasSubstr(absl::StrCat("store ", path_, ": put rule set \"shop\"")));
  EXPECT_THAT(Message(io), HasSubstr("SQLITE_IOERR_WRITE, code 778"));
  EXPECT_THAT(Message(io), HasSubstr("errno 30: Read-only file system"));
  EXPECT_THAT(Message(io), HasSubstr("sqlite: disk I/O error"));
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_THAT(Message(full), HasSubstr(absl::StrCat("store ", path_, ": activate rule set")));
  EXPECT_THAT(Message(full), HasSubstr("SQLITE_FULL, code 13"));
  EXPECT_THAT(Message(full), HasSubstr("errno 28: No space left on device"));

  // Locked by another connection.
  {
    RawDb locker(path_);
    locker.Exec("BEGIN IMMEDIATE");
    absl::Status locked = store_->Deactivate("shop");
    EXPECT_TRUE(absl::IsUnavailable(locked)) << locked;
    EXPECT_THAT(Message(locked), HasSubstr(absl::StrCat("store ", path_, ": deactivate")));
    EXPECT_THAT(Message(locked), HasSubstr("locked"));
    // A lock conflict is no OS error: no errno (not even a stale one).
    EXPECT_THAT(Message(locked), HasSubstr("[SQLITE_BUSY, code 5]"));
    v1::AuditEvent event;
    event.set_method("GetRuleSet");
    absl::Status audit = store_->AppendAuditEvent(&event);
    EXPECT_TRUE(absl::IsUnavailable(audit)) << audit;
    EXPECT_THAT(Message(audit), HasSubstr(absl::StrCat("store ", path_, ": record GetRuleSet")));
    locker.Exec("ROLLBACK");
  }

  // Read-only.
  StoreOptions read_only;
  read_only.read_only = true;
  OpenStore(read_only);
  absl::Status readonly =
      store_->PutVersion(MakeRuleSet("shop", 1, "c"), 1, "CN=x", "", 0).status();
  EXPECT_TRUE(absl::IsUnavailable(readonly)) << readonly;
  EXPECT_THAT(Message(readonly), HasSubstr(path_));
  EXPECT_THAT(Message(readonly), HasSubstr("SQLITE_READONLY"));
  EXPECT_THAT(Message(readonly), HasSubstr("attempt to write a readonly database"));
}

// A database whose directory may not be written: SQLite cannot create the
// WAL, and the error says which file and why (errno). Root ignores
// permissions, so this runs only for other users.
TEST_F(StoreTest, ReadOnlyDirectoryErrorNamesTheFileAndErrno) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "root ignores directory permissions; the errno text is "
                    "covered by ErrorsNameTheFileTheExtendedCodeAndTheErrno";
  }
  OpenStore();
  MustPut(MakeRuleSet("shop", 1, "a"));
  store_.reset();  // The last connection removes the -wal and -shm files.
  ASSERT_EQ(chmod(dir_.c_str(), 0500), 0);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
  ASSERT_EQ(chmod(dir_.c_str(), 0700), 0);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(Message(store.status()), HasSubstr(path_));
  EXPECT_THAT(Message(store.status()),
              ::testing::AnyOf(HasSubstr("errno 13"), HasSubstr("read-only")));
}

// ---------------------------------------------------------------------------
// The audit trail.

v1::AuditEvent Who(const std::string& caller, const std::string& method,
                   const std::string& rule_set,
                   const std::string& comment = "") {
  v1::AuditEvent event;
  event.set_caller(caller);
  event.set_caller_role("admin");
  event.set_peer("ipv4:127.0.0.1:4242");
  event.set_method(method);
  event.set_rule_set(rule_set);
  event.set_comment(comment);
  return event;
}

std::vector<int64_t> Ids(const std::vector<v1::AuditEvent>& events) {
  std::vector<int64_t> ids;
  for (const v1::AuditEvent& event : events) ids.push_back(event.id());
  return ids;
}

TEST_F(StoreTest, ChangesCommitTheirAuditEvent) {
  OpenStore();
  const int64_t before = absl::ToUnixMicros(absl::Now());
  v1::AuditEvent put = Who("spiffe://a", "PutRuleSet", "shop", "first");
  absl::StatusOr<v1::VersionInfo> info = store_->PutVersion(
      MakeRuleSet("shop", 3, "a"), 3, "spiffe://a", "first", -1, &put);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_GT(put.id(), 0);
  EXPECT_EQ(put.version(), 1);
  EXPECT_EQ(put.code(), 0);
  EXPECT_EQ(put.code_name(), "OK");
  EXPECT_EQ(Micros(put.time()), Micros(info->created_at()));
  EXPECT_GE(Micros(put.time()), before);
  EXPECT_THAT(put.summary(),
              HasSubstr("version 1 stored and activated (3 rules, sha256 " +
                        info->sha256().substr(0, 12) + ")"));
  EXPECT_THAT(put.summary(), HasSubstr("previously no active version"));

  MustPut(MakeRuleSet("shop", 1, "b"));
  v1::AuditEvent rollback =
      Who("spiffe://b", "ActivateVersion", "shop", "v2 broke checkout");
  ASSERT_TRUE(store_->Activate("shop", 1, &rollback).ok());
  EXPECT_EQ(rollback.version(), 1);
  EXPECT_EQ(rollback.summary(), "version 1 activated; previously version 2");
  v1::AuditEvent deleted = Who("spiffe://a", "DeleteRuleSet", "shop");
  ASSERT_TRUE(store_->Deactivate("shop", &deleted).ok());
  EXPECT_EQ(deleted.version(), 1);
  EXPECT_EQ(deleted.summary(), "deactivated (history kept); previously version 1");
  v1::AuditEvent failed = Who("spiffe://gw", "PutRuleSet", "shop");
  failed.set_caller_role("gateway");
  failed.set_code(7);
  failed.set_message("identity 'spiffe://gw' (role gateway) may not call Admin.PutRuleSet");
  ASSERT_TRUE(store_->AppendAuditEvent(&failed).ok());
  EXPECT_EQ(failed.code_name(), "PERMISSION_DENIED");

  // Newest first, each as written; and the same after a restart.
  for (int pass = 0; pass < 2; ++pass) {
    absl::StatusOr<AuditPage> page = store_->ListAuditEvents({});
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->next_before_id, 0);
    ASSERT_EQ(page->events.size(), 4u);
    EXPECT_TRUE(MessageDifferencer::Equals(page->events[0], failed))
        << page->events[0].DebugString() << " vs " << failed.DebugString();
    EXPECT_TRUE(MessageDifferencer::Equals(page->events[1], deleted));
    EXPECT_TRUE(MessageDifferencer::Equals(page->events[2], rollback));
    EXPECT_TRUE(MessageDifferencer::Equals(page->events[3], put));
    EXPECT_EQ(page->events[2].comment(), "v2 broke checkout");
    EXPECT_EQ(page->events[2].caller(), "spiffe://b");
    EXPECT_EQ(page->events[3].peer(), "ipv4:127.0.0.1:4242");
    OpenStore();
  }
}

// A change and its event commit together or not at all: a change that
// fails writes no event (and leaves the caller's event as it was), and an
// event that cannot be written fails the change.
TEST_F(StoreTest, ChangeAndAuditEventShareOneTransaction) {
  OpenStore();
  MustPut(MakeRuleSet("shop", 1, "a"), -1);

  // The change fails: no event.
  v1::AuditEvent event = Who("spiffe://a", "PutRuleSet", "shop");
  const v1::AuditEvent untouched = event;
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->PutVersion(MakeRuleSet("shop", 1, "b"), 1, "a", "", 7, &event)
          .status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Activate("shop", 9, &event).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Deactivate("nope", &event)));
  EXPECT_TRUE(MessageDifferencer::Equals(event, untouched));
  EXPECT_EQ(RawDb(path_, true).Query("SELECT count(*) FROM audit_events"), "0");

  // The event cannot be written: no change. (A trigger added behind the
  // store's back makes every audit insert fail.)
  RawDb(path_).Exec(
      "CREATE TRIGGER no_audit BEFORE INSERT ON audit_events "
      "BEGIN SELECT RAISE(ABORT, 'audit disabled by the test'); END");
  absl::Status put =
      store_->PutVersion(MakeRuleSet("shop", 2, "c"), 2, "a", "", 0, &event)
          .status();
  EXPECT_FALSE(put.ok());
  EXPECT_THAT(Message(put), HasSubstr("audit record"));
  EXPECT_THAT(Message(put), HasSubstr("audit disabled by the test"));
  EXPECT_THAT(Message(put), HasSubstr(path_));
  MustPut(MakeRuleSet("shop", 1, "d"));  // Version 2, without an event.
  EXPECT_FALSE(store_->Activate("shop", 1, &event).ok());
  EXPECT_FALSE(store_->Deactivate("shop", &event).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(event, untouched));
  EXPECT_EQ(Versions(MustListVersions("shop")), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(ActiveVersion("shop"), 2);

  RawDb(path_).Exec("DROP TRIGGER no_audit");
  ASSERT_TRUE(store_->Deactivate("shop", &event).ok());
  EXPECT_EQ(event.version(), 2);
  EXPECT_EQ(RawDb(path_, true).Query("SELECT count(*) FROM audit_events"), "1");
}

// A write fault while committing a change with its event: neither is there
// afterwards, also after a restart.
TEST_F(StoreTest, WriteFaultLosesChangeAndEventTogether) {
  RegisterFaultyVfs();
  StoreOptions options;
  options.vfs = kFaultyVfs;
  OpenStore(options);
  MustPut(MakeRuleSet("shop", 1, "a"), -1);
  v1::AuditEvent event = Who("spiffe://a", "PutRuleSet", "shop");
  g_write_fault = SQLITE_IOERR_WRITE;
  absl::Status put =
      store_->PutVersion(MakeRuleSet("shop", 2, "b"), 2, "a", "", 1, &event)
          .status();
  g_write_fault = SQLITE_OK;
  EXPECT_TRUE(absl::IsUnavailable(put)) << put;
  OpenStore(options);
  EXPECT_EQ(Versions(MustListVersions("shop")), (std::vector<int64_t>{1}));
  absl::StatusOr<AuditPage> page = store_->ListAuditEvents({});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->events.empty());
}

TEST_F(StoreTest, AuditEventsFilterAndPage) {
  OpenStore();
  // 25 events: callers a/b alternating, rule sets x/y/z in turn, methods
  // Get (even) and Put (odd).
  std::vector<v1::AuditEvent> written;
  for (int i = 0; i < 25; ++i) {
    v1::AuditEvent event =
        Who(i % 2 == 0 ? "a" : "b", i % 2 == 0 ? "GetRuleSet" : "PutRuleSet",
            std::string(1, static_cast<char>('x' + i % 3)));
    ASSERT_TRUE(store_->AppendAuditEvent(&event).ok());
    written.push_back(event);
  }
  for (size_t i = 1; i < written.size(); ++i) {
    EXPECT_GT(written[i].id(), written[i - 1].id());
  }

  // Pages of 10: 10, 10, 5, each newest first, together everything once.
  AuditQuery query;
  query.limit = 10;
  std::vector<int64_t> seen;
  std::vector<size_t> sizes;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<AuditPage> page = store_->ListAuditEvents(query);
    ASSERT_TRUE(page.ok()) << page.status();
    sizes.push_back(page->events.size());
    for (const auto& event : page->events) seen.push_back(event.id());
    if (page->next_before_id == 0) break;
    EXPECT_EQ(page->next_before_id, page->events.back().id());
    query.before_id = page->next_before_id;
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 5}));
  std::vector<int64_t> expected = Ids(written);
  std::reverse(expected.begin(), expected.end());
  EXPECT_EQ(seen, expected);

  // An exact page: no next page announced.
  query = {};
  query.limit = 25;
  EXPECT_EQ(store_->ListAuditEvents(query)->next_before_id, 0);

  // Filters, alone and together.
  auto count = [&](const AuditQuery& q) {
    absl::StatusOr<AuditPage> page = store_->ListAuditEvents(q);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->events.size() : 0;
  };
  query = {};
  query.rule_set = "x";
  EXPECT_EQ(count(query), 9u);  // i = 0, 3, ..., 24
  query.caller = "a";
  EXPECT_EQ(count(query), 5u);  // i = 0, 6, 12, 18, 24
  query.method = "PutRuleSet";
  EXPECT_EQ(count(query), 0u);
  query = {};
  query.caller = "b";
  query.method = "PutRuleSet";
  EXPECT_EQ(count(query), 12u);
  query.caller = "nobody";
  EXPECT_EQ(count(query), 0u);

  // Time: since inclusive, until exclusive.
  const absl::Time t5 = absl::FromUnixMicros(Micros(written[5].time()));
  const absl::Time t20 = absl::FromUnixMicros(Micros(written[20].time()));
  query = {};
  query.since = t5;
  query.until = t20;
  absl::StatusOr<AuditPage> window = store_->ListAuditEvents(query);
  ASSERT_TRUE(window.ok());
  for (const auto& event : window->events) {
    EXPECT_GE(Micros(event.time()), Micros(written[5].time()));
    EXPECT_LT(Micros(event.time()), Micros(written[20].time()));
  }
  EXPECT_GE(window->events.size(), 1u);
  EXPECT_LE(window->events.size(), 15u);
  query = {};
  query.since = absl::Now() + absl::Hours(1);
  EXPECT_EQ(count(query), 0u);

  query = {};
  query.limit = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(store_->ListAuditEvents(query).status()));
  query.limit = 1;
  query.before_id = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(store_->ListAuditEvents(query).status()));
}

TEST_F(StoreTest, LongAuditTextIsCutAtACharacterBoundary) {
  OpenStore();
  // 4090 ASCII bytes, then 'é' (2 bytes) repeated: the cut may not split it.
  std::string long_text = std::string(4090, 'c');
  for (int i = 0; i < 100; ++i) long_text += "\xc3\xa9";
  v1::AuditEvent event = Who("spiffe://gw", "PutRuleSet", long_text, long_text);
  ASSERT_TRUE(store_->AppendAuditEvent(&event).ok());
  absl::StatusOr<AuditPage> page = store_->ListAuditEvents({});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 1u);
  for (const std::string& text :
       {page->events[0].rule_set(), page->events[0].comment()}) {
    EXPECT_LE(text.size(), 4096u);
    EXPECT_GE(text.size(), 4090u);
    EXPECT_EQ(text.substr(text.size() - 3), "...");
    EXPECT_EQ(text.substr(0, 4090), std::string(4090, 'c'));
    // Valid UTF-8: what precedes "..." ends with a whole 'é'.
    const std::string body = text.substr(0, text.size() - 3);
    EXPECT_EQ((body.size() - 4090) % 2, 0u) << body.size();
  }
  EXPECT_TRUE(MessageDifferencer::Equals(page->events[0], event));
}

// A database written by the version-1 schema (before the audit trail) is
// upgraded in place on the first read-write open: its versions, active
// pointers and content are kept, and the audit trail works.
TEST_F(StoreTest, MigratesAVersionOneDatabaseInPlace) {
  const v1::RuleSet shop1 = MakeRuleSet("shop", 2, "one");
  const v1::RuleSet shop2 = MakeRuleSet("shop", 3, "two");
  // RawDb opens existing files only; make the file with sqlite3 directly.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_close(db);
  }
  {
    RawDb raw(path_);
    // The version-1 schema, as service/store.cc's first migration made it.
    raw.Exec(R"sql(
CREATE TABLE rule_set_versions (
  name          TEXT    NOT NULL,
  version       INTEGER NOT NULL CHECK (version >= 1),
  content       BLOB    NOT NULL,
  sha256        TEXT    NOT NULL CHECK (length(sha256) = 64),
  author        TEXT    NOT NULL,
  comment       TEXT    NOT NULL,
  created_at_us INTEGER NOT NULL,
  rule_count    INTEGER NOT NULL CHECK (rule_count >= 0),
  PRIMARY KEY (name, version)
) STRICT;
CREATE TABLE rule_sets (
  name           TEXT    NOT NULL PRIMARY KEY,
  active_version INTEGER NULL,
  updated_at_us  INTEGER NOT NULL,
  FOREIGN KEY (name, active_version)
    REFERENCES rule_set_versions (name, version)
) STRICT;
PRAGMA user_version = 1;
PRAGMA journal_mode = WAL;
)sql");
    int version = 0;
    for (const v1::RuleSet* rule_set : {&shop1, &shop2}) {
      ++version;
      const std::string bytes = DeterministicBytes(*rule_set);
      raw.Exec(absl::StrCat(
          "INSERT INTO rule_set_versions VALUES ('shop', ", version, ", X'",
          absl::BytesToHexString(bytes), "', '", Sha256Hex(bytes),
          "', 'CN=old', 'from v1', ", 1700000000000000 + version, ", ",
          rule_set->rules_size(), ")"));
    }
    raw.Exec("INSERT INTO rule_sets VALUES ('shop', 1, 1700000000000009)");
  }
  // Read-only cannot migrate.
  StoreOptions read_only;
  read_only.read_only = true;
  absl::Status refused = Store::Open(path_, read_only).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_THAT(Message(refused), HasSubstr("needs migration to 2"));

  OpenStore();
  EXPECT_EQ(RawDb(path_, true).Query("PRAGMA user_version"), "2");
  EXPECT_EQ(Versions(MustListVersions("shop")), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(ActiveVersion("shop"), 1);
  auto got = store_->Get("shop", 2);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(got->first, shop2));
  EXPECT_EQ(got->second.author(), "CN=old");
  EXPECT_EQ(Micros(got->second.created_at()), 1700000000000002);

  v1::AuditEvent event = Who("spiffe://a", "ActivateVersion", "shop", "after upgrade");
  ASSERT_TRUE(store_->Activate("shop", 2, &event).ok());
  EXPECT_EQ(event.summary(), "version 2 activated; previously version 1");
  EXPECT_EQ(MustPut(MakeRuleSet("shop", 1, "three"), 2).version(), 3);
  OpenStore();  // Opening the current schema again changes nothing.
  absl::StatusOr<AuditPage> page = store_->ListAuditEvents({});
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].comment(), "after upgrade");
  EXPECT_EQ(ActiveVersion("shop"), 3);
}

}  // namespace
}  // namespace pdp::service
