// Validation and compilation of a rule set into a PolicyImpl; see
// compiler.h. Every check appends to one error list so that an admin sees
// all problems of a push at once. Tested by tests/engine_compile_test.cc and
// tests/differential_test.cc.
#include "engine/compiler.h"

#include <algorithm>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "engine/absl_compat.h"
#include "engine/policy_impl.h"

namespace pdp::engine {

std::string CompileError::ToString() const {
  if (rule_id.empty()) return absl::StrCat(field, ": ", message);
  return absl::StrCat("rule '", rule_id, "' ", field, ": ", message);
}

absl::Status CompileResult::ToStatus() const {
  if (ok()) return absl::OkStatus();
  std::vector<std::string> lines;
  lines.reserve(errors.size());
  for (const CompileError& e : errors) lines.push_back(e.ToString());
  return absl::InvalidArgumentError(absl::StrCat(
      errors.size(), errors.size() == 1 ? " error" : " errors",
      " in rule set:\n", absl::StrJoin(lines, "\n")));
}

namespace {

bool IsNameChar(char c, std::string_view extra) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         extra.find(c) != std::string_view::npos;
}

bool ValidName(std::string_view s, std::string_view extra) {
  return !s.empty() && s.size() <= 128 &&
         std::all_of(s.begin(), s.end(),
                     [&](char c) { return IsNameChar(c, extra); });
}

std::string Lower(std::string_view s) { return absl::AsciiStrToLower(ToAbsl(s)); }

// Country "DE" or region "US-CA", upper-cased; nullopt when malformed.
std::optional<std::string> NormalizeLocationEntry(std::string_view entry) {
  std::string upper = absl::AsciiStrToUpper(ToAbsl(entry));
  auto alpha = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto alnum = [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); };
  if (upper.size() < 2 || !alpha(upper[0]) || !alpha(upper[1])) return std::nullopt;
  if (upper.size() == 2) return upper;
  if (upper[2] != '-' || upper.size() < 4 || upper.size() > 6) return std::nullopt;
  for (size_t i = 3; i < upper.size(); ++i) {
    if (!alnum(upper[i])) return std::nullopt;
  }
  return upper;
}

// An IANA zone name ("Europe/Berlin", "Etc/GMT+5"): segments of
// [A-Za-z0-9_+-] joined by '/'. absl::LoadTimeZone also takes file paths
// ("/etc/passwd", "../x", "file:/x"), "localtime" (the server's own zone)
// and "Fixed/UTC+hh:mm:ss"; a rule set must not make the server open
// arbitrary files or depend on its configuration, so those are refused.
bool IanaZoneName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name == "localtime") return false;
  bool segment_start = true;
  for (char c : name) {
    if (c == '/') {
      if (segment_start) return false;  // leading '/' or "//"
      segment_start = true;
      continue;
    }
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' &&
        c != '+') {
      return false;
    }
    segment_start = false;
  }
  return !segment_start;  // no trailing '/'
}

class Compiler {
 public:
  Compiler(const v1::RuleSet& rule_set, const CompileOptions& options)
      : rule_set_(rule_set), options_(options) {}

  CompileResult Run();

 private:
  void Error(std::string rule_id, std::string field, std::string message) {
    result_.errors.push_back(
        {std::move(rule_id), std::move(field), std::move(message)});
  }
  bool CheckListSize(const std::string& id, const std::string& field, int size) {
    if (size <= options_.max_patterns_per_rule) return true;
    Error(id, field, absl::StrCat("has ", size, " entries; the limit is ",
                                  options_.max_patterns_per_rule));
    return false;
  }

