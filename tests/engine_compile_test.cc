// engine::Compile validation: every kind of rule-set error is reported with
// the rule id and the exact field path, all errors of a push are reported at
// once and in rule (file) order, set-level errors carry no rule id, no
// Policy is produced when anything is wrong, and ToStatus() lists every
// error. Valid sets (the README's example included) compile.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/compiler.h"
#include "engine/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/engine_test_util.h"

namespace pdp {
namespace {

using ::pdp::engine_testing::CompileJson;
using ::pdp::engine_testing::ErrorKeys;
using ::pdp::engine_testing::RuleJson;
using ::pdp::engine_testing::RuleSetFromJson;
using ::pdp::engine_testing::RuleSetJson;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;

// The example from the README's "Rule model" section.
constexpr char kReadmeExample[] = R"json({
  "name": "shop",
  "combining_algorithm": "deny-overrides",
  "sensitive_attributes": ["subject.ssn"],
  "rules": [{
    "id": "support-reads-orders",
    "effect": "permit",
    "target": {"resource_types": ["order"], "actions": ["read", "orders:*"], "roles": ["support"]},
    "conditions": {
      "time_windows": [{"days": ["mon","tue","wed","thu","fri"], "start": "08:00", "end": "18:00",
                        "time_zone": "Europe/Berlin"}],
      "location": {"in": ["DE", "AT", "US-CA"]},
      "client_ip": {"in": ["10.0.0.0/8", "2001:db8::/32"], "not_in": ["10.66.0.0/16"]},
      "attributes": [{"attribute": "resource.region", "op": "eq", "other": "subject.region"},
                     {"attribute": "subject.clearance", "op": "ge", "value": 2}]
    },
    "obligations": [{"type": "filter_fields", "params": {"fields": ["customer.card_number"]}}]
  }]
})json";

// A rule set with one rule "r" whose conditions are `conditions`.
std::string OneRule(const std::string& conditions, const std::string& extra = "") {
  return RuleSetJson("deny-overrides", {RuleJson("r", "permit", conditions, extra)});
}

// Compiles `json` and expects exactly one error, at (rule_id, field).
void ExpectSingleError(const std::string& json, const std::string& rule_id,
                       const std::string& field,
                       const engine::CompileOptions& options = {}) {
  engine::CompileResult result = CompileJson(json, options);
  EXPECT_THAT(ErrorKeys(result), ElementsAre(Pair(rule_id, field)))
      << result.ToStatus() << "\n" << json;
  EXPECT_EQ(result.policy, nullptr);
  EXPECT_FALSE(result.ok());
  ASSERT_THAT(result.errors, SizeIs(1));
  EXPECT_FALSE(result.errors[0].message.empty());
}

TEST(CompileTest, ReadmeExampleCompiles) {
  engine::CompileResult result = CompileJson(kReadmeExample, {.version = 7});
  ASSERT_TRUE(result.ok()) << result.ToStatus();
  EXPECT_THAT(result.errors, IsEmpty());
  ASSERT_NE(result.policy, nullptr);
  EXPECT_TRUE(result.ToStatus().ok());
  EXPECT_EQ(result.policy->name(), "shop");
  EXPECT_EQ(result.policy->version(), 7);
  EXPECT_EQ(result.policy->rule_count(), 1u);
  EXPECT_GT(result.policy->memory_bytes(), 0u);
}

