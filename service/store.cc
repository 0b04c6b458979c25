// The SQLite rule-set store: schema and migrations, a small RAII layer over
// sqlite3_stmt, SQLite result codes mapped to absl::Status (with the file,
// SQLite's message, the extended code's name and the OS errno), and the
// Store operations, each one statement or one transaction; the admin audit
// trail's rows are written in the transaction of the change they record.
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
    // The admin audit trail. AUTOINCREMENT: an id is never reused, so ids
    // order events by when they were written.
    {2, R"sql(
CREATE TABLE audit_events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  time_us     INTEGER NOT NULL,
  caller      TEXT    NOT NULL,
  caller_role TEXT    NOT NULL,
  peer        TEXT    NOT NULL,
  method      TEXT    NOT NULL,
  rule_set    TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  comment     TEXT    NOT NULL,
  summary     TEXT    NOT NULL,
  code        INTEGER NOT NULL,
  message     TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_events_by_rule_set ON audit_events (rule_set, id);
CREATE INDEX audit_events_by_caller ON audit_events (caller, id);
CREATE INDEX audit_events_by_time ON audit_events (time_us);
PRAGMA user_version = 2;
)sql"},
};

constexpr int kSchemaVersion = kMigrations[std::size(kMigrations) - 1].version;

// ---------------------------------------------------------------------------
// Errors.

