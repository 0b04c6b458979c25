// libFuzzer target for the rule-set reader and compiler: the input is
// parsed both as rule-set JSON (engine::ParseRuleSetJson) and as a binary
// pdp.v1.RuleSet, and whatever parses is compiled. Neither may crash, hang
// or trip a sanitizer. A failed compile must report errors (and no policy);
// a successful one is evaluated on fixed requests (invalid ones, the demo
// requests in rules/requests/) and on requests derived from its own rules
// (so that targets and conditions match), each checked by
// fuzz::CheckEvaluation against the reference evaluator and the rule
// model's invariants.
//
// Seeds: rules/*.json and rules/examples/*.json (scripts/fuzz.sh copies
// them, and their binary forms, into build-fuzz/corpus/compile). With
// PDP_FUZZ_BINARY_SEEDS=DIR set, start-up writes DIR/<name>.pb, the binary
// form, for each DIR/<name>.json that parses.
#include <dirent.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "engine/compiler.h"
#include "engine/rule_set_io.h"
#include "google/protobuf/util/json_util.h"
#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"
#include "tests/fuzz/fuzz_checks.h"

namespace pdp::fuzz {
namespace {

using google::protobuf::Value;

// Requests every compiled set is asked: invalid ones first.
std::vector<v1::AuthorizeRequest>* fixed_requests = nullptr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> ListDir(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (absl::EndsWith(e->d_name, absl::string_view(suffix.data(), suffix.size()))) out.push_back(dir + "/" + e->d_name);
    }
    closedir(d);
  }
  return out;
}

void MakeFixedRequests() {
  fixed_requests = new std::vector<v1::AuthorizeRequest>;
  v1::AuthorizeRequest base;
  base.mutable_subject()->set_id("alice");
  base.mutable_subject()->add_roles("admin");
  base.set_action("read");
  base.mutable_resource()->set_type("order");
  auto add = [&](auto edit) {
    v1::AuthorizeRequest r = base;
    edit(r);
    fixed_requests->push_back(r);
  };
  add([](v1::AuthorizeRequest& r) { r.clear_action(); });
  add([](v1::AuthorizeRequest& r) { r.mutable_resource()->clear_type(); });
  add([](v1::AuthorizeRequest& r) {
    (*r.mutable_subject()->mutable_attributes())["x"].set_null_value({});
  });
  add([](v1::AuthorizeRequest& r) {
    (*(*r.mutable_resource()->mutable_attributes())["x"].mutable_struct_value()
          ->mutable_fields())["a"].set_number_value(1);
  });
  add([](v1::AuthorizeRequest& r) {
    Value& v = (*r.mutable_environment()->mutable_attributes())["x"];
    v.mutable_list_value()->add_values()->mutable_list_value();
  });
  add([](v1::AuthorizeRequest& r) {
    (*r.mutable_environment()->mutable_attributes())["x"];  // no kind
  });
  add([](v1::AuthorizeRequest&) {});
  // The demo requests (their rule set is rules/demo.json, a seed).
  for (const std::string& path : ListDir(PDP_SOURCE_DIR "/rules/requests", ".json")) {
    v1::AuthorizeRequest r;
    if (google::protobuf::util::JsonStringToMessage(ReadFile(path), &r).ok()) {
      fixed_requests->push_back(r);
    }
  }
}

// A value that a pattern matches: "*" -> "any", "abc*" -> "abcx".
std::string Instance(const std::string& pattern) {
  if (pattern == "*") return "any";
  if (!pattern.empty() && pattern.back() == '*') return pattern.substr(0, pattern.size() - 1) + "x";
  return pattern;
}

// Sets request attribute `name` (subject.X, resource.X, environment.X or a
// built-in) to `value`, as far as the request can carry it.
void SetAttribute(const std::string& name, const Value& value, v1::AuthorizeRequest* r) {
  const std::string string = value.kind_case() == Value::kStringValue ? value.string_value() : "";
  if (name == "action") {
    if (!string.empty()) r->set_action(string);
  } else if (name == "subject.id") {
    r->mutable_subject()->set_id(string);
  } else if (name == "resource.id") {
    r->mutable_resource()->set_id(string);
  } else if (name == "resource.type") {
    if (!string.empty()) r->mutable_resource()->set_type(string);
  } else if (name == "subject.roles") {
    if (!string.empty()) r->mutable_subject()->add_roles(string);
  } else if (absl::StartsWith(name, "subject.")) {
    (*r->mutable_subject()->mutable_attributes())[name.substr(8)] = value;
  } else if (absl::StartsWith(name, "resource.")) {
    (*r->mutable_resource()->mutable_attributes())[name.substr(9)] = value;
  } else if (absl::StartsWith(name, "environment.")) {
    (*r->mutable_environment()->mutable_attributes())[name.substr(12)] = value;
  }
}

