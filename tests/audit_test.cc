// End-to-end tests of the admin audit trail: the real pdpd over real mutual
// TLS with a real SQLite file (tests/support/pdpd_process.h), called as the
// admin, gateway and role-less identities, read back with ListAuditEvents
// and with `pdpctl audit` (table and --json).
//
// Covered: the bootstrap, a push, a rollback with a comment, a push
// refused to the gateway, a failed activation and a delete are recorded in
// order with the callers' certificate identities and the results; reads
// are recorded after they answer; filters, pages and bad arguments; the
// gateway may not read the trail; the trail survives a restart; a change
// whose record cannot be written fails and changes nothing. Also the
// ListAuditEvents request checks of service/audit.h.
#include <sqlite3.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/rule_set_io.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "service/audit.h"
#include "tests/support/pdpd_process.h"

namespace pdp::e2e {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

constexpr char kAdmin[] = "spiffe://pdp.local/admin/dev";
constexpr char kGateway[] = "spiffe://pdp.local/gateway/dev";
constexpr char kOther[] = "spiffe://pdp.local/other/dev";

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\n--- stdout ---\n", r.out, "--- stderr ---\n", r.err);
}

v1::RuleSet DemoRuleSet(const std::string& description) {
  auto rule_set = engine::ReadRuleSetFile(SourcePath("rules/demo.json"));
  EXPECT_TRUE(rule_set.ok()) << rule_set.status();
  v1::RuleSet out = rule_set.ok() ? *rule_set : v1::RuleSet();
  out.set_description(description);
  return out;
}

grpc::Status Put(v1::Admin::Stub& stub, const v1::RuleSet& rule_set, const std::string& comment,
                 v1::PutRuleSetResponse* response) {
  v1::PutRuleSetRequest request;
  *request.mutable_rule_set() = rule_set;
  request.set_comment(comment);
  auto context = ContextWithDeadline();
  return stub.PutRuleSet(context.get(), request, response);
}

grpc::Status Activate(v1::Admin::Stub& stub, const std::string& name, int64_t version,
                      const std::string& comment) {
  v1::ActivateVersionRequest request;
  request.set_name(name);
  request.set_version(version);
  request.set_comment(comment);
  v1::ActivateVersionResponse response;
  auto context = ContextWithDeadline();
  return stub.ActivateVersion(context.get(), request, &response);
}

grpc::Status Delete(v1::Admin::Stub& stub, const std::string& name) {
  v1::DeleteRuleSetRequest request;
  request.set_name(name);
  v1::DeleteRuleSetResponse response;
  auto context = ContextWithDeadline();
  return stub.DeleteRuleSet(context.get(), request, &response);
}

grpc::Status ListAudit(v1::Admin::Stub& stub, const v1::ListAuditEventsRequest& request,
                       v1::ListAuditEventsResponse* response) {
  auto context = ContextWithDeadline();
  return stub.ListAuditEvents(context.get(), request, response);
}

v1::ListAuditEventsResponse MustListAudit(v1::Admin::Stub& stub,
                                          const v1::ListAuditEventsRequest& request = {}) {
  v1::ListAuditEventsResponse response;
  grpc::Status status = ListAudit(stub, request, &response);
  EXPECT_TRUE(status.ok()) << StatusText(status);
  return response;
}

// The events of `response` that are not ListAuditEvents calls, newest first.
std::vector<v1::AuditEvent> WithoutAuditReads(const v1::ListAuditEventsResponse& response) {
  std::vector<v1::AuditEvent> events;
  for (const v1::AuditEvent& event : response.events()) {
    if (event.method() != "ListAuditEvents") events.push_back(event);
  }
  return events;
}

// What the test checks of one event.
struct Expected {
  std::string caller;
  std::string role;
  std::string method;
  std::string rule_set;
  int64_t version;
  std::string comment;
  grpc::StatusCode code;
  std::string summary_part;
  std::string message_part;
};

