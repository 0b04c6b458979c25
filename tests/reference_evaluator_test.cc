// Unit tests of the naive reference evaluator (tests/support/
// reference_evaluator.h) on small hand-written cases, so that it can be
// trusted as the oracle of tests/differential_test.cc. Every expectation is
// taken from the README's "Rule model" section.
#include "tests/support/reference_evaluator.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"

namespace pdp::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// 2024-06-14 (a Friday) 10:30 UTC: the clock for requests without a time.
const absl::Time kNow = absl::FromUnixSeconds(1718361000);

v1::RuleSet ParseRuleSet(const std::string& json) {
  v1::RuleSet rule_set;
  auto status = google::protobuf::util::JsonStringToMessage(json, &rule_set);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return rule_set;
}

v1::AuthorizeRequest ParseRequest(const std::string& json) {
  v1::AuthorizeRequest request;
  auto status = google::protobuf::util::JsonStringToMessage(json, &request);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return request;
}

// A rule on every resource type and action with the given conditions.
std::string Rule(const std::string& id, const std::string& effect,
                 const std::string& conditions = "{}",
                 const std::string& extra = "") {
  return absl::StrCat(R"({"id": ")", id, R"(", "effect": ")", effect,
                      R"(", "target": {"resource_types": ["*"], "actions": ["*"]},)",
                      R"( "conditions": )", conditions, extra, "}");
}

std::string RuleSetJson(const std::string& algorithm,
                        const std::vector<std::string>& rules) {
  return absl::StrCat(R"({"name": "test", "combining_algorithm": ")", algorithm,
                      R"(", "rules": [)", absl::StrJoin(rules, ","), "]}");
}

// A request for "doc"/"read" with the given extra top-level JSON members.
std::string Request(const std::string& members = "") {
  return absl::StrCat(R"({"action": "read", "resource": {"type": "doc"})",
                      members.empty() ? "" : ",", members, "}");
}

v1::AuthorizeResponse Eval(const std::string& rule_set_json,
                           const std::string& request_json,
                           absl::Time now = kNow) {
  return ReferenceEvaluate(ParseRuleSet(rule_set_json),
                           ParseRequest(request_json), now);
}

// Decision of a single permit rule with `conditions` on `request_json`.
v1::Decision One(const std::string& conditions,
                 const std::string& request_json) {
  return Eval(RuleSetJson("", {Rule("r", "permit", conditions)}), request_json)
      .decision();
}

// Decision of a single permit rule with one attribute condition against a
// request whose subject has `subject_json` (a Subject in JSON).
v1::Decision Attr(const std::string& condition,
                  const std::string& subject_json) {
  return One(absl::StrCat(R"({"attributes": [)", condition, "]}"),
             Request(absl::StrCat(R"("subject": )", subject_json)));
}

constexpr v1::Decision P = v1::PERMIT;
constexpr v1::Decision NA = v1::NOT_APPLICABLE;
constexpr v1::Decision IND = v1::INDETERMINATE;

// ---------------------------------------------------------------- Targets

TEST(ReferenceTargetTest, ResourceTypesActionsAndRoles) {
  const std::string rules = RuleSetJson(
      "", {R"({"id": "r", "effect": "permit", "target": {
             "resource_types": ["order", "reports:*"], "actions": ["*"],
             "roles": ["support", "admin"]}})"});
  auto eval = [&](const std::string& type, const std::string& roles) {
    return Eval(rules, absl::StrCat(R"({"action": "x", "resource": {"type": ")",
                                    type, R"("}, "subject": {"roles": )", roles,
                                    "}}"))
        .decision();
  };
  EXPECT_EQ(eval("order", R"(["admin"])"), P);
  EXPECT_EQ(eval("reports:daily", R"(["guest", "support"])"), P);
  EXPECT_EQ(eval("reports:", R"(["support"])"), P);
  EXPECT_EQ(eval("report", R"(["support"])"), NA);
  EXPECT_EQ(eval("orders", R"(["support"])"), NA);
  EXPECT_EQ(eval("order", R"(["guest"])"), NA);
  EXPECT_EQ(eval("order", "[]"), NA);
}

TEST(ReferenceTargetTest, EmptyRolesMeansAnySubject) {
  const std::string rules = RuleSetJson(
      "", {R"({"id": "r", "effect": "deny", "target": {
             "resource_types": ["doc"], "actions": ["read", "orders:*"]}})"});
  EXPECT_EQ(Eval(rules, Request()).decision(), v1::DENY);
  EXPECT_EQ(Eval(rules, R"({"action": "orders:list", "resource": {"type": "doc"}})")
                .decision(),
            v1::DENY);
  EXPECT_EQ(Eval(rules, R"({"action": "write", "resource": {"type": "doc"}})")
                .decision(),
            NA);
}

// ------------------------------------------------------------- Attributes

