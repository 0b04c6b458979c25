// The SQLite rule-set store: schema and migrations, a small RAII layer over
// sqlite3_stmt, SQLite result codes mapped to absl::Status, and the Store
// operations, each one statement or one transaction.
//
// Tested by tests/store_test.cc.
#include "service/store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace pdp::service {
namespace {

// Schema migrations, applied in order; step i takes user_version from i to
// i + 1. Each step ends by setting PRAGMA user_version (which cannot take a
// bound parameter), and is applied in its own transaction. Never edit a
// released step: append a new one.
struct Migration {
  int version;  // user_version after this step.
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
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
)sql"},
};

constexpr int kSchemaVersion = kMigrations[std::size(kMigrations) - 1].version;

// ---------------------------------------------------------------------------
// Errors.

// Maps a SQLite result code (extended codes are on) to a status whose message
// starts with `context` and ends with SQLite's own message.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context) {
  const char* sqlite_message =
      db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  auto message = [&](absl::string_view what) {
    return absl::StrCat(context, ": ", what, " (sqlite: ", sqlite_message,
                        ", code ", rc, ")");
  };
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(
          message("database or disk is full; nothing was written"));
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(message("out of memory"));
    case SQLITE_TOOBIG:
      return absl::ResourceExhaustedError(message("value too large"));
    case SQLITE_READONLY:
      return absl::UnavailableError(message("database is read-only"));
    case SQLITE_IOERR:
      return absl::UnavailableError(message("I/O error"));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(
          message("database is locked by another connection; retry"));
    case SQLITE_CANTOPEN:
      return absl::UnavailableError(message("cannot open database file"));
    case SQLITE_NOTADB:
      return absl::FailedPreconditionError(
          message("file is not a SQLite database"));
    case SQLITE_CORRUPT:
      return absl::DataLossError(message("database file is corrupt"));
    case SQLITE_CONSTRAINT:
      return absl::InternalError(message("constraint violation"));
    default:
      return absl::InternalError(message("SQLite error"));
  }
}

// ---------------------------------------------------------------------------
// Statements.

// A prepared statement, finalized on destruction. Bind* and Step return the
// mapped SQLite error, prefixed with the context given to Prepare.
class Statement {
 public:
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }  // No-op on nullptr.

  // `sql` must be exactly one statement.
  static absl::StatusOr<std::unique_ptr<Statement>> Prepare(
      sqlite3* db, const char* sql, absl::string_view context) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, &tail);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return SqliteError(db, rc, context);
    }
    if (stmt == nullptr) {
      return absl::InternalError(absl::StrCat(context, ": empty SQL"));
    }
    return std::unique_ptr<Statement>(new Statement(db, stmt, context));
  }

  absl::Status BindText(int index, const std::string& value) {
    return Check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(),
                                     SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  absl::Status BindBlob(int index, const std::string& value) {
    // data() is never null, so an empty value binds an empty blob, not NULL.
    return Check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(),
                                     SQLITE_TRANSIENT));
  }
  absl::Status BindInt64(int index, int64_t value) {
    return Check(sqlite3_bind_int64(stmt_, index, value));
  }

  // Runs to the next row: true when there is one, false when done.
  absl::StatusOr<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, context_);
  }

  // Runs to completion, discarding rows.
  absl::Status Run() {
    while (true) {
      absl::StatusOr<bool> row = Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
    }
  }

  bool IsNull(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }
  int64_t Int64(int column) const {
    return sqlite3_column_int64(stmt_, column);
  }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    if (text == nullptr) return std::string();
    return std::string(reinterpret_cast<const char*>(text), size);
  }
  std::string Blob(int column) const {
    const void* blob = sqlite3_column_blob(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    if (blob == nullptr) return std::string();
    return std::string(static_cast<const char*>(blob), size);
  }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt, absl::string_view context)
      : db_(db), stmt_(stmt), context_(context) {}

  absl::Status Check(int rc) {
    if (rc == SQLITE_OK) return absl::OkStatus();
    return SqliteError(db_, rc, context_);
  }

  sqlite3* const db_;
  sqlite3_stmt* const stmt_;
  const std::string context_;
};