  void CompileRule(int index, const v1::Rule& rule, CompiledRule* out);
  void CompileTarget(const std::string& id, const std::string& path,
                     const v1::Target& target, CompiledRule* out);
  void CompilePatterns(const std::string& id, const std::string& path,
                       const google::protobuf::RepeatedPtrField<std::string>& patterns);
  void CompileTimeWindow(const std::string& id, const std::string& path,
                         const v1::TimeWindow& window, CompiledRule* out);
  void CompileLocation(const std::string& id, const std::string& path,
                       const v1::LocationCondition& location, CompiledRule* out);
  void CompileIp(const std::string& id, const std::string& path,
                 const v1::IpCondition& ip, CompiledRule* out);
  const IpSet* CompileIpList(const std::string& id, const std::string& path,
                             const google::protobuf::RepeatedPtrField<std::string>& cidrs);
  void CompileAttribute(const std::string& id, const std::string& path,
                        const v1::AttributeCondition& condition, CompiledRule* out);
  std::optional<AttrRef> CompileRef(const std::string& id, const std::string& path,
                                    const std::string& text);
  void CompileObligation(const std::string& id, const std::string& path,
                         Effect effect, const v1::Obligation& obligation,
                         CompiledRule* out);
  // `codes`: each rule's RecordCode, by rank (PolicyImpl::Flatten).
  void BuildIndex(const std::vector<const v1::Rule*>& by_rank,
                  const std::vector<uint32_t>& codes);
  size_t EstimateMemory() const;

  const v1::RuleSet& rule_set_;
  const CompileOptions& options_;
  CompileResult result_;
  std::unique_ptr<PolicyImpl> policy_ = std::make_unique<PolicyImpl>();
  absl::flat_hash_map<std::string, uint16_t> zone_index_;
  absl::flat_hash_map<std::string, const IpSet*> ip_set_cache_;
  absl::flat_hash_map<std::string, std::shared_ptr<const RE2>> regex_cache_;
};

CompileResult Compiler::Run() {
  PolicyImpl& p = *policy_;
  if (!ValidName(rule_set_.name(), "._-")) {
    Error("", "name", "must be 1-128 characters of [A-Za-z0-9._-]");
  }
  p.name_ = rule_set_.name();

  const std::string algorithm =
      absl::StrReplaceAll(Lower(rule_set_.combining_algorithm()), {{"_", "-"}});
  if (algorithm.empty() || algorithm == "deny-overrides") {
    p.algorithm_ = Algorithm::kDenyOverrides;
  } else if (algorithm == "permit-overrides") {
    p.algorithm_ = Algorithm::kPermitOverrides;
  } else if (algorithm == "first-applicable") {
    p.algorithm_ = Algorithm::kFirstApplicable;
  } else {
    Error("", "combining_algorithm",
          absl::StrCat("unknown algorithm \"", rule_set_.combining_algorithm(),
                       "\"; use deny-overrides, permit-overrides or "
                       "first-applicable"));
  }

  for (int i = 0; i < rule_set_.sensitive_attributes_size(); ++i) {
    const std::string path = absl::StrCat("sensitive_attributes[", i, "]");
    if (CompileRef("", path, rule_set_.sensitive_attributes(i))) {
      p.sensitive_.insert(rule_set_.sensitive_attributes(i));
    }
  }

  const int n = rule_set_.rules_size();
  if (n > options_.max_rules) {
    Error("", "rules",
          absl::StrCat("has ", n, " rules; the limit is ", options_.max_rules));
    return std::move(result_);
  }

  // Evaluation order: file order, or priority (higher first) then file order.
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (p.algorithm_ == Algorithm::kFirstApplicable) {
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return rule_set_.rules(a).priority() > rule_set_.rules(b).priority();
    });
  }

  // Compile in file order so errors come out in file order.
  absl::flat_hash_map<std::string, int> first_index;
  std::vector<CompiledRule> by_file(n);
  for (int i = 0; i < n; ++i) {
    const std::string& id = rule_set_.rules(i).id();
    auto [it, inserted] = first_index.emplace(id, i);
    if (!inserted && !id.empty()) {
      Error(id, absl::StrCat("rules[", i, "].id"),
            absl::StrCat("duplicate id; first used by rules[", it->second, "]"));
    }
    CompileRule(i, rule_set_.rules(i), &by_file[i]);
  }
  if (!result_.errors.empty()) return std::move(result_);

  std::vector<const v1::Rule*> by_rank;
  p.rules_.reserve(n);
  for (int i : order) {
    p.rules_.push_back(std::move(by_file[i]));
    by_rank.push_back(&rule_set_.rules(i));
  }
  std::optional<std::vector<uint32_t>> codes = p.Flatten();
  if (!codes) {
    Error("", "rules", "the rule set is too large to compile (its decision structure "
                       "would exceed 32 GiB)");
    return std::move(result_);
  }
  BuildIndex(by_rank, *codes);
  p.memory_bytes_ = EstimateMemory();
  result_.policy = std::make_shared<const Policy>(
      std::shared_ptr<const PolicyImpl>(std::move(policy_)), options_.version);
  return std::move(result_);
}

