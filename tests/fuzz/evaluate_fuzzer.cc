// libFuzzer target for evaluation, with the reference evaluator as the
// oracle. The input drives, through FuzzedDataProvider:
//   - a seed for tests/support/random_rules (RandomRuleSet, RandomRequest),
//     so every input starts from a realistic rule set and requests;
//   - byte-chosen edits of the rule set (odd literals such as NaN, -0 and
//     huge numbers, fuzzed regexes, CIDRs, location entries, time windows,
//     patterns, priorities, duplicated or deleted rules, ...); a set the
//     compiler rejects is skipped, but the unedited generated set must
//     compile;
//   - byte-chosen edits of each request (fuzzed action, resource type,
//     roles, client IP, location, time, attribute values including invalid
//     ones).
// Every request is checked by fuzz::CheckEvaluation: the engine must agree
// with the reference evaluator on decision, determining_rules and
// obligations, with and without explain; an invalid request must be
// INDETERMINATE (never PERMIT); the explain trace must cover exactly the
// candidate rules.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/compiler.h"
#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"
#include "tests/fuzz/fuzz_checks.h"
#include "tests/support/random_rules.h"

namespace pdp::fuzz {
namespace {

using google::protobuf::Value;

const std::vector<std::string> kTypes = {"order", "invoice", "reports:daily", "reports:",
                                         "user", "*", "reports:*", "inv*", ""};
const std::vector<std::string> kActions = {"read", "write", "orders:list", "orders:",
                                           "admin:purge", "*", "orders:*", "Read", ""};
const std::vector<std::string> kRoles = {"admin", "support", "auditor", "guest", "Admin", ""};
const std::vector<std::string> kAttributes = {
    "subject.department", "subject.clearance", "subject.groups", "subject.mfa",
    "subject.region",     "resource.owner",    "resource.region", "resource.tags",
    "environment.risk",   "subject.id",        "subject.roles",   "resource.id",
    "resource.type",      "action",            "subject.x.y",     "environment.time"};
const std::vector<std::string> kOps = {"eq", "ne", "in",    "not_in", "contains", "lt",
                                       "le", "gt", "ge",    "regex",  "exists",   "EQ",
                                       "In", "Not_In", "matches"};
const std::vector<std::string> kStrings = {"eng", "ops", "alice", "", "Ops", "o-1",
                                           "\xc3\xa9t\xc3\xa9", std::string("a\0b", 3), "read",
                                           "order"};
const std::vector<std::string> kRegexes = {"e.*", "(a|b)*c", "\\d+", ".*", "", "(?i)ops",
                                           "\\C", "a{1000}", "[[:alpha:]]+", "\\pL+"};
const std::vector<std::string> kZones = {"UTC", "Europe/Berlin", "America/New_York",
                                         "Australia/Lord_Howe", "Asia/Kathmandu",
                                         "Pacific/Chatham", "Etc/GMT+12", "Pacific/Kiritimati"};
const std::vector<std::string> kLocations = {"DE", "US", "US-CA", "us-ca", "FR-IDF", "AT-9",
                                             "GB", "DE-BY", "CA"};
const std::vector<std::string> kAlgorithms = {"deny-overrides", "permit-overrides",
                                              "first-applicable", "", "FIRST_APPLICABLE"};

class Fuzz {
 public:
  explicit Fuzz(FuzzedDataProvider& in) : in_(in) {}

  int Int(int lo, int hi) { return in_.ConsumeIntegralInRange(lo, hi); }
  bool Bool() { return in_.ConsumeBool(); }
  template <typename T>
  const T& Pick(const std::vector<T>& pool) {
    return pool[Int(0, static_cast<int>(pool.size()) - 1)];
  }
  std::string String(size_t max = 16) { return in_.ConsumeRandomLengthString(max); }
  std::string PoolOrFuzz(const std::vector<std::string>& pool) {
    switch (Int(0, 3)) {
      case 0: return String();
      case 1: return Pick(pool) + String(4);
      default: return Pick(pool);
    }
  }