TEST(CompileTest, ValidSetWithEveryFeatureCompiles) {
  const std::string json = R"json({
    "name": "all.features_1",
    "combining_algorithm": "First_Applicable",
    "rules": [
      {"id": "a:b/c.d_e-f", "effect": "PERMIT", "priority": -3,
       "target": {"resource_types": ["*", "doc", "reports:*"],
                  "actions": ["read", "*", "orders:*"], "roles": ["x", "y"]},
       "conditions": {
         "time_windows": [{"days": ["Monday", "sun"], "start": "22:00", "end": "06:00",
                           "time_zone": "America/New_York"},
                          {"start": "00:00", "end": "24:00", "time_zone": "UTC"}],
         "location": {"not_in": ["us-tx", "FR"]},
         "client_ip": {"not_in": ["::/0", "0.0.0.0/0", "192.0.2.7", "::ffff:10.0.0.0/104"]},
         "attributes": [
           {"attribute": "subject.a", "op": "EQ", "value": [1, "x", true]},
           {"attribute": "subject.b", "op": "ne", "value": false},
           {"attribute": "subject.c", "op": "in", "value": []},
           {"attribute": "subject.d", "op": "not_in", "other": "resource.list"},
           {"attribute": "subject.e", "op": "contains", "value": "v"},
           {"attribute": "subject.f", "op": "lt", "value": "m"},
           {"attribute": "subject.g", "op": "ge", "other": "environment.h"},
           {"attribute": "action", "op": "regex", "value": "re(ad|view)"},
           {"attribute": "resource.type", "op": "exists", "value": false},
           {"attribute": "subject.roles", "op": "exists"}
         ]},
       "obligations": [
         {"type": "filter_fields", "params": {"fields": ["a.b", "c"]}},
         {"on": "Permit", "type": "mask_fields", "params": {"fields": ["x"], "mask": "#"}},
         {"type": "require_mfa", "params": {"level": "aal2"}},
         {"type": "require_mfa"},
         {"type": "add_header", "params": {"name": "X-Pdp-Reason", "value": ""}},
         {"type": "custom.thing", "params": {"anything": {"goes": [1, 2]}}}
       ]},
      {"id": "second", "effect": "deny",
       "target": {"resource_types": ["doc"], "actions": ["write"]},
       "obligations": [{"on": "deny", "type": "add_header",
                        "params": {"name": "X-Denied", "value": "yes"}}]}
    ]})json";
  engine::CompileResult result = CompileJson(json, {.version = 3});
  ASSERT_TRUE(result.ok()) << result.ToStatus();
  EXPECT_EQ(result.policy->name(), "all.features_1");
  EXPECT_EQ(result.policy->rule_count(), 2u);
}

TEST(CompileTest, EmptyRuleListIsValid) {
  engine::CompileResult result = CompileJson(R"({"name": "empty"})");
  ASSERT_TRUE(result.ok()) << result.ToStatus();
  EXPECT_EQ(result.policy->rule_count(), 0u);
}

TEST(CompileTest, AlgorithmSpellingsAccepted) {
  for (const char* algorithm :
       {"", "deny-overrides", "DENY_OVERRIDES", "permit-overrides",
        "Permit_Overrides", "first-applicable", "FIRST-APPLICABLE"}) {
    engine::CompileResult result =
        CompileJson(RuleSetJson(algorithm, {RuleJson("r", "permit")}));
    EXPECT_TRUE(result.ok()) << algorithm << ": " << result.ToStatus();
  }
}

// ---- Set-level errors: empty rule_id ----------------------------------

TEST(CompileTest, UnknownCombiningAlgorithm) {
  ExpectSingleError(RuleSetJson("deny-unless-permit", {RuleJson("r", "permit")}),
                    "", "combining_algorithm");
}

TEST(CompileTest, BadRuleSetName) {
  for (const char* name : {"", "has space", "slash/name", "colon:name",
                           "ümlaut"}) {
    ExpectSingleError(RuleSetJson("", {RuleJson("r", "permit")}, name), "",
                      "name");
  }
  const std::string long_name(129, 'n');
  ExpectSingleError(RuleSetJson("", {RuleJson("r", "permit")}, long_name), "",
                    "name");
  EXPECT_TRUE(CompileJson(RuleSetJson("", {RuleJson("r", "permit")},
                                      std::string(128, 'n')))
                  .ok());
}

TEST(CompileTest, TooManyRules) {
  const std::string json =
      RuleSetJson("", {RuleJson("a", "permit"), RuleJson("b", "permit"),
                       RuleJson("c", "permit")});
  ExpectSingleError(json, "", "rules", {.max_rules = 2});
  EXPECT_TRUE(CompileJson(json, {.max_rules = 3}).ok());
}