TEST(ReferenceAttributeTest, EqAndNe) {
  const std::string s = R"({"attributes": {"dept": "eng", "level": 1,
      "mfa": true, "groups": ["a", "b"]}})";
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "eq", "value": "eng"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "eq", "value": "ops"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.level", "op": "eq", "value": 1})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.level", "op": "eq", "value": 1.0})", s), P);
  // 1 is not "1".
  EXPECT_EQ(Attr(R"({"attribute": "subject.level", "op": "eq", "value": "1"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.level", "op": "ne", "value": "1"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.mfa", "op": "eq", "value": true})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.mfa", "op": "ne", "value": true})", s), NA);
  // Lists element by element.
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "eq", "value": ["a", "b"]})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "eq", "value": ["b", "a"]})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "eq", "value": ["a"]})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "eq", "value": "a"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "ne", "value": ["a"]})", s), P);
  // Missing: neither eq nor ne holds.
  EXPECT_EQ(Attr(R"({"attribute": "subject.nope", "op": "eq", "value": "x"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.nope", "op": "ne", "value": "x"})", s), NA);
}

TEST(ReferenceAttributeTest, InAndNotIn) {
  const std::string s = R"({"attributes": {"dept": "eng", "level": 2,
      "groups": ["a", "b"], "none": []}})";
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "in", "value": ["ops", "eng"]})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "in", "value": ["ops"]})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.level", "op": "in", "value": ["2", 3]})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.level", "op": "in", "value": [2]})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "not_in", "value": ["ops"]})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "not_in", "value": ["eng"]})", s), NA);
  // A list attribute: any element.
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "in", "value": ["x", "b"]})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "in", "value": ["x"]})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "not_in", "value": ["x"]})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "not_in", "value": ["x", "a"]})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.none", "op": "in", "value": ["x"]})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.none", "op": "not_in", "value": ["x"]})", s), P);
  // Missing: not_in does not hold either.
  EXPECT_EQ(Attr(R"({"attribute": "subject.nope", "op": "not_in", "value": ["x"]})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.nope", "op": "in", "value": ["x"]})", s), NA);
}

TEST(ReferenceAttributeTest, Contains) {
  const std::string s = R"({"attributes": {"dept": "eng", "groups": ["a", 7, true]}})";
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "contains", "value": "a"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "contains", "value": 7})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "contains", "value": "7"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "contains", "value": true})", s), P);
  // A scalar attribute: equals it.
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "contains", "value": "eng"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "contains", "value": "en"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.nope", "op": "contains", "value": "a"})", s), NA);
}

TEST(ReferenceAttributeTest, Ordering) {
  const std::string s = R"({"attributes": {"n": 2, "s": "b", "l": [1, 2], "f": false}})";
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "lt", "value": 3})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "lt", "value": 2})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "le", "value": 2})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "le", "value": 1.5})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "gt", "value": 1.5})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "gt", "value": 2})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "ge", "value": 2})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "ge", "value": -10})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "ge", "value": 2.5})", s), NA);
  // Strings in byte order ("B" < "a" < "b" < "ba").
  EXPECT_EQ(Attr(R"({"attribute": "subject.s", "op": "lt", "value": "ba"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.s", "op": "gt", "value": "a"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.s", "op": "gt", "value": "B"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.s", "op": "lt", "value": "B"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.s", "op": "ge", "value": "b"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.s", "op": "le", "value": "b"})", s), P);
  // Mixed types: false both ways.
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "lt", "value": "3"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "ge", "value": "3"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.l", "op": "lt", "value": 3})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.f", "op": "lt", "value": 3})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.nope", "op": "lt", "value": 3})", s), NA);
}

TEST(ReferenceAttributeTest, Regex) {
  const std::string s = R"({"attributes": {"dept": "engineering", "n": 12,
      "groups": [3, "ops-1", "dev"]}})";
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "regex", "value": "eng.*"})", s), P);
  // Full match, not a partial one.
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "regex", "value": "eng"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "regex", "value": "gin"})", s), NA);
  // Numbers are not strings.
  EXPECT_EQ(Attr(R"({"attribute": "subject.n", "op": "regex", "value": "\\d+"})", s), NA);
  // Any string element of a list.
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "regex", "value": "ops-\\d"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.groups", "op": "regex", "value": "\\d"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.nope", "op": "regex", "value": ".*"})", s), NA);
}

TEST(ReferenceAttributeTest, Exists) {
  const std::string s = R"({"attributes": {"dept": "eng", "empty": ""}})";
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "exists"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.empty", "op": "exists"})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "exists", "value": true})", s), P);
  EXPECT_EQ(Attr(R"({"attribute": "subject.dept", "op": "exists", "value": false})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.nope", "op": "exists"})", s), NA);
  EXPECT_EQ(Attr(R"({"attribute": "subject.nope", "op": "exists", "value": false})", s), P);
}