// Runs constant SQL of one or more statements (no parameters), discarding
// rows.
absl::Status ExecScript(sqlite3* db, const char* sql,
                        absl::string_view context) {
  const char* next = sql;
  while (next != nullptr && *next != '\0') {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db, next, -1, &raw, &tail);
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(
        raw, &sqlite3_finalize);
    if (rc != SQLITE_OK) return SqliteError(db, rc, context);
    if (stmt == nullptr) break;  // Only whitespace or comments remain.
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return SqliteError(db, rc, context);
    next = tail;
  }
  return absl::OkStatus();
}

// Runs a constant single-row query and returns its first column as an
// integer (used for pragmas).
absl::StatusOr<int64_t> QueryInt(sqlite3* db, const char* sql,
                                 absl::string_view context) {
  absl::StatusOr<std::unique_ptr<Statement>> stmt =
      Statement::Prepare(db, sql, context);
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = (*stmt)->Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::InternalError(absl::StrCat(context, ": no result"));
  }
  return (*stmt)->Int64(0);
}

// A transaction that rolls back on destruction unless committed, so an early
// return on any error leaves nothing written.
class Transaction {
 public:
  explicit Transaction(sqlite3* db, absl::string_view context)
      : db_(db), context_(context) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    // SQLite may already have rolled back by itself (after SQLITE_FULL or an
    // I/O error); only roll back what is still open. A failed ROLLBACK
    // cannot be reported from here; SQLite then rolls back when the
    // connection is next used or closed.
    if (open_ && sqlite3_get_autocommit(db_) == 0) {
      (void)ExecScript(db_, "ROLLBACK", context_);
    }
  }

  // BEGIN IMMEDIATE: takes the write lock now, so the checks made inside the
  // transaction still hold at COMMIT.
  absl::Status BeginImmediate() {
    absl::Status status = ExecScript(db_, "BEGIN IMMEDIATE", context_);
    open_ = status.ok();
    return status;
  }

  absl::Status Commit() {
    absl::Status status = ExecScript(db_, "COMMIT", context_);
    if (status.ok()) open_ = false;
    return status;
  }

 private:
  sqlite3* const db_;
  const std::string context_;
  bool open_ = false;
};

// ---------------------------------------------------------------------------
// Encoding.

absl::StatusOr<std::string> CanonicalEncoding(const v1::RuleSet& rule_set) {
  std::string bytes;
  bool ok;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    ok = rule_set.SerializeToCodedStream(&coded) && !coded.HadError();
  }  // `coded` trims `bytes` to the written size here.
  if (!ok) {
    return absl::InternalError(
        absl::StrCat("rule set \"", rule_set.name(), "\": cannot serialize"));
  }
  return bytes;
}

absl::StatusOr<std::string> Sha256Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(),
                 nullptr) != 1) {
    return absl::InternalError("SHA-256 failed (OpenSSL EVP_Digest)");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), size));
}

void SetTimestampFromMicros(int64_t micros, google::protobuf::Timestamp* ts) {
  int64_t seconds = micros / 1000000;
  int64_t rest = micros % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(rest * 1000));
}

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

std::string Quoted(const std::string& name) {
  return absl::StrCat("\"", absl::CEscape(name), "\"");
}

// The info columns every version query selects first, in this order:
//   name, version, sha256, author, comment, created_at_us, rule_count, active
v1::VersionInfo ReadInfo(const Statement& row) {
  v1::VersionInfo info;
  info.set_rule_set(row.Text(0));
  info.set_version(row.Int64(1));
  info.set_sha256(row.Text(2));
  info.set_author(row.Text(3));
  info.set_comment(row.Text(4));
  SetTimestampFromMicros(row.Int64(5), info.mutable_created_at());
  info.set_rule_count(static_cast<int32_t>(row.Int64(6)));
  info.set_active(row.Int64(7) != 0);
  return info;
}

// Parses version content (column 8) and checks it against its stored hash.
absl::StatusOr<v1::RuleSet> ReadContent(const Statement& row,
                                        const v1::VersionInfo& info) {
  std::string bytes = row.Blob(8);
  auto data_loss = [&](absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat("rule set ", Quoted(info.rule_set()), " version ",
                     info.version(), ": stored content ", what));
  };
  absl::StatusOr<std::string> sha256 = Sha256Hex(bytes);
  if (!sha256.ok()) return sha256.status();
  if (*sha256 != info.sha256()) {
    return data_loss(
        absl::StrCat("has SHA-256 ", *sha256, ", expected ", info.sha256()));
  }
  v1::RuleSet rule_set;
  if (!rule_set.ParseFromString(bytes)) {
    return data_loss("does not parse as pdp.v1.RuleSet");
  }
  if (rule_set.name() != info.rule_set()) {
    return data_loss(absl::StrCat("is named ", Quoted(rule_set.name())));
  }
  return rule_set;
}

