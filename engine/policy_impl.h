// The compiled decision structure behind Policy (internal to engine/).
//
// Layout, built once by the compiler and never mutated, dense where a
// decision reads it (each line of a 100k-rule structure is a cache miss):
//   - rules in evaluation order ("rank"): file order, or priority order
//     under first-applicable. Candidate lists hold ranks, so a merged,
//     sorted candidate list is already in evaluation order.
//   - index_ (rule_index.h): (resource type, action) -> rank lists, one
//     slot probe and one contiguous node per matching type pattern.
//   - each rule split hot/cold: heads_ (32 bytes: effect, role bits, pool
//     ranges, flags), condition_heads_ (64 bytes each, enough for the
//     common conditions) and windows_ are what candidates read; rules_ and
//     conditions_ hold the rest (location, IP, id, obligations, regexes,
//     sets, paths for explain).
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

// The hot part of an attribute condition: one cache line, in the pool
// order of PolicyImpl::conditions_. For the common conditions (an attribute
// compared with a scalar literal: eq, ne, contains, lt..ge, or exists, with
// a short key and a short string literal) it holds everything the evaluator
// reads; any other condition is evaluated from the full AttributeCondition
// (conditions_[detail]), which also gives explain its words.
struct alignas(64) ConditionHead {
  static constexpr size_t kInline = 23;
  enum Flag : uint8_t { kSimple = 1, kExistsExpected = 2, kBoolean = 4 };

  Op op = Op::kEq;
  AttrRef::Source source = AttrRef::Source::kSubjectAttribute;
  Scalar::Kind kind = Scalar::Kind::kString;  // the literal's
  uint8_t flags = 0;
  uint32_t detail = 0;  // index of the full condition in conditions_
  double number = 0;
  uint8_t key_size = 0;
  char key[kInline] = {};
  uint8_t text_size = 0;
  char text[kInline] = {};

  std::string_view key_view() const { return std::string_view(key, key_size); }
  Scalar literal() const {
    switch (kind) {
      case Scalar::Kind::kString: return Scalar::String(std::string_view(text, text_size));
      case Scalar::Kind::kNumber: return Scalar::Number(number);
      case Scalar::Kind::kBool: return Scalar::Bool(flags & kBoolean);
    }
    return Scalar::Bool(false);
  }
};
static_assert(sizeof(ConditionHead) == 64, "one condition head per cache line");

struct LocationCondition {
  // Upper-case "DE" or "US-CA".
  absl::flat_hash_set<std::string> in;
  absl::flat_hash_set<std::string> not_in;
};

// A rule as compiled, in rank order. The compiler fills roles, windows and
// attributes here, then moves them into the policy's contiguous pools
// (PolicyImpl::Flatten); what stays is the cold part: read for a rule's
// location or IP condition, and for the id and obligations of the rules
// that decide.
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
  std::vector<v1::ObligationResult> obligations;
};

// The hot part of a rule: what every candidate reads, 32 bytes, two per
// cache line, in rank order. Roles, time windows and attribute conditions
// are ranges of the policy's pools; location and IP are flags that send the
// evaluator to the cold CompiledRule.
struct alignas(32) RuleHead {
  static constexpr uint32_t kInlineRoles = 2;
  enum Flag : uint8_t { kLocation = 1, kIp = 2 };

  // Role bits when role_count <= kInlineRoles; else roles[0] is the offset
  // of role_count bits in PolicyImpl::role_pool_.
  uint32_t roles[kInlineRoles] = {0, 0};
  uint32_t role_count = 0;
  uint32_t windows_begin = 0, windows_end = 0;        // PolicyImpl::windows_
  uint32_t attributes_begin = 0, attributes_end = 0;  // PolicyImpl::condition_heads_
  Effect effect = Effect::kPermit;
  uint8_t flags = 0;
};
static_assert(sizeof(RuleHead) == 32, "two rule heads per cache line");

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
  // Moves each rule's roles, windows and attributes into the pools below
  // and fills heads_. Called once by the compiler, after ranking.
  void Flatten();

  std::vector<CompiledRule> rules_;  // by rank: the cold parts
  std::vector<RuleHead> heads_;      // by rank: the hot parts
  std::vector<uint32_t> role_pool_;  // roles of rules with many
  std::vector<TimeWindow> windows_;
  std::vector<ConditionHead> condition_heads_;     // hot, by rule
  std::vector<AttributeCondition> conditions_;     // full, same order
  RuleIndex index_;
  absl::flat_hash_map<std::string, uint32_t> role_bits_;
  std::vector<absl::TimeZone> zones_;
  std::vector<std::unique_ptr<IpSet>> ip_sets_;
  absl::flat_hash_set<std::string> sensitive_;  // attribute paths
  size_t memory_bytes_ = 0;
};

}  // namespace pdp::engine

#endif  // PDP_ENGINE_POLICY_IMPL_H_