TEST(ReferenceAttributeTest, Other) {
  const std::string req = Request(R"(
      "subject": {"id": "alice", "roles": ["dev", "ops"], "attributes": {"region": "eu", "n": 3}},
      "resource": {"type": "doc", "id": "d1",
                   "attributes": {"owner": "alice", "region": "eu", "limit": 5,
                                  "allowed": ["us", "eu"], "team": ["ops"]}})");
  auto one = [&](const std::string& condition) {
    return One(absl::StrCat(R"({"attributes": [)", condition, "]}"), req);
  };
  EXPECT_EQ(one(R"({"attribute": "resource.owner", "op": "eq", "other": "subject.id"})"), P);
  EXPECT_EQ(one(R"({"attribute": "resource.owner", "op": "ne", "other": "subject.id"})"), NA);
  EXPECT_EQ(one(R"({"attribute": "resource.region", "op": "eq", "other": "subject.region"})"), P);
  EXPECT_EQ(one(R"({"attribute": "subject.n", "op": "lt", "other": "resource.limit"})"), P);
  EXPECT_EQ(one(R"({"attribute": "subject.n", "op": "ge", "other": "resource.limit"})"), NA);
  EXPECT_EQ(one(R"({"attribute": "subject.region", "op": "in", "other": "resource.allowed"})"), P);
  // A scalar `other` is a one-element list.
  EXPECT_EQ(one(R"({"attribute": "subject.region", "op": "in", "other": "resource.region"})"), P);
  EXPECT_EQ(one(R"({"attribute": "subject.region", "op": "not_in", "other": "resource.region"})"), NA);
  EXPECT_EQ(one(R"({"attribute": "subject.roles", "op": "in", "other": "resource.team"})"), P);
  EXPECT_EQ(one(R"({"attribute": "resource.allowed", "op": "contains", "other": "subject.region"})"), P);
  // A missing `other`: the condition does not hold, whatever the op.
  EXPECT_EQ(one(R"({"attribute": "subject.region", "op": "ne", "other": "resource.nope"})"), NA);
  EXPECT_EQ(one(R"({"attribute": "subject.region", "op": "not_in", "other": "resource.nope"})"), NA);
}

TEST(ReferenceAttributeTest, BuiltInsTakePrecedence) {
  const std::string req = Request(R"(
      "subject": {"id": "alice", "roles": ["dev"], "attributes": {"id": "mallory", "roles": "x"}},
      "resource": {"type": "doc", "id": "d1", "attributes": {"type": "other", "id": "d2"}})");
  auto one = [&](const std::string& condition) {
    return One(absl::StrCat(R"({"attributes": [)", condition, "]}"), req);
  };
  EXPECT_EQ(one(R"({"attribute": "subject.id", "op": "eq", "value": "alice"})"), P);
  EXPECT_EQ(one(R"({"attribute": "subject.id", "op": "eq", "value": "mallory"})"), NA);
  EXPECT_EQ(one(R"({"attribute": "subject.roles", "op": "eq", "value": ["dev"]})"), P);
  EXPECT_EQ(one(R"({"attribute": "subject.roles", "op": "contains", "value": "dev"})"), P);
  EXPECT_EQ(one(R"({"attribute": "resource.type", "op": "eq", "value": "doc"})"), P);
  EXPECT_EQ(one(R"({"attribute": "resource.id", "op": "eq", "value": "d1"})"), P);
  EXPECT_EQ(one(R"({"attribute": "action", "op": "eq", "value": "read"})"), P);
  EXPECT_EQ(one(R"({"attribute": "action", "op": "regex", "value": "r.*"})"), P);
  EXPECT_EQ(one(R"({"attribute": "environment.channel", "op": "exists", "value": false})"), P);
}

TEST(ReferenceAttributeTest, EmptyBuiltInsAreAbsent) {
  // proto3 (and its JSON form) cannot tell an empty field from an unset one,
  // so an empty subject.id / resource.id / subject.roles is "lacking".
  const std::string req = Request();
  auto one = [&](const std::string& condition) {
    return One(absl::StrCat(R"({"attributes": [)", condition, "]}"), req);
  };
  EXPECT_EQ(one(R"({"attribute": "subject.id", "op": "exists", "value": false})"), P);
  EXPECT_EQ(one(R"({"attribute": "resource.id", "op": "exists", "value": false})"), P);
  EXPECT_EQ(one(R"({"attribute": "subject.roles", "op": "exists", "value": false})"), P);
  EXPECT_EQ(one(R"({"attribute": "subject.roles", "op": "not_in", "value": ["admin"]})"), NA);
  EXPECT_EQ(one(R"({"attribute": "subject.roles", "op": "ne", "value": ["admin"]})"), NA);
  EXPECT_EQ(one(R"({"attribute": "subject.id", "op": "ne", "value": "alice"})"), NA);
}

// ----------------------------------------------------------- Time windows

// A request at `time` (RFC 3339).
std::string At(const std::string& time) {
  return Request(absl::StrCat(R"("environment": {"time": ")", time, R"("})"));
}

