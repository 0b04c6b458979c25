// Helpers for the engine unit tests; see engine_test_util.h.
#include "tests/support/engine_test_util.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/absl_compat.h"
#include "engine/rule_set_io.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace pdp::engine_testing {

absl::Time DefaultNow() { return UtcTime("2026-03-27T10:30:00Z"); }

absl::Time UtcTime(std::string_view rfc3339) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, ToAbsl(rfc3339), &t, &error)) {
    std::cerr << "bad RFC 3339 time \"" << rfc3339 << "\": " << error << "\n";
    std::abort();
  }
  return t;
}

v1::RuleSet RuleSetFromJson(std::string_view json) {
  absl::StatusOr<v1::RuleSet> parsed = engine::ParseRuleSetJson(json);
  if (!parsed.ok()) {
    ADD_FAILURE() << parsed.status() << "\n" << json;
    return v1::RuleSet();
  }
  return *std::move(parsed);
}

v1::AuthorizeRequest RequestFromJson(std::string_view json) {
  v1::AuthorizeRequest request;
  auto status = google::protobuf::util::JsonStringToMessage(
      std::string(json), &request);
  if (!status.ok()) {
    ADD_FAILURE() << status.ToString() << "\n" << json;
    return v1::AuthorizeRequest();
  }
  return request;
}

engine::CompileResult CompileJson(std::string_view json,
                                  const engine::CompileOptions& options) {
  return engine::Compile(RuleSetFromJson(json), options);
}

std::shared_ptr<const engine::Policy> CompileOrDie(
    std::string_view json, const engine::CompileOptions& options) {
  absl::StatusOr<v1::RuleSet> parsed = engine::ParseRuleSetJson(json);
  if (!parsed.ok()) {
    std::cerr << "CompileOrDie: " << parsed.status() << "\n" << json << "\n";
    std::abort();
  }
  engine::CompileResult result = engine::Compile(*parsed, options);
  if (!result.ok()) {
    std::cerr << "CompileOrDie: " << result.ToStatus() << "\n" << json << "\n";
    std::abort();
  }
  return result.policy;
}

v1::AuthorizeResponse Decide(const engine::Policy& policy,
                             const v1::AuthorizeRequest& request,
                             absl::Time now) {
  v1::AuthorizeResponse response;
  policy.Evaluate(request, now, &response);
  return response;
}

v1::AuthorizeResponse Decide(const engine::Policy& policy,
                             std::string_view request_json, absl::Time now) {
  return Decide(policy, RequestFromJson(request_json), now);
}

std::vector<std::pair<std::string, std::string>> ErrorKeys(
    const engine::CompileResult& result) {
  std::vector<std::pair<std::string, std::string>> keys;
  keys.reserve(result.errors.size());
  for (const engine::CompileError& e : result.errors) {
    keys.emplace_back(e.rule_id, e.field);
  }
  return keys;
}

std::string RuleJson(std::string_view id, std::string_view effect,
                     std::string_view conditions, std::string_view extra) {
  return absl::StrCat(
      R"({"id": ")", ToAbsl(id), R"(", "effect": ")", ToAbsl(effect),
      R"(", "target": {"resource_types": ["*"], "actions": ["*"]},)",
      R"( "conditions": )", ToAbsl(conditions), ToAbsl(extra), "}");
}

std::string RuleSetJson(std::string_view algorithm,
                        const std::vector<std::string>& rules,
                        std::string_view name) {
  return absl::StrCat(R"({"name": ")", ToAbsl(name),
                      R"(", "combining_algorithm": ")", ToAbsl(algorithm),
                      R"(", "rules": [)", absl::StrJoin(rules, ",\n"), "]}");
}

std::string RequestJson(std::string_view members) {
  return absl::StrCat(R"({"action": "read", "resource": {"type": "doc"})",
                      members.empty() ? "" : ", ", ToAbsl(members), "}");
}

}  // namespace pdp::engine_testing