TEST(CompileTest, TooManyPatternsInOneList) {
  const std::string json = R"({"name": "n", "rules": [{"id": "r", "effect": "permit",
      "target": {"resource_types": ["doc"], "actions": ["a", "b", "c"]}}]})";
  ExpectSingleError(json, "r", "rules[0].target.actions",
                    {.max_patterns_per_rule = 2});
  EXPECT_TRUE(CompileJson(json, {.max_patterns_per_rule = 3}).ok());
}

TEST(CompileTest, BadSensitiveAttribute) {
  ExpectSingleError(R"({"name": "n", "sensitive_attributes": ["subject.ok", "ssn"]})",
                    "", "sensitive_attributes[1]");
}

// ---- Rule identity, effect, target -----------------------------------

TEST(CompileTest, DuplicateRuleId) {
  ExpectSingleError(RuleSetJson("", {RuleJson("a", "permit"), RuleJson("b", "deny"),
                                     RuleJson("a", "deny")}),
                    "a", "rules[2].id");
}

TEST(CompileTest, DuplicateIdErrorComesInFileOrder) {
  // The duplicate is rules[2]; the error of rules[1] must come before it.
  engine::CompileResult result = CompileJson(RuleSetJson(
      "", {RuleJson("a", "permit"), RuleJson("b", "allow"), RuleJson("a", "deny"),
           RuleJson("c", "")}));
  EXPECT_THAT(ErrorKeys(result), ElementsAre(Pair("b", "rules[1].effect"),
                                             Pair("a", "rules[2].id"),
                                             Pair("c", "rules[3].effect")))
      << result.ToStatus();
}

TEST(CompileTest, BadRuleId) {
  ExpectSingleError(RuleSetJson("", {RuleJson("ok", "permit"),
                                     RuleJson("bad id", "permit")}),
                    "bad id", "rules[1].id");
  ExpectSingleError(RuleSetJson("", {RuleJson(std::string(129, 'r'), "permit")}),
                    std::string(129, 'r'), "rules[0].id");
}

TEST(CompileTest, BadEffect) {
  ExpectSingleError(RuleSetJson("", {RuleJson("r", "allow")}), "r",
                    "rules[0].effect");
  ExpectSingleError(RuleSetJson("", {RuleJson("r", "")}), "r", "rules[0].effect");
}

TEST(CompileTest, EmptyResourceTypesAndActions) {
  engine::CompileResult result = CompileJson(R"({"name": "n", "rules": [
      {"id": "r", "effect": "permit", "target": {}}]})");
  EXPECT_THAT(ErrorKeys(result),
              ElementsAre(Pair("r", "rules[0].target.resource_types"),
                          Pair("r", "rules[0].target.actions")));
  EXPECT_EQ(result.policy, nullptr);
}

TEST(CompileTest, StarOnlyAloneOrAtTheEnd) {
  engine::CompileResult result = CompileJson(R"({"name": "n", "rules": [
      {"id": "r", "effect": "permit",
       "target": {"resource_types": ["ok*", "rep*orts", "*doc"],
                  "actions": ["*", "**", "", "read"]}}]})");
  EXPECT_THAT(ErrorKeys(result),
              ElementsAre(Pair("r", "rules[0].target.resource_types[1]"),
                          Pair("r", "rules[0].target.resource_types[2]"),
                          Pair("r", "rules[0].target.actions[1]"),
                          Pair("r", "rules[0].target.actions[2]")))
      << result.ToStatus();
  EXPECT_EQ(result.policy, nullptr);
}

TEST(CompileTest, EmptyRole) {
  ExpectSingleError(R"({"name": "n", "rules": [{"id": "r", "effect": "permit",
      "target": {"resource_types": ["*"], "actions": ["*"], "roles": ["a", ""]}}]})",
                    "r", "rules[0].target.roles[1]");
}

// ---- Client IP ---------------------------------------------------------

