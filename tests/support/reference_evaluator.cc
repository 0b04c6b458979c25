// The naive reference evaluator (see reference_evaluator.h). Every function
// here mirrors one sentence or table row of the README's "Rule model"
// section; nothing is cached or indexed between calls.
#include "tests/support/reference_evaluator.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "re2/re2.h"

namespace pdp::testing {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Value;

// The three outcomes of a condition and of a rule: holds / applicable,
// does not hold / not applicable, and error.
enum class Outcome { kTrue, kFalse, kError };

// ---------------------------------------------------------------- Targets

// "Each entry is an exact value, `*` (anything) or a prefix ending in `*`."
bool PatternMatches(const std::string& pattern, const std::string& value) {
  if (pattern == "*") return true;
  if (!pattern.empty() && pattern.back() == '*') {
    return absl::StartsWith(value, pattern.substr(0, pattern.size() - 1));
  }
  return pattern == value;
}

bool AnyPatternMatches(const google::protobuf::RepeatedPtrField<std::string>&
                           patterns,
                       const std::string& value) {
  for (const std::string& pattern : patterns) {
    if (PatternMatches(pattern, value)) return true;
  }
  return false;
}

bool TargetMatches(const v1::Target& target,
                   const v1::AuthorizeRequest& request) {
  if (!AnyPatternMatches(target.resource_types(), request.resource().type())) {
    return false;
  }
  if (!AnyPatternMatches(target.actions(), request.action())) return false;
  // "The subject must hold at least one; empty means any subject."
  if (target.roles().empty()) return true;
  for (const std::string& wanted : target.roles()) {
    for (const std::string& held : request.subject().roles()) {
      if (wanted == held) return true;
    }
  }
  return false;
}

// ----------------------------------------------------------- Time windows

// "HH:MM" (00:00..24:00) -> seconds since local midnight; -1 if malformed.
int ParseClock(const std::string& text) {
  if (text.size() != 5 || text[2] != ':') return -1;
  int hours = 0;
  int minutes = 0;
  if (!absl::SimpleAtoi(text.substr(0, 2), &hours) ||
      !absl::SimpleAtoi(text.substr(3, 2), &minutes)) {
    return -1;
  }
  if (hours < 0 || minutes < 0 || minutes > 59) return -1;
  if (hours > 24 || (hours == 24 && minutes != 0)) return -1;
  return hours * 3600 + minutes * 60;
}

// "mon".."sun" or full names. Case-insensitive for good measure.
bool DayNameIs(const std::string& name, absl::Weekday day) {
  const std::string lower = absl::AsciiStrToLower(name);
  switch (day) {
    case absl::Weekday::monday:
      return lower == "mon" || lower == "monday";
    case absl::Weekday::tuesday:
      return lower == "tue" || lower == "tuesday";
    case absl::Weekday::wednesday:
      return lower == "wed" || lower == "wednesday";
    case absl::Weekday::thursday:
      return lower == "thu" || lower == "thursday";
    case absl::Weekday::friday:
      return lower == "fri" || lower == "friday";
    case absl::Weekday::saturday:
      return lower == "sat" || lower == "saturday";
    case absl::Weekday::sunday:
      return lower == "sun" || lower == "sunday";
  }
  return false;
}

// "empty means every day".
bool DayListed(const v1::TimeWindow& window, absl::CivilDay day) {
  if (window.days().empty()) return true;
  const absl::Weekday weekday = absl::GetWeekday(day);
  for (const std::string& name : window.days()) {
    if (DayNameIs(name, weekday)) return true;
  }
  return false;
}

bool WindowHolds(const v1::TimeWindow& window, absl::Time t) {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(window.time_zone(), &zone)) return false;
  const int start = ParseClock(window.start());
  const int end = ParseClock(window.end());
  if (start < 0 || end < 0 || start == end) return false;