  double Number() {
    static const double kSpecial[] = {0.0,
                                      -0.0,
                                      1,
                                      -1,
                                      2.5,
                                      1e308,
                                      -1e308,
                                      std::numeric_limits<double>::infinity(),
                                      -std::numeric_limits<double>::infinity(),
                                      std::numeric_limits<double>::quiet_NaN(),
                                      std::numeric_limits<double>::denorm_min(),
                                      9007199254740992.0,
                                      9007199254740993.0,
                                      2147483648.0};
    switch (Int(0, 2)) {
      case 0: return kSpecial[Int(0, std::size(kSpecial) - 1)];
      case 1: return in_.ConsumeFloatingPoint<double>();
      default: return Int(-3, 10);
    }
  }

  Value Scalar() {
    Value v;
    switch (Int(0, 2)) {
      case 0: v.set_string_value(PoolOrFuzz(kStrings)); break;
      case 1: v.set_number_value(Number()); break;
      default: v.set_bool_value(Bool()); break;
    }
    return v;
  }

  // A value; with `allow_invalid`, sometimes one the README rejects.
  Value AnyValue(bool allow_invalid) {
    Value v;
    switch (Int(0, allow_invalid ? 8 : 5)) {
      case 0:
      case 1:
      case 2:
        return Scalar();
      case 3:
      case 4:
        for (int n = Int(0, 3); n > 0; --n) *v.mutable_list_value()->add_values() = Scalar();
        return v;
      case 5:
        for (int n = Int(0, 3); n > 0; --n) {
          v.mutable_list_value()->add_values()->set_string_value(Pick(kStrings));
        }
        return v;
      case 6:
        v.set_null_value(google::protobuf::NULL_VALUE);
        return v;
      case 7:
        (*v.mutable_struct_value()->mutable_fields())["a"] = Scalar();
        return v;
      default:
        if (Bool()) return v;  // no kind at all
        *v.mutable_list_value()->add_values() = Scalar();
        v.mutable_list_value()->add_values()->mutable_list_value();
        return v;
    }
  }

  // "a.b.c.d/n" or "x::y/n" with the host bits cleared, or fuzzed text.
  std::string Cidr() {
    if (Int(0, 5) == 0) return String(24);
    const bool v4 = Bool();
    const int bytes = v4 ? 4 : 16;
    unsigned char a[16] = {};
    for (int i = 0; i < bytes; ++i) a[i] = in_.ConsumeIntegral<uint8_t>();
    const int length = Int(0, bytes * 8);
    for (int bit = length; bit < bytes * 8; ++bit) {
      a[bit / 8] &= static_cast<unsigned char>(~(1u << (7 - bit % 8)));
    }
    return absl::StrCat(Address(a, v4), "/", length);
  }

  std::string Address(const unsigned char* a, bool v4) {
    if (v4) return absl::StrFormat("%d.%d.%d.%d", a[0], a[1], a[2], a[3]);
    std::string out;
    for (int i = 0; i < 16; i += 2) {
      absl::StrAppendFormat(&out, "%s%x", i ? ":" : "", a[i] << 8 | a[i + 1]);
    }
    return out;
  }

  std::string ClientIp() {
    unsigned char a[16] = {};
    switch (Int(0, 4)) {
      case 0: return String(48);
      case 1:
        for (int i = 0; i < 4; ++i) a[i] = in_.ConsumeIntegral<uint8_t>();
        return Address(a, true);
      case 2:
        for (int i = 0; i < 4; ++i) a[i] = in_.ConsumeIntegral<uint8_t>();
        return "::ffff:" + Address(a, true);
      default:
        for (int i = 0; i < 16; ++i) a[i] = in_.ConsumeIntegral<uint8_t>();
        if (Bool()) {  // near the generator's anchors
          a[0] = 0x20, a[1] = 0x01, a[2] = 0x0d, a[3] = 0xb8;
        }
        return Address(a, false);
    }
  }

  std::string Clock() {
    if (Int(0, 7) == 0) return String(6);
    return absl::StrFormat("%02d:%02d", Int(0, 24), Int(0, 3) == 0 ? Int(0, 59) : 30 * Int(0, 1));
  }

