// The compiled decision structure behind Policy (internal to engine/).
//
// Layout, built once by the compiler and never mutated, dense where a
// decision reads it (each line of a 100k-rule structure is a cache miss):
//   - rules in evaluation order ("rank"): file order, or priority order
//     under first-applicable.
//   - index_ (rule_index.h): (resource type, action) -> lists of the
//     candidates' record codes, ascending in rank, so a merged, sorted
//     candidate list is already in evaluation order; one slot probe and one
//     contiguous node per matching type pattern.
//   - each rule split hot/cold: its record (RuleRecord, whole cache lines of
//     records_: effect, roles, condition heads with short literal lists and
//     other-attribute references inline, time windows, small IP lists, id)
//     is all that a candidate reads in the common case, and all its lines
//     are requested at once; rules_ and conditions_ hold the rest (location,
//     large IP lists, obligations, regexes, large sets, paths for explain).
//   - roles are interned to bit numbers; a request's roles become a bitset
//     once, and each rule tests its few role bits.
//   - time zones are loaded once; a request converts its time to local time
//     at most once per zone. CIDR lists are merged interval sets (binary
//     search). Regexes are compiled once with a memory budget and shared.
//
// Tested through Policy by tests/engine_*_test.cc and differential_test.cc.
#ifndef PDP_ENGINE_POLICY_IMPL_H_
#define PDP_ENGINE_POLICY_IMPL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "engine/absl_compat.h"
#include "engine/ip_set.h"
#include "engine/rule_index.h"
#include "engine/time_window.h"
#include "engine/values.h"
#include "pdp/v1/authorization.pb.h"
#include "re2/re2.h"

namespace pdp::engine {

enum class Effect : uint8_t { kPermit, kDeny };
enum class Algorithm : uint8_t {
  kDenyOverrides,
  kPermitOverrides,
  kFirstApplicable
};

const char* EffectName(Effect effect);

// Where an attribute's value comes from.
struct AttrRef {
  enum class Source : uint8_t {
    kSubjectAttribute,
    kResourceAttribute,
    kEnvironmentAttribute,
    kSubjectId,
    kSubjectRoles,
    kResourceId,
    kResourceType,
    kAction,
  };
  Source source = Source::kSubjectAttribute;
  std::string key;   // map key for the *Attribute sources
  std::string path;  // as written ("subject.department"), for traces
};

enum class Op : uint8_t {
  kEq, kNe, kIn, kNotIn, kContains, kLt, kLe, kGt, kGe, kRegex, kExists
};

// Fields in the order the evaluator reads them, so that the common
// conditions (an attribute against a literal) touch the first two lines.
struct AttributeCondition {
  Op op = Op::kEq;
  bool has_other = false;
  bool exists_expected = true;            // exists
  AttrRef attribute;
  Literal literal;                        // eq, ne, contains, lt..ge
  AttrRef other;
  std::unique_ptr<ScalarSet> set;         // in / not_in with a literal list
  std::shared_ptr<const RE2> regex;       // regex; shared by equal patterns
};

// The hot part of an attribute condition: one cache line in its rule's
// record (RuleRecord), followed by `extra_lines` lines of payload. For the
// common conditions it holds everything the evaluator reads:
//   - an attribute compared with a scalar literal (eq, ne, contains, lt..ge)
//     or exists, with a short key and a short string literal;
//   - an attribute compared with another attribute (kOther: the other's
//     source here, its key in `text`), any operator but regex;
//   - in / not_in with a short literal list (kSet: the list's `text_size`
//     elements in the payload, each a Scalar::Kind byte, then a length byte
//     and the bytes of a string, 8 bytes of a number or 1 of a bool).
// Any other condition is evaluated from the full AttributeCondition
// (conditions_[detail]), which also gives explain its words.
struct alignas(64) ConditionHead {
  static constexpr size_t kInline = 22;
  static constexpr uint32_t kMaxExtraLines = 3;
  enum Flag : uint8_t {
    kSimple = 1, kExistsExpected = 2, kBoolean = 4, kOther = 8, kSet = 16
  };