  // The local wall-clock time of the instant, per the zone's rules.
  const absl::CivilSecond local = absl::ToCivilSecond(t, zone);
  const absl::CivilDay today(local);
  const int64_t second_of_day = local - absl::CivilSecond(today);

  if (start < end) {
    // Start inclusive, end exclusive, within one local day.
    return DayListed(window, today) && second_of_day >= start &&
           second_of_day < end;
  }
  // Crosses midnight: opens on a listed day at `start`, closes at `end` on
  // the following day.
  if (DayListed(window, today) && second_of_day >= start) return true;
  if (DayListed(window, today - 1) && second_of_day < end) return true;
  return false;
}

// google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999999Z, nanos in [0, 1e9).
bool TimestampInRange(const google::protobuf::Timestamp& ts) {
  constexpr int64_t kMinSeconds = -62135596800;
  constexpr int64_t kMaxSeconds = 253402300799;
  return ts.seconds() >= kMinSeconds && ts.seconds() <= kMaxSeconds &&
         ts.nanos() >= 0 && ts.nanos() <= 999999999;
}

// "at least one must hold". The request time is environment.time, or `now`
// when absent; an out-of-range time is an error.
Outcome EvalTimeWindows(
    const google::protobuf::RepeatedPtrField<v1::TimeWindow>& windows,
    const v1::AuthorizeRequest& request, absl::Time now) {
  absl::Time t = now;
  if (request.environment().has_time()) {
    const google::protobuf::Timestamp& ts = request.environment().time();
    if (!TimestampInRange(ts)) return Outcome::kError;
    t = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  }
  for (const v1::TimeWindow& window : windows) {
    if (WindowHolds(window, t)) return Outcome::kTrue;
  }
  return Outcome::kFalse;
}

// --------------------------------------------------------------- Location

bool IsAsciiAlnumString(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isalnum(c); });
}

// The request's location, normalized: country "DE", region "US-CA" or "".
struct NormalizedLocation {
  std::string country;
  std::string region;
};

enum class LocationParse { kMissing, kMalformed, kOk };

LocationParse NormalizeLocation(const v1::AuthorizeRequest& request,
                                NormalizedLocation* out) {
  if (!request.environment().has_location()) return LocationParse::kMissing;
  const v1::Location& location = request.environment().location();
  if (location.country().empty() && location.region().empty()) {
    return LocationParse::kMissing;
  }
  // "a country that is not two letters" is malformed; so is "a region
  // without a country".
  const std::string& country = location.country();
  if (country.size() != 2 || !absl::ascii_isalpha(country[0]) ||
      !absl::ascii_isalpha(country[1])) {
    return LocationParse::kMalformed;
  }
  out->country = absl::AsciiStrToUpper(country);
  out->region.clear();
  if (location.region().empty()) return LocationParse::kOk;

  // "US-CA" or just "CA"; "a region of another country" is malformed.
  const std::string region = absl::AsciiStrToUpper(location.region());
  std::string subdivision;
  const size_t dash = region.find('-');
  if (dash == std::string::npos) {
    subdivision = region;
  } else {
    if (region.substr(0, dash) != out->country) {
      return LocationParse::kMalformed;
    }
    subdivision = region.substr(dash + 1);
  }
  // ISO 3166-2 subdivision codes are one to three letters or digits.
  if (subdivision.empty() || subdivision.size() > 3 ||
      !IsAsciiAlnumString(subdivision)) {
    return LocationParse::kMalformed;
  }
  out->region = out->country + "-" + subdivision;
  return LocationParse::kOk;
}

// "a country entry matches all its regions".
bool LocationEntryMatches(const std::string& raw_entry,
                          const NormalizedLocation& location) {
  const std::string entry = absl::AsciiStrToUpper(raw_entry);
  if (entry.find('-') == std::string::npos) return entry == location.country;
  return !location.region.empty() && entry == location.region;
}