// ---------------------------------------------------------------------------
// Opening.

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqlitePtr = std::unique_ptr<sqlite3, SqliteCloser>;

// Creates `path` with mode 0600 unless it exists, so that SQLite (which
// creates files 0644 less the umask) never makes a readable database. SQLite
// gives the -wal and -shm files the database file's mode.
absl::Status CreateFileIfMissing(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return absl::OkStatus();
    int error = errno;
    return absl::ErrnoToStatus(error,
                               absl::StrCat("store ", path, ": cannot create"));
  }
  // The umask can only have removed bits; set exactly 0600 anyway.
  int error = fchmod(fd, 0600) == 0 ? 0 : errno;
  close(fd);
  if (error != 0) {
    return absl::ErrnoToStatus(error,
                               absl::StrCat("store ", path, ": cannot chmod"));
  }
  return absl::OkStatus();
}

absl::Status Migrate(sqlite3* db, absl::string_view context) {
  for (const Migration& migration : kMigrations) {
    std::string step_context = absl::StrCat(
        context, ": schema migration to version ", migration.version);
    Transaction transaction(db, step_context);
    absl::Status status = transaction.BeginImmediate();
    if (!status.ok()) return status;
    // Re-read under the write lock: another process may have migrated.
    absl::StatusOr<int64_t> current =
        QueryInt(db, "PRAGMA user_version", step_context);
    if (!current.ok()) return current.status();
    if (*current >= migration.version) continue;
    if (*current != migration.version - 1) {
      return absl::InternalError(
          absl::StrCat(step_context, ": unexpected schema version ", *current));
    }
    status = ExecScript(db, migration.sql, step_context);
    if (!status.ok()) return status;
    absl::StatusOr<int64_t> after =
        QueryInt(db, "PRAGMA user_version", step_context);
    if (!after.ok()) return after.status();
    if (*after != migration.version) {
      return absl::InternalError(
          absl::StrCat(step_context, ": step left schema version ", *after));
    }
    status = transaction.Commit();
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------
// Store.

Store::Store(sqlite3* db, std::string path) : path_(std::move(path)), db_(db) {}

Store::~Store() {
  // Every statement is finalized when its operation ends, so this closes the
  // connection (and checkpoints the WAL if it is the last one).
  sqlite3_close_v2(db_);
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(
    const std::string& path, const StoreOptions& options) {
  const std::string context = absl::StrCat("store ", path);
  if (options.read_only) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      int error = errno;
      return absl::ErrnoToStatus(error, absl::StrCat(context, ": cannot open"));
    }
  } else {
    absl::Status status = CreateFileIfMissing(path);
    if (!status.ok()) return status;
  }

  // SQLITE_OPEN_NOMUTEX: the Store's own mutex serializes connection use.
  int flags = SQLITE_OPEN_NOMUTEX |
              (options.read_only ? SQLITE_OPEN_READONLY
                                 : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags,
                           options.vfs.empty() ? nullptr : options.vfs.c_str());
  SqlitePtr db(raw);  // Closes on every early return, even a failed open.
  if (rc != SQLITE_OK) return SqliteError(db.get(), rc, context);
  sqlite3_extended_result_codes(db.get(), 1);
  int64_t timeout_ms = absl::ToInt64Milliseconds(options.busy_timeout);
  if (timeout_ms > std::numeric_limits<int>::max()) {
    timeout_ms = std::numeric_limits<int>::max();
  }
  rc = sqlite3_busy_timeout(db.get(), static_cast<int>(timeout_ms));
  if (rc != SQLITE_OK) return SqliteError(db.get(), rc, context);
  // Refuse SQL that could corrupt the file even if it were ever issued.
  rc = sqlite3_db_config(db.get(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db.get(), rc, context);

  // The first read of the header: fails here for a file that is not a
  // database.
  absl::StatusOr<int64_t> schema_version =
      QueryInt(db.get(), "PRAGMA user_version", context);
  if (!schema_version.ok()) return schema_version.status();
  if (*schema_version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        context, ": schema version ", *schema_version,
        " is newer than this binary supports (", kSchemaVersion, ")"));
  }

  if (options.read_only) {
    if (*schema_version < kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          context, ": schema version ", *schema_version, " needs migration to ",
          kSchemaVersion, "; open the store read-write once"));
    }
  } else {
    // SQLite silently opens a file it may not write read-only.
    if (sqlite3_db_readonly(db.get(), "main") == 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          context,
          ": the database file is read-only (check its permissions "
          "and its directory's), but the store was opened "
          "read-write"));
    }
    absl::StatusOr<std::unique_ptr<Statement>> wal =
        Statement::Prepare(db.get(), "PRAGMA journal_mode = WAL", context);
    if (!wal.ok()) return wal.status();
    absl::StatusOr<bool> row = (*wal)->Step();
    if (!row.ok()) return row.status();
    std::string mode = *row ? (*wal)->Text(0) : "";
    if (mode != "wal") {
      return absl::FailedPreconditionError(absl::StrCat(
          context, ": cannot enable WAL journaling (journal mode is \"", mode,
          "\")"));
    }
  }
  absl::Status status = ExecScript(
      db.get(), "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", context);
  if (!status.ok()) return status;
  absl::StatusOr<int64_t> foreign_keys =
      QueryInt(db.get(), "PRAGMA foreign_keys", context);
  if (!foreign_keys.ok()) return foreign_keys.status();
  if (*foreign_keys != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(context, ": SQLite does not enforce foreign keys"));
  }
  if (!options.read_only) {
    status = Migrate(db.get(), context);
    if (!status.ok()) return status;
  }
  return std::unique_ptr<Store>(new Store(db.release(), path));
}