TEST(CompileTest, BadCidrText) {
  ExpectSingleError(OneRule(R"({"client_ip": {"in": ["10.0.0.0/8", "ten.0.0.0/8"]}})"),
                    "r", "rules[0].conditions.client_ip.in[1]");
  ExpectSingleError(OneRule(R"({"client_ip": {"in": ["10.0.0.256"]}})"), "r",
                    "rules[0].conditions.client_ip.in[0]");
  ExpectSingleError(OneRule(R"({"client_ip": {"in": ["10.0.0.0/"]}})"), "r",
                    "rules[0].conditions.client_ip.in[0]");
  ExpectSingleError(OneRule(R"({"client_ip": {"in": ["10.0.0.0/8x"]}})"), "r",
                    "rules[0].conditions.client_ip.in[0]");
}

TEST(CompileTest, PrefixLengthOutOfRange) {
  ExpectSingleError(OneRule(R"({"client_ip": {"in": ["10.0.0.0/33"]}})"), "r",
                    "rules[0].conditions.client_ip.in[0]");
  ExpectSingleError(OneRule(R"({"client_ip": {"not_in": ["2001:db8::/129"]}})"),
                    "r", "rules[0].conditions.client_ip.not_in[0]");
  ExpectSingleError(OneRule(R"({"client_ip": {"in": ["10.0.0.0/-1"]}})"), "r",
                    "rules[0].conditions.client_ip.in[0]");
  // The edges of the range are fine.
  EXPECT_TRUE(CompileJson(OneRule(
      R"({"client_ip": {"in": ["10.1.2.3/32", "0.0.0.0/0", "2001:db8::1/128", "::/0"]}})"))
                  .ok());
}

TEST(CompileTest, HostBitsSet) {
  ExpectSingleError(OneRule(R"({"client_ip": {"not_in": ["10.0.0.1/8"]}})"), "r",
                    "rules[0].conditions.client_ip.not_in[0]");
  ExpectSingleError(OneRule(R"({"client_ip": {"in": ["2001:db8::1/32"]}})"), "r",
                    "rules[0].conditions.client_ip.in[0]");
}

TEST(CompileTest, EmptyIpCondition) {
  ExpectSingleError(OneRule(R"({"client_ip": {}})"), "r",
                    "rules[0].conditions.client_ip");
}

// ---- Time windows ------------------------------------------------------

TEST(CompileTest, UnknownTimeZone) {
  ExpectSingleError(OneRule(R"({"time_windows": [
      {"start": "09:00", "end": "17:00", "time_zone": "Europe/Berlin"},
      {"start": "09:00", "end": "17:00", "time_zone": "Mars/Olympus_Mons"}]})"),
                    "r", "rules[0].conditions.time_windows[1].time_zone");
}

// absl::LoadTimeZone also opens file paths and knows "localtime" and
// fixed offsets; only IANA names are time zones in a rule set.
TEST(CompileTest, TimeZoneMustBeAnIanaName) {
  for (const char* zone :
       {"/usr/share/zoneinfo/UTC", "../../../usr/share/zoneinfo/UTC",
        "file:/usr/share/zoneinfo/UTC", "Europe/../Europe/Berlin", "localtime",
        "Fixed/UTC+01:00:00", "Europe//Berlin", "Europe/Berlin/"}) {
    SCOPED_TRACE(zone);
    ExpectSingleError(OneRule(absl::StrCat(R"({"time_windows": [{"start": "09:00", )"
                                           R"("end": "17:00", "time_zone": ")",
                                           zone, R"("}]})")),
                      "r", "rules[0].conditions.time_windows[0].time_zone");
  }
  for (const char* zone : {"Etc/GMT+5", "America/Argentina/Buenos_Aires",
                           "America/Port-au-Prince", "EST5EDT", "UTC"}) {
    SCOPED_TRACE(zone);
    engine::CompileResult result = CompileJson(OneRule(absl::StrCat(
        R"({"time_windows": [{"start": "09:00", "end": "17:00", "time_zone": ")", zone,
        R"("}]})")));
    EXPECT_TRUE(result.ok()) << result.ToStatus();
  }
}

TEST(CompileTest, MissingTimeZone) {
  ExpectSingleError(OneRule(R"({"time_windows": [{"start": "09:00", "end": "17:00"}]})"),
                    "r", "rules[0].conditions.time_windows[0].time_zone");
}