void Compiler::CompileRule(int index, const v1::Rule& rule, CompiledRule* out) {
  const std::string path = absl::StrCat("rules[", index, "]");
  const std::string& id = rule.id();
  out->id = id;
  if (!ValidName(id, "._:/-")) {
    Error(id, path + ".id", "must be 1-128 characters of [A-Za-z0-9._:/-]");
  }
  const std::string effect = Lower(rule.effect());
  if (effect == "permit") {
    out->effect = Effect::kPermit;
  } else if (effect == "deny") {
    out->effect = Effect::kDeny;
  } else {
    Error(id, path + ".effect",
          absl::StrCat("must be \"permit\" or \"deny\", got \"", rule.effect(), "\""));
  }
  CompileTarget(id, path + ".target", rule.target(), out);

  const v1::Conditions& c = rule.conditions();
  const std::string cpath = path + ".conditions";
  for (int i = 0; i < c.time_windows_size(); ++i) {
    CompileTimeWindow(id, absl::StrCat(cpath, ".time_windows[", i, "]"),
                      c.time_windows(i), out);
  }
  if (c.has_location()) {
    CompileLocation(id, cpath + ".location", c.location(), out);
  }
  if (c.has_client_ip()) CompileIp(id, cpath + ".client_ip", c.client_ip(), out);
  for (int i = 0; i < c.attributes_size(); ++i) {
    CompileAttribute(id, absl::StrCat(cpath, ".attributes[", i, "]"),
                     c.attributes(i), out);
  }
  for (int i = 0; i < rule.obligations_size(); ++i) {
    CompileObligation(id, absl::StrCat(path, ".obligations[", i, "]"),
                      out->effect, rule.obligations(i), out);
  }
}

void Compiler::CompileTarget(const std::string& id, const std::string& path,
                             const v1::Target& target, CompiledRule* out) {
  if (target.resource_types_size() == 0) {
    Error(id, path + ".resource_types",
          "is empty; list resource types, or \"*\" for any");
  }
  if (target.actions_size() == 0) {
    Error(id, path + ".actions", "is empty; list actions, or \"*\" for any");
  }
  CompilePatterns(id, path + ".resource_types", target.resource_types());
  CompilePatterns(id, path + ".actions", target.actions());
  if (!CheckListSize(id, path + ".roles", target.roles_size())) return;
  for (int i = 0; i < target.roles_size(); ++i) {
    const std::string& role = target.roles(i);
    if (role.empty()) {
      Error(id, absl::StrCat(path, ".roles[", i, "]"), "is empty");
      continue;
    }
    auto [it, inserted] = policy_->role_bits_.emplace(
        role, static_cast<uint32_t>(policy_->role_bits_.size()));
    if (std::find(out->roles.begin(), out->roles.end(), it->second) == out->roles.end()) {
      out->roles.push_back(it->second);
    }
  }
}

void Compiler::CompilePatterns(
    const std::string& id, const std::string& path,
    const google::protobuf::RepeatedPtrField<std::string>& patterns) {
  if (!CheckListSize(id, path, patterns.size())) return;
  for (int i = 0; i < patterns.size(); ++i) {
    const std::string& p = patterns.Get(i);
    const std::string field = absl::StrCat(path, "[", i, "]");
    if (p.empty()) {
      Error(id, field, "is empty");
    } else if (size_t star = p.find('*'); star != std::string::npos && star != p.size() - 1) {
      Error(id, field,
            absl::StrCat("\"", p, "\": '*' is allowed only at the end (a prefix) "
                         "or alone (anything)"));
    }
  }
}

