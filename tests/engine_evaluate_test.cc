// Policy::Evaluate end to end: target indexing (exact, "*" and prefix
// patterns on resource types and actions, a rule reached through several
// patterns counted once), the three combining algorithms with erring rules
// and priorities, determining_rules and their order, obligations (only from
// determining rules, in order, never on INDETERMINATE or NOT_APPLICABLE),
// whole-request INDETERMINATE for invalid input, a bad client_ip touching
// only rules with IP conditions, explain traces, the rule-set name and
// version in responses, the `now` fallback, and target roles (including
// more roles than one bitset word).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "engine/compiler.h"
#include "engine/policy.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "pdp/v1/authorization.pb.h"
#include "tests/support/engine_test_util.h"

namespace pdp {
namespace {

using ::pdp::engine_testing::CompileOrDie;
using ::pdp::engine_testing::Decide;
using ::pdp::engine_testing::DefaultNow;
using ::pdp::engine_testing::RequestFromJson;
using ::pdp::engine_testing::RequestJson;
using ::pdp::engine_testing::RuleJson;
using ::pdp::engine_testing::RuleSetJson;
using ::pdp::engine_testing::UtcTime;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// A rule with an explicit target and no conditions.
std::string TargetRule(const std::string& id, const std::string& effect,
                       const std::string& types, const std::string& actions,
                       const std::string& extra = "") {
  return absl::StrCat(R"({"id": ")", id, R"(", "effect": ")", effect,
                      R"(", "target": {"resource_types": )", types,
                      R"(, "actions": )", actions, "}", extra, "}");
}

// A request for `action` on a resource of `type`, with extra members.
v1::AuthorizeRequest Req(const std::string& type, const std::string& action,
                         const std::string& members = "") {
  return RequestFromJson(absl::StrCat(R"({"action": ")", action,
                                      R"(", "resource": {"type": ")", type, R"("})",
                                      members.empty() ? "" : ", ", members, "}"));
}

std::vector<std::string> Determining(const v1::AuthorizeResponse& response) {
  return {response.determining_rules().begin(), response.determining_rules().end()};
}

// Conditions that make a rule err: the location country is malformed in
// every request built with kBadCountry.
constexpr char kErrsOnBadCountry[] = R"({"location": {"in": ["DE"]}})";
constexpr char kBadCountry[] = R"("environment": {"location": {"country": "XYZ"}})";
// Conditions that never hold for requests without subject.flag.
constexpr char kNeverHolds[] =
    R"({"attributes": [{"attribute": "subject.flag", "op": "exists"}]})";

// A rule on everything that needs one of `roles` (a JSON array).
std::string RoleRule(const std::string& id, const std::string& effect,
                     const std::string& roles) {
  return absl::StrCat(R"({"id": ")", id, R"(", "effect": ")", effect,
                      R"(", "target": {"resource_types": ["*"], "actions": ["*"], "roles": )",
                      roles, "}}");
}

// ---- Index -------------------------------------------------------------

TEST(IndexTest, ExactTypeAndAction) {
  auto policy = CompileOrDie(RuleSetJson("", {TargetRule("r", "permit", R"(["doc"])",
                                                         R"(["read"])")}));
  EXPECT_EQ(Decide(*policy, Req("doc", "read")).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, Req("doc", "write")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("docs", "read")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("do", "read")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("Doc", "read")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("doc", "reads")).decision(), v1::NOT_APPLICABLE);
}

TEST(IndexTest, StarMatchesAnything) {
  auto policy = CompileOrDie(RuleSetJson(
      "", {TargetRule("any-type", "permit", R"(["*"])", R"(["read"])"),
           TargetRule("any-action", "permit", R"(["doc"])", R"(["*"])")}));
  EXPECT_THAT(Determining(Decide(*policy, Req("doc", "read"))),
              ElementsAre("any-type", "any-action"));
  EXPECT_THAT(Determining(Decide(*policy, Req("invoice", "read"))), ElementsAre("any-type"));
  EXPECT_THAT(Determining(Decide(*policy, Req("doc", "delete"))), ElementsAre("any-action"));
  EXPECT_EQ(Decide(*policy, Req("invoice", "delete")).decision(), v1::NOT_APPLICABLE);
}

TEST(IndexTest, PrefixPatterns) {
  auto policy = CompileOrDie(RuleSetJson(
      "", {TargetRule("reports", "permit", R"(["reports:*"])", R"(["read"])"),
           TargetRule("orders", "permit", R"(["order"])", R"(["orders:*"])")}));
  EXPECT_EQ(Decide(*policy, Req("reports:daily", "read")).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, Req("reports:", "read")).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, Req("reports:a:b", "read")).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, Req("reports", "read")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("report:daily", "read")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("xreports:daily", "read")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("reports:daily", "write")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("order", "orders:read")).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, Req("order", "orders:")).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, Req("order", "orders")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("order", "read")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("orders", "orders:read")).decision(), v1::NOT_APPLICABLE);
}

