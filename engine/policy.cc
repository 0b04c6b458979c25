// Evaluation of a compiled policy; see policy.h and policy_impl.h.
//
// The hot path allocates nothing of its own for a typical request: the
// candidate list, role bitset and per-zone local times live in inline
// buffers, attribute values are views into the request, and strings are
// built only for the response (reason, rule ids, obligations) and, with
// explain, the trace. Tested by tests/engine_evaluate_test.cc and
// tests/differential_test.cc.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <optional>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/policy.h"
#include "engine/policy_impl.h"
#include "google/protobuf/io/coded_stream.h"

namespace pdp::engine {

Policy::Policy(std::shared_ptr<const PolicyImpl> impl, int64_t version)
    : impl_(std::move(impl)), version_(version) {}
Policy::~Policy() = default;
const std::string& Policy::name() const { return impl_->name_; }
int64_t Policy::version() const { return version_; }
std::shared_ptr<const Policy> Policy::WithVersion(int64_t version) const {
  return std::make_shared<const Policy>(impl_, version);
}
size_t Policy::rule_count() const { return impl_->rules_.size(); }
size_t Policy::memory_bytes() const { return impl_->memory_bytes_; }
bool Policy::IsSensitive(std::string_view path) const {
  return impl_->sensitive_.contains(ToAbsl(path));
}
std::vector<std::string> Policy::sensitive_attributes() const {
  std::vector<std::string> paths(impl_->sensitive_.begin(), impl_->sensitive_.end());
  std::sort(paths.begin(), paths.end());
  return paths;
}

void Policy::Evaluate(const v1::AuthorizeRequest& request, absl::Time now,
                      v1::AuthorizeResponse* response) const {
  impl_->Evaluate(RequestParts(request, nullptr), now, response);
  response->set_rule_set_version(version_);
}

void Policy::Evaluate(const v1::AuthorizeRequest& request, const v1::AuthorizeRequest* common,
                      absl::Time now, v1::AuthorizeResponse* response) const {
  impl_->Evaluate(RequestParts(request, common), now, response);
  response->set_rule_set_version(version_);
}

RequestParts::RequestParts(const v1::AuthorizeRequest& request,
                           const v1::AuthorizeRequest* common)
    : subject(common && !request.has_subject() ? common->subject() : request.subject()),
      action(common && request.action().empty() ? common->action() : request.action()),
      resource(common && !request.has_resource() ? common->resource() : request.resource()),
      environment(common && !request.has_environment() ? common->environment()
                                                        : request.environment()),
      explain(request.explain() || (common && common->explain())),
      common_subject(common && !request.has_subject() && common->has_subject()),
      common_resource(common && !request.has_resource() && common->has_resource()),
      common_environment(common && !request.has_environment() && common->has_environment()) {}

v1::AuthorizeRequest WithCommon(const v1::AuthorizeRequest& request,
                                const v1::AuthorizeRequest& common) {
  v1::AuthorizeRequest merged = request;
  if (!merged.has_subject() && common.has_subject()) *merged.mutable_subject() = common.subject();
  if (!merged.has_resource() && common.has_resource()) {
    *merged.mutable_resource() = common.resource();
  }
  if (!merged.has_environment() && common.has_environment()) {
    *merged.mutable_environment() = common.environment();
  }
  if (merged.action().empty()) merged.set_action(common.action());
  if (merged.rule_set().empty()) merged.set_rule_set(common.rule_set());
  merged.set_explain(request.explain() || common.explain());
  return merged;
}

const std::string& RuleSetOf(const v1::AuthorizeRequest& request,
                             const v1::AuthorizeRequest* common) {
  return request.rule_set().empty() && common ? common->rule_set() : request.rule_set();
}

namespace {

// Appends the kSet payload of an in / not_in literal list (see
// ConditionHead); false if it does not fit inline.
bool EncodeSet(const Literal& list, std::string* payload) {
  if (list.list.size() > UINT8_MAX) return false;
  for (const Literal& e : list.list) {
    if (e.is_list) return false;
    payload->push_back(static_cast<char>(e.kind));
    switch (e.kind) {
      case Scalar::Kind::kString:
        if (e.text.size() > UINT8_MAX) return false;
        payload->push_back(static_cast<char>(e.text.size()));
        payload->append(e.text);
        break;
      case Scalar::Kind::kNumber: {
        char bytes[sizeof(double)];
        std::memcpy(bytes, &e.number, sizeof(double));
        payload->append(bytes, sizeof(double));
        break;
      }
      case Scalar::Kind::kBool:
        payload->push_back(e.boolean ? 1 : 0);
        break;
    }
    if (payload->size() > ConditionHead::kMaxExtraLines * 64) return false;
  }
  return true;
}

// The head of condition `c` (conditions_[detail]); a kSet head's payload is
// appended to *payload.
ConditionHead MakeConditionHead(const AttributeCondition& c, uint32_t detail,
                                std::string* payload) {
  ConditionHead h;
  h.op = c.op;
  h.source = c.attribute.source;
  h.detail = detail;
  const Literal& literal = c.literal;
  const std::string& key = c.attribute.key;
  if (key.size() > ConditionHead::kInline) return h;
  bool simple = false;
  if (c.has_other) {
    // The compiler allows every operator but regex and exists here.
    if (c.other.key.size() <= ConditionHead::kInline) {
      simple = true;
      h.flags |= ConditionHead::kOther;
      h.other_source = c.other.source;
      h.text_size = static_cast<uint8_t>(c.other.key.size());
      std::copy(c.other.key.begin(), c.other.key.end(), h.text);
    }
  } else {
    switch (c.op) {
      case Op::kExists:
        simple = true;
        if (c.exists_expected) h.flags |= ConditionHead::kExistsExpected;
        break;
      case Op::kEq: case Op::kNe: case Op::kContains:
      case Op::kLt: case Op::kLe: case Op::kGt: case Op::kGe:
        simple = !literal.is_list && (literal.kind != Scalar::Kind::kString ||
                                      literal.text.size() <= ConditionHead::kInline);
        if (simple) {
          h.kind = literal.kind;
          h.number = literal.number;
          if (literal.boolean) h.flags |= ConditionHead::kBoolean;
          h.text_size = static_cast<uint8_t>(literal.text.size());
          std::copy(literal.text.begin(), literal.text.end(), h.text);
        }
        break;
      case Op::kIn: case Op::kNotIn: {
        std::string encoded;
        simple = literal.is_list && EncodeSet(literal, &encoded);
        if (simple) {
          h.flags |= ConditionHead::kSet;
          h.text_size = static_cast<uint8_t>(literal.list.size());
          h.extra_lines = static_cast<uint8_t>((encoded.size() + 63) / 64);
          encoded.resize(h.extra_lines * 64, '\0');
          payload->append(encoded);
        }
        break;
      }
      case Op::kRegex:
        break;
    }
  }
  if (!simple) return h;
  h.flags |= ConditionHead::kSimple;
  h.key_size = static_cast<uint8_t>(key.size());
  std::copy(key.begin(), key.end(), h.key);
  return h;
}

// Appends `n` objects to the record's byte area at an offset aligned for
// T; returns that offset.
template <typename T>
uint32_t AppendAligned(const T* items, size_t n, std::string* bytes) {
  bytes->resize((bytes->size() + alignof(T) - 1) / alignof(T) * alignof(T), '\0');
  const uint32_t at = static_cast<uint32_t>(bytes->size());
  if (n > 0) bytes->append(reinterpret_cast<const char*>(items), n * sizeof(T));
  return at;
}

// The bytes of a record's line 0 that RuleRecord's fields use; the rest of
// the line is free for small items (see Place).
constexpr size_t kHeaderFieldBytes = offsetof(RuleRecord, flags) + sizeof(RuleRecord::flags);
static_assert(kHeaderFieldBytes <= sizeof(RuleRecord));

// Writes `n` objects into the free tail of the record's line 0 when they fit
// at an offset aligned for T past *tail (advancing *tail), else appends them
// to the byte area; returns their offset. A short id and a window or two
// usually fit, which saves a rule without a large client_ip list a line.
template <typename T>
uint32_t Place(const T* items, size_t n, std::string* bytes, size_t* tail) {
  const size_t at = (*tail + alignof(T) - 1) / alignof(T) * alignof(T);
  if (at + n * sizeof(T) > sizeof(RuleRecord)) return AppendAligned(items, n, bytes);
  if (n > 0) std::memcpy(bytes->data() + at, items, n * sizeof(T));
  *tail = at + n * sizeof(T);
  return static_cast<uint32_t>(at);
}

// The sizes of the inline IP lists of a rule, or nullopt if they are too
// long to copy inline.
std::optional<std::array<uint8_t, 4>> InlineIpCounts(const CompiledRule& r) {
  const IpSetView allow = r.ip_in ? r.ip_in->view() : IpSetView{};
  const IpSetView block = r.ip_not_in ? r.ip_not_in->view() : IpSetView{};
  const size_t total = allow.v4_size + allow.v6_size + block.v4_size + block.v6_size;
  if (total > RuleRecord::kInlineIpIntervals) return std::nullopt;
  return std::array<uint8_t, 4>{static_cast<uint8_t>(allow.v4_size),
                                static_cast<uint8_t>(allow.v6_size),
                                static_cast<uint8_t>(block.v4_size),
                                static_cast<uint8_t>(block.v6_size)};
}

}  // namespace

bool ConditionHead::SetContains(const Scalar& s) const {
  const char* p = reinterpret_cast<const char*>(this + 1);
  for (uint32_t i = 0; i < text_size; ++i) {
    const auto kind = static_cast<Scalar::Kind>(*p++);
    switch (kind) {
      case Scalar::Kind::kString: {
        const size_t size = static_cast<unsigned char>(*p++);
        if (s.kind == kind && s.string == std::string_view(p, size)) return true;
        p += size;
        break;
      }
      case Scalar::Kind::kNumber: {
        double number;
        std::memcpy(&number, p, sizeof(double));
        p += sizeof(double);
        if (s.kind == kind && s.number == number) return true;
        break;
      }
      case Scalar::Kind::kBool:
        if (s.kind == kind && s.boolean == (*p != 0)) return true;
        ++p;
        break;
    }
  }
  return false;
}

std::optional<IpSetView> RuleRecord::ip_allow() const {
  if (!(flags & kIpInline) || ip_counts[0] + ip_counts[1] == 0) return std::nullopt;
  const auto* at = reinterpret_cast<const IpInterval*>(bytes() + ip_at);
  return IpSetView{at, ip_counts[0], at + ip_counts[0], ip_counts[1]};
}

std::optional<IpSetView> RuleRecord::ip_block() const {
  if (!(flags & kIpInline) || ip_counts[2] + ip_counts[3] == 0) return std::nullopt;
  const auto* at =
      reinterpret_cast<const IpInterval*>(bytes() + ip_at) + ip_counts[0] + ip_counts[1];
  return IpSetView{at, ip_counts[2], at + ip_counts[2], ip_counts[3]};
}

std::optional<std::vector<uint32_t>> PolicyImpl::Flatten() {
  size_t conditions = 0;
  for (const CompiledRule& r : rules_) conditions += r.attributes.size();
  conditions_.reserve(conditions);
  std::vector<uint32_t> codes;
  codes.reserve(rules_.size());
  obligations_at_.reserve(rules_.size() + 1);
  // The obligations' wire size (each message, its field tag and length:
  // at most 6 bytes), so that obligations_wire_ is allocated once.
  size_t wire = 0;
  for (const CompiledRule& r : rules_) {
    for (const v1::ObligationResult& o : r.obligations) wire += o.ByteSizeLong() + 6;
  }
  obligations_wire_.reserve(wire);
  // A guess at the records' lines (a header, and about two per condition),
  // so that records_ is not copied over and over as it grows.
  records_.reserve(rules_.size() + 2 * conditions);
  std::string bytes;  // one record, built here, then copied into records_
  for (size_t rank = 0; rank < rules_.size(); ++rank) {
    CompiledRule& r = rules_[rank];
    RuleRecord head;
    head.rank = static_cast<uint32_t>(rank);
    head.effect = r.effect;
    head.condition_count = static_cast<uint32_t>(r.attributes.size());
    bytes.assign(64, '\0');  // line 0: the header, written last
    size_t tail = kHeaderFieldBytes;  // line 0's free bytes start here
    for (AttributeCondition& c : r.attributes) {
      std::string payload;
      const ConditionHead h =
          MakeConditionHead(c, static_cast<uint32_t>(conditions_.size()), &payload);
      bytes.append(reinterpret_cast<const char*>(&h), sizeof(h));
      bytes.append(payload);
      conditions_.push_back(std::move(c));
    }
    head.role_count = static_cast<uint32_t>(r.roles.size());
    if (head.role_count <= RuleRecord::kInlineRoles) {
      std::copy(r.roles.begin(), r.roles.end(), head.roles);
    } else {
      head.roles[0] = Place(r.roles.data(), r.roles.size(), &bytes, &tail);
    }
    head.window_count = static_cast<uint16_t>(r.windows.size());
    head.windows_at = Place(r.windows.data(), r.windows.size(), &bytes, &tail);
    head.flags = (r.location ? RuleRecord::kLocation : 0) | (r.has_ip ? RuleRecord::kIp : 0) |
                 (r.obligations.empty() ? 0 : RuleRecord::kObligations);
    obligations_at_.push_back(static_cast<uint32_t>(obligations_wire_.size()));
    if (!r.obligations.empty()) {
      v1::AuthorizeResponse fragment;
      for (v1::ObligationResult& o : r.obligations) *fragment.add_obligations() = std::move(o);
      if (obligations_wire_.size() + fragment.ByteSizeLong() > UINT32_MAX) return std::nullopt;
      fragment.AppendToString(&obligations_wire_);
      std::vector<v1::ObligationResult>().swap(r.obligations);
    }
    if (r.has_ip) {
      if (std::optional<std::array<uint8_t, 4>> counts = InlineIpCounts(r)) {
        head.flags |= RuleRecord::kIpInline;
        std::copy(counts->begin(), counts->end(), head.ip_counts);
        const IpSetView allow = r.ip_in ? r.ip_in->view() : IpSetView{};
        const IpSetView block = r.ip_not_in ? r.ip_not_in->view() : IpSetView{};
        head.ip_at = AppendAligned(allow.v4, allow.v4_size, &bytes);
        AppendAligned(allow.v6, allow.v6_size, &bytes);
        AppendAligned(block.v4, block.v4_size, &bytes);
        AppendAligned(block.v6, block.v6_size, &bytes);
      }
    }
    head.id_size = static_cast<uint8_t>(r.id.size());  // ids are at most 128 bytes
    head.id_at = Place(r.id.data(), r.id.size(), &bytes, &tail);
    std::memcpy(bytes.data(), &head, kHeaderFieldBytes);  // not over line 0's tail

    const size_t lines = (bytes.size() + 63) / 64;
    const size_t first = records_.size();
    if (first + lines > RecordCode::kMaxLines) return std::nullopt;
    bytes.resize(lines * 64, '\0');
    records_.resize(first + lines);
    std::memcpy(records_[first].bytes, bytes.data(), bytes.size());
    codes.push_back(static_cast<uint32_t>(first << RecordCode::kLineShift) |
                    static_cast<uint32_t>(std::min<size_t>(lines, RecordCode::kMaxPrefetch)));
    std::vector<uint32_t>().swap(r.roles);
    std::vector<TimeWindow>().swap(r.windows);
    std::vector<AttributeCondition>().swap(r.attributes);
  }
  obligations_at_.push_back(static_cast<uint32_t>(obligations_wire_.size()));
  records_.shrink_to_fit();
  obligations_wire_.shrink_to_fit();
  return codes;
}

void SetIndeterminate(std::string_view reason, v1::AuthorizeResponse* response) {
  response->set_decision(v1::INDETERMINATE);
  response->set_reason(std::string(reason));
}

namespace {

enum class Outcome : uint8_t { kNoMatch, kMatch, kError };
enum class Tri : uint8_t { kFalse, kTrue, kError };

// Limits on what a request may carry; beyond them the request is
// INDETERMINATE rather than an unbounded amount of work.
constexpr int kMaxAttributesPerMap = 1024;
constexpr int kMaxListElements = 4096;

std::optional<std::string> ValidateMap(
    const char* where,
    const google::protobuf::Map<std::string, google::protobuf::Value>& map) {
  if (map.size() > kMaxAttributesPerMap) {
    return absl::StrCat(where, ": ", map.size(), " attributes; the limit is ",
                        kMaxAttributesPerMap);
  }
  for (const auto& [key, value] : map) {
    if (std::optional<std::string> error = ValidateRequestValue(value)) {
      return absl::StrCat(where, "[\"", key, "\"]: ", *error);
    }
    if (value.kind_case() == google::protobuf::Value::kListValue &&
        value.list_value().values_size() > kMaxListElements) {
      return absl::StrCat(where, "[\"", key, "\"]: list of ",
                          value.list_value().values_size(),
                          " elements; the limit is ", kMaxListElements);
    }
  }
  return std::nullopt;
}

std::optional<std::string> ValidateRequest(const RequestParts& r) {
  if (r.action.empty()) return "action is required";
  if (r.resource.type().empty()) {
    return r.common_resource ? "common.resource.type is required" : "resource.type is required";
  }
  if (auto e = ValidateMap(r.common_subject ? "common.subject.attributes" : "subject.attributes",
                           r.subject.attributes())) {
    return e;
  }
  if (auto e = ValidateMap(r.common_resource ? "common.resource.attributes"
                                             : "resource.attributes",
                           r.resource.attributes())) {
    return e;
  }
  if (auto e = ValidateMap(r.common_environment ? "common.environment.attributes"
                                                : "environment.attributes",
                           r.environment.attributes())) {
    return e;
  }
  return std::nullopt;
}

// What the evaluator derives from a request once, lazily where it costs.
class RequestContext {
 public:
  RequestContext(const PolicyImpl& policy, const RequestParts& request, absl::Time now)
      : policy_(policy), request_(request) {
    const v1::Environment& env = request.environment;
    if (env.has_time()) {
      const auto& ts = env.time();
      // google.protobuf.Timestamp's valid range: 0001-01-01 to 9999-12-31.
      time_valid_ = ts.seconds() >= -62135596800 && ts.seconds() <= 253402300799 &&
                    ts.nanos() >= 0 && ts.nanos() <= 999999999;
      time_ = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
    } else {
      time_ = now;
    }
    const size_t words = (policy.role_bits_.size() + 63) / 64;
    role_words_.assign(words, 0);
    if (words > 0) {
      for (const std::string& role : request.subject.roles()) {
        auto it = policy.role_bits_.find(role);
        if (it != policy.role_bits_.end()) {
          role_words_[it->second / 64] |= uint64_t{1} << (it->second % 64);
        }
      }
    }
  }