void ExpectEvent(const v1::AuditEvent& event, const Expected& expected) {
  SCOPED_TRACE(event.DebugString());
  EXPECT_EQ(event.caller(), expected.caller);
  EXPECT_EQ(event.caller_role(), expected.role);
  EXPECT_EQ(event.method(), expected.method);
  EXPECT_EQ(event.rule_set(), expected.rule_set);
  EXPECT_EQ(event.version(), expected.version);
  EXPECT_EQ(event.comment(), expected.comment);
  EXPECT_EQ(event.code(), static_cast<int>(expected.code));
  EXPECT_EQ(event.code_name(),
            absl::StatusCodeToString(static_cast<absl::StatusCode>(expected.code)));
  EXPECT_THAT(event.summary(), HasSubstr(expected.summary_part));
  EXPECT_THAT(event.message(), HasSubstr(expected.message_part));
  if (expected.caller != "pdpd-bootstrap") {
    EXPECT_THAT(event.peer(), HasSubstr("127.0.0.1"));
  }
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override { Pki(); }

  std::vector<std::string> PdpctlArgs(std::vector<std::string> args,
                                      const std::string& identity = "admin") const {
    args.insert(args.begin(), PdpctlBinary());
    args.push_back("--addr=" + pdpd_.address());
    for (const std::string& flag : PdpctlTlsFlags(identity)) args.push_back(flag);
    return args;
  }

  TempDir dir_;
  PdpdProcess pdpd_{dir_.path()};
};