void Compiler::CompileTimeWindow(const std::string& id, const std::string& path,
                                 const v1::TimeWindow& window, CompiledRule* out) {
  TimeWindow compiled;
  bool ok = true;
  if (window.days_size() > 0) {
    compiled.day_mask = 0;
    for (int i = 0; i < window.days_size(); ++i) {
      std::optional<int> day = ParseWeekday(window.days(i));
      if (!day) {
        Error(id, absl::StrCat(path, ".days[", i, "]"),
              absl::StrCat("\"", window.days(i), "\" is not a weekday (mon..sun)"));
        ok = false;
      } else {
        compiled.day_mask |= 1 << *day;
      }
    }
  }
  std::optional<int> start = ParseClock(window.start(), /*allow_24=*/false);
  std::optional<int> end = ParseClock(window.end(), /*allow_24=*/true);
  if (!start) {
    Error(id, path + ".start",
          absl::StrCat("\"", window.start(), "\" is not a time HH:MM (00:00-23:59)"));
    ok = false;
  }
  if (!end) {
    Error(id, path + ".end",
          absl::StrCat("\"", window.end(), "\" is not a time HH:MM (00:00-24:00)"));
    ok = false;
  }
  if (start && end && *start == *end) {
    Error(id, path + ".end", "equals start; the window would be empty");
    ok = false;
  }
  if (window.time_zone().empty()) {
    Error(id, path + ".time_zone", "is required (an IANA zone such as \"Europe/Berlin\")");
    ok = false;
  } else {
    auto it = zone_index_.find(window.time_zone());
    if (it == zone_index_.end()) {
      absl::TimeZone zone;
      if (!IanaZoneName(window.time_zone()) ||
          !absl::LoadTimeZone(window.time_zone(), &zone)) {
        Error(id, path + ".time_zone",
              absl::StrCat("unknown time zone \"", window.time_zone(), "\""));
        ok = false;
      } else {
        it = zone_index_.emplace(window.time_zone(),
                                 static_cast<uint16_t>(policy_->zones_.size())).first;
        policy_->zones_.push_back(zone);
      }
    }
    if (it != zone_index_.end()) compiled.zone = it->second;
  }
  if (!ok) return;
  compiled.start = static_cast<uint16_t>(*start);
  compiled.end = static_cast<uint16_t>(*end);
  out->windows.push_back(compiled);
}

void Compiler::CompileLocation(const std::string& id, const std::string& path,
                               const v1::LocationCondition& location,
                               CompiledRule* out) {
  if (location.in_size() == 0 && location.not_in_size() == 0) {
    Error(id, path, "needs at least one entry in \"in\" or \"not_in\"");
    return;
  }
  auto condition = std::make_unique<LocationCondition>();
  auto fill = [&](const char* name,
                  const google::protobuf::RepeatedPtrField<std::string>& entries,
                  absl::flat_hash_set<std::string>* set) {
    const std::string list_path = absl::StrCat(path, ".", name);
    if (!CheckListSize(id, list_path, entries.size())) return;
    for (int i = 0; i < entries.size(); ++i) {
      std::optional<std::string> entry = NormalizeLocationEntry(entries.Get(i));
      if (!entry) {
        Error(id, absl::StrCat(list_path, "[", i, "]"),
              absl::StrCat("\"", entries.Get(i),
                           "\" is not an ISO 3166-1 country (\"DE\") or "
                           "ISO 3166-2 region (\"US-CA\")"));
      } else {
        set->insert(*std::move(entry));
      }
    }
  };
  fill("in", location.in(), &condition->in);
  fill("not_in", location.not_in(), &condition->not_in);
  out->location = std::move(condition);
}

const IpSet* Compiler::CompileIpList(
    const std::string& id, const std::string& path,
    const google::protobuf::RepeatedPtrField<std::string>& cidrs) {
  if (cidrs.empty() || !CheckListSize(id, path, cidrs.size())) return nullptr;
  std::vector<IpRange> ranges;
  ranges.reserve(cidrs.size());
  bool ok = true;
  for (int i = 0; i < cidrs.size(); ++i) {
    std::string error;
    std::optional<IpRange> range = ParseCidr(cidrs.Get(i), &error);
    if (!range) {
      Error(id, absl::StrCat(path, "[", i, "]"), error);
      ok = false;
    } else {
      ranges.push_back(*range);
    }
  }
  if (!ok) return nullptr;
  // Rules often share the same office or VPN ranges: build each set once.
  const std::string key = absl::StrJoin(cidrs, ",");
  if (auto it = ip_set_cache_.find(key); it != ip_set_cache_.end()) return it->second;
  policy_->ip_sets_.push_back(std::make_unique<IpSet>(IpSet::Build(std::move(ranges))));
  const IpSet* set = policy_->ip_sets_.back().get();
  ip_set_cache_.emplace(key, set);
  return set;
}