  bool HasAnyRole(const uint32_t* roles, uint32_t count) const {
    for (uint32_t i = 0; i < count; ++i) {
      if ((role_words_[roles[i] / 64] >> (roles[i] % 64)) & 1) return true;
    }
    return false;
  }

  Tri InAnyWindow(const TimeWindow* begin, const TimeWindow* end, std::string* detail) {
    if (!time_valid_) {
      if (detail) *detail = absl::StrCat(env(), ".time is out of range");
      return Tri::kError;
    }
    if (local_.empty()) local_.resize(policy_.zones_.size());
    for (const TimeWindow* w = begin; w != end; ++w) {
      std::optional<LocalTime>& local = local_[w->zone];
      if (!local) local = ToLocalTime(time_, policy_.zones_[w->zone]);
      if (w->Contains(*local)) return Tri::kTrue;
    }
    if (detail) *detail = "the request time is outside every time window";
    return Tri::kFalse;
  }

  Tri InLocation(const LocationCondition& c, std::string* detail) {
    ParseLocation();
    if (location_state_ == State::kMissing) {
      if (detail) *detail = absl::StrCat("the request has no ", env(), ".location.country");
      return Tri::kFalse;
    }
    if (location_state_ == State::kBad) {
      if (detail) *detail = location_error_;
      return Tri::kError;
    }
    auto matches = [&](const absl::flat_hash_set<std::string>& set) {
      return set.contains(absl::string_view(country_, 2)) ||
             (region_size_ > 0 && set.contains(absl::string_view(region_, region_size_)));
    };
    if (!c.in.empty() && !matches(c.in)) {
      if (detail) *detail = "the location is not in the allowed list";
      return Tri::kFalse;
    }
    if (matches(c.not_in)) {
      if (detail) *detail = "the location is in the not_in list";
      return Tri::kFalse;
    }
    return Tri::kTrue;
  }