// The symbolic name of a SQLite result code, extended or primary
// ("SQLITE_IOERR_WRITE"), or nullptr; SQLite itself only has a phrase for
// each primary code (sqlite3_errstr).
const char* ResultCodeName(int rc) {
#define PDP_SQLITE_CODE(name) {name, #name}
  static constexpr struct {
    int code;
    const char* name;
  } kNames[] = {
      PDP_SQLITE_CODE(SQLITE_ERROR), PDP_SQLITE_CODE(SQLITE_INTERNAL),
      PDP_SQLITE_CODE(SQLITE_PERM), PDP_SQLITE_CODE(SQLITE_ABORT),
      PDP_SQLITE_CODE(SQLITE_BUSY), PDP_SQLITE_CODE(SQLITE_LOCKED),
      PDP_SQLITE_CODE(SQLITE_NOMEM), PDP_SQLITE_CODE(SQLITE_READONLY),
      PDP_SQLITE_CODE(SQLITE_INTERRUPT), PDP_SQLITE_CODE(SQLITE_IOERR),
      PDP_SQLITE_CODE(SQLITE_CORRUPT), PDP_SQLITE_CODE(SQLITE_NOTFOUND),
      PDP_SQLITE_CODE(SQLITE_FULL), PDP_SQLITE_CODE(SQLITE_CANTOPEN),
      PDP_SQLITE_CODE(SQLITE_PROTOCOL), PDP_SQLITE_CODE(SQLITE_EMPTY),
      PDP_SQLITE_CODE(SQLITE_SCHEMA), PDP_SQLITE_CODE(SQLITE_TOOBIG),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT), PDP_SQLITE_CODE(SQLITE_MISMATCH),
      PDP_SQLITE_CODE(SQLITE_MISUSE), PDP_SQLITE_CODE(SQLITE_NOLFS),
      PDP_SQLITE_CODE(SQLITE_AUTH), PDP_SQLITE_CODE(SQLITE_FORMAT),
      PDP_SQLITE_CODE(SQLITE_RANGE), PDP_SQLITE_CODE(SQLITE_NOTADB),
      PDP_SQLITE_CODE(SQLITE_ERROR_MISSING_COLLSEQ),
      PDP_SQLITE_CODE(SQLITE_ERROR_RETRY),
      PDP_SQLITE_CODE(SQLITE_ERROR_SNAPSHOT),
      PDP_SQLITE_CODE(SQLITE_IOERR_READ),
      PDP_SQLITE_CODE(SQLITE_IOERR_SHORT_READ),
      PDP_SQLITE_CODE(SQLITE_IOERR_WRITE),
      PDP_SQLITE_CODE(SQLITE_IOERR_FSYNC),
      PDP_SQLITE_CODE(SQLITE_IOERR_DIR_FSYNC),
      PDP_SQLITE_CODE(SQLITE_IOERR_TRUNCATE),
      PDP_SQLITE_CODE(SQLITE_IOERR_FSTAT),
      PDP_SQLITE_CODE(SQLITE_IOERR_UNLOCK),
      PDP_SQLITE_CODE(SQLITE_IOERR_RDLOCK),
      PDP_SQLITE_CODE(SQLITE_IOERR_DELETE),
      PDP_SQLITE_CODE(SQLITE_IOERR_BLOCKED),
      PDP_SQLITE_CODE(SQLITE_IOERR_NOMEM),
      PDP_SQLITE_CODE(SQLITE_IOERR_ACCESS),
      PDP_SQLITE_CODE(SQLITE_IOERR_CHECKRESERVEDLOCK),
      PDP_SQLITE_CODE(SQLITE_IOERR_LOCK),
      PDP_SQLITE_CODE(SQLITE_IOERR_CLOSE),
      PDP_SQLITE_CODE(SQLITE_IOERR_DIR_CLOSE),
      PDP_SQLITE_CODE(SQLITE_IOERR_SHMOPEN),
      PDP_SQLITE_CODE(SQLITE_IOERR_SHMSIZE),
      PDP_SQLITE_CODE(SQLITE_IOERR_SHMLOCK),
      PDP_SQLITE_CODE(SQLITE_IOERR_SHMMAP),
      PDP_SQLITE_CODE(SQLITE_IOERR_SEEK),
      PDP_SQLITE_CODE(SQLITE_IOERR_DELETE_NOENT),
      PDP_SQLITE_CODE(SQLITE_IOERR_MMAP),
      PDP_SQLITE_CODE(SQLITE_IOERR_GETTEMPPATH),
      PDP_SQLITE_CODE(SQLITE_IOERR_CONVPATH),
      PDP_SQLITE_CODE(SQLITE_IOERR_VNODE),
      PDP_SQLITE_CODE(SQLITE_IOERR_AUTH),
      PDP_SQLITE_CODE(SQLITE_IOERR_BEGIN_ATOMIC),
      PDP_SQLITE_CODE(SQLITE_IOERR_COMMIT_ATOMIC),
      PDP_SQLITE_CODE(SQLITE_IOERR_ROLLBACK_ATOMIC),
      PDP_SQLITE_CODE(SQLITE_IOERR_DATA),
      PDP_SQLITE_CODE(SQLITE_IOERR_CORRUPTFS),
      PDP_SQLITE_CODE(SQLITE_LOCKED_SHAREDCACHE),
      PDP_SQLITE_CODE(SQLITE_LOCKED_VTAB),
      PDP_SQLITE_CODE(SQLITE_BUSY_RECOVERY),
      PDP_SQLITE_CODE(SQLITE_BUSY_SNAPSHOT),
      PDP_SQLITE_CODE(SQLITE_BUSY_TIMEOUT),
      PDP_SQLITE_CODE(SQLITE_CANTOPEN_NOTEMPDIR),
      PDP_SQLITE_CODE(SQLITE_CANTOPEN_ISDIR),
      PDP_SQLITE_CODE(SQLITE_CANTOPEN_FULLPATH),
      PDP_SQLITE_CODE(SQLITE_CANTOPEN_CONVPATH),
      PDP_SQLITE_CODE(SQLITE_CANTOPEN_DIRTYWAL),
      PDP_SQLITE_CODE(SQLITE_CANTOPEN_SYMLINK),
      PDP_SQLITE_CODE(SQLITE_CORRUPT_VTAB),
      PDP_SQLITE_CODE(SQLITE_CORRUPT_SEQUENCE),
      PDP_SQLITE_CODE(SQLITE_CORRUPT_INDEX),
      PDP_SQLITE_CODE(SQLITE_READONLY_RECOVERY),
      PDP_SQLITE_CODE(SQLITE_READONLY_CANTLOCK),
      PDP_SQLITE_CODE(SQLITE_READONLY_ROLLBACK),
      PDP_SQLITE_CODE(SQLITE_READONLY_DBMOVED),
      PDP_SQLITE_CODE(SQLITE_READONLY_CANTINIT),
      PDP_SQLITE_CODE(SQLITE_READONLY_DIRECTORY),
      PDP_SQLITE_CODE(SQLITE_ABORT_ROLLBACK),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_CHECK),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_COMMITHOOK),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_FOREIGNKEY),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_FUNCTION),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_NOTNULL),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_PRIMARYKEY),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_TRIGGER),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_UNIQUE),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_VTAB),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_ROWID),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_PINNED),
      PDP_SQLITE_CODE(SQLITE_CONSTRAINT_DATATYPE),
      PDP_SQLITE_CODE(SQLITE_AUTH_USER),
  };