absl::StatusOr<v1::VersionInfo> Store::PutVersion(const v1::RuleSet& rule_set,
                                                  int32_t rule_count,
                                                  const std::string& author,
                                                  const std::string& comment,
                                                  int64_t expected_version) {
  const std::string& name = rule_set.name();
  const std::string context = absl::StrCat("put rule set ", Quoted(name));
  if (name.empty()) {
    return absl::InvalidArgumentError("put rule set: the name is empty");
  }
  if (expected_version < -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        context, ": expected_version ", expected_version,
        " is invalid (0: any, -1: no active version, N > 0: version N)"));
  }
  if (rule_count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": negative rule_count ", rule_count));
  }
  // Encode and hash outside the lock.
  absl::StatusOr<std::string> content = CanonicalEncoding(rule_set);
  if (!content.ok()) return content.status();
  absl::StatusOr<std::string> sha256 = Sha256Hex(*content);
  if (!sha256.ok()) return sha256.status();

  absl::MutexLock lock(&mu_);
  Transaction transaction(db_, context);
  absl::Status status = transaction.BeginImmediate();
  if (!status.ok()) return status;

  // The expected-version check.
  {
    absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
        db_, "SELECT active_version FROM rule_sets WHERE name = ?1", context);
    if (!stmt.ok()) return stmt.status();
    if (status = (*stmt)->BindText(1, name); !status.ok()) return status;
    absl::StatusOr<bool> row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    int64_t active = (*row && !(*stmt)->IsNull(0)) ? (*stmt)->Int64(0) : 0;
    if (expected_version != 0) {
      int64_t wanted = expected_version == -1 ? 0 : expected_version;
      if (active != wanted) {
        std::string actual =
            active == 0 ? std::string("it has no active version")
                        : absl::StrCat("the active version is ", active);
        std::string expected = wanted == 0
                                   ? std::string("no active version")
                                   : absl::StrCat("active version ", wanted);
        return absl::FailedPreconditionError(
            absl::StrCat(context, ": expected ", expected, ", but ", actual));
      }
    }
  }

  // The next version number: after every stored one, deleted or not.
  int64_t version = 0;
  {
    absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
        db_,
        "SELECT COALESCE(MAX(version), 0) + 1 FROM rule_set_versions "
        "WHERE name = ?1",
        context);
    if (!stmt.ok()) return stmt.status();
    if (status = (*stmt)->BindText(1, name); !status.ok()) return status;
    absl::StatusOr<bool> row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::InternalError(absl::StrCat(context, ": no MAX"));
    version = (*stmt)->Int64(0);
  }

  const int64_t now_us = NowMicros();
  {
    absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
        db_,
        "INSERT INTO rule_set_versions (name, version, content, sha256, "
        "author, comment, created_at_us, rule_count) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        context);
    if (!stmt.ok()) return stmt.status();
    Statement& insert = **stmt;
    if (status = insert.BindText(1, name); !status.ok()) return status;
    if (status = insert.BindInt64(2, version); !status.ok()) return status;
    if (status = insert.BindBlob(3, *content); !status.ok()) return status;
    if (status = insert.BindText(4, *sha256); !status.ok()) return status;
    if (status = insert.BindText(5, author); !status.ok()) return status;
    if (status = insert.BindText(6, comment); !status.ok()) return status;
    if (status = insert.BindInt64(7, now_us); !status.ok()) return status;
    if (status = insert.BindInt64(8, rule_count); !status.ok()) return status;
    if (status = insert.Run(); !status.ok()) return status;
  }
  {
    absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
        db_,
        "INSERT INTO rule_sets (name, active_version, updated_at_us) "
        "VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET "
        "active_version = excluded.active_version, "
        "updated_at_us = excluded.updated_at_us",
        context);
    if (!stmt.ok()) return stmt.status();
    Statement& upsert = **stmt;
    if (status = upsert.BindText(1, name); !status.ok()) return status;
    if (status = upsert.BindInt64(2, version); !status.ok()) return status;
    if (status = upsert.BindInt64(3, now_us); !status.ok()) return status;
    if (status = upsert.Run(); !status.ok()) return status;
  }
  if (status = transaction.Commit(); !status.ok()) return status;

  v1::VersionInfo info;
  info.set_rule_set(name);
  info.set_version(version);
  info.set_author(author);
  SetTimestampFromMicros(now_us, info.mutable_created_at());
  info.set_sha256(*sha256);
  info.set_comment(comment);
  info.set_active(true);
  info.set_rule_count(rule_count);
  return info;
}

