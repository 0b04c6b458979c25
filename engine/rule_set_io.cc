// Reading and writing rule-set JSON with protobuf's JSON mapping.
#include "engine/rule_set_io.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace pdp::engine {

absl::StatusOr<v1::RuleSet> ParseRuleSetJson(std::string_view json) {
  v1::RuleSet rule_set;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      std::string(json), &rule_set, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rule set JSON: ", std::string(status.message())));
  }
  return rule_set;
}

absl::StatusOr<v1::RuleSet> ReadRuleSetFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto parsed = ParseRuleSetJson(buffer.str());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", parsed.status().message()));
  }
  return parsed;
}

std::string RuleSetToJson(const v1::RuleSet& rule_set) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(rule_set, &out, options);
  return out;
}

}  // namespace pdp::engine