TEST(IndexTest, PrefixOnBothDimensions) {
  auto policy = CompileOrDie(RuleSetJson(
      "", {TargetRule("r", "permit", R"(["reports:*"])", R"(["export:*"])")}));
  EXPECT_EQ(Decide(*policy, Req("reports:q1", "export:csv")).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, Req("reports:q1", "import:csv")).decision(), v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, Req("invoices:q1", "export:csv")).decision(), v1::NOT_APPLICABLE);
}

TEST(IndexTest, PrefixesOfSeveralLengths) {
  auto policy = CompileOrDie(RuleSetJson(
      "", {TargetRule("abc", "permit", R"(["abc*"])", R"(["*"])"),
           TargetRule("a", "permit", R"(["a*"])", R"(["*"])"),
           TargetRule("ab", "permit", R"(["ab*"])", R"(["*"])"),
           TargetRule("b", "permit", R"(["b*"])", R"(["*"])"),
           TargetRule("abcde", "permit", R"(["abcde*"])", R"(["*"])")}));
  EXPECT_THAT(Determining(Decide(*policy, Req("abcd", "read"))),
              ElementsAre("abc", "a", "ab"));
  EXPECT_THAT(Determining(Decide(*policy, Req("ab", "read"))), ElementsAre("a", "ab"));
  EXPECT_THAT(Determining(Decide(*policy, Req("abcde", "read"))),
              ElementsAre("abc", "a", "ab", "abcde"));
  EXPECT_THAT(Determining(Decide(*policy, Req("ba", "read"))), ElementsAre("b"));
  EXPECT_EQ(Decide(*policy, Req("c", "read")).decision(), v1::NOT_APPLICABLE);
}

TEST(IndexTest, RuleReachedThroughSeveralPatternsCountsOnce) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {TargetRule("r", "permit", R"(["doc", "*", "do*", "doc"])",
                  R"(["read", "*", "re*", "read"])",
                  R"(, "obligations": [{"type": "require_mfa"}])"),
       TargetRule("s", "permit", R"(["doc"])", R"(["read"])")}));
  v1::AuthorizeRequest request = Req("doc", "read");
  request.set_explain(true);
  v1::AuthorizeResponse response = Decide(*policy, request);
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(response), ElementsAre("r", "s"));
  EXPECT_THAT(response.obligations(), SizeIs(1));
  ASSERT_THAT(response.trace(), SizeIs(2));
  EXPECT_EQ(response.trace(0).rule_id(), "r");
  EXPECT_EQ(response.trace(1).rule_id(), "s");
}

TEST(IndexTest, CandidatesKeepFileOrderAcrossPatterns) {
  // The rules sit in different index slots; their decision lists are still
  // in file order.
  auto policy = CompileOrDie(RuleSetJson(
      "", {TargetRule("prefix", "permit", R"(["do*"])", R"(["read"])"),
           TargetRule("exact", "permit", R"(["doc"])", R"(["read"])"),
           TargetRule("any", "permit", R"(["*"])", R"(["*"])"),
           TargetRule("action-prefix", "permit", R"(["doc"])", R"(["re*"])")}));
  EXPECT_THAT(Determining(Decide(*policy, Req("doc", "read"))),
              ElementsAre("prefix", "exact", "any", "action-prefix"));
}

// ---- Combining algorithms ---------------------------------------------

TEST(DenyOverridesTest, DenyBeatsPermit) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("p1", "permit"), RuleJson("d1", "deny"),
                         RuleJson("p2", "permit"), RuleJson("d2", "deny")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::DENY);
  EXPECT_THAT(Determining(response), ElementsAre("d1", "d2"));
  EXPECT_THAT(response.reason(), Not(IsEmpty()));
}

TEST(DenyOverridesTest, IsTheDefault) {
  auto policy = CompileOrDie(RuleSetJson("", {RuleJson("p", "permit"), RuleJson("d", "deny")}));
  EXPECT_EQ(Decide(*policy, RequestJson()).decision(), v1::DENY);
}

TEST(DenyOverridesTest, ErringDenyBeatsApplicablePermit) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("p", "permit"), RuleJson("d", "deny", kErrsOnBadCountry)}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(Determining(response), ElementsAre("d"));
  EXPECT_THAT(response.reason(), Not(IsEmpty()));
  // A well-formed request: the deny rule is simply not applicable.
  EXPECT_EQ(Decide(*policy, RequestJson(R"("environment": {"location": {"country": "FR"}})"))
                .decision(),
            v1::PERMIT);
}

TEST(DenyOverridesTest, ApplicableDenyBeatsErringDeny) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("d-err", "deny", kErrsOnBadCountry), RuleJson("d", "deny")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::DENY);
  EXPECT_THAT(Determining(response), ElementsAre("d"));
}

TEST(DenyOverridesTest, ErringPermitWithApplicablePermitPermits) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("p-err", "permit", kErrsOnBadCountry), RuleJson("p", "permit")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(response), ElementsAre("p"));
}