TEST_F(AuditTest, AdminCallsAreRecordedInOrderWithIdentitiesAndResults) {
  const std::string db = dir_.File("pdp.db");
  const absl::Time started = absl::Now();
  ASSERT_TRUE(pdpd_.Start(PdpdProcess::StandardFlags(db)));  // bootstraps shop v1
  auto admin = pdpd_.AdminStub("admin");
  auto gateway_admin = pdpd_.AdminStub("gateway");
  auto other_admin = pdpd_.AdminStub("other");

  // 1. A push (version 2).
  v1::PutRuleSetResponse put;
  grpc::Status status = Put(*admin, DemoRuleSet("second"), "tighten refunds", &put);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  ASSERT_EQ(put.version().version(), 2);
  // 2. A rollback with a comment.
  status = Activate(*admin, "shop", 1, "v2 broke checkout");
  ASSERT_TRUE(status.ok()) << StatusText(status);
  // 3. A push by the gateway: refused.
  status = Put(*gateway_admin, DemoRuleSet("sneaky"), "let me in", &put);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
  // 4. A read by a role-less identity: refused.
  {
    v1::ListRuleSetsResponse listed;
    auto context = ContextWithDeadline();
    status = other_admin->ListRuleSets(context.get(), v1::ListRuleSetsRequest(), &listed);
    ASSERT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
  }
  // 5. A failed activation.
  status = Activate(*admin, "shop", 9, "no such version");
  ASSERT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << StatusText(status);
  // 6. A delete.
  status = Delete(*admin, "shop");
  ASSERT_TRUE(status.ok()) << StatusText(status);
  // 7. A read.
  {
    v1::ListVersionsRequest request;
    request.set_name("shop");
    v1::ListVersionsResponse versions;
    auto context = ContextWithDeadline();
    status = admin->ListVersions(context.get(), request, &versions);
    ASSERT_TRUE(status.ok()) << StatusText(status);
  }

  const v1::ListAuditEventsResponse listed = MustListAudit(*admin);
  EXPECT_TRUE(listed.next_page_token().empty());
  // The listing is recorded after it answers: it is not in itself.
  const std::vector<v1::AuditEvent> events = WithoutAuditReads(listed);
  ASSERT_EQ(events.size(), 8u) << listed.DebugString();
  ASSERT_EQ(listed.events_size(), 8);
  using grpc::StatusCode;
  ExpectEvent(events[0], {kAdmin, "admin", "ListVersions", "shop", 0, "", StatusCode::OK,
                          "2 versions", ""});
  ExpectEvent(events[1], {kAdmin, "admin", "DeleteRuleSet", "shop", 1, "", StatusCode::OK,
                          "deactivated (history kept); previously version 1", ""});
  ExpectEvent(events[2], {kAdmin, "admin", "ActivateVersion", "shop", 9, "no such version",
                          StatusCode::NOT_FOUND, "activate version 9", "has no version 9"});
  ExpectEvent(events[3], {kOther, "none", "ListRuleSets", "", 0, "",
                          StatusCode::PERMISSION_DENIED, "refused: list rule sets",
                          "may not call Admin.ListRuleSets"});
  ExpectEvent(events[4], {kGateway, "gateway", "PutRuleSet", "shop", 0, "let me in",
                          StatusCode::PERMISSION_DENIED, "refused: put, 13 rules",
                          "identity 'spiffe://pdp.local/gateway/dev' (role gateway) may not "
                          "call Admin.PutRuleSet"});
  ExpectEvent(events[5], {kAdmin, "admin", "ActivateVersion", "shop", 1, "v2 broke checkout",
                          StatusCode::OK, "version 1 activated; previously version 2", ""});
  ExpectEvent(events[6], {kAdmin, "admin", "PutRuleSet", "shop", 2, "tighten refunds",
                          StatusCode::OK,
                          absl::StrCat("version 2 stored and activated (13 rules, sha256 ",
                                       put.version().sha256().substr(0, 12)),
                          ""});
  ExpectEvent(events[7], {"pdpd-bootstrap", "local", "Bootstrap", "shop", 1,
                          absl::StrCat("bootstrap from ", SourcePath("rules/demo.json")),
                          StatusCode::OK, "version 1 stored and activated", ""});
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_LT(events[i].id(), events[i - 1].id());
    EXPECT_LE(events[i].time().seconds(), events[i - 1].time().seconds());
  }
  EXPECT_GE(events[7].time().seconds(), absl::ToUnixSeconds(started) - 1);
  // A change's event has its version's time.
  EXPECT_TRUE(MessageDifferencer::Equals(events[6].time(), put.version().created_at()));

  // Filters.
  v1::ListAuditEventsRequest request;
  request.set_caller(kGateway);
  v1::ListAuditEventsResponse filtered = MustListAudit(*admin, request);
  ASSERT_EQ(filtered.events_size(), 1);
  EXPECT_EQ(filtered.events(0).id(), events[4].id());
  request = {};
  request.set_method("ActivateVersion");
  request.set_rule_set("shop");
  filtered = MustListAudit(*admin, request);
  ASSERT_EQ(filtered.events_size(), 2);
  EXPECT_EQ(filtered.events(0).id(), events[2].id());
  EXPECT_EQ(filtered.events(1).id(), events[5].id());
  request = {};
  *request.mutable_since() = events[6].time();
  *request.mutable_until() = events[1].time();
  request.set_method("ActivateVersion");
  filtered = MustListAudit(*admin, request);
  EXPECT_EQ(filtered.events_size(), 2);

  // Pages of 3, newest first; together the same as one listing.
  request = {};
  request.set_rule_set("shop");
  request.set_limit(3);
  std::vector<int64_t> paged;
  for (int page = 0; page < 10; ++page) {
    const v1::ListAuditEventsResponse response = MustListAudit(*admin, request);
    EXPECT_LE(response.events_size(), 3);
    for (const auto& event : response.events()) {
      // The listings above that named the rule set match too.
      if (event.method() != "ListAuditEvents") paged.push_back(event.id());
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  std::vector<int64_t> expected;
  for (const auto& event : events) {
    if (event.rule_set() == "shop") expected.push_back(event.id());
  }
  EXPECT_EQ(paged, expected);

  // Bad arguments name the field.
  request = {};
  request.set_page_token("not-a-token");
  v1::ListAuditEventsResponse bad;
  status = ListAudit(*admin, request, &bad);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << StatusText(status);
  EXPECT_THAT(status.error_message(), HasSubstr("page_token"));
  request = {};
  request.set_limit(-1);
  status = ListAudit(*admin, request, &bad);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << StatusText(status);
  EXPECT_THAT(status.error_message(), HasSubstr("limit"));
  request = {};
  *request.mutable_since() = events[1].time();
  *request.mutable_until() = events[6].time();
  status = ListAudit(*admin, request, &bad);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << StatusText(status);
  EXPECT_THAT(status.error_message(), HasSubstr("since"));

  // The gateway may not read the trail, and that is recorded too.
  status = ListAudit(*gateway_admin, {}, &bad);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(status);
  request = {};
  request.set_caller(kGateway);
  filtered = MustListAudit(*admin, request);
  ASSERT_EQ(filtered.events_size(), 2);
  EXPECT_EQ(filtered.events(0).method(), "ListAuditEvents");
  EXPECT_EQ(filtered.events(0).code(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  // The failed listings are recorded with their error.
  request = {};
  request.set_method("ListAuditEvents");
  request.set_caller(kAdmin);
  filtered = MustListAudit(*admin, request);
  int invalid = 0;
  for (const auto& event : filtered.events()) {
    if (event.code() == static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) ++invalid;
  }
  EXPECT_EQ(invalid, 3);

  // `pdpctl audit`: a table, newest first, with the same events.
  CommandResult table = RunCommand(PdpctlArgs({"audit", "shop"}));
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_THAT(table.out, HasSubstr("ID"));
  EXPECT_THAT(table.out, HasSubstr("CALLER"));
  std::vector<size_t> positions;
  for (int i : {1, 2, 4, 5, 6, 7}) {
    const std::string row_start = absl::StrCat("\n", events[i].id(), " ");
    const size_t at = table.out.find(row_start);
    ASSERT_NE(at, std::string::npos) << row_start << "\n" << Describe(table);
    const std::string row = table.out.substr(at + 1, table.out.find('\n', at + 1) - at - 1);
    EXPECT_THAT(row, HasSubstr(events[i].caller())) << row;
    EXPECT_THAT(row, HasSubstr(events[i].method())) << row;
    EXPECT_THAT(row, HasSubstr(events[i].code_name())) << row;
    positions.push_back(at);
  }
  EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end())) << Describe(table);
  EXPECT_THAT(table.out, HasSubstr("comment \"v2 broke checkout\""));
  EXPECT_THAT(table.out, HasSubstr("PERMISSION_DENIED"));

  // --json: the response message, the same events as the RPC.
  CommandResult json =
      RunCommand(PdpctlArgs({"audit", "--json", "--method=ActivateVersion", "--limit=5"}));
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  v1::ListAuditEventsResponse from_json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &from_json).ok())
      << json.out;
  ASSERT_EQ(from_json.events_size(), 2) << json.out;
  EXPECT_TRUE(MessageDifferencer::Equals(from_json.events(0), events[2]));
  EXPECT_TRUE(MessageDifferencer::Equals(from_json.events(1), events[5]));

  // --since as a duration, --caller, paging flags.
  CommandResult recent = RunCommand(
      PdpctlArgs({"audit", "--since=1h", "--caller=" + std::string(kGateway), "--json"}));
  ASSERT_EQ(recent.exit_code, 0) << Describe(recent);
  EXPECT_THAT(recent.out, HasSubstr(kGateway));
  EXPECT_THAT(recent.out, ::testing::Not(HasSubstr(kOther)));
  CommandResult paged_table = RunCommand(PdpctlArgs({"audit", "shop", "--limit=2"}));
  ASSERT_EQ(paged_table.exit_code, 0) << Describe(paged_table);
  EXPECT_THAT(paged_table.out, HasSubstr("more: add --page_token=p"));

  // Usage errors before connecting; the gateway is refused.
  CommandResult usage = RunCommand(PdpctlArgs({"audit", "--since=yesterday"}));
  EXPECT_EQ(usage.exit_code, 2) << Describe(usage);
  EXPECT_THAT(usage.err, HasSubstr("--since=yesterday"));
  CommandResult refused = RunCommand(PdpctlArgs({"audit"}, "gateway"));
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_THAT(refused.err, HasSubstr("PERMISSION_DENIED"));

  // After a restart the trail is the same.
  admin.reset();
  gateway_admin.reset();
  other_admin.reset();
  ASSERT_EQ(pdpd_.Stop(), 0);
  ASSERT_TRUE(pdpd_.Start(PdpdProcess::StandardFlags(db, /*bootstrap_file=*/"")));
  admin = pdpd_.AdminStub("admin");
  const std::vector<v1::AuditEvent> after = WithoutAuditReads(MustListAudit(*admin));
  ASSERT_EQ(after.size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(after[i], events[i]))
        << after[i].DebugString() << " vs " << events[i].DebugString();
  }
}

