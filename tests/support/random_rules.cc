// Random rule sets and requests for the differential test (see
// random_rules.h). The pools below are shared between rules and requests so
// that a random request often hits a random rule's target and conditions.
#include "tests/support/random_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"

namespace pdp::testing {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

// ------------------------------------------------------------------ Pools

const std::vector<std::string> kResourceTypes = {
    "order", "invoice", "reports:daily", "reports:weekly", "reports:", "user",
    "audit"};
const std::vector<std::string> kResourceTypePatterns = {
    "order", "invoice", "reports:*", "*", "user", "reports:daily", "inv*"};
const std::vector<std::string> kActions = {
    "read", "write", "delete", "orders:list", "orders:export", "admin:purge",
    "orders:", "Read"};
const std::vector<std::string> kActionPatterns = {
    "read", "write", "orders:*", "*", "delete", "admin:*", "orders:list"};
const std::vector<std::string> kRoles = {"admin",   "support", "auditor",
                                         "developer", "manager", "guest",
                                         "billing"};

const std::vector<std::string> kZones = {"UTC", "Europe/Berlin",
                                         "America/New_York",
                                         "Australia/Sydney", "Asia/Kolkata"};
// Window boundaries, including the hours DST changes skip or repeat.
const std::vector<std::string> kClock = {
    "00:00", "01:00", "01:30", "02:00", "02:30", "03:00", "06:00", "08:00",
    "09:00", "12:30", "17:00", "18:00", "22:00", "23:30"};
const std::vector<std::string> kShortDays = {"mon", "tue", "wed", "thu",
                                             "fri", "sat", "sun"};
const std::vector<std::string> kLongDays = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
    "sunday"};

// Countries and their regions (subdivision codes).
const std::vector<std::pair<std::string, std::vector<std::string>>>
    kCountries = {{"DE", {"BY", "BE"}},  {"AT", {"9"}},
                  {"US", {"CA", "NY"}},  {"FR", {"IDF"}},
                  {"IN", {"MH", "KA"}},  {"AU", {"NSW"}},
                  {"GB", {"LND"}}};

// CIDR anchors: rule blocks are anchors with the host bits cleared, request
// addresses are anchors with some low bits flipped.
const std::vector<std::array<uint8_t, 4>> kV4Anchors = {
    {10, 66, 1, 130}, {192, 168, 1, 7}, {172, 20, 5, 9}, {203, 0, 113, 200},
    {8, 8, 8, 8}};
const std::vector<std::array<uint8_t, 16>> kV6Anchors = {
    {0x20, 0x01, 0x0d, 0xb8, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 1},
    {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42},
    {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2},
    {0x20, 0x01, 0x0d, 0xb8, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}};
const std::vector<std::string> kMalformedIps = {
    "300.1.1.1", "abc", "1.2.3", "10.0.0.1/8", "2001:db8::g",
    "::ffff:300.1.1.1", "1.2.3.4.5", "2001:db8:::1"};

// Attribute names a rule may test, with the type their values usually have.
enum class Kind { kString, kNumber, kBool, kStringList, kMixedList };
struct AttributeSpec {
  std::string name;
  Kind kind;
};
const std::vector<AttributeSpec> kRequestAttributes = {
    {"subject.department", Kind::kString}, {"subject.clearance", Kind::kNumber},
    {"subject.groups", Kind::kStringList}, {"subject.mfa", Kind::kBool},
    {"subject.region", Kind::kString},     {"resource.owner", Kind::kString},
    {"resource.region", Kind::kString},    {"resource.classification", Kind::kNumber},
    {"resource.tags", Kind::kMixedList},   {"environment.channel", Kind::kString},
    {"environment.risk", Kind::kNumber},
    // A key longer than the engine keeps inline in a condition's head.
    {"subject.organisational_unit_identifier", Kind::kString}};
// Built-ins and a name no request carries.
const std::vector<AttributeSpec> kExtraRuleAttributes = {
    {"subject.id", Kind::kString},     {"subject.roles", Kind::kStringList},
    {"resource.id", Kind::kString},    {"resource.type", Kind::kString},
    {"action", Kind::kString},         {"subject.nonexistent", Kind::kString}};