void Compiler::CompileIp(const std::string& id, const std::string& path,
                         const v1::IpCondition& ip, CompiledRule* out) {
  if (ip.in_size() == 0 && ip.not_in_size() == 0) {
    Error(id, path, "needs at least one CIDR in \"in\" or \"not_in\"");
    return;
  }
  out->has_ip = true;
  out->ip_in = CompileIpList(id, path + ".in", ip.in());
  out->ip_not_in = CompileIpList(id, path + ".not_in", ip.not_in());
}

std::optional<AttrRef> Compiler::CompileRef(const std::string& id,
                                            const std::string& path,
                                            const std::string& text) {
  using Source = AttrRef::Source;
  AttrRef ref;
  ref.path = text;
  if (text == "action") {
    ref.source = Source::kAction;
    return ref;
  }
  static const std::pair<const char*, Source> kBuiltins[] = {
      {"subject.id", Source::kSubjectId},
      {"subject.roles", Source::kSubjectRoles},
      {"resource.id", Source::kResourceId},
      {"resource.type", Source::kResourceType},
  };
  for (const auto& [name, source] : kBuiltins) {
    if (text == name) {
      ref.source = source;
      return ref;
    }
  }
  static const std::pair<const char*, Source> kScopes[] = {
      {"subject.", Source::kSubjectAttribute},
      {"resource.", Source::kResourceAttribute},
      {"environment.", Source::kEnvironmentAttribute},
  };
  for (const auto& [prefix, source] : kScopes) {
    if (absl::StartsWith(text, prefix) && text.size() > strlen(prefix)) {
      ref.source = source;
      ref.key = text.substr(strlen(prefix));
      return ref;
    }
  }
  Error(id, path,
        absl::StrCat("\"", text,
                     "\" is not an attribute; use subject.NAME, resource.NAME, "
                     "environment.NAME or action"));
  return std::nullopt;
}