TEST(ReferenceTimeTest, BerlinWindowFollowsDaylightSaving) {
  const std::string window = R"({"time_windows": [
      {"start": "09:00", "end": "17:00", "time_zone": "Europe/Berlin"}]})";
  // Before the March change (CET, UTC+1): Saturday 2024-03-30.
  EXPECT_EQ(One(window, At("2024-03-30T07:59:59Z")), NA);
  EXPECT_EQ(One(window, At("2024-03-30T08:00:00Z")), P);
  EXPECT_EQ(One(window, At("2024-03-30T15:59:59Z")), P);
  EXPECT_EQ(One(window, At("2024-03-30T16:00:00Z")), NA);
  // After it (CEST, UTC+2): Monday 2024-04-01.
  EXPECT_EQ(One(window, At("2024-04-01T06:59:59Z")), NA);
  EXPECT_EQ(One(window, At("2024-04-01T07:00:00Z")), P);
  EXPECT_EQ(One(window, At("2024-04-01T14:59:59.999Z")), P);
  EXPECT_EQ(One(window, At("2024-04-01T15:00:00Z")), NA);
  // Before the October change (CEST): Saturday 2024-10-26.
  EXPECT_EQ(One(window, At("2024-10-26T06:59:59Z")), NA);
  EXPECT_EQ(One(window, At("2024-10-26T07:00:00Z")), P);
  EXPECT_EQ(One(window, At("2024-10-26T15:00:00Z")), NA);
  // After it (CET): Monday 2024-10-28.
  EXPECT_EQ(One(window, At("2024-10-28T07:30:00Z")), NA);
  EXPECT_EQ(One(window, At("2024-10-28T08:00:00Z")), P);
  EXPECT_EQ(One(window, At("2024-10-28T15:30:00Z")), P);
  EXPECT_EQ(One(window, At("2024-10-28T16:00:00Z")), NA);
}

TEST(ReferenceTimeTest, DaysAreLocalDays) {
  // 23:30 UTC on Friday 2024-01-05 is 10:30 on Saturday in Sydney.
  const std::string window = R"({"time_windows": [{"days": ["sat"],
      "start": "10:00", "end": "11:00", "time_zone": "Australia/Sydney"}]})";
  EXPECT_EQ(One(window, At("2024-01-05T23:30:00Z")), P);
  EXPECT_EQ(One(window, At("2024-01-06T23:30:00Z")), NA);
  const std::string full = R"({"time_windows": [{"days": ["monday", "friday"],
      "start": "00:00", "end": "24:00", "time_zone": "UTC"}]})";
  EXPECT_EQ(One(full, At("2024-01-05T23:59:59Z")), P);  // Friday
  EXPECT_EQ(One(full, At("2024-01-06T00:00:00Z")), NA);  // Saturday
  EXPECT_EQ(One(full, At("2024-01-08T00:00:00Z")), P);  // Monday
}

TEST(ReferenceTimeTest, MidnightCrossing) {
  // Opens Friday 22:00, closes Saturday 02:00 (2024-01-05 is a Friday).
  const std::string window = R"({"time_windows": [{"days": ["fri"],
      "start": "22:00", "end": "02:00", "time_zone": "UTC"}]})";
  EXPECT_EQ(One(window, At("2024-01-05T21:59:59Z")), NA);
  EXPECT_EQ(One(window, At("2024-01-05T22:00:00Z")), P);
  EXPECT_EQ(One(window, At("2024-01-05T23:59:59Z")), P);
  EXPECT_EQ(One(window, At("2024-01-06T00:00:00Z")), P);
  EXPECT_EQ(One(window, At("2024-01-06T01:59:59Z")), P);
  EXPECT_EQ(One(window, At("2024-01-06T02:00:00Z")), NA);
  EXPECT_EQ(One(window, At("2024-01-06T22:30:00Z")), NA);  // Saturday night
  EXPECT_EQ(One(window, At("2024-01-05T01:00:00Z")), NA);  // Thursday's night
  // Asia/Kolkata is UTC+5:30: Friday 23:00 local is 17:30 UTC.
  const std::string kolkata = R"({"time_windows": [{"days": ["fri"],
      "start": "23:00", "end": "01:00", "time_zone": "Asia/Kolkata"}]})";
  EXPECT_EQ(One(kolkata, At("2024-01-05T17:29:59Z")), NA);
  EXPECT_EQ(One(kolkata, At("2024-01-05T17:30:00Z")), P);
  EXPECT_EQ(One(kolkata, At("2024-01-05T19:29:59Z")), P);
  EXPECT_EQ(One(kolkata, At("2024-01-05T19:30:00Z")), NA);
}

TEST(ReferenceTimeTest, EndOfDay) {
  const std::string window = R"({"time_windows": [
      {"start": "18:00", "end": "24:00", "time_zone": "UTC"}]})";
  EXPECT_EQ(One(window, At("2024-01-05T17:59:59Z")), NA);
  EXPECT_EQ(One(window, At("2024-01-05T18:00:00Z")), P);
  EXPECT_EQ(One(window, At("2024-01-05T23:59:59.999999999Z")), P);
  EXPECT_EQ(One(window, At("2024-01-06T00:00:00Z")), NA);
}