  v1::Rule* SomeRule(v1::RuleSet* rules) {
    if (rules->rules().empty()) return nullptr;
    return rules->mutable_rules(Int(0, rules->rules_size() - 1));
  }

  // One edit of the rule set; false when it could not apply.
  bool EditRuleSet(v1::RuleSet* rules) {
    const int op = Int(0, 13);
    if (op == 0) {
      rules->set_combining_algorithm(Pick(kAlgorithms));
      return true;
    }
    v1::Rule* rule = SomeRule(rules);
    if (rule == nullptr) return false;
    v1::Conditions* c = rule->mutable_conditions();
    switch (op) {
      case 1:
        rule->set_effect(Pick(std::vector<std::string>{"permit", "deny", "Permit", "DENY"}));
        for (v1::Obligation& o : *rule->mutable_obligations()) o.clear_on();
        break;
      case 2:
        rule->set_priority(Bool() ? in_.ConsumeIntegral<int32_t>() : Int(-2, 2));
        break;
      case 3: {
        v1::AttributeCondition* a = c->add_attributes();
        a->set_attribute(Int(0, 5) == 0 ? String() : Pick(kAttributes));
        a->set_op(Pick(kOps));
        if (Int(0, 3) == 0) {
          a->set_other(Pick(kAttributes));
        } else if (a->op() == "exists") {
          if (Bool()) a->mutable_value()->set_bool_value(Bool());
        } else if (a->op() == "in" || a->op() == "not_in" || a->op() == "In") {
          Value* list = a->mutable_value();
          list->mutable_list_value();
          for (int n = Int(1, 4); n > 0; --n) *list->mutable_list_value()->add_values() = Scalar();
        } else {
          *a->mutable_value() = AnyValue(Int(0, 7) == 0);
        }
        break;
      }
      case 4: {
        v1::AttributeCondition* a = c->add_attributes();
        a->set_attribute(Pick(kAttributes));
        a->set_op("regex");
        a->mutable_value()->set_string_value(Bool() ? Pick(kRegexes) : String(24));
        break;
      }
      case 5:
        if (Bool()) {
          c->mutable_client_ip()->add_in(Cidr());
        } else {
          c->mutable_client_ip()->add_not_in(Cidr());
        }
        break;
      case 6: {
        const std::string entry = Int(0, 3) == 0 ? String(6) : Pick(kLocations);
        if (Bool()) {
          c->mutable_location()->add_in(entry);
        } else {
          c->mutable_location()->add_not_in(entry);
        }
        break;
      }
      case 7: {
        v1::TimeWindow* w = c->add_time_windows();
        for (int n = Int(0, 3); n > 0; --n) {
          w->add_days(Pick(std::vector<std::string>{"mon", "tue", "sat", "sun", "Friday"}));
        }
        w->set_start(Clock());
        w->set_end(Clock());
        w->set_time_zone(Int(0, 7) == 0 ? String() : Pick(kZones));
        break;
      }
      case 8:
        if (Bool()) {
          rule->mutable_target()->add_resource_types(PoolOrFuzz(kTypes) + (Bool() ? "*" : ""));
        } else {
          rule->mutable_target()->add_actions(PoolOrFuzz(kActions) + (Bool() ? "*" : ""));
        }
        break;
      case 9:
        rule->mutable_target()->add_roles(PoolOrFuzz(kRoles));
        break;
      case 10:
        if (rules->rules_size() < 2) return false;
        rules->mutable_rules()->DeleteSubrange(Int(0, rules->rules_size() - 1), 1);
        break;
      case 11: {
        v1::Rule copy = *rule;
        copy.set_id(absl::StrCat("dup.", rules->rules_size()));
        *rules->add_rules() = copy;
        break;
      }
      case 12:
        rule->clear_conditions();
        break;
      default: {
        v1::Obligation* o = rule->add_obligations();
        o->set_type(Bool() ? "audit" : String(12));
        (*o->mutable_params()->mutable_fields())[String(8)] = AnyValue(false);
        break;
      }
    }
    return true;
  }

