// Attribute values as the evaluator sees them, without copying the request.
//
// A request attribute is a google.protobuf.Value (string, number, bool or a
// flat list of those) or one of the request's own fields (subject.id,
// subject.roles, ...). AttrValue is a non-owning view over either, so
// evaluating a condition allocates nothing. Literal is the owned, compiled
// form of a rule's value.
//
// Tested by tests/engine_conditions_test.cc and tests/differential_test.cc.
#ifndef PDP_ENGINE_VALUES_H_
#define PDP_ENGINE_VALUES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/struct.pb.h"

namespace pdp::engine {

struct Scalar {
  enum class Kind : uint8_t { kString, kNumber, kBool };
  Kind kind = Kind::kString;
  std::string_view string;
  double number = 0;
  bool boolean = false;

  static Scalar String(std::string_view s) { return {Kind::kString, s, 0, false}; }
  static Scalar Number(double n) { return {Kind::kNumber, {}, n, false}; }
  static Scalar Bool(bool b) { return {Kind::kBool, {}, 0, b}; }
};

bool ScalarEquals(const Scalar& a, const Scalar& b);
// Three-way order of two numbers or two strings; nullopt for other pairs.
std::optional<int> ScalarCompare(const Scalar& a, const Scalar& b);

// Converts a scalar protobuf Value; nullopt for null, struct and list.
std::optional<Scalar> ScalarFromProto(const google::protobuf::Value& value);

// A view of one attribute: missing, a scalar, or a list of scalars.
class AttrValue {
 public:
  static AttrValue Missing() { return AttrValue(); }
  static AttrValue FromScalar(Scalar s);
  // `value` must be valid (see ValidateRequestValue); a list becomes a list.
  static AttrValue FromProto(const google::protobuf::Value& value);
  static AttrValue FromStrings(
      const google::protobuf::RepeatedPtrField<std::string>& strings);

  bool missing() const { return kind_ == Kind::kMissing; }
  bool is_list() const { return kind_ == Kind::kProtoList || kind_ == Kind::kStrings; }
  const Scalar& scalar() const { return scalar_; }
  int size() const;
  // Element i of a list; elements that are not scalars never occur in a
  // validated request.
  Scalar at(int i) const;

 private:
  enum class Kind : uint8_t { kMissing, kScalar, kProtoList, kStrings };
  Kind kind_ = Kind::kMissing;
  Scalar scalar_;
  const google::protobuf::ListValue* list_ = nullptr;
  const google::protobuf::RepeatedPtrField<std::string>* strings_ = nullptr;
};

// Equality of two present values: scalars by type and value, lists element
// by element; a scalar never equals a list.
bool AttrEquals(const AttrValue& a, const AttrValue& b);

// The owned, compiled form of a rule's literal.
struct Literal {
  Scalar::Kind kind = Scalar::Kind::kString;
  bool is_list = false;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<Literal> list;  // for list literals

  // A view into this literal; valid while the literal lives unmoved.
  Scalar scalar() const;
};

// Builds a Literal from a protobuf Value; on failure sets *error.
std::optional<Literal> LiteralFromProto(const google::protobuf::Value& value,
                                        std::string* error);

// A hashed set of scalars for `in` / `not_in` against a literal list.
class ScalarSet {
 public:
  void Insert(const Scalar& s);
  bool Contains(const Scalar& s) const;
  size_t memory_bytes() const;

 private:
  absl::flat_hash_set<std::string> strings_;
  absl::flat_hash_set<double> numbers_;
  bool has_true_ = false;
  bool has_false_ = false;
};

// Checks a request value: a string, number or bool, or a flat list of
// those. On failure returns what is wrong ("null values are not
// supported").
std::optional<std::string> ValidateRequestValue(
    const google::protobuf::Value& value);

}  // namespace pdp::engine

#endif  // PDP_ENGINE_VALUES_H_