  // `allow` null: no allow-list; `block` null: no block-list.
  Tri InIpRanges(const IpSetView* allow, const IpSetView* block, std::string* detail) {
    if (ip_state_ == State::kUnparsed) {
      const std::string& text = request_.environment.client_ip();
      if (text.empty()) {
        ip_state_ = State::kMissing;
      } else if (std::optional<ClientIp> ip = ParseIpAddress(text)) {
        ip_ = *ip;
        ip_state_ = State::kOk;
      } else {
        ip_state_ = State::kBad;
      }
    }
    if (ip_state_ == State::kMissing) {
      if (detail) *detail = absl::StrCat("the request has no ", env(), ".client_ip");
      return Tri::kFalse;
    }
    if (ip_state_ == State::kBad) {
      if (detail) {
        *detail = absl::StrCat(env(), ".client_ip \"",
                               request_.environment.client_ip(),
                               "\" is not an IP address");
      }
      return Tri::kError;
    }
    if (allow && !allow->Contains(ip_)) {
      if (detail) *detail = "the client IP is not in the allowed ranges";
      return Tri::kFalse;
    }
    if (block && block->Contains(ip_)) {
      if (detail) *detail = "the client IP is in a not_in range";
      return Tri::kFalse;
    }
    return Tri::kTrue;
  }