// "Holds when the location is in `in` (if non-empty) and in no `not_in`
// entry." A request without a location does not satisfy it.
Outcome EvalLocation(const v1::LocationCondition& condition,
                     const v1::AuthorizeRequest& request) {
  NormalizedLocation location;
  switch (NormalizeLocation(request, &location)) {
    case LocationParse::kMissing:
      return Outcome::kFalse;
    case LocationParse::kMalformed:
      return Outcome::kError;
    case LocationParse::kOk:
      break;
  }
  if (!condition.in().empty()) {
    bool found = false;
    for (const std::string& entry : condition.in()) {
      if (LocationEntryMatches(entry, location)) found = true;
    }
    if (!found) return Outcome::kFalse;
  }
  for (const std::string& entry : condition.not_in()) {
    if (LocationEntryMatches(entry, location)) return Outcome::kFalse;
  }
  return Outcome::kTrue;
}

// -------------------------------------------------------------- Client IP

// An address as inet_pton parsed it: 4 bytes for IPv4, 16 for IPv6.
struct IpAddress {
  bool is_v4 = false;
  std::array<uint8_t, 16> bytes{};
};

std::optional<IpAddress> ParseIp(const std::string& text) {
  // inet_pton reads a C string: text with a NUL in it is not an address,
  // not the address before the NUL.
  if (text.find('\0') != std::string::npos) return std::nullopt;
  IpAddress address;
  if (inet_pton(AF_INET, text.c_str(), address.bytes.data()) == 1) {
    address.is_v4 = true;
    return address;
  }
  if (inet_pton(AF_INET6, text.c_str(), address.bytes.data()) == 1) {
    address.is_v4 = false;
    return address;
  }
  return std::nullopt;
}

// ::ffff:a.b.c.d -> a.b.c.d.
std::optional<IpAddress> MappedIpv4(const IpAddress& address) {
  if (address.is_v4) return std::nullopt;
  for (int i = 0; i < 10; ++i) {
    if (address.bytes[i] != 0) return std::nullopt;
  }
  if (address.bytes[10] != 0xff || address.bytes[11] != 0xff) {
    return std::nullopt;
  }
  IpAddress v4;
  v4.is_v4 = true;
  std::copy(address.bytes.begin() + 12, address.bytes.end(), v4.bytes.begin());
  return v4;
}

struct CidrBlock {
  IpAddress base;
  int prefix_length = 0;
};

// "a.b.c.d/n", "x::y/n" or a bare address (a single host). The rule set is
// assumed valid, so this only needs to read well-formed blocks.
std::optional<CidrBlock> ParseCidr(const std::string& text) {
  CidrBlock block;
  const size_t slash = text.find('/');
  std::optional<IpAddress> base = ParseIp(text.substr(0, slash));
  if (!base.has_value()) return std::nullopt;
  block.base = *base;
  const int max_length = base->is_v4 ? 32 : 128;
  if (slash == std::string::npos) {
    block.prefix_length = max_length;
  } else if (!absl::SimpleAtoi(text.substr(slash + 1), &block.prefix_length) ||
             block.prefix_length < 0 || block.prefix_length > max_length) {
    return std::nullopt;
  }
  return block;
}

bool Bit(const std::array<uint8_t, 16>& bytes, int index) {
  return (bytes[index / 8] >> (7 - index % 8)) & 1;
}

// Compares the first prefix_length bits, one at a time.
bool SamePrefix(const IpAddress& a, const IpAddress& b, int prefix_length) {
  for (int i = 0; i < prefix_length; ++i) {
    if (Bit(a.bytes, i) != Bit(b.bytes, i)) return false;
  }
  return true;
}

// IPv4 blocks match IPv4 addresses and IPv4-mapped IPv6 addresses; IPv6
// blocks match IPv6 addresses (a mapped address is still an IPv6 address).
// An IPv4 address is in no IPv6 block, not even ::/0 or ::ffff:0:0/96: the
// README only lets mapped addresses cross over.
bool BlockContains(const std::string& block_text, const IpAddress& address) {
  std::optional<CidrBlock> block = ParseCidr(block_text);
  if (!block.has_value()) return false;
  if (block->base.is_v4) {
    if (address.is_v4) {
      return SamePrefix(block->base, address, block->prefix_length);
    }
    std::optional<IpAddress> mapped = MappedIpv4(address);
    return mapped.has_value() &&
           SamePrefix(block->base, *mapped, block->prefix_length);
  }
  return !address.is_v4 &&
         SamePrefix(block->base, address, block->prefix_length);
}