TEST(DenyOverridesTest, OnlyAnErringPermitIsIndeterminate) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("p-err", "permit", kErrsOnBadCountry),
                         RuleJson("p-no", "permit", kNeverHolds)}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(Determining(response), ElementsAre("p-err"));
}

TEST(DenyOverridesTest, IndeterminateListsEveryErringRule) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("p-err", "permit", kErrsOnBadCountry),
                         RuleJson("p", "permit"),
                         RuleJson("d-err", "deny", kErrsOnBadCountry),
                         RuleJson("d-no", "deny", kNeverHolds)}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(Determining(response), ElementsAre("p-err", "d-err"));
}

TEST(PermitOverridesTest, PermitBeatsDeny) {
  auto policy = CompileOrDie(RuleSetJson(
      "permit-overrides", {RuleJson("d1", "deny"), RuleJson("p1", "permit"),
                           RuleJson("d2", "deny"), RuleJson("p2", "permit")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(response), ElementsAre("p1", "p2"));
}

TEST(PermitOverridesTest, ErringPermitBeatsApplicableDeny) {
  auto policy = CompileOrDie(RuleSetJson(
      "permit-overrides", {RuleJson("d", "deny"), RuleJson("p", "permit", kErrsOnBadCountry)}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(Determining(response), ElementsAre("p"));
}

TEST(PermitOverridesTest, ApplicablePermitBeatsErringPermit) {
  auto policy = CompileOrDie(RuleSetJson(
      "permit-overrides", {RuleJson("p-err", "permit", kErrsOnBadCountry),
                           RuleJson("d", "deny"), RuleJson("p", "permit")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(response), ElementsAre("p"));
}

TEST(PermitOverridesTest, ErringDenyWithApplicableDenyDenies) {
  auto policy = CompileOrDie(RuleSetJson(
      "permit-overrides", {RuleJson("d-err", "deny", kErrsOnBadCountry), RuleJson("d", "deny")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::DENY);
  EXPECT_THAT(Determining(response), ElementsAre("d"));
}

TEST(PermitOverridesTest, OnlyAnErringDenyIsIndeterminate) {
  auto policy = CompileOrDie(RuleSetJson(
      "permit-overrides", {RuleJson("d-err", "deny", kErrsOnBadCountry),
                           RuleJson("p-no", "permit", kNeverHolds)}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(Determining(response), ElementsAre("d-err"));
}

TEST(FirstApplicableTest, HigherPriorityFirst) {
  auto policy = CompileOrDie(RuleSetJson(
      "first-applicable",
      {RuleJson("low", "permit", "{}", R"(, "priority": -1)"),
       RuleJson("mid", "permit"),
       RuleJson("high", "deny", "{}", R"(, "priority": 10)")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::DENY);
  EXPECT_THAT(Determining(response), ElementsAre("high"));
}

TEST(FirstApplicableTest, TiesKeepFileOrder) {
  auto policy = CompileOrDie(RuleSetJson(
      "first-applicable",
      {RuleJson("low", "deny", "{}", R"(, "priority": 1)"),
       RuleJson("tie-a", "permit", "{}", R"(, "priority": 5)"),
       RuleJson("tie-b", "deny", "{}", R"(, "priority": 5)")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(response), ElementsAre("tie-a"));

  auto swapped = CompileOrDie(RuleSetJson(
      "first-applicable",
      {RuleJson("tie-b", "deny", "{}", R"(, "priority": 5)"),
       RuleJson("tie-a", "permit", "{}", R"(, "priority": 5)")}));
  EXPECT_EQ(Decide(*swapped, RequestJson()).decision(), v1::DENY);
}

TEST(FirstApplicableTest, SkipsRulesThatDoNotApply) {
  auto policy = CompileOrDie(RuleSetJson(
      "first-applicable",
      {RuleJson("a", "deny", kNeverHolds, R"(, "priority": 3)"),
       TargetRule("b", "deny", R"(["invoice"])", R"(["*"])", R"(, "priority": 2)"),
       RuleJson("c", "permit", "{}", R"(, "priority": 1)"),
       RuleJson("d", "deny")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(response), ElementsAre("c"));
}

TEST(FirstApplicableTest, FirstRuleErringIsIndeterminate) {
  auto policy = CompileOrDie(RuleSetJson(
      "first-applicable",
      {RuleJson("permit-all", "permit"),
       RuleJson("geo", "deny", kErrsOnBadCountry, R"(, "priority": 9)")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(Determining(response), ElementsAre("geo"));
  EXPECT_THAT(response.obligations(), IsEmpty());
  // An erring permit rule ahead of a deny is INDETERMINATE too (never PERMIT).
  auto permit_first = CompileOrDie(RuleSetJson(
      "first-applicable",
      {RuleJson("geo", "permit", kErrsOnBadCountry), RuleJson("deny-all", "deny")}));
  EXPECT_EQ(Decide(*permit_first, RequestJson(kBadCountry)).decision(), v1::INDETERMINATE);
}

TEST(FirstApplicableTest, ErringRuleAfterTheDeciderDoesNotMatter) {
  auto policy = CompileOrDie(RuleSetJson(
      "first-applicable",
      {RuleJson("geo", "deny", kErrsOnBadCountry), RuleJson("first", "permit", "{}",
                                                            R"(, "priority": 1)")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(response), ElementsAre("first"));
}

TEST(FirstApplicableTest, TraceFollowsPriorityOrder) {
  auto policy = CompileOrDie(RuleSetJson(
      "first-applicable",
      {RuleJson("c", "permit", kNeverHolds, R"(, "priority": 1)"),
       RuleJson("a", "permit", kNeverHolds, R"(, "priority": 3)"),
       RuleJson("b", "deny", "{}", R"(, "priority": 2)")}));
  v1::AuthorizeRequest request = RequestFromJson(RequestJson());
  request.set_explain(true);
  v1::AuthorizeResponse response = Decide(*policy, request);
  EXPECT_EQ(response.decision(), v1::DENY);
  ASSERT_GE(response.trace_size(), 2);
  EXPECT_EQ(response.trace(0).rule_id(), "a");
  EXPECT_EQ(response.trace(0).outcome(), "no_match");
  EXPECT_EQ(response.trace(1).rule_id(), "b");
  EXPECT_EQ(response.trace(1).outcome(), "match");
}

TEST(PriorityTest, IgnoredByOtherAlgorithms) {
  for (const char* algorithm : {"deny-overrides", "permit-overrides"}) {
    auto policy = CompileOrDie(RuleSetJson(
        algorithm, {RuleJson("low", "permit", "{}", R"(, "priority": -5)"),
                    RuleJson("high", "permit", "{}", R"(, "priority": 50)"),
                    RuleJson("mid", "permit")}));
    EXPECT_THAT(Determining(Decide(*policy, RequestJson())),
                ElementsAre("low", "high", "mid"))
        << algorithm;
  }
}

TEST(NotApplicableTest, NothingApplies) {
  auto policy = CompileOrDie(RuleSetJson(
      "", {TargetRule("other-type", "permit", R"(["invoice"])", R"(["*"])",
                      R"(, "obligations": [{"type": "require_mfa"}])"),
           RuleJson("never", "deny", kNeverHolds,
                    R"(, "obligations": [{"type": "require_mfa"}])")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::NOT_APPLICABLE);
  EXPECT_THAT(response.determining_rules(), IsEmpty());
  EXPECT_THAT(response.obligations(), IsEmpty());
  EXPECT_THAT(response.reason(), Not(IsEmpty()));
}

TEST(NotApplicableTest, EmptyRuleSet) {
  auto policy = CompileOrDie(R"({"name": "empty"})");
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::NOT_APPLICABLE);
  EXPECT_THAT(response.determining_rules(), IsEmpty());
  EXPECT_EQ(response.rule_set(), "empty");
}

// ---- Obligations -------------------------------------------------------

// A rule on everything with one obligation of `type` carrying `tag`.
std::string RuleWithObligation(const std::string& id, const std::string& effect,
                               const std::string& conditions, const std::string& tag) {
  return RuleJson(id, effect, conditions,
                  absl::StrCat(R"(, "obligations": [{"type": "custom", "params": {"tag": ")",
                               tag, R"("}}])"));
}

std::vector<std::string> ObligationTags(const v1::AuthorizeResponse& response) {
  std::vector<std::string> tags;
  for (const v1::ObligationResult& o : response.obligations()) {
    tags.push_back(absl::StrCat(o.rule_id(), ":", o.type(), ":",
                                o.params().fields().at("tag").string_value()));
  }
  return tags;
}

TEST(ObligationsTest, OnlyFromDeterminingRulesInOrder) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RuleWithObligation("p1", "permit", "{}", "a"),
       RuleWithObligation("p-no", "permit", kNeverHolds, "x"),
       RuleJson("p2", "permit", "{}", R"(, "obligations": [
           {"type": "filter_fields", "params": {"fields": ["card.number"]}},
           {"type": "custom", "params": {"tag": "c"}}])"),
       RuleWithObligation("d-no", "deny", kNeverHolds, "y")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(response), ElementsAre("p1", "p2"));
  ASSERT_THAT(response.obligations(), SizeIs(3));
  EXPECT_EQ(response.obligations(0).rule_id(), "p1");
  EXPECT_EQ(response.obligations(0).type(), "custom");
  EXPECT_EQ(response.obligations(1).rule_id(), "p2");
  EXPECT_EQ(response.obligations(1).type(), "filter_fields");
  const auto& fields = response.obligations(1).params().fields().at("fields");
  ASSERT_EQ(fields.list_value().values_size(), 1);
  EXPECT_EQ(fields.list_value().values(0).string_value(), "card.number");
  EXPECT_EQ(response.obligations(2).rule_id(), "p2");
  EXPECT_EQ(response.obligations(2).params().fields().at("tag").string_value(), "c");
}

TEST(ObligationsTest, DenyCarriesOnlyDenyObligations) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RuleWithObligation("p", "permit", "{}", "p"), RuleWithObligation("d1", "deny", "{}", "d1"),
       RuleWithObligation("d2", "deny", "{}", "d2")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::DENY);
  EXPECT_THAT(ObligationTags(response), ElementsAre("d1:custom:d1", "d2:custom:d2"));
}

TEST(ObligationsTest, FirstApplicableCarriesTheDecidersOnly) {
  auto policy = CompileOrDie(RuleSetJson(
      "first-applicable",
      {RuleWithObligation("second", "permit", "{}", "s"),
       RuleJson("first", "permit", "{}", R"(, "priority": 1, "obligations": [
           {"on": "permit", "type": "custom", "params": {"tag": "f"}}])")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_THAT(ObligationTags(response), ElementsAre("first:custom:f"));
}

TEST(ObligationsTest, NoneOnIndeterminate) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RuleWithObligation("p", "permit", "{}", "p"),
       RuleWithObligation("d-err", "deny", kErrsOnBadCountry, "d")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(Determining(response), ElementsAre("d-err"));
  EXPECT_THAT(response.obligations(), IsEmpty());
  // The same set with a good request does permit with p's obligation.
  EXPECT_THAT(ObligationTags(Decide(*policy, RequestJson())), ElementsAre("p:custom:p"));
}

TEST(ObligationsTest, NoneOnNotApplicable) {
  auto policy = CompileOrDie(RuleSetJson(
      "permit-overrides", {RuleWithObligation("p", "permit", kNeverHolds, "p")}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson());
  EXPECT_EQ(response.decision(), v1::NOT_APPLICABLE);
  EXPECT_THAT(response.obligations(), IsEmpty());
}

// ---- Invalid requests --------------------------------------------------

TEST(InvalidRequestTest, WholeRequestIndeterminate) {
  auto policy = CompileOrDie(RuleSetJson(
      "permit-overrides", {RuleWithObligation("permit-all", "permit", "{}", "p")}));
  // Request members, and the field the reason must name.
  for (const auto& [members, field] : std::vector<std::pair<std::string, std::string>>{
           {R"("subject": {"attributes": {"a": null}})", "subject.attributes"},
           {R"("subject": {"attributes": {"a": {"b": 1}}})", "subject.attributes"},
           {R"("subject": {"attributes": {"a": [1, [2]]}})", "subject.attributes"},
           {R"("subject": {"attributes": {"a": [1, null]}})", "subject.attributes"},
           {R"("subject": {"attributes": {"a": [{"b": 1}]}})", "subject.attributes"},
           {R"("resource": {"type": "doc", "attributes": {"a": null}})", "resource.attributes"},
           {R"("environment": {"attributes": {"a": {"b": "c"}}})", "environment.attributes"},
       }) {
    v1::AuthorizeResponse response = Decide(*policy, RequestJson(members));
    EXPECT_EQ(response.decision(), v1::INDETERMINATE) << members;
    EXPECT_THAT(response.determining_rules(), IsEmpty()) << members;
    EXPECT_THAT(response.obligations(), IsEmpty()) << members;
    EXPECT_THAT(response.reason(), HasSubstr(field)) << members;
  }
  // The same rule set permits a valid request.
  EXPECT_EQ(Decide(*policy, RequestJson(R"("subject": {"attributes": {"a": [1, "x", true]}})"))
                .decision(),
            v1::PERMIT);
}

TEST(InvalidRequestTest, UnusedInvalidAttributeStillInvalidates) {
  // No rule looks at "junk", yet the request as a whole is INDETERMINATE.
  auto policy = CompileOrDie(RuleSetJson("", {RuleJson("p", "permit")}));
  EXPECT_EQ(Decide(*policy, RequestJson(R"("subject": {"attributes": {"junk": null}})"))
                .decision(),
            v1::INDETERMINATE);
}

TEST(InvalidRequestTest, MissingActionOrResourceType) {
  auto policy = CompileOrDie(RuleSetJson("permit-overrides", {RuleJson("permit-all", "permit")}));
  for (const auto& [json, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"resource": {"type": "doc"}})", "action"},
           {R"({"action": "", "resource": {"type": "doc"}})", "action"},
           {R"({"action": "read"})", "resource.type"},
           {R"({"action": "read", "resource": {"type": "", "id": "x"}})", "resource.type"},
           {R"({})", "action"}}) {
    v1::AuthorizeResponse response = Decide(*policy, json);
    EXPECT_EQ(response.decision(), v1::INDETERMINATE) << json;
    EXPECT_THAT(response.determining_rules(), IsEmpty()) << json;
    EXPECT_THAT(response.reason(), HasSubstr(field)) << json;
  }
}

TEST(InvalidRequestTest, BadClientIpOnlyAffectsRulesWithIpConditions) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("p", "permit"),
                         RuleJson("p-ip", "permit", R"({"client_ip": {"in": ["10.0.0.0/8"]}})")}));
  v1::AuthorizeRequest request =
      RequestFromJson(RequestJson(R"("environment": {"client_ip": "10.0.0.999"})"));
  request.set_explain(true);
  v1::AuthorizeResponse response = Decide(*policy, request);
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(response), ElementsAre("p"));
  ASSERT_THAT(response.trace(), SizeIs(2));
  EXPECT_EQ(response.trace(0).outcome(), "match");
  EXPECT_EQ(response.trace(1).outcome(), "error");

  auto no_ip_rules = CompileOrDie(RuleSetJson("deny-overrides", {RuleJson("p", "permit")}));
  EXPECT_EQ(Decide(*no_ip_rules, RequestJson(R"("environment": {"client_ip": "nope"})"))
                .decision(),
            v1::PERMIT);

  auto deny_ip = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("p", "permit"),
                         RuleJson("d-ip", "deny", R"({"client_ip": {"not_in": ["10.0.0.0/8"]}})")}));
  v1::AuthorizeResponse denied = Decide(*deny_ip, RequestJson(R"("environment": {"client_ip": "nope"})"));
  EXPECT_EQ(denied.decision(), v1::INDETERMINATE);
  EXPECT_THAT(Determining(denied), ElementsAre("d-ip"));
}

// A batch's common part (BatchAuthorizeRequest.common): an error in a part
// that came from it is named there, so the caller knows which to fix.
TEST(InvalidRequestTest, ErrorsInTheCommonPartNameIt) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("p", "permit"),
                         RuleJson("p-ip", "permit", R"({"client_ip": {"in": ["10.0.0.0/8"]}})")}));
  const v1::AuthorizeRequest item = RequestFromJson(R"({"action": "read"})");
  for (const auto& [common, reason] : std::vector<std::pair<std::string, std::string>>{
           {R"({"resource": {"type": "doc", "attributes": {"a": null}}})",
            "common.resource.attributes[\"a\"]"},
           {R"({"resource": {"type": ""}})", "common.resource.type is required"},
           {R"({"resource": {"type": "doc"}, "subject": {"attributes": {"a": {"b": 1}}}})",
            "common.subject.attributes[\"a\"]"},
       }) {
    v1::AuthorizeResponse response;
    const v1::AuthorizeRequest common_part = RequestFromJson(common);
    policy->Evaluate(item, &common_part, DefaultNow(), &response);
    EXPECT_EQ(response.decision(), v1::INDETERMINATE) << common;
    EXPECT_THAT(response.reason(), HasSubstr(reason)) << common;
  }
  // A bad client_ip errs only the rule with an IP condition (explain shows it).
  v1::AuthorizeResponse traced;
  const v1::AuthorizeRequest bad_ip = RequestFromJson(R"({"explain": true,
      "resource": {"type": "doc"}, "environment": {"client_ip": "10.0.0.999"}})");
  policy->Evaluate(item, &bad_ip, DefaultNow(), &traced);
  ASSERT_THAT(traced.trace(), SizeIs(2));
  EXPECT_EQ(traced.trace(1).outcome(), "error");
  EXPECT_EQ(traced.trace(1).detail(),
            "common.environment.client_ip \"10.0.0.999\" is not an IP address");
  // The request's own part is named without the prefix, and wins.
  v1::AuthorizeResponse own;
  const v1::AuthorizeRequest doc = RequestFromJson(R"({"resource": {"type": "doc"}})");
  policy->Evaluate(RequestFromJson(R"({"action": "read", "resource": {"type": "doc",
                                       "attributes": {"a": null}}})"),
                   &doc, DefaultNow(), &own);
  EXPECT_THAT(own.reason(), HasSubstr("invalid request: resource.attributes[\"a\"]"));
  // A complete common part: the request supplies only the action.
  v1::AuthorizeResponse permitted;
  const v1::AuthorizeRequest complete = RequestFromJson(R"({"action": "delete",
      "resource": {"type": "doc"}, "environment": {"client_ip": "10.1.2.3"}})");
  policy->Evaluate(item, &complete, DefaultNow(), &permitted);
  EXPECT_EQ(permitted.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(permitted), ElementsAre("p", "p-ip"));
}