  AttrValue Resolve(const AttrRef& ref) const { return Resolve(ref.source, ref.key); }

  // `key` names the entry of an attribute map for the *Attribute sources.
  AttrValue Resolve(AttrRef::Source source, std::string_view key) const {
    using Source = AttrRef::Source;
    auto string_or_missing = [](const std::string& s) {
      return s.empty() ? AttrValue::Missing() : AttrValue::FromScalar(Scalar::String(s));
    };
    auto lookup = [&](const google::protobuf::Map<std::string, google::protobuf::Value>& map) {
      auto it = map.find(key);
      return it == map.end() ? AttrValue::Missing() : AttrValue::FromProto(it->second);
    };
    switch (source) {
      case Source::kSubjectId: return string_or_missing(request_.subject.id());
      case Source::kSubjectRoles:
        return request_.subject.roles().empty()
                   ? AttrValue::Missing()
                   : AttrValue::FromStrings(request_.subject.roles());
      case Source::kResourceId: return string_or_missing(request_.resource.id());
      case Source::kResourceType: return string_or_missing(request_.resource.type());
      case Source::kAction: return string_or_missing(request_.action);
      case Source::kSubjectAttribute: return lookup(request_.subject.attributes());
      case Source::kResourceAttribute: return lookup(request_.resource.attributes());
      case Source::kEnvironmentAttribute: return lookup(request_.environment.attributes());
    }
    return AttrValue::Missing();
  }