  Op op = Op::kEq;
  AttrRef::Source source = AttrRef::Source::kSubjectAttribute;
  Scalar::Kind kind = Scalar::Kind::kString;  // the literal's
  uint8_t flags = 0;
  uint32_t detail = 0;  // index of the full condition in conditions_
  double number = 0;
  AttrRef::Source other_source = AttrRef::Source::kSubjectAttribute;  // kOther
  uint8_t extra_lines = 0;  // payload lines after this one (kSet)
  uint8_t key_size = 0;
  char key[kInline] = {};
  uint8_t text_size = 0;  // kSet: the number of elements
  char text[kInline] = {};

  std::string_view key_view() const { return std::string_view(key, key_size); }
  std::string_view text_view() const { return std::string_view(text, text_size); }
  Scalar literal() const {
    switch (kind) {
      case Scalar::Kind::kString: return Scalar::String(text_view());
      case Scalar::Kind::kNumber: return Scalar::Number(number);
      case Scalar::Kind::kBool: return Scalar::Bool(flags & kBoolean);
    }
    return Scalar::Bool(false);
  }
  // kSet: whether the literal list holds `s` (ScalarEquals on each element).
  bool SetContains(const Scalar& s) const;
  const ConditionHead* next() const { return this + 1 + extra_lines; }
};
static_assert(sizeof(ConditionHead) == 64, "one condition head per cache line");

struct LocationCondition {
  // Upper-case "DE" or "US-CA".
  absl::flat_hash_set<std::string> in;
  absl::flat_hash_set<std::string> not_in;
};

// A rule as compiled, in rank order. The compiler fills roles, windows,
// attributes and obligations here; PolicyImpl::Flatten copies roles and
// windows into the rule's record, moves the attributes to conditions_ and
// serializes the obligations into obligations_wire_. What stays is the cold
// part: read for a rule's location and a client_ip list too long for its
// record.
struct CompiledRule {
  std::string id;
  Effect effect = Effect::kPermit;
  std::vector<uint32_t> roles;  // interned role bits; empty = any subject
  std::vector<TimeWindow> windows;
  std::unique_ptr<LocationCondition> location;
  bool has_ip = false;
  const IpSet* ip_in = nullptr;      // null = no allow-list
  const IpSet* ip_not_in = nullptr;  // null = no block-list
  std::vector<AttributeCondition> attributes;
  std::vector<v1::ObligationResult> obligations;  // empty after Flatten
};

// A rule's hot record: everything a candidate reads, in whole cache lines
// of PolicyImpl::records_, in rank order, so that a candidate costs one
// wave of parallel loads after the index. The index holds each rule's
// RecordCode (its first line and line count), which also orders candidates
// by rank. Layout:
//   line 0      this header; its unused tail holds whichever of the items
//               below fit there (usually the windows and a short id)
//   lines 1..   the attribute conditions' heads, each with its payload lines
//   then        bytes: role bits (when more than kInlineRoles), time windows,
//               the IP intervals of a small client_ip condition (kIpInline),
//               the rule id
// Location, large IP lists, regexes and large `in` lists stay in the cold
// CompiledRule and AttributeCondition (rules_[rank]); obligations are in
// obligations_wire_, serialized.
struct alignas(64) RuleRecord {
  static constexpr uint32_t kInlineRoles = 2;
  // Up to this many intervals of a client_ip condition are copied inline.
  static constexpr uint32_t kInlineIpIntervals = 8;
  enum Flag : uint8_t { kLocation = 1, kIp = 2, kIpInline = 4, kObligations = 8 };

  // Role bits when role_count <= kInlineRoles; else roles[0] is the byte
  // offset in the record of role_count bits.
  uint32_t roles[kInlineRoles] = {0, 0};
  uint32_t role_count = 0;
  uint32_t rank = 0;
  uint32_t condition_count = 0;
  uint32_t windows_at = 0;  // byte offsets in the record
  uint32_t ip_at = 0;
  uint32_t id_at = 0;
  uint16_t window_count = 0;
  // kIpInline: intervals of allow v4, allow v6, block v4, block v6, in order.
  uint8_t ip_counts[4] = {0, 0, 0, 0};
  uint8_t id_size = 0;
  Effect effect = Effect::kPermit;
  uint8_t flags = 0;

