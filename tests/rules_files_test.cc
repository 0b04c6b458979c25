// The shipped rule files: every rule set under rules/ and rules/examples/
// parses strictly and compiles, names are distinct, and every demo request
// in rules/requests/ gets the decision its file name states
// (NN-name.EXPECTED.json) from the compiled "shop" set (rules/demo.json),
// with the determining rules and obligations listed below. Also checks that a
// broken rule set reports all of its errors at once, with rule ids and paths.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engine/compiler.h"
#include "engine/policy.h"
#include "engine/rule_set_io.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"

namespace pdp {
namespace {

namespace fs = std::filesystem;

fs::path RulesDir() { return fs::path(PDP_SOURCE_DIR) / "rules"; }

// Sorted *.json files directly in `dir` (not recursive).
std::vector<fs::path> JsonFilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Every rule-set file: rules/*.json and rules/examples/*.json.
std::vector<fs::path> RuleSetFiles() {
  std::vector<fs::path> files = JsonFilesIn(RulesDir());
  std::vector<fs::path> examples = JsonFilesIn(RulesDir() / "examples");
  files.insert(files.end(), examples.begin(), examples.end());
  return files;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string ErrorsToString(const std::vector<engine::CompileError>& errors) {
  std::string out;
  for (const auto& e : errors) absl::StrAppend(&out, "  ", e.ToString(), "\n");
  return out;
}

std::string Relative(const fs::path& path) {
  return fs::relative(path, fs::path(PDP_SOURCE_DIR)).string();
}

TEST(RulesFilesTest, FindsTheShippedFiles) {
  std::set<std::string> found;
  for (const auto& path : RuleSetFiles()) found.insert(Relative(path));
  for (const char* expected :
       {"rules/demo.json", "rules/examples/time-window.json",
        "rules/examples/location.json", "rules/examples/ip-ranges.json",
        "rules/examples/attributes.json", "rules/examples/obligations.json",
        "rules/examples/first-applicable.json",
        "rules/examples/permit-overrides.json"}) {
    EXPECT_TRUE(found.contains(expected)) << expected << " is missing";
  }
  EXPECT_GE(JsonFilesIn(RulesDir() / "requests").size(), 6u);
}

TEST(RulesFilesTest, EveryRuleSetFileCompiles) {
  std::map<std::string, std::string> names;  // name -> file
  for (const auto& path : RuleSetFiles()) {
    SCOPED_TRACE(Relative(path));
    absl::StatusOr<v1::RuleSet> rule_set =
        engine::ReadRuleSetFile(path.string());
    ASSERT_TRUE(rule_set.ok()) << rule_set.status();
    EXPECT_FALSE(rule_set->name().empty());
    EXPECT_GT(rule_set->rules_size(), 0);
    for (const auto& rule : rule_set->rules()) {
      EXPECT_FALSE(rule.description().empty())
          << "rule '" << rule.id() << "' has no description";
    }

    engine::CompileResult compiled = engine::Compile(*rule_set);
    EXPECT_TRUE(compiled.ok()) << Relative(path) << " does not compile:\n"
                               << ErrorsToString(compiled.errors);
    if (compiled.ok()) {
      EXPECT_EQ(compiled.policy->name(), rule_set->name());
      EXPECT_EQ(compiled.policy->rule_count(),
                static_cast<size_t>(rule_set->rules_size()));
    }

    auto [it, inserted] = names.emplace(rule_set->name(), Relative(path));
    EXPECT_TRUE(inserted) << "rule set name '" << rule_set->name()
                          << "' is used by both " << it->second << " and "
                          << Relative(path);
  }
}

// What each demo request must produce besides its decision: the rules that
// determined it and the obligations (type, carrying rule), in order.
struct Expectation {
  std::vector<std::string> determining_rules;
  std::vector<std::pair<std::string, std::string>> obligations;
};

const std::map<std::string, Expectation>& DemoExpectations() {
  static const auto* const kTable = new std::map<std::string, Expectation>{
      {"01-support-reads-customer.permit.json",
       {{"support-reads-customers-in-business-hours"},
        {{"filter_fields", "support-reads-customers-in-business-hours"}}}},
      {"02-customer-reads-own-order.permit.json",
       {{"customer-reads-own-orders"},
        {{"add_header", "customer-reads-own-orders"}}}},
      {"03-customer-reads-other-order.not_applicable.json", {{}, {}}},
      {"04-big-refund-without-mfa.deny.json",
       {{"deny-large-refund-without-mfa"},
        {{"require_mfa", "deny-large-refund-without-mfa"}}}},
      {"05-refund-from-blocked-country.not_applicable.json", {{}, {}}},
      {"06-support-after-hours.not_applicable.json", {{}, {}}},
      {"07-admin-export-from-office-ip.permit.json",
       {{"admin-manages-from-office"},
        {{"add_header", "admin-manages-from-office"}}}},
      {"08-suspended-customer-reads-own-order.deny.json",
       {{"deny-suspended-accounts"}, {}}},
      {"09-support-updates-order.permit.json",
       {{"support-handles-orders-in-business-hours"},
        {{"mask_fields", "support-handles-orders-in-business-hours"}}}},
      {"10-finance-runs-daily-report.permit.json",
       {{"finance-runs-reports"}, {}}},
  };
  return *kTable;
}

// "01-x.permit.json" -> PERMIT; DECISION_UNSPECIFIED when malformed.
v1::Decision DecisionFromFileName(const fs::path& path) {
  std::string expected = path.stem().extension().string();  // ".permit"
  if (expected == ".permit") return v1::PERMIT;
  if (expected == ".deny") return v1::DENY;
  if (expected == ".not_applicable") return v1::NOT_APPLICABLE;
  if (expected == ".indeterminate") return v1::INDETERMINATE;
  return v1::DECISION_UNSPECIFIED;
}

std::shared_ptr<const engine::Policy> CompileDemo() {
  absl::StatusOr<v1::RuleSet> rule_set =
      engine::ReadRuleSetFile((RulesDir() / "demo.json").string());
  if (!rule_set.ok()) {
    ADD_FAILURE() << rule_set.status();
    return nullptr;
  }
  engine::CompileResult compiled = engine::Compile(*rule_set, {.version = 1});
  if (!compiled.ok()) {
    ADD_FAILURE() << "rules/demo.json:\n" << ErrorsToString(compiled.errors);
    return nullptr;
  }
  return compiled.policy;
}

TEST(RulesFilesTest, DemoRequestsGetTheDecisionInTheirName) {
  std::shared_ptr<const engine::Policy> policy = CompileDemo();
  ASSERT_NE(policy, nullptr);
  ASSERT_EQ(policy->name(), "shop");

  std::set<std::string> seen;
  std::vector<fs::path> files = JsonFilesIn(RulesDir() / "requests");
  ASSERT_FALSE(files.empty());
  for (const auto& path : files) {
    const std::string file = path.filename().string();
    SCOPED_TRACE(file);
    seen.insert(file);

    v1::Decision expected = DecisionFromFileName(path);
    ASSERT_NE(expected, v1::DECISION_UNSPECIFIED)
        << "name must be NN-name.{permit,deny,not_applicable}.json";

    v1::AuthorizeRequest request;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto parsed = google::protobuf::util::JsonStringToMessage(
        ReadFile(path), &request, options);
    ASSERT_TRUE(parsed.ok()) << parsed.message();
    EXPECT_EQ(request.rule_set(), "shop");
    EXPECT_TRUE(request.environment().has_time())
        << "demo requests carry a fixed environment.time";

    v1::AuthorizeResponse response;
    policy->Evaluate(request, absl::Now(), &response);
    EXPECT_EQ(response.decision(), expected)
        << "got " << v1::Decision_Name(response.decision()) << " ("
        << response.reason() << "), determining rules ["
        << absl::StrJoin(response.determining_rules(), ", ") << "]";
    EXPECT_EQ(response.rule_set(), "shop");

    auto it = DemoExpectations().find(file);
    if (it == DemoExpectations().end()) continue;
    const Expectation& want = it->second;
    EXPECT_EQ(std::vector<std::string>(response.determining_rules().begin(),
                                       response.determining_rules().end()),
              want.determining_rules);
    std::vector<std::pair<std::string, std::string>> got;
    for (const auto& o : response.obligations()) {
      got.emplace_back(o.type(), o.rule_id());
    }
    EXPECT_EQ(got, want.obligations);
  }
  for (const auto& [file, want] : DemoExpectations()) {
    EXPECT_TRUE(seen.contains(file)) << "rules/requests/" << file
                                     << " is missing";
  }
}

TEST(RulesFilesTest, DemoObligationParamsAreAsWritten) {
  std::shared_ptr<const engine::Policy> policy = CompileDemo();
  ASSERT_NE(policy, nullptr);
  auto evaluate = [&](const char* file) {
    v1::AuthorizeRequest request;
    auto parsed = google::protobuf::util::JsonStringToMessage(
        ReadFile(RulesDir() / "requests" / file), &request);
    EXPECT_TRUE(parsed.ok()) << file << ": " << parsed.message();
    v1::AuthorizeResponse response;
    policy->Evaluate(request, absl::Now(), &response);
    return response;
  };
  auto string_list = [](const google::protobuf::Value& v) {
    std::vector<std::string> out;
    for (const auto& e : v.list_value().values()) out.push_back(e.string_value());
    return out;
  };

  v1::AuthorizeResponse r = evaluate("01-support-reads-customer.permit.json");
  ASSERT_EQ(r.obligations_size(), 1);
  const auto& filter = r.obligations(0).params().fields();
  ASSERT_EQ(filter.count("fields"), 1u);
  EXPECT_EQ(string_list(filter.at("fields")),
            (std::vector<std::string>{"payment.card_number", "ssn"}));

  r = evaluate("04-big-refund-without-mfa.deny.json");
  ASSERT_EQ(r.obligations_size(), 1);
  ASSERT_EQ(r.obligations(0).params().fields().count("level"), 1u);
  EXPECT_EQ(r.obligations(0).params().fields().at("level").string_value(),
            "totp");

  r = evaluate("07-admin-export-from-office-ip.permit.json");
  ASSERT_EQ(r.obligations_size(), 1);
  const auto& header = r.obligations(0).params().fields();
  ASSERT_EQ(header.count("name"), 1u);
  ASSERT_EQ(header.count("value"), 1u);
  EXPECT_EQ(header.at("name").string_value(), "X-Admin-Access");
  EXPECT_EQ(header.at("value").string_value(), "office");
}

TEST(RulesFilesTest, UnknownFieldsAreRejected) {
  // A misspelt condition must not silently vanish.
  absl::StatusOr<v1::RuleSet> parsed = engine::ParseRuleSetJson(R"json({
    "name": "typo",
    "rules": [{"id": "r", "effect": "permit",
               "target": {"resource_types": ["*"], "actions": ["*"]},
               "conditions": {"client_ips": {"in": ["10.0.0.0/8"]}}}]
  })json");
  EXPECT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RulesFilesTest, BrokenRuleSetReportsEveryErrorAtOnce) {
  absl::StatusOr<v1::RuleSet> rule_set = engine::ParseRuleSetJson(R"json({
    "name": "broken",
    "rules": [
      {"id": "bad-cidr", "effect": "permit",
       "target": {"resource_types": ["order"], "actions": ["read"]},
       "conditions": {"client_ip": {"in": ["10.0.0.1/8"]}}},
      {"id": "bad-zone", "effect": "permit",
       "target": {"resource_types": ["order"], "actions": ["read"]},
       "conditions": {"time_windows": [{"start": "08:00", "end": "18:00",
                                        "time_zone": "Mars/Olympus_Mons"}]}},
      {"id": "bad-regex", "effect": "permit",
       "target": {"resource_types": ["order"], "actions": ["read"]},
       "conditions": {"attributes": [{"attribute": "subject.email",
                                      "op": "regex", "value": "(unclosed"}]}},
      {"id": "dup", "effect": "permit",
       "target": {"resource_types": ["order"], "actions": ["read"]}},
      {"id": "dup", "effect": "deny",
       "target": {"resource_types": ["order"], "actions": ["delete"]}},
      {"id": "empty-target", "effect": "permit",
       "target": {"resource_types": [], "actions": ["read"]}},
      {"id": "fine-rule", "effect": "permit",
       "target": {"resource_types": ["invoice"], "actions": ["read"]}}
    ]
  })json");
  ASSERT_TRUE(rule_set.ok()) << rule_set.status();

  engine::CompileResult compiled = engine::Compile(*rule_set);
  EXPECT_FALSE(compiled.ok());
  EXPECT_EQ(compiled.policy, nullptr);
  const std::string all = ErrorsToString(compiled.errors);
  EXPECT_GE(compiled.errors.size(), 5u) << all;

  // (rule id, its index, a word the field path must contain)
  struct Want {
    std::string rule_id;
    int index;
    std::string field_part;
  };
  for (const Want& want : std::vector<Want>{
           {"bad-cidr", 0, "client_ip"},
           {"bad-zone", 1, "time_zone"},
           {"bad-regex", 2, "attributes[0]"},
           {"dup", 4, ""},
           {"empty-target", 5, "target"}}) {
    const std::string prefix = absl::StrCat("rules[", want.index, "]");
    bool found = false;
    for (const auto& e : compiled.errors) {
      if (e.rule_id == want.rule_id && absl::StartsWith(e.field, prefix) &&
          absl::StrContains(e.field, want.field_part)) {
        found = true;
        EXPECT_TRUE(absl::StrContains(e.ToString(), want.rule_id))
            << e.ToString();
      }
    }
    EXPECT_TRUE(found) << "no error for rule '" << want.rule_id << "' at "
                       << prefix << " mentioning '" << want.field_part
                       << "'; errors:\n"
                       << all;
  }
  for (const auto& e : compiled.errors) {
    EXPECT_NE(e.rule_id, "fine-rule") << e.ToString();
  }

  // Errors come in rule order.
  int last_index = -1;
  for (const auto& e : compiled.errors) {
    int index = -1;
    if (sscanf(e.field.c_str(), "rules[%d]", &index) == 1) {
      EXPECT_GE(index, last_index) << "errors out of rule order:\n" << all;
      last_index = index;
    }
  }

  // The status form lists every error.
  absl::Status status = compiled.ToStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  for (const char* id :
       {"bad-cidr", "bad-zone", "bad-regex", "dup", "empty-target"}) {
    EXPECT_TRUE(absl::StrContains(status.message(), id)) << status.message();
  }
}

}  // namespace
}  // namespace pdp