 private:
  enum class State : uint8_t { kUnparsed, kMissing, kOk, kBad };

  // The environment's field path in error messages.
  const char* env() const {
    return request_.common_environment ? "common.environment" : "environment";
  }

  void ParseLocation() {
    if (location_state_ != State::kUnparsed) return;
    const v1::Location& loc = request_.environment.location();
    if (loc.country().empty()) {
      if (loc.region().empty()) {
        location_state_ = State::kMissing;
      } else {
        location_state_ = State::kBad;
        location_error_ = absl::StrCat(env(), ".location.region \"", loc.region(),
                                       "\" is given without a country");
      }
      return;
    }
    const std::string& c = loc.country();
    if (c.size() != 2 || !absl::ascii_isalpha(static_cast<unsigned char>(c[0])) ||
        !absl::ascii_isalpha(static_cast<unsigned char>(c[1]))) {
      location_state_ = State::kBad;
      location_error_ = absl::StrCat(env(), ".location.country \"", c,
                                     "\" is not an ISO 3166-1 alpha-2 code");
      return;
    }
    country_[0] = absl::ascii_toupper(c[0]);
    country_[1] = absl::ascii_toupper(c[1]);
    const std::string& r = loc.region();
    if (!r.empty()) {
      std::string_view sub = r;
      if (r.size() > 3 && r[2] == '-') {
        if (absl::ascii_toupper(r[0]) != country_[0] ||
            absl::ascii_toupper(r[1]) != country_[1]) {
          location_state_ = State::kBad;
          location_error_ = absl::StrCat(env(), ".location.region \"", r,
                                         "\" is not in country \"", c, "\"");
          return;
        }
        sub = std::string_view(r).substr(3);
      }
      if (sub.empty() || sub.size() > 3 ||
          !std::all_of(sub.begin(), sub.end(), [](char ch) {
            return absl::ascii_isalnum(static_cast<unsigned char>(ch));
          })) {
        location_state_ = State::kBad;
        location_error_ = absl::StrCat(env(), ".location.region \"", r,
                                       "\" is not an ISO 3166-2 subdivision");
        return;
      }
      region_[0] = country_[0];
      region_[1] = country_[1];
      region_[2] = '-';
      for (size_t i = 0; i < sub.size(); ++i) region_[3 + i] = absl::ascii_toupper(sub[i]);
      region_size_ = 3 + sub.size();
    }
    location_state_ = State::kOk;
  }