absl::StatusOr<v1::VersionInfo> Store::Activate(const std::string& name,
                                                int64_t version) {
  const std::string context =
      absl::StrCat("activate rule set ", Quoted(name), " version ", version);
  if (version <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": the version must be positive"));
  }
  absl::MutexLock lock(&mu_);
  Transaction transaction(db_, context);
  absl::Status status = transaction.BeginImmediate();
  if (!status.ok()) return status;

  v1::VersionInfo info;
  {
    absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
        db_,
        "SELECT name, version, sha256, author, comment, created_at_us, "
        "rule_count, 1 FROM rule_set_versions WHERE name = ?1 AND version = ?2",
        context);
    if (!stmt.ok()) return stmt.status();
    if (status = (*stmt)->BindText(1, name); !status.ok()) return status;
    if (status = (*stmt)->BindInt64(2, version); !status.ok()) return status;
    absl::StatusOr<bool> row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    if (!*row) {
      return absl::NotFoundError(
          absl::StrCat("rule set ", Quoted(name), " has no version ", version));
    }
    info = ReadInfo(**stmt);
  }
  {
    absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
        db_,
        "INSERT INTO rule_sets (name, active_version, updated_at_us) "
        "VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET "
        "active_version = excluded.active_version, "
        "updated_at_us = excluded.updated_at_us",
        context);
    if (!stmt.ok()) return stmt.status();
    Statement& upsert = **stmt;
    if (status = upsert.BindText(1, name); !status.ok()) return status;
    if (status = upsert.BindInt64(2, version); !status.ok()) return status;
    if (status = upsert.BindInt64(3, NowMicros()); !status.ok()) return status;
    if (status = upsert.Run(); !status.ok()) return status;
  }
  if (status = transaction.Commit(); !status.ok()) return status;
  return info;
}