  google::protobuf::Map<std::string, Value>* SomeMap(v1::AuthorizeRequest* r) {
    switch (Int(0, 2)) {
      case 0: return r->mutable_subject()->mutable_attributes();
      case 1: return r->mutable_resource()->mutable_attributes();
      default: return r->mutable_environment()->mutable_attributes();
    }
  }

  void EditRequest(v1::AuthorizeRequest* r) {
    switch (Int(0, 10)) {
      case 0:
        r->set_action(PoolOrFuzz(kActions));
        break;
      case 1:
        r->mutable_resource()->set_type(PoolOrFuzz(kTypes));
        break;
      case 2:
        if (Bool()) {
          r->mutable_subject()->add_roles(PoolOrFuzz(kRoles));
        } else {
          r->mutable_subject()->clear_roles();
        }
        break;
      case 3:
        if (Bool()) {
          r->mutable_subject()->set_id(PoolOrFuzz(kStrings));
        } else {
          r->mutable_resource()->set_id(PoolOrFuzz(kStrings));
        }
        break;
      case 4:
        r->mutable_environment()->set_client_ip(Int(0, 5) == 0 ? "" : ClientIp());
        break;
      case 5: {
        v1::Location* l = r->mutable_environment()->mutable_location();
        l->set_country(Int(0, 3) == 0 ? String(3) : Pick(kLocations).substr(0, 2));
        l->set_region(Bool() ? String(7) : Pick(kLocations));
        break;
      }
      case 6: {
        auto* ts = r->mutable_environment()->mutable_time();
        switch (Int(0, 3)) {
          case 0:
            ts->set_seconds(in_.ConsumeIntegral<int64_t>());
            ts->set_nanos(in_.ConsumeIntegral<int32_t>());
            break;
          case 1:  // a whole or half hour in 2024, give or take a second
            ts->set_seconds(1704067200 + Int(0, 366 * 48) * 1800 + Int(-1, 1));
            ts->set_nanos(0);
            break;
          case 2:  // the edges of Timestamp's range
            ts->set_seconds(Bool() ? 253402300799 + Int(-1, 1) : -62135596800 + Int(-1, 1));
            ts->set_nanos(Bool() ? 999999999 + Int(0, 1) : Int(-1, 0));
            break;
          default:
            r->mutable_environment()->clear_time();
            break;
        }
        break;
      }
      case 7:
      case 8: {
        const std::string& name = Pick(kAttributes);
        const std::string key =
            Int(0, 3) == 0 ? String(8) : name.substr(name.find('.') + 1);
        (*SomeMap(r))[key] = AnyValue(Int(0, 4) == 0);
        break;
      }
      case 9: {
        auto* map = SomeMap(r);
        if (!map->empty()) map->erase(map->begin());
        break;
      }
      default:
        r->set_explain(Bool());
        break;
    }
  }

 private:
  FuzzedDataProvider& in_;
};

}  // namespace
}  // namespace pdp::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pdp::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pdp;
  FuzzedDataProvider in(data, size);
  fuzz::Fuzz f(in);
  std::mt19937_64 rng(in.ConsumeIntegral<uint64_t>());

  testing::RandomRuleSetOptions rule_options;
  rule_options.max_rules = f.Int(1, 40);
  v1::RuleSet rules = testing::RandomRuleSet(rng, rule_options);
  bool edited = false;
  for (int n = f.Int(0, 6); n > 0; --n) edited |= f.EditRuleSet(&rules);

  engine::CompileResult compiled = engine::Compile(rules, {.version = 3});
  if (!compiled.ok()) {
    if (!edited) {
      fuzz::Fail("the generated rule set does not compile:\n" +
                     std::string(compiled.ToStatus().message()),
                 rules, nullptr);
    }
    return 0;
  }

  testing::RandomRequestOptions request_options;
  request_options.invalid_probability = f.Bool() ? 0.015 : 0.2;
  for (int i = f.Int(1, 8); i > 0; --i) {
    v1::AuthorizeRequest request = testing::RandomRequest(rng, request_options);
    for (int n = f.Int(0, 4); n > 0; --n) f.EditRequest(&request);
    fuzz::CheckEvaluation(rules, *compiled.policy, request);
  }
  return 0;
}