TEST(CompileTest, BadClockTimes) {
  for (const char* start : {"25:00", "24:00", "9:00", "09:60", "0900", "", "ab:cd"}) {
    ExpectSingleError(
        OneRule(absl::StrCat(R"({"time_windows": [{"start": ")", start,
                             R"(", "end": "17:00", "time_zone": "UTC"}]})")),
        "r", "rules[0].conditions.time_windows[0].start");
  }
  for (const char* end : {"24:01", "25:00", "7:00", ""}) {
    ExpectSingleError(
        OneRule(absl::StrCat(R"({"time_windows": [{"start": "09:00", "end": ")", end,
                             R"(", "time_zone": "UTC"}]})")),
        "r", "rules[0].conditions.time_windows[0].end");
  }
}

TEST(CompileTest, StartEqualsEnd) {
  ExpectSingleError(OneRule(R"({"time_windows": [
      {"start": "09:00", "end": "09:00", "time_zone": "UTC"}]})"),
                    "r", "rules[0].conditions.time_windows[0].end");
}

TEST(CompileTest, BadWeekday) {
  ExpectSingleError(OneRule(R"({"time_windows": [{"days": ["mon", "funday"],
      "start": "09:00", "end": "17:00", "time_zone": "UTC"}]})"),
                    "r", "rules[0].conditions.time_windows[0].days[1]");
}

// ---- Location ----------------------------------------------------------

TEST(CompileTest, BadLocationEntry) {
  engine::CompileResult result = CompileJson(OneRule(R"({"location": {
      "in": ["DE", "Germany", "D1", "US-CA"], "not_in": ["US_TX", "us-tx", "U"]}})"));
  EXPECT_THAT(ErrorKeys(result),
              ElementsAre(Pair("r", "rules[0].conditions.location.in[1]"),
                          Pair("r", "rules[0].conditions.location.in[2]"),
                          Pair("r", "rules[0].conditions.location.not_in[0]"),
                          Pair("r", "rules[0].conditions.location.not_in[2]")))
      << result.ToStatus();
  EXPECT_EQ(result.policy, nullptr);
}

TEST(CompileTest, EmptyLocationCondition) {
  ExpectSingleError(OneRule(R"({"location": {}})"), "r",
                    "rules[0].conditions.location");
}

// ---- Attribute conditions ----------------------------------------------

TEST(CompileTest, BadAttributeName) {
  for (const char* name : {"user.name", "subject.", "subject", "", "actions"}) {
    ExpectSingleError(
        OneRule(absl::StrCat(R"({"attributes": [{"attribute": ")", name,
                             R"(", "op": "eq", "value": 1}]})")),
        "r", "rules[0].conditions.attributes[0].attribute");
  }
}

TEST(CompileTest, BadOperator) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "equals", "value": 1}]})"),
                    "r", "rules[0].conditions.attributes[0].op");
}

TEST(CompileTest, ValueAndOtherBothSet) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "eq", "value": 1},
      {"attribute": "subject.a", "op": "eq", "value": 1, "other": "subject.b"}]})"),
                    "r", "rules[0].conditions.attributes[1]");
}

TEST(CompileTest, NeitherValueNorOther) {
  ExpectSingleError(OneRule(R"({"attributes": [{"attribute": "subject.a", "op": "eq"}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
}

TEST(CompileTest, InWithoutList) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "in", "value": "x"}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "not_in", "value": 3}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
}

TEST(CompileTest, ScalarOperatorsRejectLists) {
  for (const char* op : {"contains", "lt", "le", "gt", "ge", "regex"}) {
    ExpectSingleError(
        OneRule(absl::StrCat(R"({"attributes": [{"attribute": "subject.a", "op": ")",
                             op, R"(", "value": ["x"]}]})")),
        "r", "rules[0].conditions.attributes[0].value");
  }
}

TEST(CompileTest, OrderingRejectsBool) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "lt", "value": true}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
}

TEST(CompileTest, BadLiterals) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "eq", "value": null}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "eq", "value": {"k": 1}}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "in", "value": [1, [2]]}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
}