// ---- Explain -----------------------------------------------------------

TEST(ExplainTest, TraceEntryPerCandidate) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RuleJson("m", "permit"), RuleJson("n", "deny", kNeverHolds),
       TargetRule("not-a-candidate", "deny", R"(["invoice"])", R"(["*"])"),
       RuleJson("e", "deny", kErrsOnBadCountry)}));
  v1::AuthorizeRequest request = RequestFromJson(RequestJson(kBadCountry));
  request.set_explain(true);
  v1::AuthorizeResponse response = Decide(*policy, request);
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  ASSERT_THAT(response.trace(), SizeIs(3));
  const std::vector<std::vector<std::string>> want = {
      {"m", "permit", "match"}, {"n", "deny", "no_match"}, {"e", "deny", "error"}};
  for (int i = 0; i < 3; ++i) {
    const v1::RuleTrace& t = response.trace(i);
    EXPECT_EQ(t.rule_id(), want[i][0]) << i;
    EXPECT_EQ(t.effect(), want[i][1]) << i;
    EXPECT_EQ(t.outcome(), want[i][2]) << i;
    EXPECT_THAT(t.detail(), Not(IsEmpty())) << i;
  }
}

TEST(ExplainTest, NoMatchDetailsForEachKindOfCondition) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RoleRule("roles", "permit", R"(["admin"])"),
       RuleJson("window", "permit", R"({"time_windows": [{"start": "01:00", "end": "02:00",
                                                          "time_zone": "UTC"}]})"),
       RuleJson("location", "permit", R"({"location": {"in": ["DE"]}})"),
       RuleJson("ip", "permit", R"({"client_ip": {"in": ["10.0.0.0/8"]}})"),
       RuleJson("attr", "permit", R"({"attributes": [{"attribute": "subject.a", "op": "eq",
                                                      "value": 1}]})")}));
  v1::AuthorizeRequest request = RequestFromJson(RequestJson());
  request.set_explain(true);
  v1::AuthorizeResponse response = Decide(*policy, request);
  EXPECT_EQ(response.decision(), v1::NOT_APPLICABLE);
  ASSERT_THAT(response.trace(), SizeIs(5));
  for (const v1::RuleTrace& t : response.trace()) {
    EXPECT_EQ(t.outcome(), "no_match") << t.rule_id();
    EXPECT_THAT(t.detail(), Not(IsEmpty())) << t.rule_id();
  }
}

