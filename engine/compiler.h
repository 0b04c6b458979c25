// Compile: rule-set message -> validated, indexed, immutable Policy.
//
// Validation collects every error at once, each with the rule id and the
// field path ("rules[2].conditions.client_ip.in[0]"), in rule order; if there
// is any, no Policy is produced, so nothing can be half-applied.
//
// Example:
//   engine::CompileResult r = engine::Compile(rule_set, {.version = 7});
//   if (!r.ok()) { for (const auto& e : r.errors) std::cerr << e.ToString(); }
//
// Thread-safe (no shared state). Tested by tests/engine_compile_test.cc.
#ifndef PDP_ENGINE_COMPILER_H_
#define PDP_ENGINE_COMPILER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/policy.h"
#include "pdp/v1/rules.pb.h"

namespace pdp::engine {

struct CompileOptions {
  // Version number recorded in the Policy and echoed in responses.
  int64_t version = 0;
  // Size limits; exceeding one is an error, not a truncation.
  int max_rules = 200000;
  int max_patterns_per_rule = 10000;  // per list: CIDRs, values, roles, ...
  // RE2 memory budget per regular expression, in bytes.
  int64_t regex_max_mem = 1 << 20;
};

struct CompileError {
  std::string rule_id;  // empty for set-level errors
  std::string field;    // path from the rule-set root
  std::string message;
  // "rule 'r1' rules[0].effect: must be \"permit\" or \"deny\""
  std::string ToString() const;
};

struct CompileResult {
  std::shared_ptr<const Policy> policy;  // null when errors is non-empty
  std::vector<CompileError> errors;

  bool ok() const { return errors.empty() && policy != nullptr; }
  // OK, or INVALID_ARGUMENT whose message lists every error, one per line.
  absl::Status ToStatus() const;
};

CompileResult Compile(const v1::RuleSet& rule_set,
                      const CompileOptions& options = {});

}  // namespace pdp::engine

#endif  // PDP_ENGINE_COMPILER_H_