TEST(ReferenceTimeTest, NonexistentLocalTimesNeverMatch) {
  // 02:00-03:00 does not exist in New York on 2024-03-10.
  const std::string window = R"({"time_windows": [{"days": ["sun"],
      "start": "02:00", "end": "03:00", "time_zone": "America/New_York"}]})";
  EXPECT_EQ(One(window, At("2024-03-10T06:59:59Z")), NA);  // 01:59:59 EST
  EXPECT_EQ(One(window, At("2024-03-10T07:00:00Z")), NA);  // 03:00 EDT
  EXPECT_EQ(One(window, At("2024-03-17T06:30:00Z")), P);  // 02:30 EDT
  // On 2024-11-03 01:00-02:00 happens twice; both are in the window.
  const std::string twice = R"({"time_windows": [{"start": "01:00", "end": "02:00",
      "time_zone": "America/New_York"}]})";
  EXPECT_EQ(One(twice, At("2024-11-03T05:30:00Z")), P);  // 01:30 EDT
  EXPECT_EQ(One(twice, At("2024-11-03T06:30:00Z")), P);  // 01:30 EST
  EXPECT_EQ(One(twice, At("2024-11-03T07:00:00Z")), NA);  // 02:00 EST
}

TEST(ReferenceTimeTest, AnyWindowAndServerClock) {
  const std::string windows = R"({"time_windows": [
      {"days": ["sat"], "start": "09:00", "end": "10:00", "time_zone": "UTC"},
      {"days": ["fri"], "start": "10:00", "end": "11:00", "time_zone": "UTC"}]})";
  // kNow is Friday 10:30 UTC.
  EXPECT_EQ(One(windows, Request()), P);
  EXPECT_EQ(One(windows, At("2024-06-15T09:15:00Z")), P);
  EXPECT_EQ(One(windows, At("2024-06-15T10:15:00Z")), NA);
}

TEST(ReferenceTimeTest, OutOfRangeTimeErrs) {
  const std::string window = R"({"time_windows": [
      {"start": "00:00", "end": "24:00", "time_zone": "UTC"}]})";
  v1::AuthorizeRequest request = ParseRequest(Request());
  request.mutable_environment()->mutable_time()->set_seconds(253402300800);
  const v1::RuleSet rules = ParseRuleSet(RuleSetJson("", {Rule("r", "permit", window)}));
  EXPECT_EQ(ReferenceEvaluate(rules, request, kNow).decision(), IND);
  request.mutable_environment()->mutable_time()->set_seconds(0);
  request.mutable_environment()->mutable_time()->set_nanos(-1);
  EXPECT_EQ(ReferenceEvaluate(rules, request, kNow).decision(), IND);
  request.mutable_environment()->mutable_time()->set_nanos(0);
  EXPECT_EQ(ReferenceEvaluate(rules, request, kNow).decision(), P);
  // Only rules with time windows need the time.
  const v1::RuleSet other = ParseRuleSet(RuleSetJson("", {Rule("r", "permit")}));
  request.mutable_environment()->mutable_time()->set_seconds(253402300800);
  EXPECT_EQ(ReferenceEvaluate(other, request, kNow).decision(), P);
}

// --------------------------------------------------------------- Location

std::string From(const std::string& country, const std::string& region = "") {
  return Request(absl::StrCat(R"("environment": {"location": {"country": ")",
                              country, R"(", "region": ")", region, R"("}})"));
}

TEST(ReferenceLocationTest, CountriesAndRegions) {
  const std::string in = R"({"location": {"in": ["DE", "US-CA"]}})";
  EXPECT_EQ(One(in, From("DE")), P);
  EXPECT_EQ(One(in, From("DE", "DE-BY")), P);  // a country matches its regions
  EXPECT_EQ(One(in, From("DE", "BY")), P);
  EXPECT_EQ(One(in, From("de", "by")), P);
  EXPECT_EQ(One(in, From("US", "US-CA")), P);
  EXPECT_EQ(One(in, From("US", "CA")), P);
  EXPECT_EQ(One(in, From("us", "ca")), P);
  EXPECT_EQ(One(in, From("US", "NY")), NA);
  EXPECT_EQ(One(in, From("US")), NA);
  EXPECT_EQ(One(in, From("FR")), NA);

  const std::string not_in = R"({"location": {"not_in": ["US", "DE-BY"]}})";
  EXPECT_EQ(One(not_in, From("DE")), P);
  EXPECT_EQ(One(not_in, From("DE", "BE")), P);
  EXPECT_EQ(One(not_in, From("DE", "BY")), NA);
  EXPECT_EQ(One(not_in, From("US", "CA")), NA);

  const std::string both = R"({"location": {"in": ["US"], "not_in": ["US-NY"]}})";
  EXPECT_EQ(One(both, From("US", "CA")), P);
  EXPECT_EQ(One(both, From("US", "NY")), NA);
  EXPECT_EQ(One(both, From("US")), P);
}

TEST(ReferenceLocationTest, MissingDoesNotHoldAndMalformedErrs) {
  const std::string not_in = R"({"location": {"not_in": ["US"]}})";
  EXPECT_EQ(One(not_in, Request()), NA);
  EXPECT_EQ(One(not_in, From("DEU")), IND);
  EXPECT_EQ(One(not_in, From("D")), IND);
  EXPECT_EQ(One(not_in, From("1X")), IND);
  EXPECT_EQ(One(not_in, From("US", "DE-BY")), IND);  // another country's region
  EXPECT_EQ(One(not_in, From("", "US-CA")), IND);  // no country, but a region
  EXPECT_EQ(One(not_in, From("US", "CALIF")), IND);
  EXPECT_EQ(One(not_in, From("", "")), NA);  // an empty location is none
  // False beats error within a rule: an unmet attribute condition wins.
  EXPECT_EQ(One(R"({"location": {"not_in": ["US"]}, "attributes": [
                  {"attribute": "subject.x", "op": "exists"}]})",
                From("DEU")),
            NA);
}