TEST(ExplainTest, NoTraceWithoutExplain) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleJson("m", "permit"), RuleJson("n", "deny", kNeverHolds),
                         RuleJson("e", "deny", kErrsOnBadCountry)}));
  v1::AuthorizeResponse response = Decide(*policy, RequestJson(kBadCountry));
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(response.trace(), IsEmpty());
  EXPECT_THAT(Decide(*policy, RequestJson()).trace(), IsEmpty());
}

TEST(ExplainTest, ExplainDoesNotChangeTheDecision) {
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides", {RuleWithObligation("m", "permit", "{}", "m"),
                         RuleJson("n", "deny", kNeverHolds)}));
  v1::AuthorizeRequest request = RequestFromJson(RequestJson());
  v1::AuthorizeResponse plain = Decide(*policy, request);
  request.set_explain(true);
  v1::AuthorizeResponse explained = Decide(*policy, request);
  EXPECT_FALSE(explained.trace().empty());
  explained.clear_trace();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(plain, explained))
      << plain.DebugString() << "\nvs\n" << explained.DebugString();
}

// ---- Response metadata, clock ------------------------------------------

TEST(ResponseTest, CarriesRuleSetNameAndVersion) {
  auto policy = CompileOrDie(RuleSetJson("", {RuleJson("p", "permit")}, "shop.v2"),
                             {.version = 42});
  EXPECT_EQ(policy->version(), 42);
  v1::AuthorizeResponse permit = Decide(*policy, RequestJson());
  EXPECT_EQ(permit.rule_set(), "shop.v2");
  EXPECT_EQ(permit.rule_set_version(), 42);
  // Invalid requests too.
  v1::AuthorizeResponse invalid =
      Decide(*policy, RequestJson(R"("subject": {"attributes": {"a": null}})"));
  EXPECT_EQ(invalid.decision(), v1::INDETERMINATE);
  EXPECT_EQ(invalid.rule_set(), "shop.v2");
  EXPECT_EQ(invalid.rule_set_version(), 42);

  // WithVersion: same rules, another number.
  std::shared_ptr<const engine::Policy> v43 = policy->WithVersion(43);
  EXPECT_EQ(v43->version(), 43);
  EXPECT_EQ(v43->name(), "shop.v2");
  EXPECT_EQ(Decide(*v43, RequestJson()).rule_set_version(), 43);
  EXPECT_EQ(Decide(*policy, RequestJson()).rule_set_version(), 42);
}

