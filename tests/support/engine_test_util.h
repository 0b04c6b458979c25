// Helpers shared by the engine unit tests (tests/engine_*_test.cc): rule
// sets and requests written as JSON, compiling with a hard check, deciding a
// request, and short JSON builders for the common "one rule on everything"
// shape. Nothing here interprets the rule model; that is left to the engine
// under test.
#ifndef PDP_TESTS_SUPPORT_ENGINE_TEST_UTIL_H_
#define PDP_TESTS_SUPPORT_ENGINE_TEST_UTIL_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "engine/compiler.h"
#include "engine/policy.h"
#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"

namespace pdp::engine_testing {

// 2026-03-27 (a Friday) 10:30:00 UTC: the clock for requests without a time.
absl::Time DefaultNow();

// An RFC 3339 instant ("2026-03-27T08:30:00Z"); aborts when malformed.
absl::Time UtcTime(std::string_view rfc3339);

// Parses rule-set JSON strictly with engine::ParseRuleSetJson. A parse error
// is a test failure (ADD_FAILURE) and yields an empty RuleSet.
v1::RuleSet RuleSetFromJson(std::string_view json);

// Parses an AuthorizeRequest from protobuf JSON. A parse error is a test
// failure and yields an empty request.
v1::AuthorizeRequest RequestFromJson(std::string_view json);

// Parses and compiles a rule set.
engine::CompileResult CompileJson(std::string_view json,
                                  const engine::CompileOptions& options = {});

// Parses and compiles a rule set that must be valid; prints every compile
// error and aborts otherwise.
std::shared_ptr<const engine::Policy> CompileOrDie(
    std::string_view json, const engine::CompileOptions& options = {});

// Evaluates `request` (or its JSON) with `now` as the clock.
v1::AuthorizeResponse Decide(const engine::Policy& policy,
                             const v1::AuthorizeRequest& request,
                             absl::Time now = DefaultNow());
v1::AuthorizeResponse Decide(const engine::Policy& policy,
                             std::string_view request_json,
                             absl::Time now = DefaultNow());

// (rule_id, field) of every compile error, in reported order; convenient to
// match with ElementsAre(Pair(...), ...).
std::vector<std::pair<std::string, std::string>> ErrorKeys(
    const engine::CompileResult& result);

// {"id": id, "effect": effect, "target": {"resource_types": ["*"],
// "actions": ["*"]}, "conditions": conditions <extra>}. `extra` is spliced
// in verbatim after the conditions (e.g. R"(, "priority": 3)").
std::string RuleJson(std::string_view id, std::string_view effect,
                     std::string_view conditions = "{}",
                     std::string_view extra = "");

// {"name": name, "combining_algorithm": algorithm, "rules": [rules...]}.
std::string RuleSetJson(std::string_view algorithm,
                        const std::vector<std::string>& rules,
                        std::string_view name = "test");

// {"action": "read", "resource": {"type": "doc"} <, members>}.
std::string RequestJson(std::string_view members = "");

}  // namespace pdp::engine_testing

#endif  // PDP_TESTS_SUPPORT_ENGINE_TEST_UTIL_H_
