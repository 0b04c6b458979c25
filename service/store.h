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
// The store also keeps the admin audit trail (pdp.v1.AuditEvent): a change
// given an event commits it in the change's own transaction, so a change
// that is acknowledged always has its record and a change whose record
// cannot be written fails; AppendAuditEvent records anything else (failed
// and refused calls, reads) in a transaction of its own.
//
// Errors from SQLite or the OS name the database file and carry SQLite's
// message, the symbolic extended result code and, for I/O and open errors,
// the OS errno, e.g.
//   store /var/lib/pdp/pdp.db: put rule set "shop": I/O error (sqlite: disk
//   I/O error [SQLITE_IOERR_WRITE, code 778; errno 1: Operation not
//   permitted])
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
#include "absl/strings/string_view.h"
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

// Which audit events Store::ListAuditEvents returns. Empty strings match
// anything; the others match exactly.
struct AuditQuery {
  std::string rule_set;
  std::string caller;
  std::string method;
  absl::Time since = absl::InfinitePast();   // time >= since
  absl::Time until = absl::InfiniteFuture();  // time < until
  int64_t before_id = 0;  // id < before_id; 0: no bound
  int limit = 100;        // > 0
};

// A page of audit events, newest (highest id) first.
struct AuditPage {
  std::vector<v1::AuditEvent> events;
  // The before_id of the next page; 0 when no older event matches.
  int64_t next_before_id = 0;
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
  //
  // With `audit` (caller, role, peer, method, rule set and comment filled
  // in), the change's audit event is written in the same transaction: the
  // store sets its id, time, version, summary and an OK code. If that write
  // fails, so does the put. On failure `audit` is left as it was.
  absl::StatusOr<v1::VersionInfo> PutVersion(const v1::RuleSet& rule_set,
                                             int32_t rule_count,
                                             const std::string& author,
                                             const std::string& comment,
                                             int64_t expected_version,
                                             v1::AuditEvent* audit = nullptr);

  // Makes the stored `version` (> 0) of `name` the active one (rollback or
  // roll forward). NOT_FOUND if there is no such version. `audit` as for
  // PutVersion.
  absl::StatusOr<v1::VersionInfo> Activate(const std::string& name,
                                           int64_t version,
                                           v1::AuditEvent* audit = nullptr);

  // Leaves `name` with no active version; its history is kept. NOT_FOUND if
  // it has no active version. `audit` as for PutVersion (its version is the
  // one that was active).
  absl::Status Deactivate(const std::string& name,
                          v1::AuditEvent* audit = nullptr);

  // Writes `event` in a transaction of its own, setting its id and time
  // (now) and its code_name from its code. Text fields are cut to at most
  // 4 KiB (at a UTF-8 character boundary, marked with "...").
  absl::Status AppendAuditEvent(v1::AuditEvent* event);

  // Audit events matching `query`, newest first. INVALID_ARGUMENT for a
  // limit < 1 or a negative before_id.
  absl::StatusOr<AuditPage> ListAuditEvents(const AuditQuery& query);

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

  // "store PATH: what", the start of every error message.
  std::string Context(absl::string_view what) const;
  // Points rule_sets at `version` of `name` inside a transaction.
  absl::Status SetActive(const std::string& name, int64_t version,
                         int64_t now_us, absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_STORE_H_