const std::vector<std::string> kStrings = {
    "eng", "sales", "ops", "alice", "bob", "eu", "us", "pii", "public",
    "read", "order", "admin", "o-1", "", "Ops", "\xc3\xa9t\xc3\xa9",
    // Longer than the engine keeps inline in a condition's head (22 bytes),
    // and that one's first 22 bytes.
    "a-string-longer-than-twenty-two-bytes", "a-string-longer-than-t"};
// -0 equals 0 in every comparison.
const std::vector<double> kNumbers = {0, 1, 2, 3, 2.5, -1, 10, -0.0};
const std::vector<std::string> kRegexes = {
    "e.*", "[a-c].*", "al(i|e)ce", "\\d+", "ops|eng", ".*", "r.a.",
    "orders:.*", "p.*", "o-\\d"};
const std::vector<std::string> kFieldPaths = {
    "customer.card_number", "customer.email", "items.price", "notes", "ssn"};

// A thin helper over the engine so every draw reads plainly.
class Random {
 public:
  explicit Random(std::mt19937_64& rng) : rng_(rng) {}

  // True with probability p.
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  // Uniform in [lo, hi].
  int Int(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  int64_t Int64(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  template <typename T>
  const T& Pick(const std::vector<T>& pool) {
    return pool[Int(0, static_cast<int>(pool.size()) - 1)];
  }
  // Up to `max_count` distinct elements of `pool`, in pool order.
  template <typename T>
  std::vector<T> Subset(const std::vector<T>& pool, int min_count,
                        int max_count) {
    std::vector<int> indices(pool.size());
    for (size_t i = 0; i < pool.size(); ++i) indices[i] = static_cast<int>(i);
    std::shuffle(indices.begin(), indices.end(), rng_);
    const int count = Int(min_count, std::min<int>(max_count, pool.size()));
    indices.resize(count);
    std::sort(indices.begin(), indices.end());
    std::vector<T> out;
    for (int i : indices) out.push_back(pool[i]);
    return out;
  }

 private:
  std::mt19937_64& rng_;
};

// ----------------------------------------------------------------- Values

Value StringValue(const std::string& s) {
  Value v;
  v.set_string_value(s);
  return v;
}
Value NumberValue(double d) {
  Value v;
  v.set_number_value(d);
  return v;
}
Value BoolValue(bool b) {
  Value v;
  v.set_bool_value(b);
  return v;
}

Value RandomScalar(Random& r) {
  switch (r.Int(0, 5)) {
    case 0:
    case 1:
    case 2:
      return StringValue(r.Pick(kStrings));
    case 3:
    case 4:
      return NumberValue(r.Pick(kNumbers));
    default:
      return BoolValue(r.Chance(0.5));
  }
}

Value RandomList(Random& r, bool strings_only, int max_size) {
  Value v;
  ListValue* list = v.mutable_list_value();
  const int size = r.Int(0, max_size);
  for (int i = 0; i < size; ++i) {
    *list->add_values() =
        strings_only ? StringValue(r.Pick(kStrings)) : RandomScalar(r);
  }
  return v;
}

// A value of the given kind; with probability `stray`, of a random kind
// (a random scalar kind when `scalar_only`).
Value RandomValueOfKind(Random& r, Kind kind, double stray,
                        bool scalar_only = false) {
  if (r.Chance(stray)) {
    kind = static_cast<Kind>(r.Int(0, scalar_only ? 2 : 4));
  }
  switch (kind) {
    case Kind::kString:
      return StringValue(r.Pick(kStrings));
    case Kind::kNumber:
      return NumberValue(r.Pick(kNumbers));
    case Kind::kBool:
      return BoolValue(r.Chance(0.5));
    case Kind::kStringList:
      return RandomList(r, /*strings_only=*/true, 3);
    case Kind::kMixedList:
      return RandomList(r, /*strings_only=*/false, 3);
  }
  return StringValue("");
}

// A non-empty list literal for in / not_in: usually short, sometimes longer
// than the engine keeps inline in a condition's head.
Value RandomListLiteral(Random& r, Kind kind) {
  Value v;
  ListValue* list = v.mutable_list_value();
  const int size = r.Chance(0.15) ? r.Int(5, 40) : r.Int(1, 4);
  const Kind element_kind =
      kind == Kind::kStringList ? Kind::kString
      : kind == Kind::kMixedList ? static_cast<Kind>(r.Int(0, 2))
                                 : kind;
  for (int i = 0; i < size; ++i) {
    *list->add_values() =
        RandomValueOfKind(r, element_kind, 0.2, /*scalar_only=*/true);
  }
  return v;
}

// -------------------------------------------------------------- Addresses

std::string FormatV4(const std::array<uint8_t, 4>& bytes) {
  char buffer[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, bytes.data(), buffer, sizeof(buffer));
  return buffer;
}

std::string FormatV6(const std::array<uint8_t, 16>& bytes) {
  char buffer[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, bytes.data(), buffer, sizeof(buffer));
  return buffer;
}

template <size_t N>
void ClearHostBits(std::array<uint8_t, N>& bytes, int prefix_length) {
  for (int bit = prefix_length; bit < static_cast<int>(N) * 8; ++bit) {
    bytes[bit / 8] &= static_cast<uint8_t>(~(1u << (7 - bit % 8)));
  }
}

// Flips each of the lowest `low_bits` bits with probability 1/2.
template <size_t N>
void Perturb(Random& r, std::array<uint8_t, N>& bytes, int low_bits) {
  const int total = static_cast<int>(N) * 8;
  for (int bit = total - low_bits; bit < total; ++bit) {
    if (r.Chance(0.5)) bytes[bit / 8] ^= static_cast<uint8_t>(1u << (7 - bit % 8));
  }
}

// A block at an anchor, of any length; or, `narrow`, a small one near it
// (the anchor's low 8 bits perturbed, /26 to /32), so that several narrow
// blocks rarely merge into one interval.
std::string RandomV4Block(Random& r, bool narrow) {
  std::array<uint8_t, 4> bytes = r.Pick(kV4Anchors);
  int length;
  if (narrow) {
    Perturb(r, bytes, 8);
    length = r.Int(26, 32);
  } else {
    length = r.Chance(0.5) ? r.Pick(std::vector<int>{0, 8, 12, 16, 20, 24, 25,
                                                     26, 28, 30, 31, 32})
                           : r.Int(0, 32);
  }
  ClearHostBits(bytes, length);
  if (!narrow && length == 32 && r.Chance(0.5)) return FormatV4(bytes);
  return absl::StrCat(FormatV4(bytes), "/", length);
}

// As RandomV4Block; narrow blocks are /122 to /128.
std::string RandomV6Block(Random& r, bool narrow) {
  std::array<uint8_t, 16> bytes = r.Pick(kV6Anchors);
  int length;
  if (narrow) {
    Perturb(r, bytes, 8);
    length = r.Int(122, 128);
  } else {
    length = r.Chance(0.5) ? r.Pick(std::vector<int>{16, 32, 33, 48, 56, 64, 96,
                                                     112, 120, 127, 128})
                           : r.Int(0, 128);
  }
  ClearHostBits(bytes, length);
  if (!narrow && length == 128 && r.Chance(0.5)) return FormatV6(bytes);
  return absl::StrCat(FormatV6(bytes), "/", length);
}

// Usually up to 3 blocks of any size; sometimes 5 to 12 narrow ones, more
// intervals than the engine keeps inline in a rule's record.
std::vector<std::string> RandomBlocks(Random& r, int min_count) {
  std::vector<std::string> blocks;
  const bool narrow = r.Chance(0.15);
  const int count = narrow ? r.Int(5, 12) : r.Int(min_count, 3);
  for (int i = 0; i < count; ++i) {
    blocks.push_back(r.Chance(0.6) ? RandomV4Block(r, narrow) : RandomV6Block(r, narrow));
  }
  return blocks;
}

std::string RandomClientIp(Random& r) {
  if (r.Chance(0.12)) return r.Pick(kMalformedIps);
  const int kind = r.Int(0, 99);
  if (kind < 50) {
    std::array<uint8_t, 4> bytes = r.Pick(kV4Anchors);
    Perturb(r, bytes, r.Int(0, 32));
    return FormatV4(bytes);
  }
  if (kind < 85) {
    std::array<uint8_t, 16> bytes = r.Pick(kV6Anchors);
    Perturb(r, bytes, r.Int(0, 128));
    return r.Chance(0.1) ? absl::AsciiStrToUpper(FormatV6(bytes))
                         : FormatV6(bytes);
  }
  // IPv4-mapped IPv6, dotted or hex.
  std::array<uint8_t, 4> bytes = r.Pick(kV4Anchors);
  Perturb(r, bytes, r.Int(0, 32));
  if (r.Chance(0.75)) return absl::StrCat("::ffff:", FormatV4(bytes));
  return absl::StrFormat("::ffff:%x:%x", bytes[0] << 8 | bytes[1],
                         bytes[2] << 8 | bytes[3]);
}

// ------------------------------------------------------------------ Rules

std::vector<std::string> PatternList(Random& r,
                                     const std::vector<std::string>& pool) {
  return r.Subset(pool, 1, 2);
}

v1::TimeWindow RandomWindow(Random& r) {
  v1::TimeWindow window;
  if (r.Chance(0.6)) {
    for (int day : r.Subset(std::vector<int>{0, 1, 2, 3, 4, 5, 6}, 1, 4)) {
      window.add_days(r.Chance(0.8) ? kShortDays[day] : kLongDays[day]);
    }
  }
  const std::string start = r.Pick(kClock);
  std::string end;
  do {
    end = r.Chance(0.15) ? "24:00" : r.Pick(kClock);
  } while (end == start);
  window.set_start(start);
  window.set_end(end);
  window.set_time_zone(r.Pick(kZones));
  return window;
}

std::string RandomLocationEntry(Random& r) {
  const auto& [country, regions] = r.Pick(kCountries);
  if (r.Chance(0.4)) return absl::StrCat(country, "-", r.Pick(regions));
  return country;
}

v1::AttributeCondition RandomAttributeCondition(Random& r) {
  v1::AttributeCondition condition;
  const AttributeSpec& spec = r.Chance(0.75) ? r.Pick(kRequestAttributes)
                                             : r.Pick(kExtraRuleAttributes);
  condition.set_attribute(spec.name);
  const std::vector<std::string> ops = {"eq", "ne",  "in", "not_in",
                                        "contains", "lt", "le", "gt",
                                        "ge", "regex", "exists"};
  const std::string op = r.Pick(ops);
  condition.set_op(op);

  if (op == "exists") {
    if (r.Chance(0.3)) condition.mutable_value()->set_bool_value(r.Chance(0.5));
    return condition;
  }
  if (op == "regex") {
    condition.mutable_value()->set_string_value(r.Pick(kRegexes));
    return condition;
  }
  if (r.Chance(0.3)) {
    // Compare with another attribute.
    const AttributeSpec& other = r.Chance(0.8) ? r.Pick(kRequestAttributes)
                                               : r.Pick(kExtraRuleAttributes);
    condition.set_other(other.name);
    return condition;
  }
  Value* value = condition.mutable_value();
  if (op == "eq" || op == "ne") {
    if (r.Chance(0.25)) {
      *value = RandomList(r, /*strings_only=*/spec.kind == Kind::kStringList, 3);
    } else {
      *value = RandomValueOfKind(
          r,
          spec.kind == Kind::kStringList || spec.kind == Kind::kMixedList
              ? Kind::kString
              : spec.kind,
          0.2);
    }
  } else if (op == "in" || op == "not_in") {
    *value = RandomListLiteral(r, spec.kind);
  } else if (op == "contains") {
    *value = r.Chance(0.8) ? StringValue(r.Pick(kStrings)) : RandomScalar(r);
  } else {  // lt le gt ge
    if (spec.kind == Kind::kNumber ? r.Chance(0.85) : r.Chance(0.2)) {
      *value = NumberValue(r.Pick(kNumbers));
    } else {
      *value = StringValue(r.Pick(kStrings));
    }
  }
  return condition;
}

Value StringList(const std::vector<std::string>& strings) {
  Value v;
  for (const std::string& s : strings) {
    v.mutable_list_value()->add_values()->set_string_value(s);
  }
  return v;
}

v1::Obligation RandomObligation(Random& r, const std::string& effect) {
  v1::Obligation obligation;
  if (r.Chance(0.3)) obligation.set_on(absl::AsciiStrToLower(effect));
  auto& params = *obligation.mutable_params()->mutable_fields();
  switch (r.Int(0, 4)) {
    case 0:
      obligation.set_type("filter_fields");
      params["fields"] = StringList(r.Subset(kFieldPaths, 1, 3));
      break;
    case 1:
      obligation.set_type("mask_fields");
      params["fields"] = StringList(r.Subset(kFieldPaths, 1, 2));
      if (r.Chance(0.5)) params["mask"] = StringValue("XXXX");
      break;
    case 2:
      obligation.set_type("require_mfa");
      if (r.Chance(0.5)) params["level"] = StringValue(r.Chance(0.5) ? "aal2" : "aal3");
      break;
    case 3:
      obligation.set_type("add_header");
      params["name"] = StringValue(r.Chance(0.5) ? "X-Pdp-Reason" : "X-Audit");
      params["value"] = StringValue(r.Pick(kStrings));
      break;
    default: {
      obligation.set_type(r.Chance(0.5) ? "audit_log" : "notify:security");
      if (r.Chance(0.7)) {
        params["level"] = NumberValue(r.Int(0, 5));
        params["tags"] = RandomList(r, /*strings_only=*/false, 3);
        Struct nested;
        (*nested.mutable_fields())["ok"] = BoolValue(r.Chance(0.5));
        *params["nested"].mutable_struct_value() = nested;
      }
      break;
    }
  }
  return obligation;
}

v1::Rule RandomRule(Random& r, int index) {
  v1::Rule rule;
  // Unique by index; some ids use the whole allowed alphabet.
  rule.set_id(r.Chance(0.8) ? absl::StrCat("r", index)
                            : absl::StrCat("Rule.", index, ":a/b_c-", index));
  const bool permit = r.Chance(0.55);
  const std::vector<std::string> spellings =
      permit ? std::vector<std::string>{"permit", "permit", "Permit", "PERMIT"}
             : std::vector<std::string>{"deny", "deny", "Deny", "DENY"};
  rule.set_effect(r.Pick(spellings));
  if (r.Chance(0.4)) {
    rule.set_priority(r.Pick(std::vector<int>{
        -2, -1, 1, 2, 3, 10, std::numeric_limits<int32_t>::min(),
        std::numeric_limits<int32_t>::max()}));
  }

  v1::Target* target = rule.mutable_target();
  for (const std::string& p : PatternList(r, kResourceTypePatterns)) {
    target->add_resource_types(p);
  }
  for (const std::string& p : PatternList(r, kActionPatterns)) {
    target->add_actions(p);
  }
  if (r.Chance(0.5)) {
    for (const std::string& role : r.Subset(kRoles, 1, 3)) target->add_roles(role);
  }

  v1::Conditions* conditions = rule.mutable_conditions();
  if (r.Chance(0.25)) {
    const int count = r.Int(1, 2);
    for (int i = 0; i < count; ++i) *conditions->add_time_windows() = RandomWindow(r);
  }
  if (r.Chance(0.2)) {
    v1::LocationCondition* location = conditions->mutable_location();
    const bool has_in = r.Chance(0.6);
    const bool has_not_in = !has_in || r.Chance(0.4);
    if (has_in) {
      for (int i = r.Int(1, 3); i > 0; --i) location->add_in(RandomLocationEntry(r));
    }
    if (has_not_in) {
      for (int i = r.Int(1, 2); i > 0; --i) location->add_not_in(RandomLocationEntry(r));
    }
  }
  if (r.Chance(0.25)) {
    v1::IpCondition* ip = conditions->mutable_client_ip();
    const bool has_in = r.Chance(0.7);
    const bool has_not_in = !has_in || r.Chance(0.4);
    if (has_in) {
      for (const std::string& block : RandomBlocks(r, 1)) ip->add_in(block);
    }
    if (has_not_in) {
      for (const std::string& block : RandomBlocks(r, 1)) ip->add_not_in(block);
    }
  }
  if (r.Chance(0.5)) {
    for (int i = r.Int(1, 3); i > 0; --i) {
      *conditions->add_attributes() = RandomAttributeCondition(r);
    }
  }
  if (r.Chance(0.4)) {
    for (int i = r.Int(1, 2); i > 0; --i) {
      *rule.add_obligations() = RandomObligation(r, rule.effect());
    }
  }
  return rule;
}

// ---------------------------------------------------------------- Requests

void SetTime(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t seconds = absl::ToUnixSeconds(t);  // floor
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(
      (t - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
}

// DST changes in 2024 in the zones of kZones.
const std::vector<int64_t> kTransitions = {
    1711846800,  // 2024-03-31T01:00Z Europe/Berlin, CET -> CEST
    1729990800,  // 2024-10-27T01:00Z Europe/Berlin, CEST -> CET
    1710054000,  // 2024-03-10T07:00Z America/New_York, EST -> EDT
    1730613600,  // 2024-11-03T06:00Z America/New_York, EDT -> EST
    1712419200,  // 2024-04-06T16:00Z Australia/Sydney, AEDT -> AEST
    1728144000,  // 2024-10-05T16:00Z Australia/Sydney, AEST -> AEDT
};
constexpr int64_t k2024 = 1704067200;  // 2024-01-01T00:00Z
constexpr int64_t kYear = 366 * 86400;

void RandomTime(Random& r, v1::Environment* environment) {
  const int kind = r.Int(0, 99);
  if (kind < 10) return;  // absent: the evaluator's `now`
  google::protobuf::Timestamp* ts = environment->mutable_time();
  if (kind < 14) {
    // Out of range.
    switch (r.Int(0, 3)) {
      case 0:
        ts->set_seconds(253402300800);  // year 10000
        break;
      case 1:
        ts->set_seconds(k2024);
        ts->set_nanos(-1);
        break;
      case 2:
        ts->set_seconds(k2024);
        ts->set_nanos(1000000000);
        break;
      default:
        ts->set_seconds(-62135596801);  // before year 1
        break;
    }
    return;
  }
  if (kind < 45) {
    SetTime(absl::FromUnixSeconds(r.Int64(k2024, k2024 + kYear)) +
                absl::Nanoseconds(r.Chance(0.2) ? r.Int(0, 999999999) : 0),
            ts);
    return;
  }
  if (kind < 70) {
    // Within three hours of a DST change, on a minute or a second.
    const int64_t at = r.Pick(kTransitions) + r.Int(-180, 180) * 60 +
                       (r.Chance(0.3) ? r.Int(-1, 1) : 0);
    SetTime(absl::FromUnixSeconds(at), ts);
    return;
  }
  // On (or a hair off) a window boundary, local time in one of the zones.
  absl::TimeZone zone;
  absl::LoadTimeZone(r.Pick(kZones), &zone);
  const absl::CivilDay day =
      absl::CivilDay(2024, 1, 1) + r.Int(0, 365);
  const std::string& clock = r.Pick(kClock);
  const absl::CivilSecond local(day.year(), day.month(), day.day(),
                                std::stoi(clock.substr(0, 2)),
                                std::stoi(clock.substr(3, 2)), 0);
  absl::Time t = absl::FromCivil(local, zone);
  switch (r.Int(0, 5)) {
    case 0:
      t -= absl::Seconds(1);
      break;
    case 1:
      t -= absl::Nanoseconds(1);
      break;
    case 2:
      t += absl::Seconds(1);
      break;
    case 3:
      t += absl::Minutes(30);
      break;
    default:
      break;
  }
  SetTime(t, ts);
}

void RandomLocation(Random& r, v1::Environment* environment) {
  const int kind = r.Int(0, 99);
  if (kind < 20) return;  // absent
  v1::Location* location = environment->mutable_location();
  if (kind < 30) {
    // Malformed: not two letters (including a region without a country),
    // or another country's region.
    switch (r.Int(0, 4)) {
      case 0:
        location->set_country("DEU");
        break;
      case 1:
        location->set_country("D");
        break;
      case 2:
        location->set_country("1X");
        break;
      case 3:
        location->set_region("US-CA");
        break;
      default:
        location->set_country("US");
        location->set_region("DE-BY");
        break;
    }
    return;
  }
  const auto& [country, regions] = r.Pick(kCountries);
  const bool lower = r.Chance(0.1);
  location->set_country(lower ? absl::AsciiStrToLower(country) : country);
  if (r.Chance(0.6)) {
    const std::string& sub = r.Pick(regions);
    std::string region = r.Chance(0.5) ? absl::StrCat(country, "-", sub) : sub;
    location->set_region(lower ? absl::AsciiStrToLower(region) : region);
  }
}

void RandomAttributes(Random& r, const std::string& scope,
                      google::protobuf::Map<std::string, Value>* attributes) {
  for (const AttributeSpec& spec : kRequestAttributes) {
    if (spec.name.rfind(scope + ".", 0) != 0) continue;
    if (!r.Chance(0.65)) continue;
    (*attributes)[spec.name.substr(scope.size() + 1)] =
        RandomValueOfKind(r, spec.kind, 0.1);
  }
}

// An attribute value the README forbids: null, a struct or a nested list.
Value InvalidValue(Random& r) {
  Value v;
  switch (r.Int(0, 2)) {
    case 0:
      v.set_null_value(google::protobuf::NULL_VALUE);
      break;
    case 1:
      (*v.mutable_struct_value()->mutable_fields())["a"] = NumberValue(1);
      break;
    default:
      *v.mutable_list_value()->add_values() = StringValue("x");
      *v.mutable_list_value()->add_values() = RandomList(r, true, 2);
      break;
  }
  return v;
}

}  // namespace

v1::RuleSet RandomRuleSet(std::mt19937_64& rng,
                          const RandomRuleSetOptions& options) {
  Random r(rng);
  v1::RuleSet rule_set;
  rule_set.set_name(absl::StrCat("random-set.", r.Int(0, 999)));
  rule_set.set_combining_algorithm(r.Pick(std::vector<std::string>{
      "deny-overrides", "permit-overrides", "first-applicable", "",
      "Deny_Overrides", "PERMIT_OVERRIDES", "first_applicable",
      "First-Applicable"}));
  // Half the sets are small, so that single rules decide often.
  const int max_rules =
      r.Chance(0.5) ? std::min(options.max_rules, 8) : options.max_rules;
  const int count = r.Int(std::min(options.min_rules, max_rules), max_rules);
  for (int i = 0; i < count; ++i) *rule_set.add_rules() = RandomRule(r, i);
  return rule_set;
}

v1::AuthorizeRequest RandomRequest(std::mt19937_64& rng,
                                   const RandomRequestOptions& options) {
  Random r(rng);
  v1::AuthorizeRequest request;
  v1::Subject* subject = request.mutable_subject();
  if (r.Chance(0.85)) {
    subject->set_id(r.Pick(std::vector<std::string>{"alice", "bob", "carol"}));
  }
  if (r.Chance(0.8)) {
    for (const std::string& role : r.Subset(kRoles, 1, 3)) subject->add_roles(role);
  }
  RandomAttributes(r, "subject", subject->mutable_attributes());

  request.set_action(r.Chance(options.invalid_probability) ? ""
                                                           : r.Pick(kActions));
  v1::Resource* resource = request.mutable_resource();
  resource->set_type(r.Chance(options.invalid_probability)
                         ? ""
                         : r.Pick(kResourceTypes));
  if (r.Chance(0.8)) {
    resource->set_id(r.Pick(std::vector<std::string>{"o-1", "o-2", "alice"}));
  }
  RandomAttributes(r, "resource", resource->mutable_attributes());

  v1::Environment* environment = request.mutable_environment();
  RandomTime(r, environment);
  if (r.Chance(0.85)) environment->set_client_ip(RandomClientIp(r));
  RandomLocation(r, environment);
  RandomAttributes(r, "environment", environment->mutable_attributes());

  if (r.Chance(options.invalid_probability)) {
    google::protobuf::Map<std::string, Value>* attributes =
        r.Pick(std::vector<google::protobuf::Map<std::string, Value>*>{
            subject->mutable_attributes(), resource->mutable_attributes(),
            environment->mutable_attributes()});
    (*attributes)["bad"] = InvalidValue(r);
  }
  return request;
}

}  // namespace pdp::testing