void Compiler::CompileAttribute(const std::string& id, const std::string& path,
                                const v1::AttributeCondition& condition,
                                CompiledRule* out) {
  static const std::pair<const char*, Op> kOps[] = {
      {"eq", Op::kEq},       {"ne", Op::kNe},         {"in", Op::kIn},
      {"not_in", Op::kNotIn}, {"contains", Op::kContains}, {"lt", Op::kLt},
      {"le", Op::kLe},       {"gt", Op::kGt},         {"ge", Op::kGe},
      {"regex", Op::kRegex}, {"exists", Op::kExists},
  };
  AttributeCondition compiled;
  bool ok = true;
  std::optional<AttrRef> ref = CompileRef(id, path + ".attribute", condition.attribute());
  if (ref) compiled.attribute = *std::move(ref); else ok = false;

  const std::string op = Lower(condition.op());
  bool known_op = false;
  for (const auto& [name, value] : kOps) {
    if (op == name) {
      compiled.op = value;
      known_op = true;
    }
  }
  if (!known_op) {
    Error(id, path + ".op",
          absl::StrCat("unknown operator \"", condition.op(),
                       "\"; use eq, ne, in, not_in, contains, lt, le, gt, ge, "
                       "regex or exists"));
    return;
  }
  const bool has_value = condition.has_value();
  const bool has_other = !condition.other().empty();
  if (has_value && has_other) {
    Error(id, path, "give either \"value\" or \"other\", not both");
    return;
  }
  const Op o = compiled.op;
  if (has_other) {
    if (o == Op::kRegex || o == Op::kExists) {
      Error(id, path + ".other", absl::StrCat("\"", op, "\" takes a literal value only"));
      return;
    }
    std::optional<AttrRef> other = CompileRef(id, path + ".other", condition.other());
    if (!other) return;
    compiled.has_other = true;
    compiled.other = *std::move(other);
  } else if (o == Op::kExists) {
    if (has_value) {
      if (condition.value().kind_case() != google::protobuf::Value::kBoolValue) {
        Error(id, path + ".value", "for exists, must be true or false");
        return;
      }
      compiled.exists_expected = condition.value().bool_value();
    }
  } else if (!has_value) {
    Error(id, path + ".value", absl::StrCat("\"", op, "\" needs a value or other"));
    return;
  } else {
    std::string error;
    std::optional<Literal> literal = LiteralFromProto(condition.value(), &error);
    if (!literal) {
      Error(id, path + ".value", error);
      return;
    }
    const bool is_list = literal->is_list;
    const Scalar::Kind kind = literal->kind;
    if ((o == Op::kIn || o == Op::kNotIn) && !is_list) {
      Error(id, path + ".value", absl::StrCat("\"", op, "\" needs a list"));
      return;
    }
    if ((o == Op::kContains || o == Op::kLt || o == Op::kLe || o == Op::kGt ||
         o == Op::kGe || o == Op::kRegex) && is_list) {
      Error(id, path + ".value", absl::StrCat("\"", op, "\" needs a single value, not a list"));
      return;
    }
    if ((o == Op::kLt || o == Op::kLe || o == Op::kGt || o == Op::kGe) &&
        kind == Scalar::Kind::kBool) {
      Error(id, path + ".value", "ordering needs a number or a string");
      return;
    }
    if (is_list && !CheckListSize(id, path + ".value", literal->list.size())) return;
    if (o == Op::kRegex) {
      if (kind != Scalar::Kind::kString) {
        Error(id, path + ".value", "regex needs a string pattern");
        return;
      }
      auto it = regex_cache_.find(literal->text);
      if (it == regex_cache_.end()) {
        RE2::Options options;
        options.set_max_mem(options_.regex_max_mem);
        options.set_log_errors(false);
        auto re = std::make_shared<const RE2>(literal->text, options);
        if (!re->ok()) {
          Error(id, path + ".value",
                absl::StrCat("bad regex \"", literal->text, "\": ", re->error()));
          return;
        }
        it = regex_cache_.emplace(literal->text, std::move(re)).first;
      }
      compiled.regex = it->second;
    }
    if (o == Op::kIn || o == Op::kNotIn) {
      compiled.set = std::make_unique<ScalarSet>();
      for (const Literal& item : literal->list) compiled.set->Insert(item.scalar());
    }
    compiled.literal = *std::move(literal);
  }
  if (ok) out->attributes.push_back(std::move(compiled));
}