  const char* bytes() const { return reinterpret_cast<const char*>(this); }
  const uint32_t* role_bits() const {
    return role_count <= kInlineRoles ? roles
                                      : reinterpret_cast<const uint32_t*>(bytes() + roles[0]);
  }
  const ConditionHead* conditions() const {
    return reinterpret_cast<const ConditionHead*>(bytes() + 64);
  }
  const TimeWindow* windows() const {
    return reinterpret_cast<const TimeWindow*>(bytes() + windows_at);
  }
  std::string_view id() const { return std::string_view(bytes() + id_at, id_size); }
  // kIpInline: the allow-list (nullopt: none) and the block-list.
  std::optional<IpSetView> ip_allow() const;
  std::optional<IpSetView> ip_block() const;
};
static_assert(sizeof(RuleRecord) == 64, "a record's header is one cache line");

// What the index holds for a rule: (first line << kLineShift) | min(lines,
// kMaxPrefetch). Ascending in rank, as records are laid out in rank order.
struct RecordCode {
  static constexpr uint32_t kLineShift = 3;
  static constexpr uint32_t kMaxPrefetch = 7;
  static constexpr uint32_t kMaxLines = UINT32_MAX >> kLineShift;
  static uint32_t first_line(uint32_t code) { return code >> kLineShift; }
  static uint32_t prefetch_lines(uint32_t code) { return code & kMaxPrefetch; }
};

// The parts of a request a decision reads: from the request itself or,
// for a batch request that leaves them unset, from the batch's common part
// (WithCommon in policy.h says which). References into the requests; no copy.
struct RequestParts {
  RequestParts(const v1::AuthorizeRequest& request, const v1::AuthorizeRequest* common);

  const v1::Subject& subject;
  const std::string& action;
  const v1::Resource& resource;
  const v1::Environment& environment;
  bool explain;
  // Which parts came from the common part, for the field names of errors.
  bool common_subject, common_resource, common_environment;
};

class PolicyImpl {
 public:
  void Evaluate(const RequestParts& request, absl::Time now,
                v1::AuthorizeResponse* response) const;

  std::string name_;
  Algorithm algorithm_ = Algorithm::kDenyOverrides;
  // Writes each rule's record into records_ (moving its roles, windows and
  // attributes out of the CompiledRule, and serializing its obligations into
  // obligations_wire_) and returns the rules' RecordCodes by rank, for the
  // index. Called once by the compiler, after ranking; nullopt if the
  // records would not fit RecordCode or the obligations 4 GiB.
  std::optional<std::vector<uint32_t>> Flatten();
  const RuleRecord& record(uint32_t code) const {
    return *reinterpret_cast<const RuleRecord*>(&records_[RecordCode::first_line(code)]);
  }

  struct alignas(64) Line {
    unsigned char bytes[64];
  };
  std::vector<CompiledRule> rules_;             // by rank: the cold parts
  std::vector<Line> records_;                   // by rank: the hot parts
  std::vector<AttributeCondition> conditions_;  // full, in record order
  // Each rule's obligations, serialized as AuthorizeResponse fields (so a
  // decision merges them into its response with one parse of contiguous
  // bytes, not a deep copy through the messages' pointers): the rule of
  // rank r has bytes [obligations_at_[r], obligations_at_[r + 1]).
  std::string obligations_wire_;
  std::vector<uint32_t> obligations_at_;  // by rank, one more than rules_
  RuleIndex index_;
  absl::flat_hash_map<std::string, uint32_t> role_bits_;
  std::vector<absl::TimeZone> zones_;
  std::vector<std::unique_ptr<IpSet>> ip_sets_;
  absl::flat_hash_set<std::string> sensitive_;  // attribute paths
  size_t memory_bytes_ = 0;
};

}  // namespace pdp::engine

#endif  // PDP_ENGINE_POLICY_IMPL_H_