// -------------------------------------------------------------- Client IP

std::string FromIp(const std::string& ip) {
  return Request(absl::StrCat(R"("environment": {"client_ip": ")", ip, R"("})"));
}

TEST(ReferenceIpTest, Ipv4) {
  const std::string c = R"({"client_ip": {"in": ["10.0.0.0/8", "192.168.1.7"],
      "not_in": ["10.66.0.0/16"]}})";
  EXPECT_EQ(One(c, FromIp("10.1.2.3")), P);
  EXPECT_EQ(One(c, FromIp("10.255.255.255")), P);
  EXPECT_EQ(One(c, FromIp("11.0.0.0")), NA);
  EXPECT_EQ(One(c, FromIp("10.66.1.1")), NA);
  EXPECT_EQ(One(c, FromIp("10.67.1.1")), P);
  EXPECT_EQ(One(c, FromIp("192.168.1.7")), P);
  EXPECT_EQ(One(c, FromIp("192.168.1.8")), NA);
  // IPv4-mapped IPv6 matches IPv4 blocks.
  EXPECT_EQ(One(c, FromIp("::ffff:10.1.2.3")), P);
  EXPECT_EQ(One(c, FromIp("::ffff:10.66.2.3")), NA);
  EXPECT_EQ(One(c, FromIp("::ffff:a01:203")), P);
  // IPv4-compatible (::10.1.2.3) is not mapped.
  EXPECT_EQ(One(c, FromIp("::10.1.2.3")), NA);
  const std::string odd = R"({"client_ip": {"in": ["172.16.0.0/12", "0.0.0.0/0"]}})";
  EXPECT_EQ(One(R"({"client_ip": {"in": ["172.16.0.0/12"]}})", FromIp("172.31.255.255")), P);
  EXPECT_EQ(One(R"({"client_ip": {"in": ["172.16.0.0/12"]}})", FromIp("172.32.0.0")), NA);
  EXPECT_EQ(One(odd, FromIp("8.8.8.8")), P);
  EXPECT_EQ(One(R"({"client_ip": {"in": ["0.0.0.0/0"]}})", FromIp("2001:db8::1")), NA);
}

TEST(ReferenceIpTest, Ipv6) {
  const std::string c = R"({"client_ip": {"in": ["2001:db8::/32", "fe80::1"],
      "not_in": ["2001:db8:dead::/48"]}})";
  EXPECT_EQ(One(c, FromIp("2001:db8::1")), P);
  EXPECT_EQ(One(c, FromIp("2001:0db8:ffff:ffff::")), P);
  EXPECT_EQ(One(c, FromIp("2001:db9::1")), NA);
  EXPECT_EQ(One(c, FromIp("2001:db8:dead:beef::1")), NA);
  EXPECT_EQ(One(c, FromIp("2001:db8:deae::1")), P);
  EXPECT_EQ(One(c, FromIp("fe80::1")), P);
  EXPECT_EQ(One(c, FromIp("fe80::2")), NA);
  EXPECT_EQ(One(c, FromIp("10.0.0.1")), NA);
  EXPECT_EQ(One(R"({"client_ip": {"in": ["2001:db8:8000::/33"]}})", FromIp("2001:db8:8000::1")), P);
  EXPECT_EQ(One(R"({"client_ip": {"in": ["2001:db8:8000::/33"]}})", FromIp("2001:db8:7fff::1")), NA);
  EXPECT_EQ(One(R"({"client_ip": {"in": ["::/0"]}})", FromIp("::1")), P);
  // A mapped address is an IPv6 address too; a plain IPv4 address is in no
  // IPv6 block.
  EXPECT_EQ(One(R"({"client_ip": {"in": ["::/0"]}})", FromIp("::ffff:10.1.2.3")), P);
  EXPECT_EQ(One(R"({"client_ip": {"in": ["::/0"]}})", FromIp("10.1.2.3")), NA);
  EXPECT_EQ(One(R"({"client_ip": {"in": ["::ffff:0:0/96"]}})", FromIp("10.1.2.3")), NA);
  EXPECT_EQ(One(R"({"client_ip": {"not_in": ["::/0"]}})", FromIp("10.1.2.3")), P);
}

TEST(ReferenceIpTest, MissingDoesNotHoldAndMalformedErrs) {
  const std::string c = R"({"client_ip": {"not_in": ["10.0.0.0/8"]}})";
  EXPECT_EQ(One(c, Request()), NA);
  EXPECT_EQ(One(c, FromIp("300.1.1.1")), IND);
  EXPECT_EQ(One(c, FromIp("abc")), IND);
  EXPECT_EQ(One(c, FromIp("10.0.0.0/8")), IND);
  EXPECT_EQ(One(c, FromIp("2001:db8::g")), IND);
  EXPECT_EQ(One(c, FromIp("11.0.0.1")), P);
}