void Compiler::CompileObligation(const std::string& id, const std::string& path,
                                 Effect effect, const v1::Obligation& obligation,
                                 CompiledRule* out) {
  const std::string on = Lower(obligation.on());
  if (!on.empty() && on != "permit" && on != "deny") {
    Error(id, path + ".on", absl::StrCat("must be \"permit\" or \"deny\", got \"",
                                         obligation.on(), "\""));
    return;
  }
  if (!on.empty() && on != EffectName(effect)) {
    Error(id, path + ".on",
          absl::StrCat("\"", on, "\" can never fire on a ", EffectName(effect),
                       " rule: a rule's obligations apply with its own effect"));
    return;
  }
  const std::string& type = obligation.type();
  if (type.empty()) {
    Error(id, path + ".type", "is required");
    return;
  }
  const auto& fields = obligation.params().fields();
  auto string_param = [&](const char* name, bool required) {
    auto it = fields.find(name);
    if (it == fields.end()) {
      if (required) Error(id, absl::StrCat(path, ".params.", name), "is required");
      return !required;
    }
    if (it->second.kind_case() != google::protobuf::Value::kStringValue ||
        (required && it->second.string_value().empty())) {
      Error(id, absl::StrCat(path, ".params.", name), "must be a non-empty string");
      return false;
    }
    return true;
  };
  auto field_list = [&]() {
    auto it = fields.find("fields");
    const std::string fpath = path + ".params.fields";
    if (it == fields.end() ||
        it->second.kind_case() != google::protobuf::Value::kListValue ||
        it->second.list_value().values_size() == 0) {
      Error(id, fpath, "must be a non-empty list of field paths");
      return false;
    }
    bool good = true;
    const auto& values = it->second.list_value().values();
    for (int i = 0; i < values.size(); ++i) {
      const auto& v = values.Get(i);
      if (v.kind_case() != google::protobuf::Value::kStringValue ||
          v.string_value().empty() || absl::StartsWith(v.string_value(), ".") ||
          absl::EndsWith(v.string_value(), ".") ||
          absl::StrContains(v.string_value(), "..")) {
        Error(id, absl::StrCat(fpath, "[", i, "]"),
              "must be a dotted field path such as \"customer.card_number\"");
        good = false;
      }
    }
    return good;
  };
  bool ok = true;
  if (type == "filter_fields") {
    ok = field_list();
  } else if (type == "mask_fields") {
    ok = field_list() && string_param("mask", false);
  } else if (type == "require_mfa") {
    ok = string_param("level", false);
  } else if (type == "add_header") {
    ok = string_param("name", true) && string_param("value", false);
    if (ok) {
      auto value_it = fields.find("value");
      if (value_it == fields.end()) {
        Error(id, path + ".params.value", "is required");
        ok = false;
      }
      const std::string& name = fields.at("name").string_value();
      const bool token = std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
      });
      if (!token) {
        Error(id, path + ".params.name",
              absl::StrCat("\"", name, "\" is not a valid HTTP header name"));
        ok = false;
      }
      if (value_it != fields.end()) {
        const std::string& value = value_it->second.string_value();
        if (value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos) {
          Error(id, path + ".params.value", "must not contain CR, LF or NUL");
          ok = false;
        }
      }
    }
  }
  if (!ok) return;
  v1::ObligationResult result;
  result.set_type(type);
  *result.mutable_params() = obligation.params();
  result.set_rule_id(id);
  // A decision adds its rules' obligations by parsing bytes serialized here
  // (PolicyImpl::Flatten), so what does not survive the wire format is
  // refused now rather than failing decisions later: proto3 strings must be
  // UTF-8. A rule set that arrived over gRPC or as JSON always is.
  if (v1::ObligationResult parsed; !parsed.ParseFromString(result.SerializeAsString())) {
    Error(id, path, "holds a string that is not valid UTF-8 (its type, a params key or value, "
                    "or the rule's id)");
    return;
  }
  out->obligations.push_back(std::move(result));
}

void Compiler::BuildIndex(const std::vector<const v1::Rule*>& by_rank,
                          const std::vector<uint32_t>& codes) {
  RuleIndex::Builder builder;
  for (uint32_t rank = 0; rank < by_rank.size(); ++rank) {
    const v1::Target& target = by_rank[rank]->target();
    for (const std::string& type : target.resource_types()) {
      for (const std::string& action : target.actions()) builder.Add(type, action, codes[rank]);
    }
  }
  policy_->index_ = builder.Build();
}

size_t Compiler::EstimateMemory() const {
  const PolicyImpl& p = *policy_;
  size_t bytes = sizeof(PolicyImpl);
  auto str = [](const std::string& s) { return s.size() > 15 ? s.capacity() + 1 : 0; };
  for (const CompiledRule& r : p.rules_) {
    bytes += sizeof(CompiledRule) + str(r.id);
    if (r.location) {
      bytes += sizeof(LocationCondition) +
               (r.location->in.capacity() + r.location->not_in.capacity()) *
                   (sizeof(std::string) + 1);
    }
  }
  bytes += p.obligations_wire_.capacity() + p.obligations_at_.capacity() * sizeof(uint32_t);
  bytes += p.records_.capacity() * sizeof(PolicyImpl::Line) +
           p.conditions_.capacity() * sizeof(AttributeCondition);
  for (const AttributeCondition& a : p.conditions_) {
    bytes += str(a.attribute.key) + str(a.attribute.path) + str(a.literal.text) +
             a.literal.list.size() * sizeof(Literal);
    if (a.set) bytes += a.set->memory_bytes();
  }
  for (const auto& set : p.ip_sets_) bytes += sizeof(IpSet) + set->memory_bytes();
  bytes += p.index_.memory_bytes() - sizeof(RuleIndex);
  bytes += p.role_bits_.capacity() * (sizeof(std::string) + 5);
  return bytes;
}

}  // namespace

const char* EffectName(Effect effect) {
  return effect == Effect::kPermit ? "permit" : "deny";
}

CompileResult Compile(const v1::RuleSet& rule_set, const CompileOptions& options) {
  return Compiler(rule_set, options).Run();
}

}  // namespace pdp::engine