TEST(ResponseTest, EvaluateClearsTheResponse) {
  auto policy = CompileOrDie(RuleSetJson("", {RuleJson("p", "permit", kNeverHolds)}));
  v1::AuthorizeResponse response;
  response.set_decision(v1::PERMIT);
  response.add_determining_rules("stale");
  response.add_obligations()->set_type("stale");
  response.add_trace()->set_rule_id("stale");
  policy->Evaluate(RequestFromJson(RequestJson()), DefaultNow(), &response);
  EXPECT_EQ(response.decision(), v1::NOT_APPLICABLE);
  EXPECT_THAT(response.determining_rules(), IsEmpty());
  EXPECT_THAT(response.obligations(), IsEmpty());
  EXPECT_THAT(response.trace(), IsEmpty());
}

TEST(ClockTest, NowIsUsedWhenTheRequestHasNoTime) {
  auto policy = CompileOrDie(RuleSetJson(
      "", {RuleJson("business-hours", "permit",
                    R"({"time_windows": [{"start": "09:00", "end": "10:00",
                                          "time_zone": "UTC"}]})")}));
  const v1::AuthorizeRequest no_time = RequestFromJson(RequestJson());
  EXPECT_EQ(Decide(*policy, no_time, UtcTime("2026-03-27T09:30:00Z")).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, no_time, UtcTime("2026-03-27T10:30:00Z")).decision(),
            v1::NOT_APPLICABLE);
  // A request time wins over `now`, in both directions.
  const v1::AuthorizeRequest inside =
      RequestFromJson(RequestJson(R"("environment": {"time": "2026-03-27T09:15:00Z"})"));
  EXPECT_EQ(Decide(*policy, inside, UtcTime("2026-03-27T23:00:00Z")).decision(), v1::PERMIT);
  const v1::AuthorizeRequest outside =
      RequestFromJson(RequestJson(R"("environment": {"time": "2026-03-27T11:15:00Z"})"));
  EXPECT_EQ(Decide(*policy, outside, UtcTime("2026-03-27T09:30:00Z")).decision(),
            v1::NOT_APPLICABLE);
}