// ---------------------------------------------------- Combining algorithms

// Rules whose outcome is controlled by the request: "a" applies when
// subject.a exists, "e" errs on a malformed client_ip (and needs
// subject.e to exist, so that it is simply not applicable otherwise).
std::string Applies(const std::string& id, const std::string& effect,
                    const std::string& extra = "") {
  return Rule(id, effect,
              absl::StrCat(R"({"attributes": [{"attribute": "subject.)", id,
                           R"(", "op": "exists"}]})"),
              extra);
}
std::string Errs(const std::string& id, const std::string& effect,
                 const std::string& extra = "") {
  return Rule(id, effect,
              absl::StrCat(R"({"client_ip": {"in": ["10.0.0.0/8"]},)",
                           R"( "attributes": [{"attribute": "subject.)", id,
                           R"(", "op": "exists"}]})"),
              extra);
}

// A request with a malformed client_ip and subject attributes `ids`.
std::string With(const std::vector<std::string>& ids) {
  std::vector<std::string> members;
  for (const std::string& id : ids) members.push_back(absl::StrCat("\"", id, "\": 1"));
  return Request(absl::StrCat(R"("subject": {"attributes": {)",
                              absl::StrJoin(members, ","),
                              R"(}}, "environment": {"client_ip": "bad"})"));
}

TEST(ReferenceCombiningTest, DenyOverrides) {
  const std::string rules = RuleSetJson(
      "deny-overrides", {Applies("p1", "permit"), Errs("pe", "permit"),
                         Applies("d1", "deny"), Errs("de", "deny"),
                         Applies("p2", "Permit"), Applies("d2", "DENY")});
  auto eval = [&](const std::vector<std::string>& ids) { return Eval(rules, With(ids)); };
  v1::AuthorizeResponse r = eval({"p1", "pe", "d1", "de", "p2", "d2"});
  EXPECT_EQ(r.decision(), v1::DENY);
  EXPECT_THAT(r.determining_rules(), ElementsAre("d1", "d2"));
  EXPECT_EQ(r.rule_set(), "test");
  r = eval({"p1", "pe", "de", "p2"});
  EXPECT_EQ(r.decision(), IND);
  EXPECT_THAT(r.determining_rules(), ElementsAre("pe", "de"));
  r = eval({"p1", "pe", "p2"});
  EXPECT_EQ(r.decision(), P);
  EXPECT_THAT(r.determining_rules(), ElementsAre("p1", "p2"));
  r = eval({"pe"});
  EXPECT_EQ(r.decision(), IND);
  EXPECT_THAT(r.determining_rules(), ElementsAre("pe"));
  r = eval({});
  EXPECT_EQ(r.decision(), NA);
  EXPECT_THAT(r.determining_rules(), IsEmpty());
  // The default algorithm is deny-overrides.
  EXPECT_EQ(Eval(RuleSetJson("", {Applies("p1", "permit"), Errs("de", "deny")}),
                 With({"p1", "de"}))
                .decision(),
            IND);
}

TEST(ReferenceCombiningTest, PermitOverrides) {
  const std::string rules = RuleSetJson(
      "Permit_Overrides", {Applies("d1", "deny"), Errs("de", "deny"),
                           Applies("p1", "permit"), Errs("pe", "permit"),
                           Applies("d2", "deny"), Applies("p2", "permit")});
  auto eval = [&](const std::vector<std::string>& ids) { return Eval(rules, With(ids)); };
  v1::AuthorizeResponse r = eval({"p1", "pe", "d1", "de", "p2", "d2"});
  EXPECT_EQ(r.decision(), P);
  EXPECT_THAT(r.determining_rules(), ElementsAre("p1", "p2"));
  r = eval({"d1", "de", "pe", "d2"});
  EXPECT_EQ(r.decision(), IND);
  EXPECT_THAT(r.determining_rules(), ElementsAre("de", "pe"));
  r = eval({"d1", "de", "d2"});
  EXPECT_EQ(r.decision(), v1::DENY);
  EXPECT_THAT(r.determining_rules(), ElementsAre("d1", "d2"));
  r = eval({"de"});
  EXPECT_EQ(r.decision(), IND);
  EXPECT_THAT(r.determining_rules(), ElementsAre("de"));
  EXPECT_EQ(eval({}).decision(), NA);
}

TEST(ReferenceCombiningTest, FirstApplicableByPriorityThenFileOrder) {
  const std::string rules = RuleSetJson(
      "FIRST_APPLICABLE",
      {Applies("low", "permit", R"(, "priority": -1)"),
       Applies("a", "deny"), Applies("b", "permit"),
       Errs("err", "deny", R"(, "priority": 5)"),
       Applies("high", "permit", R"(, "priority": 5)")});
  auto eval = [&](const std::vector<std::string>& ids) { return Eval(rules, With(ids)); };
  v1::AuthorizeResponse r = eval({"low", "a", "b", "err", "high"});
  EXPECT_EQ(r.decision(), IND);
  EXPECT_THAT(r.determining_rules(), ElementsAre("err"));
  r = eval({"low", "a", "b", "high"});
  EXPECT_EQ(r.decision(), P);
  EXPECT_THAT(r.determining_rules(), ElementsAre("high"));
  r = eval({"low", "a", "b"});
  EXPECT_EQ(r.decision(), v1::DENY);
  EXPECT_THAT(r.determining_rules(), ElementsAre("a"));
  r = eval({"low", "b"});
  EXPECT_EQ(r.decision(), P);
  EXPECT_THAT(r.determining_rules(), ElementsAre("b"));
  r = eval({"low"});
  EXPECT_THAT(r.determining_rules(), ElementsAre("low"));
  EXPECT_EQ(eval({}).decision(), NA);
}