// A request aimed at `rule`: its target, roles and, as far as easy, its
// conditions hold.
v1::AuthorizeRequest RequestFor(const v1::Rule& rule) {
  v1::AuthorizeRequest r;
  const v1::Target& target = rule.target();
  r.mutable_resource()->set_type(target.resource_types().empty()
                                     ? "order" : Instance(target.resource_types(0)));
  r.set_action(target.actions().empty() ? "read" : Instance(target.actions(0)));
  r.mutable_subject()->set_id("alice");
  r.mutable_resource()->set_id("o-1");
  for (const std::string& role : target.roles()) r.mutable_subject()->add_roles(role);

  const v1::Conditions& c = rule.conditions();
  if (!c.time_windows().empty()) {
    // The window's start on the first listed day of a June 2024 week.
    const v1::TimeWindow& w = c.time_windows(0);
    absl::TimeZone zone;
    if (absl::LoadTimeZone(w.time_zone(), &zone) && w.start().size() == 5) {
      const int hour = std::atoi(w.start().substr(0, 2).c_str());
      const int minute = std::atoi(w.start().substr(3, 2).c_str());
      int offset = 0;  // 2024-06-10 is a Monday
      if (!w.days().empty()) {
        static const char* kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
        for (int d = 0; d < 7; ++d) {
          if (absl::StartsWith(absl::AsciiStrToLower(w.days(0)), kDays[d])) offset = d;
        }
      }
      const absl::Time t =
          absl::FromCivil(absl::CivilMinute(2024, 6, 10 + offset, hour, minute), zone);
      r.mutable_environment()->mutable_time()->set_seconds(absl::ToUnixSeconds(t));
    }
  }
  if (c.has_location() && !c.location().in().empty()) {
    const std::string& entry = c.location().in(0);
    r.mutable_environment()->mutable_location()->set_country(entry.substr(0, 2));
    if (entry.size() > 3) r.mutable_environment()->mutable_location()->set_region(entry);
  }
  if (c.has_client_ip()) {
    const std::string& block = !c.client_ip().in().empty() ? c.client_ip().in(0) : "192.0.2.1";
    r.mutable_environment()->set_client_ip(block.substr(0, block.find('/')));
  }
  for (const v1::AttributeCondition& a : c.attributes()) {
    if (!a.other().empty()) {
      Value v;
      v.set_string_value("same");
      SetAttribute(a.attribute(), v, &r);
      SetAttribute(a.other(), v, &r);
    } else if (a.value().kind_case() == Value::kListValue) {
      if (a.value().list_value().values_size() > 0) {
        SetAttribute(a.attribute(), a.value().list_value().values(0), &r);
      }
    } else if (a.op() != "exists" && a.op() != "regex") {
      SetAttribute(a.attribute(), a.value(), &r);
    } else {
      Value v;
      v.set_string_value("x");
      SetAttribute(a.attribute(), v, &r);
    }
  }
  return r;
}

void CheckRuleSet(const v1::RuleSet& rule_set) {
  engine::CompileResult result = engine::Compile(rule_set, {.version = 7});
  if (!result.ok()) {
    if (result.errors.empty() || result.policy != nullptr) {
      Fail("a failed compile without errors, or with a policy", rule_set, nullptr);
    }
    const absl::Status status = result.ToStatus();
    if (status.code() != absl::StatusCode::kInvalidArgument) {
      Fail("a failed compile is not INVALID_ARGUMENT", rule_set, nullptr);
    }
    for (const engine::CompileError& e : result.errors) {
      if (e.field.empty() || e.message.empty()) {
        Fail("a compile error without field or message: " + e.ToString(), rule_set, nullptr);
      }
    }
    return;
  }
  const engine::Policy& policy = *result.policy;
  if (policy.name() != rule_set.name() ||
      policy.rule_count() != static_cast<size_t>(rule_set.rules_size()) ||
      policy.version() != 7 || policy.memory_bytes() == 0) {
    Fail("the policy's name, rule count, version or size is wrong", rule_set, nullptr);
  }
  for (const v1::AuthorizeRequest& request : *fixed_requests) {
    CheckEvaluation(rule_set, policy, request);
  }
  const int aimed = std::min(rule_set.rules_size(), 8);
  for (int i = 0; i < aimed; ++i) {
    v1::AuthorizeRequest request = RequestFor(rule_set.rules(i));
    CheckEvaluation(rule_set, policy, request);
    // The same with each context field malformed (errors for the rules
    // that need it).
    request.mutable_environment()->set_client_ip("300.1.2.3");
    request.mutable_environment()->mutable_location()->set_country("D1");
    request.mutable_environment()->mutable_time()->set_nanos(-1);
    CheckEvaluation(rule_set, policy, request);
  }
}

void WriteBinarySeeds(const std::string& dir) {
  for (const std::string& path : ListDir(dir, ".json")) {
    absl::StatusOr<v1::RuleSet> parsed = engine::ParseRuleSetJson(ReadFile(path));
    if (!parsed.ok()) continue;
    std::ofstream out(path.substr(0, path.size() - 5) + ".pb", std::ios::binary);
    out << parsed->SerializeAsString();
  }
}

}  // namespace
}  // namespace pdp::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pdp::fuzz::QuietProtobufLogs();
  pdp::fuzz::MakeFixedRequests();
  if (const char* dir = std::getenv("PDP_FUZZ_BINARY_SEEDS")) {
    pdp::fuzz::WriteBinarySeeds(dir);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<pdp::v1::RuleSet> parsed = pdp::engine::ParseRuleSetJson(bytes);
  if (parsed.ok()) pdp::fuzz::CheckRuleSet(*parsed);

  pdp::v1::RuleSet binary;
  if (binary.ParseFromArray(data, static_cast<int>(size))) {
    pdp::fuzz::CheckRuleSet(binary);
  }
  return 0;
}
