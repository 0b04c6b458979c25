// Shared checks of the fuzz targets; see fuzz_checks.h.
#include "tests/fuzz/fuzz_checks.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/support/reference_evaluator.h"

namespace pdp::fuzz {
namespace {

using google::protobuf::Value;

bool IsScalar(const Value& v) {
  return v.kind_case() == Value::kStringValue ||
         v.kind_case() == Value::kNumberValue ||
         v.kind_case() == Value::kBoolValue;
}

bool MapIsValid(const google::protobuf::Map<std::string, Value>& map) {
  for (const auto& [key, value] : map) {
    if (IsScalar(value)) continue;
    if (value.kind_case() != Value::kListValue) return false;
    for (const Value& element : value.list_value().values()) {
      if (!IsScalar(element)) return false;
    }
  }
  return true;
}

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }

std::string Algorithm(const v1::RuleSet& rules) {
  const std::string a =
      absl::StrReplaceAll(Lower(rules.combining_algorithm()), {{"_", "-"}});
  return a.empty() ? "deny-overrides" : a;
}

bool PatternMatches(const std::string& pattern, const std::string& value) {
  if (pattern == "*") return true;
  if (!pattern.empty() && pattern.back() == '*') {
    return absl::StartsWith(value, pattern.substr(0, pattern.size() - 1));
  }
  return pattern == value;
}

bool AnyMatches(const google::protobuf::RepeatedPtrField<std::string>& patterns,
                const std::string& value) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return PatternMatches(p, value); });
}

// Rules whose target's resource types and actions match, in evaluation
// order: the rules the engine must consider (roles are a condition).
std::vector<const v1::Rule*> Candidates(const v1::RuleSet& rules,
                                        const v1::AuthorizeRequest& request) {
  std::vector<const v1::Rule*> order;
  for (const v1::Rule& rule : rules.rules()) order.push_back(&rule);
  if (Algorithm(rules) == "first-applicable") {
    std::stable_sort(order.begin(), order.end(), [](const v1::Rule* a, const v1::Rule* b) {
      return a->priority() > b->priority();
    });
  }
  std::vector<const v1::Rule*> out;
  for (const v1::Rule* rule : order) {
    if (AnyMatches(rule->target().resource_types(), request.resource().type()) &&
        AnyMatches(rule->target().actions(), request.action())) {
      out.push_back(rule);
    }
  }
  return out;
}

const v1::Rule* FindRule(const v1::RuleSet& rules, const std::string& id) {
  for (const v1::Rule& rule : rules.rules()) {
    if (rule.id() == id) return &rule;
  }
  return nullptr;
}

// Message equality with NaN equal to NaN: rule sets may carry NaN (binary
// form) in literals and obligation params, which responses echo.
bool Same(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  return differencer.Compare(a, b);
}

// Empty when the two agree on decision, determining_rules and obligations.
std::string Difference(const char* a_name, const v1::AuthorizeResponse& a,
                       const char* b_name, const v1::AuthorizeResponse& b) {
  std::string out;
  if (a.decision() != b.decision()) {
    absl::StrAppend(&out, "decision: ", a_name, " ", v1::Decision_Name(a.decision()),
                    ", ", b_name, " ", v1::Decision_Name(b.decision()), "\n");
  }
  const std::string a_rules = absl::StrJoin(a.determining_rules(), ",");
  const std::string b_rules = absl::StrJoin(b.determining_rules(), ",");
  if (a_rules != b_rules) {
    absl::StrAppend(&out, "determining_rules: ", a_name, " [", a_rules, "], ", b_name,
                    " [", b_rules, "]\n");
  }
  bool same = a.obligations_size() == b.obligations_size();
  for (int i = 0; same && i < a.obligations_size(); ++i) {
    same = a.obligations(i).type() == b.obligations(i).type() &&
           a.obligations(i).rule_id() == b.obligations(i).rule_id() &&
           Same(a.obligations(i).params(), b.obligations(i).params());
  }
  if (!same) absl::StrAppend(&out, "obligations differ\n");
  return out;
}

}  // namespace

void QuietProtobufLogs() { google::protobuf::SetLogHandler(nullptr); }