TEST(ReferenceCombiningTest, FalseBeatsErrorWithinARule) {
  // The rule needs the (malformed) client IP and a missing attribute.
  const std::string rules = RuleSetJson("", {Errs("e", "deny")});
  EXPECT_EQ(Eval(rules, With({})).decision(), NA);
  EXPECT_EQ(Eval(rules, With({"e"})).decision(), IND);
  // A non-matching target also wins.
  const std::string targeted = RuleSetJson("", {R"({"id": "t", "effect": "deny",
      "target": {"resource_types": ["other"], "actions": ["*"]},
      "conditions": {"client_ip": {"in": ["10.0.0.0/8"]}}})"});
  EXPECT_EQ(Eval(targeted, With({})).decision(), NA);
}

TEST(ReferenceCombiningTest, InvalidRequestIsIndeterminateAsAWhole) {
  const std::string rules = RuleSetJson("", {Rule("r", "permit")});
  EXPECT_EQ(Eval(rules, Request()).decision(), P);
  for (const char* bad : {
           R"({"resource": {"type": "doc"}})",
           R"({"action": "read", "resource": {"id": "x"}})",
           R"({"action": "read"})",
           R"({"action": "read", "resource": {"type": "doc"},
               "subject": {"attributes": {"x": null}}})",
           R"({"action": "read", "resource": {"type": "doc", "attributes": {"x": {"a": 1}}}})",
           R"({"action": "read", "resource": {"type": "doc"},
               "environment": {"attributes": {"x": [1, [2]]}}})",
           R"({"action": "read", "resource": {"type": "doc"},
               "environment": {"attributes": {"x": [1, {}]}}})",
       }) {
    v1::AuthorizeResponse r = Eval(rules, bad);
    EXPECT_EQ(r.decision(), IND) << bad;
    EXPECT_THAT(r.determining_rules(), IsEmpty()) << bad;
    EXPECT_THAT(r.obligations(), IsEmpty()) << bad;
  }
  // Flat lists, empty lists and empty strings are fine.
  EXPECT_EQ(Eval(rules, R"({"action": "read", "resource": {"type": "doc"},
               "subject": {"attributes": {"a": [], "b": "", "c": [1, "x", true]}}})")
                .decision(),
            P);
}

// ------------------------------------------------------------ Obligations

TEST(ReferenceObligationTest, RuleByRuleInDeclaredOrder) {
  const std::string rules = RuleSetJson(
      "", {Applies("p1", "permit", R"(, "obligations": [
               {"type": "filter_fields", "params": {"fields": ["a.b", "c"]}},
               {"type": "require_mfa", "on": "permit"}])"),
           Applies("d1", "deny", R"(, "obligations": [
               {"type": "add_header", "params": {"name": "X-Why", "value": "d1"}}])"),
           Applies("p2", "permit", R"(, "obligations": [
               {"type": "custom", "params": {"k": [1, "two"]}}])"),
           Errs("de", "deny", R"(, "obligations": [{"type": "never"}])")});
  // INDETERMINATE carries no obligations.
  v1::AuthorizeResponse r = Eval(rules, With({"p1", "p2", "de"}));
  ASSERT_EQ(r.decision(), IND);
  EXPECT_THAT(r.obligations(), IsEmpty());

  r = Eval(rules, With({"p1", "p2"}));
  ASSERT_EQ(r.decision(), P);
  ASSERT_EQ(r.obligations_size(), 3);
  EXPECT_EQ(r.obligations(0).type(), "filter_fields");
  EXPECT_EQ(r.obligations(0).rule_id(), "p1");
  EXPECT_EQ(r.obligations(0).params().fields().at("fields").list_value().values(1).string_value(), "c");
  EXPECT_EQ(r.obligations(1).type(), "require_mfa");
  EXPECT_EQ(r.obligations(1).rule_id(), "p1");
  EXPECT_EQ(r.obligations(2).type(), "custom");
  EXPECT_EQ(r.obligations(2).rule_id(), "p2");

  r = Eval(rules, With({"p1", "d1"}));
  ASSERT_EQ(r.decision(), v1::DENY);
  ASSERT_EQ(r.obligations_size(), 1);
  EXPECT_EQ(r.obligations(0).type(), "add_header");
  EXPECT_EQ(r.obligations(0).rule_id(), "d1");
  EXPECT_EQ(r.obligations(0).params().fields().at("value").string_value(), "d1");

  EXPECT_THAT(Eval(rules, With({})).obligations(), IsEmpty());
}

}  // namespace
}  // namespace pdp::testing