TEST(CompileTest, RegexAndExistsTakeLiteralsOnly) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "regex", "other": "subject.b"}]})"),
                    "r", "rules[0].conditions.attributes[0].other");
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "exists", "other": "subject.b"}]})"),
                    "r", "rules[0].conditions.attributes[0].other");
}

TEST(CompileTest, RegexNeedsStringPattern) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "regex", "value": 5}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
}

TEST(CompileTest, ExistsNeedsBool) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "exists", "value": "yes"}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
}

TEST(CompileTest, BadOtherAttribute) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "resource.owner", "op": "eq", "other": "owner"}]})"),
                    "r", "rules[0].conditions.attributes[0].other");
}

TEST(CompileTest, BadRegex) {
  ExpectSingleError(OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "regex", "value": "([a-z]"}]})"),
                    "r", "rules[0].conditions.attributes[0].value");
}

TEST(CompileTest, SameBadRegexInTwoRulesReportedForBoth) {
  const std::string condition =
      R"({"attributes": [{"attribute": "subject.a", "op": "regex", "value": "a**+"}]})";
  engine::CompileResult result = CompileJson(
      RuleSetJson("", {RuleJson("r1", "permit", condition),
                       RuleJson("r2", "permit", condition)}));
  EXPECT_THAT(ErrorKeys(result),
              ElementsAre(Pair("r1", "rules[0].conditions.attributes[0].value"),
                          Pair("r2", "rules[1].conditions.attributes[0].value")))
      << result.ToStatus();
}

TEST(CompileTest, RegexOverMemoryBudget) {
  const std::string json = OneRule(R"({"attributes": [
      {"attribute": "subject.a", "op": "regex", "value": "(a|b|c|d){1,200}x{1,200}"}]})");
  ExpectSingleError(json, "r", "rules[0].conditions.attributes[0].value",
                    {.regex_max_mem = 1024});
  // The same pattern within the default budget is fine: the budget is what
  // rejected it.
  engine::CompileResult result = CompileJson(json);
  EXPECT_TRUE(result.ok()) << result.ToStatus();
}

// ---- Obligations -------------------------------------------------------

TEST(CompileTest, ObligationWithoutType) {
  ExpectSingleError(OneRule("{}", R"(, "obligations": [{"params": {"a": 1}}])"), "r",
                    "rules[0].obligations[0].type");
}

TEST(CompileTest, ObligationOnMustEqualEffect) {
  ExpectSingleError(
      OneRule("{}", R"(, "obligations": [{"type": "require_mfa"},
                                         {"on": "deny", "type": "require_mfa"}])"),
      "r", "rules[0].obligations[1].on");
  ExpectSingleError(OneRule("{}", R"(, "obligations": [{"on": "always", "type": "x"}])"),
                    "r", "rules[0].obligations[0].on");
}

TEST(CompileTest, FilterFieldsNeedsFields) {
  ExpectSingleError(OneRule("{}", R"(, "obligations": [{"type": "filter_fields"}])"),
                    "r", "rules[0].obligations[0].params.fields");
  ExpectSingleError(
      OneRule("{}", R"(, "obligations": [{"type": "filter_fields", "params": {"fields": []}}])"),
      "r", "rules[0].obligations[0].params.fields");
  ExpectSingleError(
      OneRule("{}", R"(, "obligations": [{"type": "mask_fields", "params": {"fields": "a"}}])"),
      "r", "rules[0].obligations[0].params.fields");
}

TEST(CompileTest, FilterFieldsBadPath) {
  ExpectSingleError(
      OneRule("{}", R"(, "obligations": [{"type": "filter_fields",
                                         "params": {"fields": ["a.b", "a..b"]}}])"),
      "r", "rules[0].obligations[0].params.fields[1]");
}

TEST(CompileTest, MaskFieldsMaskMustBeString) {
  ExpectSingleError(
      OneRule("{}", R"(, "obligations": [{"type": "mask_fields",
                                         "params": {"fields": ["a"], "mask": 0}}])"),
      "r", "rules[0].obligations[0].params.mask");
}