#undef PDP_SQLITE_CODE
  for (const auto& entry : kNames) {
    if (entry.code == rc) return entry.name;
  }
  return nullptr;
}

// "errno 28: No space left on device".
std::string ErrnoText(int error) {
  char buffer[256];
  // The GNU strerror_r (glibc with _GNU_SOURCE, which g++ defines) returns
  // the text, in `buffer` or a static string.
  const char* text = strerror_r(error, buffer, sizeof(buffer));
  return absl::StrCat("errno ", error, ": ", text);
}

// The OS error behind one SQLite call. sqlite3_system_errno alone is not
// enough: SQLite 3.40 sets it only for some I/O and open errors (not for a
// write that fails at COMMIT) and otherwise keeps an older, unrelated
// value. So errno is cleared before the call and read right after it: the
// errno of the last system call that failed during it; if none set errno,
// sqlite3_system_errno counts only if the call changed it.
//
//   OsErrorProbe probe(db);
//   int rc = sqlite3_step(stmt);
//   int os_error = probe.Read();  // before any other call
class OsErrorProbe {
 public:
  explicit OsErrorProbe(sqlite3* db)
      : db_(db), before_(db != nullptr ? sqlite3_system_errno(db) : 0) {
    errno = 0;
  }
  int Read() const {
    const int error = errno;
    if (error != 0) return error;
    if (db_ != nullptr) {
      const int system = sqlite3_system_errno(db_);
      if (system != before_) return system;
    }
    return 0;
  }

 private:
  sqlite3* const db_;
  const int before_;
};

// What SQLite says about the error `rc` just returned on `db` (which may be
// null): its message, the extended code by name and number, and, for the
// errors an OS call causes (I/O, open, full, read-only), `os_error` (from
// an OsErrorProbe) when there is one.
std::string SqliteDetail(sqlite3* db, int rc, int os_error) {
  if (db != nullptr) {
    // The extended code even where a primary one was returned (before
    // extended codes are switched on, e.g. by sqlite3_open_v2).
    const int extended = sqlite3_extended_errcode(db);
    if ((extended & 0xff) == (rc & 0xff)) rc = extended;
  }
  std::string detail = absl::StrCat(
      "sqlite: ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
      " [");
  if (const char* name = ResultCodeName(rc); name != nullptr) {
    absl::StrAppend(&detail, name, ", ");
  }
  absl::StrAppend(&detail, "code ", rc);
  const int primary = rc & 0xff;
  if (os_error != 0 &&
      (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN ||
       primary == SQLITE_FULL || primary == SQLITE_READONLY)) {
    absl::StrAppend(&detail, "; ", ErrnoText(os_error));
  }
  absl::StrAppend(&detail, "]");
  return detail;
}