// ---- Roles -------------------------------------------------------------

std::string WithRoles(const std::string& roles) {
  return absl::StrCat(R"("subject": {"roles": )", roles, "}");
}

TEST(RolesTest, AnyOfTheRulesRoles) {
  auto policy = CompileOrDie(RuleSetJson(
      "", {RoleRule("staff", "permit", R"(["admin", "auditor"])")}));
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["auditor"])"))).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["dev", "admin"])"))).decision(),
            v1::PERMIT);
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["dev"])"))).decision(),
            v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["Admin"])"))).decision(),
            v1::NOT_APPLICABLE);
  EXPECT_EQ(Decide(*policy, RequestJson()).decision(), v1::NOT_APPLICABLE);
}

TEST(RolesTest, NoRolesMeansAnySubject) {
  auto policy = CompileOrDie(RuleSetJson(
      "", {RuleJson("anyone", "permit"), RoleRule("admins", "deny", R"(["admin"])")}));
  v1::AuthorizeResponse nobody = Decide(*policy, RequestJson());
  EXPECT_EQ(nobody.decision(), v1::PERMIT);
  EXPECT_THAT(Determining(nobody), ElementsAre("anyone"));
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["x"])"))).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["admin"])"))).decision(), v1::DENY);
}

TEST(RolesTest, ManyRolesAcrossBitsetWords) {
  // 150 rules, each needing its own role, plus one rule needing any of three
  // roles spread over different 64-bit words.
  std::vector<std::string> rules;
  for (int i = 0; i < 150; ++i) {
    rules.push_back(RoleRule(absl::StrCat("rule-", i), "permit",
                             absl::StrCat(R"([")", "role-", i, R"("])")));
  }
  rules.push_back(RoleRule("spread", "deny", R"(["role-1", "role-70", "role-140"])"));
  auto policy = CompileOrDie(RuleSetJson("deny-overrides", rules));
  for (int i : {0, 62, 63, 64, 65, 100, 127, 128, 149}) {
    v1::AuthorizeResponse response =
        Decide(*policy, RequestJson(WithRoles(absl::StrCat(R"(["unknown", "role-)", i, R"("])"))));
    EXPECT_EQ(response.decision(), v1::PERMIT) << i;
    EXPECT_THAT(Determining(response), ElementsAre(absl::StrCat("rule-", i))) << i;
  }
  v1::AuthorizeResponse two =
      Decide(*policy, RequestJson(WithRoles(R"(["role-5", "role-130"])")));
  EXPECT_THAT(Determining(two), ElementsAre("rule-5", "rule-130"));
  for (int i : {1, 70, 140}) {
    v1::AuthorizeResponse response =
        Decide(*policy, RequestJson(WithRoles(absl::StrCat(R"(["role-)", i, R"("])"))));
    EXPECT_EQ(response.decision(), v1::DENY) << i;
    EXPECT_THAT(Determining(response), ElementsAre("spread")) << i;
  }
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["role-150", "role"])"))).decision(),
            v1::NOT_APPLICABLE);
}

TEST(RolesTest, OneRuleWithManyRoles) {
  std::vector<std::string> roles;
  for (int i = 0; i < 100; ++i) roles.push_back(absl::StrCat(R"("r)", i, R"(")"));
  auto policy = CompileOrDie(RuleSetJson(
      "", {RoleRule("many", "permit", absl::StrCat("[", absl::StrJoin(roles, ","), "]"))}));
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["r99"])"))).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["r64"])"))).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["r0"])"))).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, RequestJson(WithRoles(R"(["r100"])"))).decision(),
            v1::NOT_APPLICABLE);
}

}  // namespace
}  // namespace pdp