TEST(CompileTest, AddHeaderBadName) {
  for (const char* name : {"X Bad", "X:Bad", "X\\u00e9", ""}) {
    ExpectSingleError(
        OneRule("{}", absl::StrCat(R"(, "obligations": [{"type": "add_header",
            "params": {"name": ")", name, R"(", "value": "v"}}])")),
        "r", "rules[0].obligations[0].params.name");
  }
}

TEST(CompileTest, AddHeaderValueWithCrLf) {
  for (const char* value : {"a\\r\\nX-Injected: 1", "a\\nb", "a\\rb", "a\\u0000b"}) {
    ExpectSingleError(
        OneRule("{}", absl::StrCat(R"(, "obligations": [{"type": "add_header",
            "params": {"name": "X-Ok", "value": ")", value, R"("}}])")),
        "r", "rules[0].obligations[0].params.value");
  }
}

TEST(CompileTest, AddHeaderNeedsValue) {
  ExpectSingleError(OneRule("{}", R"(, "obligations": [{"type": "add_header",
      "params": {"name": "X-Ok"}}])"),
                    "r", "rules[0].obligations[0].params.value");
}

// Decisions add obligations by parsing them from bytes serialized at
// compile time, and proto3 strings must be UTF-8 to parse: such a rule set
// (built in memory: gRPC and JSON never deliver one) is refused when
// compiled, not failed at decision time.
TEST(CompileTest, ObligationWithAStringThatIsNotUtf8) {
  for (const bool in_key : {false, true}) {
    v1::RuleSet rules = RuleSetFromJson(OneRule(
        "{}", R"(, "obligations": [{"type": "audit", "params": {"note": "ok"}},
                                   {"type": "audit", "params": {"note": "ok"}}])"));
    auto* fields =
        rules.mutable_rules(0)->mutable_obligations(1)->mutable_params()->mutable_fields();
    if (in_key) {
      (*fields)["bad\xff"].set_string_value("ok");
    } else {
      (*fields)["note"].set_string_value("bad\xc3");
    }
    engine::CompileResult result = engine::Compile(rules);
    EXPECT_THAT(ErrorKeys(result), ElementsAre(Pair("r", "rules[0].obligations[1]")))
        << result.ToStatus();
    EXPECT_EQ(result.policy, nullptr);
  }
}

TEST(CompileTest, UnknownObligationTypesPassThrough) {
  EXPECT_TRUE(CompileJson(OneRule("{}", R"(, "obligations": [
      {"type": "log_access", "params": {"fields": 3, "name": "X Bad"}}])"))
                  .ok());
}

// ---- All at once -------------------------------------------------------