absl::Status Store::Deactivate(const std::string& name) {
  const std::string context =
      absl::StrCat("deactivate rule set ", Quoted(name));
  absl::MutexLock lock(&mu_);
  // One statement: atomic on its own.
  absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
      db_,
      "UPDATE rule_sets SET active_version = NULL, updated_at_us = ?2 "
      "WHERE name = ?1 AND active_version IS NOT NULL",
      context);
  if (!stmt.ok()) return stmt.status();
  absl::Status status = (*stmt)->BindText(1, name);
  if (!status.ok()) return status;
  if (status = (*stmt)->BindInt64(2, NowMicros()); !status.ok()) return status;
  if (status = (*stmt)->Run(); !status.ok()) return status;
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(
        absl::StrCat("rule set ", Quoted(name), " has no active version"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<v1::RuleSet, v1::VersionInfo>> Store::Get(
    const std::string& name, int64_t version) {
  const std::string context =
      absl::StrCat("get rule set ", Quoted(name), " version ", version);
  if (version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": the version must not be negative"));
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt =
      version == 0
          ? Statement::Prepare(
                db_,
                "SELECT v.name, v.version, v.sha256, v.author, v.comment, "
                "v.created_at_us, v.rule_count, 1, v.content "
                "FROM rule_sets AS s JOIN rule_set_versions AS v "
                "ON v.name = s.name AND v.version = s.active_version "
                "WHERE s.name = ?1",
                context)
          : Statement::Prepare(
                db_,
                "SELECT v.name, v.version, v.sha256, v.author, v.comment, "
                "v.created_at_us, v.rule_count, "
                "s.active_version IS v.version, v.content "
                "FROM rule_set_versions AS v LEFT JOIN rule_sets AS s "
                "ON s.name = v.name WHERE v.name = ?1 AND v.version = ?2",
                context);
  if (!stmt.ok()) return stmt.status();
  absl::Status status = (*stmt)->BindText(1, name);
  if (!status.ok()) return status;
  if (version != 0) {
    if (status = (*stmt)->BindInt64(2, version); !status.ok()) return status;
  }
  absl::StatusOr<bool> row = (*stmt)->Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::NotFoundError(
        version == 0
            ? absl::StrCat("rule set ", Quoted(name), " has no active version")
            : absl::StrCat("rule set ", Quoted(name), " has no version ",
                           version));
  }
  v1::VersionInfo info = ReadInfo(**stmt);
  absl::StatusOr<v1::RuleSet> rule_set = ReadContent(**stmt, info);
  if (!rule_set.ok()) return rule_set.status();
  return std::make_pair(*std::move(rule_set), std::move(info));
}

absl::StatusOr<std::vector<v1::VersionInfo>> Store::ListActive() {
  const std::string context = "list active rule sets";
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
      db_,
      "SELECT v.name, v.version, v.sha256, v.author, v.comment, "
      "v.created_at_us, v.rule_count, 1 "
      "FROM rule_sets AS s JOIN rule_set_versions AS v "
      "ON v.name = s.name AND v.version = s.active_version "
      "ORDER BY s.name",
      context);
  if (!stmt.ok()) return stmt.status();
  std::vector<v1::VersionInfo> infos;
  while (true) {
    absl::StatusOr<bool> row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    infos.push_back(ReadInfo(**stmt));
  }
  return infos;
}

absl::StatusOr<std::vector<v1::VersionInfo>> Store::ListVersions(
    const std::string& name) {
  const std::string context =
      absl::StrCat("list versions of rule set ", Quoted(name));
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
      db_,
      "SELECT v.name, v.version, v.sha256, v.author, v.comment, "
      "v.created_at_us, v.rule_count, s.active_version IS v.version "
      "FROM rule_set_versions AS v LEFT JOIN rule_sets AS s "
      "ON s.name = v.name WHERE v.name = ?1 ORDER BY v.version DESC",
      context);
  if (!stmt.ok()) return stmt.status();
  absl::Status status = (*stmt)->BindText(1, name);
  if (!status.ok()) return status;
  std::vector<v1::VersionInfo> infos;
  while (true) {
    absl::StatusOr<bool> row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    infos.push_back(ReadInfo(**stmt));
  }
  if (infos.empty()) {
    return absl::NotFoundError(
        absl::StrCat("rule set ", Quoted(name), " not found"));
  }
  return infos;
}

absl::StatusOr<std::vector<std::pair<v1::RuleSet, v1::VersionInfo>>>
Store::LoadActive() {
  const std::string context = "load active rule sets";
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
      db_,
      "SELECT v.name, v.version, v.sha256, v.author, v.comment, "
      "v.created_at_us, v.rule_count, 1, v.content "
      "FROM rule_sets AS s JOIN rule_set_versions AS v "
      "ON v.name = s.name AND v.version = s.active_version "
      "ORDER BY s.name",
      context);
  if (!stmt.ok()) return stmt.status();
  std::vector<std::pair<v1::RuleSet, v1::VersionInfo>> loaded;
  while (true) {
    absl::StatusOr<bool> row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    v1::VersionInfo info = ReadInfo(**stmt);
    absl::StatusOr<v1::RuleSet> rule_set = ReadContent(**stmt, info);
    if (!rule_set.ok()) return rule_set.status();
    loaded.emplace_back(*std::move(rule_set), std::move(info));
  }
  return loaded;
}

}  // namespace pdp::service