  const PolicyImpl& policy_;
  const RequestParts& request_;
  absl::Time time_;
  bool time_valid_ = true;
  absl::InlinedVector<uint64_t, 4> role_words_;
  absl::InlinedVector<std::optional<LocalTime>, 4> local_;
  State ip_state_ = State::kUnparsed;
  ClientIp ip_{0, false};
  State location_state_ = State::kUnparsed;
  char country_[2] = {0, 0};
  char region_[6] = {};
  size_t region_size_ = 0;
  std::string location_error_;
};

bool EqualsLiteral(const AttrValue& a, const Literal& literal) {
  if (literal.is_list) {
    if (!a.is_list() || a.size() != static_cast<int>(literal.list.size())) return false;
    for (int i = 0; i < a.size(); ++i) {
      if (!ScalarEquals(a.at(i), literal.list[i].scalar())) return false;
    }
    return true;
  }
  return !a.is_list() && ScalarEquals(a.scalar(), literal.scalar());
}

// Any element of `a` (or `a` itself) satisfies pred.
template <typename F>
bool AnyScalar(const AttrValue& a, F&& pred) {
  if (!a.is_list()) return pred(a.scalar());
  for (int i = 0; i < a.size(); ++i) {
    if (pred(a.at(i))) return true;
  }
  return false;
}

bool InOther(const AttrValue& a, const AttrValue& other) {
  return AnyScalar(a, [&](const Scalar& x) {
    return AnyScalar(other, [&](const Scalar& y) { return ScalarEquals(x, y); });
  });
}

bool Ordered(Op op, const AttrValue& a, const Scalar& b) {
  if (a.is_list()) return false;
  std::optional<int> c = ScalarCompare(a.scalar(), b);
  if (!c) return false;
  switch (op) {
    case Op::kLt: return *c < 0;
    case Op::kLe: return *c <= 0;
    case Op::kGt: return *c > 0;
    case Op::kGe: return *c >= 0;
    default: return false;
  }
}

// Every operator but regex and exists, of `a` against another present
// attribute.
bool HoldsAgainstOther(Op op, const AttrValue& a, const AttrValue& other) {
  switch (op) {
    case Op::kEq: return AttrEquals(a, other);
    case Op::kNe: return !AttrEquals(a, other);
    case Op::kIn: return InOther(a, other);
    case Op::kNotIn: return !InOther(a, other);
    case Op::kContains:
      if (other.is_list()) return false;
      return AnyScalar(a, [&](const Scalar& x) { return ScalarEquals(x, other.scalar()); });
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe:
      return !other.is_list() && Ordered(op, a, other.scalar());
    case Op::kRegex:
    case Op::kExists:
      break;
  }
  return false;
}

bool EvalAttribute(const AttributeCondition& c, const RequestContext& ctx) {
  const AttrValue a = ctx.Resolve(c.attribute);
  if (c.op == Op::kExists) return a.missing() != c.exists_expected;
  if (a.missing()) return false;
  if (c.has_other) {
    const AttrValue other = ctx.Resolve(c.other);
    return !other.missing() && HoldsAgainstOther(c.op, a, other);
  }
  switch (c.op) {
    case Op::kEq: return EqualsLiteral(a, c.literal);
    case Op::kNe: return !EqualsLiteral(a, c.literal);
    case Op::kIn:
    case Op::kNotIn: {
      const bool in = AnyScalar(a, [&](const Scalar& x) { return c.set->Contains(x); });
      return (c.op == Op::kIn) == in;
    }
    case Op::kContains: {
      const Scalar needle = c.literal.scalar();
      return AnyScalar(a, [&](const Scalar& x) { return ScalarEquals(x, needle); });
    }
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe:
      return Ordered(c.op, a, c.literal.scalar());
    case Op::kRegex:
      return AnyScalar(a, [&](const Scalar& x) {
        return x.kind == Scalar::Kind::kString &&
               RE2::FullMatch(re2::StringPiece(x.string.data(), x.string.size()), *c.regex);
      });
    case Op::kExists:
      break;
  }
  return false;
}

// A condition from its head alone when it is simple (see ConditionHead),
// the same semantics as EvalAttribute on the full condition.
bool EvalCondition(const ConditionHead& h, const PolicyImpl& policy,
                   const RequestContext& ctx) {
  if (!(h.flags & ConditionHead::kSimple)) {
    return EvalAttribute(policy.conditions_[h.detail], ctx);
  }
  const AttrValue a = ctx.Resolve(h.source, h.key_view());
  if (h.op == Op::kExists) {
    return a.missing() != static_cast<bool>(h.flags & ConditionHead::kExistsExpected);
  }
  if (a.missing()) return false;
  if (h.flags & ConditionHead::kOther) {
    const AttrValue other = ctx.Resolve(h.other_source, h.text_view());
    return !other.missing() && HoldsAgainstOther(h.op, a, other);
  }
  if (h.flags & ConditionHead::kSet) {
    const bool in = AnyScalar(a, [&](const Scalar& x) { return h.SetContains(x); });
    return (h.op == Op::kIn) == in;
  }
  const Scalar literal = h.literal();
  switch (h.op) {
    case Op::kEq: return !a.is_list() && ScalarEquals(a.scalar(), literal);
    case Op::kNe: return !(!a.is_list() && ScalarEquals(a.scalar(), literal));
    case Op::kContains:
      return AnyScalar(a, [&](const Scalar& x) { return ScalarEquals(x, literal); });
    default: return Ordered(h.op, a, literal);
  }
}

const char* OpName(Op op) {
  static constexpr const char* kNames[] = {"eq", "ne", "in", "not_in", "contains", "lt",
                                           "le", "gt", "ge", "regex", "exists"};
  return kNames[static_cast<int>(op)];
}

// Evaluates one rule's roles and conditions. A false condition wins over
// one that errs. `detail` (explain only) receives why; `error` receives the
// first error's words.
Outcome EvalRule(const PolicyImpl& policy, const RuleRecord& rule, RequestContext& ctx,
                 std::string* detail, std::string* error) {
  if (rule.role_count > 0 && !ctx.HasAnyRole(rule.role_bits(), rule.role_count)) {
    if (detail) *detail = "the subject has none of the rule's roles";
    return Outcome::kNoMatch;
  }
  // Each check runs without building strings; on a false result with
  // explain, or on an error (rare), it is asked again for its words.
  bool erred = false;
  auto check = [&](auto&& eval) {
    const Tri t = eval(nullptr);
    if (t == Tri::kFalse) {
      if (detail) eval(detail);
      return false;
    }
    if (t == Tri::kError && !erred) {
      erred = true;
      eval(error);
    }
    return true;
  };
  if (rule.window_count > 0 &&
      !check([&](std::string* why) {
        return ctx.InAnyWindow(rule.windows(), rule.windows() + rule.window_count, why);
      })) {
    return Outcome::kNoMatch;
  }
  if (rule.flags & RuleRecord::kLocation &&
      !check([&](std::string* why) {
        return ctx.InLocation(*policy.rules_[rule.rank].location, why);
      })) {
    return Outcome::kNoMatch;
  }
  if (rule.flags & RuleRecord::kIp) {
    std::optional<IpSetView> allow, block;
    if (rule.flags & RuleRecord::kIpInline) {
      allow = rule.ip_allow();
      block = rule.ip_block();
    } else {
      const CompiledRule& cold = policy.rules_[rule.rank];
      if (cold.ip_in) allow = cold.ip_in->view();
      if (cold.ip_not_in) block = cold.ip_not_in->view();
    }
    if (!check([&](std::string* why) {
          return ctx.InIpRanges(allow ? &*allow : nullptr, block ? &*block : nullptr, why);
        })) {
      return Outcome::kNoMatch;
    }
  }
  const ConditionHead* h = rule.conditions();
  for (uint32_t i = 0; i < rule.condition_count; ++i, h = h->next()) {
    if (!EvalCondition(*h, policy, ctx)) {
      const AttributeCondition& c = policy.conditions_[h->detail];
      if (detail) {
        *detail = absl::StrCat("condition ", c.attribute.path, " ", OpName(c.op),
                               c.has_other ? " " + c.other.path : std::string(),
                               " does not hold");
      }
      return Outcome::kNoMatch;
    }
  }
  if (erred) {
    if (detail) *detail = *error;
    return Outcome::kError;
  }
  return Outcome::kMatch;
}

// Rules that matched or erred: rarely more than a few per request, so they
// live on the stack.
using RuleRefs = absl::InlinedVector<const RuleRecord*, 8>;

// Writes "<verb> rule 'a'" or "<verb> rules 'a', 'b'" into `out` (the
// response's own string) with one allocation.
void DecidedBy(absl::string_view verb, const RuleRefs& rules, std::string* out) {
  size_t size = verb.size() + 7;
  for (const RuleRecord* r : rules) size += r->id_size + 4;
  out->clear();
  out->reserve(size);
  absl::StrAppend(out, verb, rules.size() > 1 ? " rules " : " rule ");
  for (size_t i = 0; i < rules.size(); ++i) {
    absl::StrAppend(out, i ? ", '" : "'", ToAbsl(rules[i]->id()), "'");
  }
}

}  // namespace

void PolicyImpl::Evaluate(const RequestParts& request, absl::Time now,
                          v1::AuthorizeResponse* response) const {
  // At 100k rules the index's slots, then its nodes, then the candidates'
  // records are each likely a cache miss, and each needs the one before.
  // Each is requested as soon as its address is known, and the request's
  // own work (validation, the response's first fields, the role bits) is
  // done while they arrive (bench/README.md, "The engine").
  RuleIndex::Lookup lookup(index_, request.resource.type(), request.action);
  std::optional<std::string> error = ValidateRequest(request);
  lookup.PrefetchNodes();
  response->Clear();
  response->set_rule_set(name_);
  if (error) {
    SetIndeterminate(absl::StrCat("invalid request: ", *error), response);
    return;
  }
  RequestContext ctx(*this, request, now);

  // Candidate rules: the union of the index lists that can match, in rank
  // (evaluation) order.
  RuleIndex::Spans lists;
  lookup.Collect(&lists);
  absl::InlinedVector<uint32_t, 64> merged;
  const uint32_t* candidates = nullptr;
  size_t candidate_count = 0;
  if (lists.size() == 1) {
    candidates = lists[0].values;
    candidate_count = lists[0].size;
  } else if (lists.size() > 1) {
    for (const RuleIndex::Span& list : lists) {
      merged.insert(merged.end(), list.values, list.values + list.size);
    }
    std::sort(merged.begin(), merged.end());
    merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
    candidates = merged.data();
    candidate_count = merged.size();
  }

  const bool explain = request.explain;
  RuleRefs matched_permit, matched_deny, errored;
  bool errored_permit = false, errored_deny = false;
  std::string first_error;
  std::string detail;
  // The candidates' records are likely cache misses: request all their
  // lines at once.
  for (size_t i = 0; i < candidate_count; ++i) {
    const Line* first = &records_[RecordCode::first_line(candidates[i])];
    for (uint32_t l = 0; l < RecordCode::prefetch_lines(candidates[i]); ++l) {
      __builtin_prefetch(first + l);
    }
  }
  for (size_t i = 0; i < candidate_count; ++i) {
    const RuleRecord& rule = record(candidates[i]);
    std::string error;
    const Outcome outcome = EvalRule(*this, rule, ctx, explain ? &detail : nullptr, &error);
    if (explain) {
      v1::RuleTrace* trace = response->add_trace();
      trace->set_rule_id(rule.id().data(), rule.id().size());
      trace->set_effect(EffectName(rule.effect));
      trace->set_outcome(outcome == Outcome::kMatch ? "match"
                         : outcome == Outcome::kNoMatch ? "no_match" : "error");
      trace->set_detail(outcome == Outcome::kMatch ? "every condition holds" : detail);
    }
    if (outcome == Outcome::kNoMatch) continue;
    if (outcome == Outcome::kError) {
      errored.push_back(&rule);
      (rule.effect == Effect::kPermit ? errored_permit : errored_deny) = true;
      if (first_error.empty()) {
        first_error = absl::StrCat("rule '", ToAbsl(rule.id()), "': ", error);
      }
    } else {
      (rule.effect == Effect::kPermit ? matched_permit : matched_deny).push_back(&rule);
    }
    if (algorithm_ == Algorithm::kFirstApplicable) break;
  }

  // Combine (README, "Combining algorithms and decisions").
  const RuleRefs* determining = nullptr;
  v1::Decision decision = v1::NOT_APPLICABLE;
  auto decide = [&](v1::Decision d, const RuleRefs* rules) {
    decision = d;
    determining = rules;
  };
  switch (algorithm_) {
    case Algorithm::kDenyOverrides:
      if (!matched_deny.empty()) decide(v1::DENY, &matched_deny);
      else if (errored_deny) decide(v1::INDETERMINATE, &errored);
      else if (!matched_permit.empty()) decide(v1::PERMIT, &matched_permit);
      else if (errored_permit) decide(v1::INDETERMINATE, &errored);
      break;
    case Algorithm::kPermitOverrides:
      if (!matched_permit.empty()) decide(v1::PERMIT, &matched_permit);
      else if (errored_permit) decide(v1::INDETERMINATE, &errored);
      else if (!matched_deny.empty()) decide(v1::DENY, &matched_deny);
      else if (errored_deny) decide(v1::INDETERMINATE, &errored);
      break;
    case Algorithm::kFirstApplicable:
      if (!matched_permit.empty()) decide(v1::PERMIT, &matched_permit);
      else if (!matched_deny.empty()) decide(v1::DENY, &matched_deny);
      else if (!errored.empty()) decide(v1::INDETERMINATE, &errored);
      break;
  }
  response->set_decision(decision);
  if (determining) {
    for (const RuleRecord* rule : *determining) {
      response->add_determining_rules(rule->id().data(), rule->id().size());
      if ((decision == v1::PERMIT || decision == v1::DENY) &&
          (rule->flags & RuleRecord::kObligations)) {
        // Appends the rule's obligations to the response's (a parse of
        // AuthorizeResponse fields merges, and these bytes hold only
        // obligations); they were serialized when compiled.
        const uint32_t begin = obligations_at_[rule->rank];
        const uint32_t end = obligations_at_[rule->rank + 1];
        google::protobuf::io::CodedInputStream in(
            reinterpret_cast<const uint8_t*>(obligations_wire_.data()) + begin,
            static_cast<int>(end - begin));
        if (!response->MergePartialFromCodedStream(&in)) {
          // Cannot happen short of corrupted memory; a decision without
          // its obligations would be a weaker one, so none is made.
          response->clear_obligations();
          response->set_decision(v1::INDETERMINATE);
          response->set_reason(absl::StrCat("could not decide: internal error: the obligations "
                                            "of rule '", ToAbsl(rule->id()), "' did not parse"));
          return;
        }
      }
    }
  }
  switch (decision) {
    case v1::PERMIT:
      DecidedBy("permitted by", *determining, response->mutable_reason());
      break;
    case v1::DENY:
      DecidedBy("denied by", *determining, response->mutable_reason());
      break;
    case v1::INDETERMINATE:
      response->set_reason(absl::StrCat("could not decide: ", first_error));
      break;
    default:
      absl::StrAppend(response->mutable_reason(), "no rule applies to action '",
                      request.action, "' on resource type '", request.resource.type(),
                      "' (", candidate_count, " candidate rule",
                      candidate_count == 1 ? "" : "s", ", none matched)");
      break;
  }
}

}  // namespace pdp::engine