// One rule set with many independent mistakes: each is reported, with its
// rule id and path, in rule (file) order; nothing compiles.
TEST(CompileTest, EveryErrorReportedAtOnceInRuleOrder) {
  const std::string json = R"json({
    "name": "bad name",
    "combining_algorithm": "most-specific",
    "rules": [
      {"id": "r0", "effect": "allow",
       "target": {"resource_types": [], "actions": ["re*ad"]}},
      {"id": "r1", "effect": "permit",
       "target": {"resource_types": ["doc"], "actions": ["read"]},
       "conditions": {"client_ip": {"in": ["10.0.0.0/8", "10.0.0.1/8", "10.0.0.0/33"],
                                    "not_in": ["2001:db8::/129", "nope"]}}},
      {"id": "r2", "effect": "permit",
       "target": {"resource_types": ["doc"], "actions": ["read"]},
       "conditions": {"time_windows": [{"days": ["mon", "caturday"], "start": "25:00",
                                        "end": "17:00", "time_zone": "Nowhere/City"},
                                       {"start": "10:00", "end": "10:00",
                                        "time_zone": "UTC"}],
                      "location": {"in": ["Deutschland"]},
                      "attributes": [{"attribute": "subject.a", "op": "like", "value": 1},
                                     {"attribute": "subject.a", "op": "eq", "value": 1,
                                      "other": "subject.b"},
                                     {"attribute": "subject.a", "op": "in", "value": "x"},
                                     {"attribute": "subject.a", "op": "regex", "other": "subject.b"},
                                     {"attribute": "subject.a", "op": "regex", "value": "(("}]}},
      {"id": "r1", "effect": "deny",
       "target": {"resource_types": ["doc"], "actions": ["read"]},
       "obligations": [{"params": {}},
                       {"on": "permit", "type": "require_mfa"},
                       {"type": "filter_fields"},
                       {"type": "add_header", "params": {"name": "Bad Header", "value": "v"}},
                       {"type": "add_header", "params": {"name": "X-Ok", "value": "a\r\nb"}}]},
      {"id": "r4", "effect": "permit",
       "target": {"resource_types": ["*"], "actions": ["*"]},
       "conditions": {"location": {}, "client_ip": {}}}
    ]})json";
  engine::CompileResult result = CompileJson(json);
  EXPECT_EQ(result.policy, nullptr);
  EXPECT_FALSE(result.ok());
  const std::string t = "rules[2].conditions.time_windows";
  const std::string a = "rules[2].conditions.attributes";
  EXPECT_THAT(
      ErrorKeys(result),
      ElementsAre(
          Pair("", "name"), Pair("", "combining_algorithm"),
          Pair("r0", "rules[0].effect"), Pair("r0", "rules[0].target.resource_types"),
          Pair("r0", "rules[0].target.actions[0]"),
          Pair("r1", "rules[1].conditions.client_ip.in[1]"),
          Pair("r1", "rules[1].conditions.client_ip.in[2]"),
          Pair("r1", "rules[1].conditions.client_ip.not_in[0]"),
          Pair("r1", "rules[1].conditions.client_ip.not_in[1]"),
          Pair("r2", t + "[0].days[1]"), Pair("r2", t + "[0].start"),
          Pair("r2", t + "[0].time_zone"), Pair("r2", t + "[1].end"),
          Pair("r2", "rules[2].conditions.location.in[0]"),
          Pair("r2", a + "[0].op"), Pair("r2", a + "[1]"), Pair("r2", a + "[2].value"),
          Pair("r2", a + "[3].other"), Pair("r2", a + "[4].value"),
          Pair("r1", "rules[3].id"),
          Pair("r1", "rules[3].obligations[0].type"),
          Pair("r1", "rules[3].obligations[1].on"),
          Pair("r1", "rules[3].obligations[2].params.fields"),
          Pair("r1", "rules[3].obligations[3].params.name"),
          Pair("r1", "rules[3].obligations[4].params.value"),
          Pair("r4", "rules[4].conditions.location"),
          Pair("r4", "rules[4].conditions.client_ip")))
      << result.ToStatus();

  // ToStatus: INVALID_ARGUMENT, the count, and every error's line.
  const absl::Status status = result.ToStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat(result.errors.size(), " errors")));
  for (const engine::CompileError& e : result.errors) {
    EXPECT_FALSE(e.message.empty()) << e.field;
    EXPECT_THAT(std::string(status.message()), HasSubstr(e.ToString()));
  }
}

TEST(CompileTest, ErrorToStringNamesRuleAndField) {
  engine::CompileResult result = CompileJson(RuleSetJson("", {RuleJson("r9", "maybe")}));
  ASSERT_THAT(result.errors, SizeIs(1));
  const std::string text = result.errors[0].ToString();
  EXPECT_THAT(text, HasSubstr("r9"));
  EXPECT_THAT(text, HasSubstr("rules[0].effect"));
  EXPECT_THAT(text, HasSubstr(result.errors[0].message));

  engine::CompileResult set_level = CompileJson(RuleSetJson("nope", {}));
  ASSERT_THAT(set_level.errors, SizeIs(1));
  EXPECT_THAT(set_level.errors[0].ToString(), HasSubstr("combining_algorithm"));
  const absl::Status status = set_level.ToStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("1 error"));
}

TEST(CompileTest, OkResultStatusIsOk) {
  engine::CompileResult result = CompileJson(RuleSetJson("", {RuleJson("r", "deny")}));
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result.ToStatus().ok());
}

}  // namespace
}  // namespace pdp