// "Holds when the client IP is in `in` (if non-empty) and in no `not_in`
// block." No client IP: does not hold. Unparsable client IP: error.
Outcome EvalClientIp(const v1::IpCondition& condition,
                     const v1::AuthorizeRequest& request) {
  const std::string& text = request.environment().client_ip();
  if (text.empty()) return Outcome::kFalse;
  std::optional<IpAddress> address = ParseIp(text);
  if (!address.has_value()) return Outcome::kError;
  if (!condition.in().empty()) {
    bool found = false;
    for (const std::string& block : condition.in()) {
      if (BlockContains(block, *address)) found = true;
    }
    if (!found) return Outcome::kFalse;
  }
  for (const std::string& block : condition.not_in()) {
    if (BlockContains(block, *address)) return Outcome::kFalse;
  }
  return Outcome::kTrue;
}

// ------------------------------------------------------------- Attributes

bool IsScalar(const Value& value) {
  return value.kind_case() == Value::kStringValue ||
         value.kind_case() == Value::kNumberValue ||
         value.kind_case() == Value::kBoolValue;
}

// "strings, numbers, bools or flat lists of those".
bool IsValidAttributeValue(const Value& value) {
  if (IsScalar(value)) return true;
  if (value.kind_case() != Value::kListValue) return false;
  for (const Value& element : value.list_value().values()) {
    if (!IsScalar(element)) return false;
  }
  return true;
}

bool AllAttributesValid(
    const google::protobuf::Map<std::string, Value>& attributes) {
  for (const auto& [name, value] : attributes) {
    if (!IsValidAttributeValue(value)) return false;
  }
  return true;
}

Value StringValue(const std::string& s) {
  Value value;
  value.set_string_value(s);
  return value;
}

// Looks up `name`. Built-ins name the request's own fields and take
// precedence; a built-in whose field is empty (proto3's "unset", which JSON
// cannot tell from an omitted field) is absent: subject.id "", resource.id
// "" and subject.roles [] alike ("an empty one (no id, no roles) is
// absent").
// Otherwise scope.NAME is looked up in that scope's attributes map.
std::optional<Value> Lookup(const v1::AuthorizeRequest& request,
                            const std::string& name) {
  if (name == "action") {
    if (request.action().empty()) return std::nullopt;
    return StringValue(request.action());
  }
  if (name == "subject.id") {
    if (request.subject().id().empty()) return std::nullopt;
    return StringValue(request.subject().id());
  }
  if (name == "subject.roles") {
    if (request.subject().roles().empty()) return std::nullopt;
    Value value;
    ListValue* list = value.mutable_list_value();
    for (const std::string& role : request.subject().roles()) {
      list->add_values()->set_string_value(role);
    }
    return value;
  }
  if (name == "resource.id") {
    if (request.resource().id().empty()) return std::nullopt;
    return StringValue(request.resource().id());
  }
  if (name == "resource.type") {
    if (request.resource().type().empty()) return std::nullopt;
    return StringValue(request.resource().type());
  }
  const size_t dot = name.find('.');
  if (dot == std::string::npos) return std::nullopt;
  const std::string scope = name.substr(0, dot);
  const std::string key = name.substr(dot + 1);
  const google::protobuf::Map<std::string, Value>* attributes = nullptr;
  if (scope == "subject") {
    attributes = &request.subject().attributes();
  } else if (scope == "resource") {
    attributes = &request.resource().attributes();
  } else if (scope == "environment") {
    attributes = &request.environment().attributes();
  } else {
    return std::nullopt;
  }
  auto it = attributes->find(key);
  if (it == attributes->end()) return std::nullopt;
  return it->second;
}