// A change whose audit record cannot be written fails and changes nothing;
// decisions go on from the version that was active. (A trigger added to the
// running pdpd's database makes every audit insert fail.)
TEST_F(AuditTest, ChangeFailsWhenItsRecordCannotBeWritten) {
  const std::string db = dir_.File("pdp.db");
  ASSERT_TRUE(pdpd_.Start(PdpdProcess::StandardFlags(db)));
  auto admin = pdpd_.AdminStub("admin");
  auto gateway = pdpd_.AuthorizationStub("gateway");

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> other(raw, &sqlite3_close);
  auto exec = [&](const char* sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(other.get(), sql, nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error ? error : "");
    sqlite3_free(error);
  };
  exec("CREATE TRIGGER no_audit BEFORE INSERT ON audit_events "
       "BEGIN SELECT RAISE(ABORT, 'audit trail unavailable (test)'); END");

  v1::PutRuleSetResponse put;
  grpc::Status status = Put(*admin, DemoRuleSet("unrecorded"), "must not stick", &put);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.error_message(), HasSubstr("audit record"));
  EXPECT_THAT(status.error_message(), HasSubstr("audit trail unavailable (test)"));
  EXPECT_THAT(status.error_message(), HasSubstr(db));
  // Nor could the failed put be recorded: the answer says so.
  EXPECT_THAT(status.error_message(), HasSubstr("could not be written"));
  status = Delete(*admin, "shop");
  EXPECT_FALSE(status.ok()) << "a delete without its record";

  // Nothing changed: version 1 still active and deciding; reads still work
  // (their records are best effort).
  v1::ListVersionsRequest request;
  request.set_name("shop");
  v1::ListVersionsResponse versions;
  {
    auto context = ContextWithDeadline();
    status = admin->ListVersions(context.get(), request, &versions);
  }
  ASSERT_TRUE(status.ok()) << StatusText(status);
  ASSERT_EQ(versions.versions_size(), 1);
  EXPECT_TRUE(versions.versions(0).active());
  v1::AuthorizeRequest decide;
  decide.set_action("read");
  decide.mutable_resource()->set_type("order");
  v1::AuthorizeResponse decision;
  {
    auto context = ContextWithDeadline();
    status = gateway->Authorize(context.get(), decide, &decision);
  }
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(decision.rule_set_version(), 1);

  exec("DROP TRIGGER no_audit");
  status = Put(*admin, DemoRuleSet("recorded"), "now it sticks", &put);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(put.version().version(), 2);
  const std::vector<v1::AuditEvent> events = WithoutAuditReads(MustListAudit(*admin));
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].comment(), "now it sticks");
  EXPECT_EQ(events.back().method(), "Bootstrap");
  for (const auto& event : events) EXPECT_NE(event.comment(), "must not stick");
}