// Maps a SQLite result code (extended codes are on) to a status whose message
// starts with `context` (which names the file) and ends with SqliteDetail.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context,
                         int os_error = 0) {
  const std::string detail = SqliteDetail(db, rc, os_error);
  auto message = [&](absl::string_view what) {
    return absl::StrCat(context, ": ", what, " (", detail, ")");
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
    OsErrorProbe probe(db);
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, &tail);
    if (rc != SQLITE_OK) {
      const int os_error = probe.Read();
      sqlite3_finalize(stmt);
      return SqliteError(db, rc, context, os_error);
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
    OsErrorProbe probe(db_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, context_, probe.Read());
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
    OsErrorProbe prepare_probe(db);
    int rc = sqlite3_prepare_v2(db, next, -1, &raw, &tail);
    const int prepare_error = prepare_probe.Read();
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(
        raw, &sqlite3_finalize);
    if (rc != SQLITE_OK) return SqliteError(db, rc, context, prepare_error);
    if (stmt == nullptr) break;  // Only whitespace or comments remain.
    OsErrorProbe probe(db);
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return SqliteError(db, rc, context, probe.Read());
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
// `context` names the file.
absl::StatusOr<v1::RuleSet> ReadContent(const Statement& row,
                                        const v1::VersionInfo& info,
                                        absl::string_view context) {
  std::string bytes = row.Blob(8);
  auto data_loss = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(
        context, ": rule set ", Quoted(info.rule_set()), " version ",
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
// Audit events.

// Longest text stored in one audit field: a refused caller chooses the rule
// set name and comment of its request.
constexpr size_t kMaxAuditText = 4096;

// `text` cut to at most kMaxAuditText bytes at a UTF-8 character boundary
// (proto3 strings must stay valid UTF-8), marked with "...".
std::string BoundedText(const std::string& text) {
  if (text.size() <= kMaxAuditText) return text;
  size_t end = kMaxAuditText - 3;
  // Back up over continuation bytes (10xxxxxx) to a character's start.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return absl::StrCat(text.substr(0, end), "...");
}

std::string CodeName(int32_t code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// Inserts `event` (inside the caller's transaction, if any), setting its
// id, time (`now_us`) and code_name, and bounding its text fields.
absl::Status InsertAuditEvent(sqlite3* db, int64_t now_us,
                              v1::AuditEvent* event,
                              absl::string_view context) {
  const std::string audit_context =
      absl::StrCat(context, ": audit record");
  for (std::string* field :
       {event->mutable_caller(), event->mutable_caller_role(),
        event->mutable_peer(), event->mutable_method(),
        event->mutable_rule_set(), event->mutable_comment(),
        event->mutable_summary(), event->mutable_message()}) {
    if (field->size() > kMaxAuditText) *field = BoundedText(*field);
  }
  absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
      db,
      "INSERT INTO audit_events (time_us, caller, caller_role, peer, method, "
      "rule_set, version, comment, summary, code, message) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
      audit_context);
  if (!stmt.ok()) return stmt.status();
  Statement& insert = **stmt;
  absl::Status status;
  for (const auto& [index, value] :
       {std::pair<int, int64_t>{1, now_us}, {7, event->version()},
        {10, event->code()}}) {
    if (status = insert.BindInt64(index, value); !status.ok()) return status;
  }
  for (const auto& [index, value] :
       {std::pair<int, const std::string*>{2, &event->caller()},
        {3, &event->caller_role()}, {4, &event->peer()},
        {5, &event->method()}, {6, &event->rule_set()},
        {8, &event->comment()}, {9, &event->summary()},
        {11, &event->message()}}) {
    if (status = insert.BindText(index, *value); !status.ok()) return status;
  }
  if (status = insert.Run(); !status.ok()) return status;
  event->set_id(sqlite3_last_insert_rowid(db));
  SetTimestampFromMicros(now_us, event->mutable_time());
  event->set_code_name(CodeName(event->code()));
  return absl::OkStatus();
}

// The audit columns, in the order ListAuditEvents selects them.
v1::AuditEvent ReadAuditEvent(const Statement& row) {
  v1::AuditEvent event;
  event.set_id(row.Int64(0));
  SetTimestampFromMicros(row.Int64(1), event.mutable_time());
  event.set_caller(row.Text(2));
  event.set_caller_role(row.Text(3));
  event.set_peer(row.Text(4));
  event.set_method(row.Text(5));
  event.set_rule_set(row.Text(6));
  event.set_version(row.Int64(7));
  event.set_comment(row.Text(8));
  event.set_summary(row.Text(9));
  event.set_code(static_cast<int32_t>(row.Int64(10)));
  event.set_code_name(CodeName(event.code()));
  event.set_message(row.Text(11));
  return event;
}

// "version 3" or "no active version", for summaries.
std::string Previously(int64_t active) {
  return active == 0 ? std::string("previously no active version")
                     : absl::StrCat("previously version ", active);
}

// The active version of `name` (0 if none) inside a transaction.
absl::StatusOr<int64_t> ActiveVersionOf(sqlite3* db, const std::string& name,
                                        absl::string_view context) {
  absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
      db, "SELECT active_version FROM rule_sets WHERE name = ?1", context);
  if (!stmt.ok()) return stmt.status();
  if (absl::Status status = (*stmt)->BindText(1, name); !status.ok()) {
    return status;
  }
  absl::StatusOr<bool> row = (*stmt)->Step();
  if (!row.ok()) return row.status();
  return (*row && !(*stmt)->IsNull(0)) ? (*stmt)->Int64(0) : 0;
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
  OsErrorProbe probe(nullptr);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags,
                           options.vfs.empty() ? nullptr : options.vfs.c_str());
  const int open_error = probe.Read();
  SqlitePtr db(raw);  // Closes on every early return, even a failed open.
  if (rc != SQLITE_OK) return SqliteError(db.get(), rc, context, open_error);
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

std::string Store::Context(absl::string_view what) const {
  return absl::StrCat("store ", path_, ": ", what);
}

absl::StatusOr<v1::VersionInfo> Store::PutVersion(const v1::RuleSet& rule_set,
                                                  int32_t rule_count,
                                                  const std::string& author,
                                                  const std::string& comment,
                                                  int64_t expected_version,
                                                  v1::AuditEvent* audit) {
  const std::string& name = rule_set.name();
  const std::string context =
      Context(absl::StrCat("put rule set ", Quoted(name)));
  if (name.empty()) {
    return absl::InvalidArgumentError("put rule set: the name is empty");
  }
  if (expected_version < -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "put rule set ", Quoted(name), ": expected_version ", expected_version,
        " is invalid (0: any, -1: no active version, N > 0: version N)"));
  }
  if (rule_count < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "put rule set ", Quoted(name), ": negative rule_count ", rule_count));
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
  absl::StatusOr<int64_t> active = ActiveVersionOf(db_, name, context);
  if (!active.ok()) return active.status();
  if (expected_version != 0) {
    int64_t wanted = expected_version == -1 ? 0 : expected_version;
    if (*active != wanted) {
      std::string actual =
          *active == 0 ? std::string("it has no active version")
                       : absl::StrCat("the active version is ", *active);
      std::string expected = wanted == 0
                                 ? std::string("no active version")
                                 : absl::StrCat("active version ", wanted);
      return absl::FailedPreconditionError(
          absl::StrCat("put rule set ", Quoted(name), ": expected ", expected,
                       ", but ", actual));
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
  if (status = SetActive(name, version, now_us, context); !status.ok()) {
    return status;
  }
  v1::AuditEvent event;
  if (audit != nullptr) {
    event = *audit;
    event.set_version(version);
    event.set_summary(absl::StrCat(
        "version ", version, " stored and activated (", rule_count,
        rule_count == 1 ? " rule" : " rules", ", sha256 ",
        sha256->substr(0, 12), "); ", Previously(*active)));
    event.set_code(0);
    event.clear_message();
    status = InsertAuditEvent(db_, now_us, &event, context);
    if (!status.ok()) return status;
  }
  if (status = transaction.Commit(); !status.ok()) return status;
  if (audit != nullptr) *audit = std::move(event);

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

absl::Status Store::SetActive(const std::string& name, int64_t version,
                              int64_t now_us, absl::string_view context) {
  absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
      db_,
      "INSERT INTO rule_sets (name, active_version, updated_at_us) "
      "VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET "
      "active_version = excluded.active_version, "
      "updated_at_us = excluded.updated_at_us",
      context);
  if (!stmt.ok()) return stmt.status();
  Statement& upsert = **stmt;
  absl::Status status = upsert.BindText(1, name);
  if (!status.ok()) return status;
  if (status = upsert.BindInt64(2, version); !status.ok()) return status;
  if (status = upsert.BindInt64(3, now_us); !status.ok()) return status;
  return upsert.Run();
}

absl::StatusOr<v1::VersionInfo> Store::Activate(const std::string& name,
                                                int64_t version,
                                                v1::AuditEvent* audit) {
  const std::string context = Context(
      absl::StrCat("activate rule set ", Quoted(name), " version ", version));
  if (version <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("activate rule set ", Quoted(name), " version ", version,
                     ": the version must be positive"));
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
  absl::StatusOr<int64_t> active = ActiveVersionOf(db_, name, context);
  if (!active.ok()) return active.status();
  const int64_t now_us = NowMicros();
  if (status = SetActive(name, version, now_us, context); !status.ok()) {
    return status;
  }
  v1::AuditEvent event;
  if (audit != nullptr) {
    event = *audit;
    event.set_version(version);
    event.set_summary(
        absl::StrCat("version ", version, " activated; ", Previously(*active)));
    event.set_code(0);
    event.clear_message();
    status = InsertAuditEvent(db_, now_us, &event, context);
    if (!status.ok()) return status;
  }
  if (status = transaction.Commit(); !status.ok()) return status;
  if (audit != nullptr) *audit = std::move(event);
  return info;
}

absl::Status Store::Deactivate(const std::string& name,
                               v1::AuditEvent* audit) {
  const std::string context =
      Context(absl::StrCat("deactivate rule set ", Quoted(name)));
  absl::MutexLock lock(&mu_);
  Transaction transaction(db_, context);
  absl::Status status = transaction.BeginImmediate();
  if (!status.ok()) return status;
  absl::StatusOr<int64_t> active = ActiveVersionOf(db_, name, context);
  if (!active.ok()) return active.status();
  if (*active == 0) {
    return absl::NotFoundError(
        absl::StrCat("rule set ", Quoted(name), " has no active version"));
  }
  const int64_t now_us = NowMicros();
  {
    absl::StatusOr<std::unique_ptr<Statement>> stmt = Statement::Prepare(
        db_,
        "UPDATE rule_sets SET active_version = NULL, updated_at_us = ?2 "
        "WHERE name = ?1",
        context);
    if (!stmt.ok()) return stmt.status();
    if (status = (*stmt)->BindText(1, name); !status.ok()) return status;
    if (status = (*stmt)->BindInt64(2, now_us); !status.ok()) return status;
    if (status = (*stmt)->Run(); !status.ok()) return status;
  }
  v1::AuditEvent event;
  if (audit != nullptr) {
    event = *audit;
    event.set_version(*active);
    event.set_summary(absl::StrCat("deactivated (history kept); ",
                                   Previously(*active)));
    event.set_code(0);
    event.clear_message();
    status = InsertAuditEvent(db_, now_us, &event, context);
    if (!status.ok()) return status;
  }
  if (status = transaction.Commit(); !status.ok()) return status;
  if (audit != nullptr) *audit = std::move(event);
  return absl::OkStatus();
}

absl::Status Store::AppendAuditEvent(v1::AuditEvent* event) {
  const std::string context = Context(absl::StrCat(
      "record ", event->method().empty() ? "an admin call" : event->method(),
      " by ", Quoted(event->caller())));
  absl::MutexLock lock(&mu_);
  // One statement: a transaction of its own.
  return InsertAuditEvent(db_, NowMicros(), event, context);
}

absl::StatusOr<AuditPage> Store::ListAuditEvents(const AuditQuery& query) {
  const std::string context = Context("list audit events");
  if (query.limit < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("list audit events: limit ", query.limit,
                     " must be positive"));
  }
  if (query.before_id < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "list audit events: negative before_id ", query.before_id));
  }
  // Only the filters given appear in the SQL, so SQLite can use the index
  // of the one that is most selective. Parameters keep their numbers.
  std::string sql =
      "SELECT id, time_us, caller, caller_role, peer, method, rule_set, "
      "version, comment, summary, code, message FROM audit_events "
      "WHERE time_us >= ?4 AND time_us < ?5";
  if (!query.rule_set.empty()) absl::StrAppend(&sql, " AND rule_set = ?1");
  if (!query.caller.empty()) absl::StrAppend(&sql, " AND caller = ?2");
  if (!query.method.empty()) absl::StrAppend(&sql, " AND method = ?3");
  if (query.before_id > 0) absl::StrAppend(&sql, " AND id < ?6");
  absl::StrAppend(&sql, " ORDER BY id DESC LIMIT ?7");

  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt =
      Statement::Prepare(db_, sql.c_str(), context);
  if (!stmt.ok()) return stmt.status();
  Statement& select = **stmt;
  absl::Status status;
  if (!query.rule_set.empty()) {
    if (status = select.BindText(1, query.rule_set); !status.ok()) return status;
  }
  if (!query.caller.empty()) {
    if (status = select.BindText(2, query.caller); !status.ok()) return status;
  }
  if (!query.method.empty()) {
    if (status = select.BindText(3, query.method); !status.ok()) return status;
  }
  if (status = select.BindInt64(4, absl::ToUnixMicros(query.since));
      !status.ok()) {
    return status;
  }
  if (status = select.BindInt64(5, absl::ToUnixMicros(query.until));
      !status.ok()) {
    return status;
  }
  if (query.before_id > 0) {
    if (status = select.BindInt64(6, query.before_id); !status.ok()) {
      return status;
    }
  }
  // One more than asked, to know whether another page follows.
  if (status = select.BindInt64(7, static_cast<int64_t>(query.limit) + 1);
      !status.ok()) {
    return status;
  }
  AuditPage page;
  while (true) {
    absl::StatusOr<bool> row = select.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (static_cast<int64_t>(page.events.size()) == query.limit) {
      page.next_before_id = page.events.back().id();
      break;
    }
    page.events.push_back(ReadAuditEvent(select));
  }
  return page;
}

absl::StatusOr<std::pair<v1::RuleSet, v1::VersionInfo>> Store::Get(
    const std::string& name, int64_t version) {
  const std::string context = Context(
      absl::StrCat("get rule set ", Quoted(name), " version ", version));
  if (version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("get rule set ", Quoted(name), " version ", version,
                     ": the version must not be negative"));
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
  absl::StatusOr<v1::RuleSet> rule_set = ReadContent(**stmt, info, context);
  if (!rule_set.ok()) return rule_set.status();
  return std::make_pair(*std::move(rule_set), std::move(info));
}

absl::StatusOr<std::vector<v1::VersionInfo>> Store::ListActive() {
  const std::string context = Context("list active rule sets");
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
      Context(absl::StrCat("list versions of rule set ", Quoted(name)));
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
  const std::string context = Context("load active rule sets");
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
    absl::StatusOr<v1::RuleSet> rule_set = ReadContent(**stmt, info, context);
    if (!rule_set.ok()) return rule_set.status();
    loaded.emplace_back(*std::move(rule_set), std::move(info));
  }
  return loaded;
}

}  // namespace pdp::service
