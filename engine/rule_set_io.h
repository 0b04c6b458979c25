// Reading rule-set files: protobuf's JSON form of pdp.v1.RuleSet (see
// protos/pdp/v1/rules.proto and the README's rule model). Parsing is strict:
// unknown fields are errors, so a typo cannot silently drop a condition.
//
// Tested by tests/rules_files_test.cc.
#ifndef PDP_ENGINE_RULE_SET_IO_H_
#define PDP_ENGINE_RULE_SET_IO_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pdp/v1/rules.pb.h"

namespace pdp::engine {

// INVALID_ARGUMENT with protobuf's message on malformed JSON or unknown
// fields.
absl::StatusOr<v1::RuleSet> ParseRuleSetJson(std::string_view json);

// NOT_FOUND / INVALID_ARGUMENT, prefixed with the path.
absl::StatusOr<v1::RuleSet> ReadRuleSetFile(const std::string& path);

// Pretty JSON with proto field names, for printing and `pdpctl get`.
std::string RuleSetToJson(const v1::RuleSet& rule_set);

}  // namespace pdp::engine

#endif  // PDP_ENGINE_RULE_SET_IO_H_