// service/audit.h: ListAuditEvents requests to store queries.
TEST(AuditQueryTest, RequestsBecomeQueries) {
  v1::ListAuditEventsRequest request;
  absl::StatusOr<service::AuditQuery> query = service::AuditQueryFromRequest(request);
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_EQ(query->limit, service::kDefaultAuditLimit);
  EXPECT_EQ(query->since, absl::InfinitePast());
  EXPECT_EQ(query->until, absl::InfiniteFuture());
  EXPECT_EQ(query->before_id, 0);

  request.set_limit(5000);
  request.set_rule_set("shop");
  request.set_caller("spiffe://x");
  request.set_method("PutRuleSet");
  request.mutable_since()->set_seconds(100);
  request.mutable_until()->set_seconds(100);
  request.mutable_until()->set_nanos(1000);
  request.set_page_token(service::AuditPageToken(42));
  query = service::AuditQueryFromRequest(request);
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_EQ(query->limit, service::kMaxAuditLimit);
  EXPECT_EQ(query->rule_set, "shop");
  EXPECT_EQ(query->caller, "spiffe://x");
  EXPECT_EQ(query->method, "PutRuleSet");
  EXPECT_EQ(query->since, absl::FromUnixSeconds(100));
  EXPECT_EQ(query->until, absl::FromUnixSeconds(100) + absl::Microseconds(1));
  EXPECT_EQ(query->before_id, 42);
  EXPECT_EQ(service::AuditPageToken(0), "");

  for (const char* token : {"42", "p", "p-1", "p0", "px", "p1x"}) {
    request = {};
    request.set_page_token(token);
    EXPECT_TRUE(absl::IsInvalidArgument(service::AuditQueryFromRequest(request).status()))
        << token;
  }
  request = {};
  request.mutable_since()->set_nanos(-1);
  EXPECT_THAT(std::string(service::AuditQueryFromRequest(request).status().message()),
              HasSubstr("since: nanos -1"));
  request = {};
  request.mutable_since()->set_seconds(10);
  request.mutable_until()->set_seconds(10);
  EXPECT_TRUE(absl::IsInvalidArgument(service::AuditQueryFromRequest(request).status()));
}

}  // namespace
}  // namespace pdp::e2e