std::string Dump(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::TextFormat::Printer printer;
  printer.SetUseUtf8StringEscaping(true);
  printer.PrintToString(message, &out);
  return out;
}

void Fail(const std::string& what, const v1::RuleSet& rules,
          const v1::AuthorizeRequest* request) {
  std::fprintf(stderr, "\n==== pdp fuzz check failed: %s\n---- rule set:\n%s\n",
               what.c_str(), Dump(rules).c_str());
  if (request != nullptr) {
    std::fprintf(stderr, "---- request (now = %s):\n%s\n",
                 absl::FormatTime(kNow).c_str(), Dump(*request).c_str());
  }
  std::fflush(stderr);
  std::abort();
}

bool RequestIsInvalid(const v1::AuthorizeRequest& request) {
  return request.action().empty() || request.resource().type().empty() ||
         !MapIsValid(request.subject().attributes()) ||
         !MapIsValid(request.resource().attributes()) ||
         !MapIsValid(request.environment().attributes());
}

void CheckEvaluation(const v1::RuleSet& rules, const engine::Policy& policy,
                     const v1::AuthorizeRequest& request) {
  v1::AuthorizeRequest plain_request = request;
  plain_request.set_explain(false);
  v1::AuthorizeRequest explain_request = request;
  explain_request.set_explain(true);

  v1::AuthorizeResponse plain, explained, again;
  policy.Evaluate(plain_request, kNow, &plain);
  policy.Evaluate(explain_request, kNow, &explained);
  policy.Evaluate(plain_request, kNow, &again);
  const v1::AuthorizeResponse reference =
      testing::ReferenceEvaluate(rules, plain_request, kNow);

  auto fail = [&](const std::string& what) {
    Fail(absl::StrCat(what, "\n---- engine response:\n", Dump(plain),
                      "---- engine response with explain:\n", Dump(explained),
                      "---- reference response:\n", Dump(reference)),
         rules, &plain_request);
  };

  const v1::Decision d = plain.decision();
  if (d != v1::PERMIT && d != v1::DENY && d != v1::NOT_APPLICABLE &&
      d != v1::INDETERMINATE) {
    fail("decision is not one of PERMIT, DENY, NOT_APPLICABLE, INDETERMINATE");
  }
  if (plain.rule_set() != rules.name()) fail("rule_set is not the rule set's name");
  if (plain.rule_set_version() != policy.version()) fail("rule_set_version is wrong");
  if (plain.reason().empty()) fail("no reason");
  if (!plain.trace().empty()) fail("a trace without explain");
  if (!Same(plain, again)) {
    fail("two evaluations of the same request differ");
  }
  // The same request as a batch would send it with a common part: the
  // subject and environment in `common`, the rest in the request.
  v1::AuthorizeRequest item = plain_request, common;
  if (item.has_subject()) common.mutable_subject()->Swap(item.mutable_subject());
  item.clear_subject();
  if (item.has_environment()) common.mutable_environment()->Swap(item.mutable_environment());
  item.clear_environment();
  v1::AuthorizeResponse through_common;
  policy.Evaluate(item, &common, kNow, &through_common);
  if (std::string diff = Difference("plain", plain, "through common", through_common);
      !diff.empty()) {
    fail("a common part changes the answer:\n" + diff);
  }
  if (std::string diff = Difference("reference", reference, "engine", plain); !diff.empty()) {
    fail("engine and reference disagree:\n" + diff);
  }
  if (std::string diff = Difference("plain", plain, "explain", explained); !diff.empty()) {
    fail("explain changes the answer:\n" + diff);
  }

  if (RequestIsInvalid(plain_request)) {
    if (d != v1::INDETERMINATE) fail("an invalid request is not INDETERMINATE");
    if (!plain.determining_rules().empty() || !plain.obligations().empty()) {
      fail("an invalid request has determining rules or obligations");
    }
    if (!absl::StartsWith(plain.reason(), "invalid request: ")) {
      fail("an invalid request's reason does not say so");
    }
    return;
  }

  // determining_rules and obligations follow the decision.
  std::set<std::string> determining(plain.determining_rules().begin(),
                                    plain.determining_rules().end());
  if (determining.size() != static_cast<size_t>(plain.determining_rules_size())) {
    fail("a rule is listed twice in determining_rules");
  }
  if (d == v1::NOT_APPLICABLE && !determining.empty()) {
    fail("NOT_APPLICABLE with determining rules");
  }
  if ((d == v1::PERMIT || d == v1::DENY || d == v1::INDETERMINATE) && determining.empty()) {
    fail("a decision without determining rules");
  }
  for (const std::string& id : plain.determining_rules()) {
    const v1::Rule* rule = FindRule(rules, id);
    if (rule == nullptr) fail("determining rule '" + id + "' is not in the rule set");
    if (d == v1::PERMIT && Lower(rule->effect()) != "permit") {
      fail("PERMIT determined by a deny rule");
    }
    if (d == v1::DENY && Lower(rule->effect()) != "deny") {
      fail("DENY determined by a permit rule");
    }
  }
  if (d != v1::PERMIT && d != v1::DENY && !plain.obligations().empty()) {
    fail("obligations without PERMIT or DENY");
  }
  for (const v1::ObligationResult& o : plain.obligations()) {
    if (!determining.count(o.rule_id())) fail("an obligation of a non-determining rule");
  }

  // The explain trace: exactly the candidate rules in evaluation order
  // (first-applicable stops at the deciding rule).
  const std::vector<const v1::Rule*> candidates = Candidates(rules, plain_request);
  const bool first_applicable = Algorithm(rules) == "first-applicable";
  const int traced = explained.trace_size();
  if (traced > static_cast<int>(candidates.size()) ||
      (!first_applicable && traced != static_cast<int>(candidates.size())) ||
      (first_applicable && d == v1::NOT_APPLICABLE &&
       traced != static_cast<int>(candidates.size()))) {
    fail(absl::StrCat("the trace has ", traced, " entries for ", candidates.size(),
                      " candidate rules"));
  }
  std::vector<std::string> matched_permit, matched_deny, errored;
  for (int i = 0; i < traced; ++i) {
    const v1::RuleTrace& t = explained.trace(i);
    if (t.rule_id() != candidates[i]->id()) {
      fail(absl::StrCat("trace entry ", i, " is rule '", t.rule_id(), "', expected '",
                        candidates[i]->id(), "'"));
    }
    if (t.effect() != Lower(candidates[i]->effect())) fail("trace effect is wrong");
    if (t.detail().empty()) fail("trace entry without detail");
    if (t.outcome() == "match") {
      (t.effect() == "permit" ? matched_permit : matched_deny).push_back(t.rule_id());
    } else if (t.outcome() == "error") {
      errored.push_back(t.rule_id());
    } else if (t.outcome() != "no_match") {
      fail("trace outcome is not match, no_match or error");
    }
    if (first_applicable && i + 1 < traced && t.outcome() != "no_match") {
      fail("first-applicable went on after an applicable or erring rule");
    }
  }
  const std::vector<std::string> listed(plain.determining_rules().begin(),
                                        plain.determining_rules().end());
  const std::vector<std::string>& expected =
      d == v1::PERMIT ? matched_permit : d == v1::DENY ? matched_deny : errored;
  if (d != v1::NOT_APPLICABLE && listed != expected) {
    fail("determining_rules are not the trace's " +
         std::string(d == v1::INDETERMINATE ? "erring" : "applicable") + " rules");
  }
  const std::string algorithm = Algorithm(rules);
  if (algorithm == "deny-overrides" && !matched_deny.empty() && d != v1::DENY) {
    fail("deny-overrides: an applicable deny rule, but not DENY");
  }
  if (algorithm == "permit-overrides" && !matched_permit.empty() && d != v1::PERMIT) {
    fail("permit-overrides: an applicable permit rule, but not PERMIT");
  }
  if (!first_applicable && matched_permit.empty() && matched_deny.empty() &&
      errored.empty() && d != v1::NOT_APPLICABLE) {
    fail("no rule applies or errs, but not NOT_APPLICABLE");
  }
}

}  // namespace pdp::fuzz