// "same type and value; lists element by element; 1 != "1"".
bool ValuesEqual(const Value& a, const Value& b) {
  if (a.kind_case() != b.kind_case()) return false;
  switch (a.kind_case()) {
    case Value::kStringValue:
      return a.string_value() == b.string_value();
    case Value::kNumberValue:
      return a.number_value() == b.number_value();
    case Value::kBoolValue:
      return a.bool_value() == b.bool_value();
    case Value::kListValue: {
      const ListValue& x = a.list_value();
      const ListValue& y = b.list_value();
      if (x.values_size() != y.values_size()) return false;
      for (int i = 0; i < x.values_size(); ++i) {
        if (!ValuesEqual(x.values(i), y.values(i))) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

// The elements an `in` / `not_in` comparand offers: a list's elements, or a
// scalar as a one-element list.
std::vector<Value> AsList(const Value& value) {
  if (value.kind_case() == Value::kListValue) {
    return {value.list_value().values().begin(),
            value.list_value().values().end()};
  }
  return {value};
}

// The values an attribute offers for in / not_in / regex: a list
// attribute's elements, or the scalar itself.
std::vector<Value> Candidates(const Value& attribute) { return AsList(attribute); }

// "the value (or, for a list attribute, any element) is in the list".
bool IsIn(const Value& attribute, const Value& list) {
  for (const Value& candidate : Candidates(attribute)) {
    for (const Value& element : AsList(list)) {
      if (ValuesEqual(candidate, element)) return true;
    }
  }
  return false;
}

// "both numbers (numeric order) or both strings (byte order); otherwise
// false". Returns <0, 0, >0, or nullopt when not comparable.
std::optional<int> Compare(const Value& a, const Value& b) {
  if (a.kind_case() == Value::kNumberValue &&
      b.kind_case() == Value::kNumberValue) {
    if (a.number_value() < b.number_value()) return -1;
    if (a.number_value() > b.number_value()) return 1;
    if (a.number_value() == b.number_value()) return 0;
    return std::nullopt;  // NaN
  }
  if (a.kind_case() == Value::kStringValue &&
      b.kind_case() == Value::kStringValue) {
    // std::string compares chars as unsigned char: byte order.
    const int c = a.string_value().compare(b.string_value());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return std::nullopt;
}

Outcome FromBool(bool b) { return b ? Outcome::kTrue : Outcome::kFalse; }

Outcome EvalAttribute(const v1::AttributeCondition& condition,
                      const v1::AuthorizeRequest& request) {
  const std::string op = absl::AsciiStrToLower(condition.op());
  const std::optional<Value> attribute = Lookup(request, condition.attribute());

  if (op == "exists") {
    // "the attribute is present (`"value": false`: absent)".
    const bool want_present =
        !condition.has_value() || condition.value().bool_value();
    return FromBool(attribute.has_value() == want_present);
  }
  // "A condition on something the request lacks does not hold."
  if (!attribute.has_value()) return Outcome::kFalse;

  if (op == "regex") {
    RE2 pattern(condition.value().string_value());
    if (!pattern.ok()) return Outcome::kFalse;
    for (const Value& candidate : Candidates(*attribute)) {
      if (candidate.kind_case() == Value::kStringValue &&
          RE2::FullMatch(candidate.string_value(), pattern)) {
        return Outcome::kTrue;
      }
    }
    return Outcome::kFalse;
  }

  Value operand;
  if (!condition.other().empty()) {
    std::optional<Value> other = Lookup(request, condition.other());
    if (!other.has_value()) return Outcome::kFalse;
    operand = *other;
  } else {
    operand = condition.value();
  }

  if (op == "eq") return FromBool(ValuesEqual(*attribute, operand));
  if (op == "ne") return FromBool(!ValuesEqual(*attribute, operand));
  if (op == "in") return FromBool(IsIn(*attribute, operand));
  if (op == "not_in") return FromBool(!IsIn(*attribute, operand));
  if (op == "contains") {
    // "the list attribute has an element equal to the value (a scalar
    // attribute: equals it)".
    for (const Value& candidate : Candidates(*attribute)) {
      if (ValuesEqual(candidate, operand)) return Outcome::kTrue;
    }
    return Outcome::kFalse;
  }
  const std::optional<int> order = Compare(*attribute, operand);
  if (!order.has_value()) return Outcome::kFalse;
  if (op == "lt") return FromBool(*order < 0);
  if (op == "le") return FromBool(*order <= 0);
  if (op == "gt") return FromBool(*order > 0);
  if (op == "ge") return FromBool(*order >= 0);
  return Outcome::kFalse;  // Unknown op: the compiler rejects it.
}

// ------------------------------------------------------------------ Rules

// Target first (a target mismatch is "not applicable"), then every present
// condition; "a condition that is false wins over one that errs".
Outcome EvalRule(const v1::Rule& rule, const v1::AuthorizeRequest& request,
                 absl::Time now) {
  if (!TargetMatches(rule.target(), request)) return Outcome::kFalse;
  const v1::Conditions& conditions = rule.conditions();
  std::vector<Outcome> outcomes;
  if (!conditions.time_windows().empty()) {
    outcomes.push_back(EvalTimeWindows(conditions.time_windows(), request, now));
  }
  if (conditions.has_location()) {
    outcomes.push_back(EvalLocation(conditions.location(), request));
  }
  if (conditions.has_client_ip()) {
    outcomes.push_back(EvalClientIp(conditions.client_ip(), request));
  }
  for (const v1::AttributeCondition& attribute : conditions.attributes()) {
    outcomes.push_back(EvalAttribute(attribute, request));
  }
  bool any_error = false;
  for (Outcome outcome : outcomes) {
    if (outcome == Outcome::kFalse) return Outcome::kFalse;
    if (outcome == Outcome::kError) any_error = true;
  }
  return any_error ? Outcome::kError : Outcome::kTrue;
}

bool IsPermit(const v1::Rule& rule) {
  return absl::AsciiStrToLower(rule.effect()) == "permit";
}

// Decision for a rule's effect.
v1::Decision EffectDecision(const v1::Rule& rule) {
  return IsPermit(rule) ? v1::PERMIT : v1::DENY;
}

// A rule and what it evaluated to, in evaluation order.
struct Evaluated {
  const v1::Rule* rule;
  Outcome outcome;
};

// Appends `rule`'s obligations that fire on `decision` ("`on` defaulting to
// the rule's effect"), in declared order.
void AddObligations(const v1::Rule& rule, v1::Decision decision,
                    v1::AuthorizeResponse* response) {
  for (const v1::Obligation& obligation : rule.obligations()) {
    const std::string on = obligation.on().empty()
                               ? absl::AsciiStrToLower(rule.effect())
                               : absl::AsciiStrToLower(obligation.on());
    const v1::Decision fires_on = on == "permit" ? v1::PERMIT : v1::DENY;
    if (fires_on != decision) continue;
    v1::ObligationResult* result = response->add_obligations();
    result->set_type(obligation.type());
    *result->mutable_params() = obligation.params();
    result->set_rule_id(rule.id());
  }
}

// Sets the decision; determining_rules are `determining` in order, and (for
// PERMIT / DENY) obligations follow them rule by rule.
void Decide(v1::Decision decision, const std::vector<const v1::Rule*>& determining,
            v1::AuthorizeResponse* response) {
  response->set_decision(decision);
  for (const v1::Rule* rule : determining) {
    response->add_determining_rules(rule->id());
  }
  if (decision != v1::PERMIT && decision != v1::DENY) return;
  for (const v1::Rule* rule : determining) {
    AddObligations(*rule, decision, response);
  }
}

// deny-overrides with `first` = DENY, permit-overrides with `first` = PERMIT:
// an applicable `first` rule; else an erring `first` rule (INDETERMINATE);
// else an applicable `second` rule; else an erring `second` rule
// (INDETERMINATE); else NOT_APPLICABLE. INDETERMINATE lists every erring
// rule.
void CombineOverrides(const std::vector<Evaluated>& evaluated,
                      v1::Decision first, v1::AuthorizeResponse* response) {
  const v1::Decision second = first == v1::DENY ? v1::PERMIT : v1::DENY;
  auto collect = [&](v1::Decision effect, Outcome outcome) {
    std::vector<const v1::Rule*> rules;
    for (const Evaluated& e : evaluated) {
      if (EffectDecision(*e.rule) == effect && e.outcome == outcome) {
        rules.push_back(e.rule);
      }
    }
    return rules;
  };
  std::vector<const v1::Rule*> all_erring;
  for (const Evaluated& e : evaluated) {
    if (e.outcome == Outcome::kError) all_erring.push_back(e.rule);
  }
  if (auto rules = collect(first, Outcome::kTrue); !rules.empty()) {
    Decide(first, rules, response);
  } else if (!collect(first, Outcome::kError).empty()) {
    Decide(v1::INDETERMINATE, all_erring, response);
  } else if (auto rules2 = collect(second, Outcome::kTrue); !rules2.empty()) {
    Decide(second, rules2, response);
  } else if (!collect(second, Outcome::kError).empty()) {
    Decide(v1::INDETERMINATE, all_erring, response);
  } else {
    Decide(v1::NOT_APPLICABLE, {}, response);
  }
}

std::string NormalizedAlgorithm(const std::string& name) {
  if (name.empty()) return "deny-overrides";
  return absl::StrReplaceAll(absl::AsciiStrToLower(name), {{"_", "-"}});
}

bool RequestIsValid(const v1::AuthorizeRequest& request) {
  return !request.action().empty() && !request.resource().type().empty() &&
         AllAttributesValid(request.subject().attributes()) &&
         AllAttributesValid(request.resource().attributes()) &&
         AllAttributesValid(request.environment().attributes());
}

}  // namespace

v1::AuthorizeResponse ReferenceEvaluate(const v1::RuleSet& rules,
                                        const v1::AuthorizeRequest& request,
                                        absl::Time now) {
  v1::AuthorizeResponse response;
  response.set_rule_set(rules.name());
  if (!RequestIsValid(request)) {
    response.set_decision(v1::INDETERMINATE);
    return response;
  }

  const std::string algorithm = NormalizedAlgorithm(rules.combining_algorithm());

  // Evaluation order: file order, or priority (higher first, ties in file
  // order) under first-applicable.
  std::vector<const v1::Rule*> order;
  for (const v1::Rule& rule : rules.rules()) order.push_back(&rule);
  if (algorithm == "first-applicable") {
    std::stable_sort(order.begin(), order.end(),
                     [](const v1::Rule* a, const v1::Rule* b) {
                       return a->priority() > b->priority();
                     });
  }

  std::vector<Evaluated> evaluated;
  for (const v1::Rule* rule : order) {
    evaluated.push_back({rule, EvalRule(*rule, request, now)});
  }

  if (algorithm == "first-applicable") {
    for (const Evaluated& e : evaluated) {
      if (e.outcome == Outcome::kTrue) {
        Decide(EffectDecision(*e.rule), {e.rule}, &response);
        return response;
      }
      if (e.outcome == Outcome::kError) {
        Decide(v1::INDETERMINATE, {e.rule}, &response);
        return response;
      }
    }
    Decide(v1::NOT_APPLICABLE, {}, &response);
  } else if (algorithm == "permit-overrides") {
    CombineOverrides(evaluated, v1::PERMIT, &response);
  } else {
    CombineOverrides(evaluated, v1::DENY, &response);
  }
  return response;
}

}  // namespace pdp::testing
