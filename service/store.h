// The persistent rule-set store: every version of every rule set, and which
// version of each set is active, in one SQLite database file.
//
// A version is immutable once written. It holds the set's canonical encoding
// (protobuf's deterministic binary serialization of the pdp.v1.RuleSet), the
// lowercase hex SHA-256 of those bytes, the author, a comment, the creation
// time and the rule count. Version numbers of a set start at 1 and only grow:
// deactivating a set keeps its history, and the next put continues after the
// highest stored version. Every change runs in one SQLite transaction, so a
// failure (disk full, I/O error, version conflict) leaves nothing behind.
//
// Thread-safety: a Store is safe to use from any number of threads. Calls are
// serialized internally on one absl::Mutex around a single SQLite connection,
// so keep Store calls off latency-sensitive paths (gRPC reactors, decisions).
// Several processes may open the same file (WAL mode, busy timeout); puts
// from them are still serialized by SQLite's write lock.
//
// Example:
//   absl::StatusOr<std::unique_ptr<Store>> store =
//       Store::Open("/var/lib/pdp/rules.db");
//   if (!store.ok()) return store.status();
//   absl::StatusOr<v1::VersionInfo> info = (*store)->PutVersion(
//       rule_set, rule_count, "CN=alice", "add support rule",
//       /*expected_version=*/3);
//   // FAILED_PRECONDITION if someone else activated another version first.
//
// Tested by tests/store_test.cc.
#ifndef PDP_SERVICE_STORE_H_
#define PDP_SERVICE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pdp/v1/admin.pb.h"
#include "pdp/v1/rules.pb.h"

struct sqlite3;

namespace pdp::service {

struct StoreOptions {
  // Open with SQLITE_OPEN_READONLY: reads work, every write fails with
  // UNAVAILABLE. The file must exist and its schema must be current (no
  // migrations run).
  bool read_only = false;
  // How long a write waits for another process holding the database lock
  // before failing with UNAVAILABLE.
  absl::Duration busy_timeout = absl::Seconds(5);
  // Name of a registered SQLite VFS (sqlite3_vfs_register) to do all file
  // access through; empty means SQLite's default. This is the store's OS
  // seam: tests register a VFS that injects write failures.
  std::string vfs;
};

class Store {
 public:
  // Opens the database at `path`, creating it (mode 0600) if it does not
  // exist; an existing file keeps its permissions. Sets WAL journaling,
  // synchronous=FULL, foreign keys and the busy timeout, then brings the
  // schema up to date (PRAGMA user_version; each migration step in its own
  // transaction). Errors name the path: FAILED_PRECONDITION for a file that
  // is not a SQLite database, a read-only file opened read-write, or a schema
  // newer than this binary; NOT_FOUND for a missing file opened read-only;
  // UNAVAILABLE for I/O errors.
  static absl::StatusOr<std::unique_ptr<Store>> Open(
      const std::string& path, const StoreOptions& options = {});

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Stores `rule_set` as the next version of the set named rule_set.name()
  // and makes it the active version, in one BEGIN IMMEDIATE transaction.
  // `expected_version`: 0 = no check; -1 = the set must have no active
  // version; N > 0 = the active version must be N. A mismatch is
  // FAILED_PRECONDITION naming the actual active version, and writes nothing.
  // The new version is one more than the highest stored version of the set
  // (1 for a new set). Returns its VersionInfo (active = true).
  // INVALID_ARGUMENT for an empty name or expected_version < -1.
  absl::StatusOr<v1::VersionInfo> PutVersion(const v1::RuleSet& rule_set,
                                             int32_t rule_count,
                                             const std::string& author,
                                             const std::string& comment,
                                             int64_t expected_version);

  // Makes the stored `version` (> 0) of `name` the active one (rollback or
  // roll forward). NOT_FOUND if there is no such version.
  absl::StatusOr<v1::VersionInfo> Activate(const std::string& name,
                                           int64_t version);

  // Leaves `name` with no active version; its history is kept. NOT_FOUND if
  // it has no active version.
  absl::Status Deactivate(const std::string& name);

  // One version of `name` with its content; `version` 0 means the active one.
  // NOT_FOUND if there is no such version (or, for 0, no active version).
  // DATA_LOSS naming the set and version if the stored content does not parse
  // or does not match its stored SHA-256.
  absl::StatusOr<std::pair<v1::RuleSet, v1::VersionInfo>> Get(
      const std::string& name, int64_t version);

  // The active version of every set that has one, sorted by name (byte
  // order).
  absl::StatusOr<std::vector<v1::VersionInfo>> ListActive();

  // Every stored version of `name`, newest first, with `active` set on the
  // active one. NOT_FOUND if the set has no stored versions.
  absl::StatusOr<std::vector<v1::VersionInfo>> ListVersions(
      const std::string& name);

  // The active version of every set with its content, sorted by name; what
  // the server compiles at startup. DATA_LOSS as for Get().
  absl::StatusOr<std::vector<std::pair<v1::RuleSet, v1::VersionInfo>>>
  LoadActive();

 private:
  Store(sqlite3* db, std::string path);

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_STORE_H_
