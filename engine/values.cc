// Attribute value views, literals and comparisons; see values.h.
#include "engine/values.h"

#include "engine/absl_compat.h"

namespace pdp::engine {

bool ScalarEquals(const Scalar& a, const Scalar& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Scalar::Kind::kString: return a.string == b.string;
    case Scalar::Kind::kNumber: return a.number == b.number;
    case Scalar::Kind::kBool: return a.boolean == b.boolean;
  }
  return false;
}

std::optional<int> ScalarCompare(const Scalar& a, const Scalar& b) {
  if (a.kind != b.kind) return std::nullopt;
  if (a.kind == Scalar::Kind::kNumber) {
    if (a.number < b.number) return -1;
    if (a.number > b.number) return 1;
    if (a.number == b.number) return 0;
    return std::nullopt;  // NaN
  }
  if (a.kind == Scalar::Kind::kString) {
    int c = a.string.compare(b.string);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return std::nullopt;
}

std::optional<Scalar> ScalarFromProto(const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kStringValue:
      return Scalar::String(value.string_value());
    case google::protobuf::Value::kNumberValue:
      return Scalar::Number(value.number_value());
    case google::protobuf::Value::kBoolValue:
      return Scalar::Bool(value.bool_value());
    default:
      return std::nullopt;
  }
}

AttrValue AttrValue::FromScalar(Scalar s) {
  AttrValue v;
  v.kind_ = Kind::kScalar;
  v.scalar_ = s;
  return v;
}

AttrValue AttrValue::FromProto(const google::protobuf::Value& value) {
  if (value.kind_case() == google::protobuf::Value::kListValue) {
    AttrValue v;
    v.kind_ = Kind::kProtoList;
    v.list_ = &value.list_value();
    return v;
  }
  std::optional<Scalar> s = ScalarFromProto(value);
  return s ? FromScalar(*s) : Missing();
}

AttrValue AttrValue::FromStrings(
    const google::protobuf::RepeatedPtrField<std::string>& strings) {
  AttrValue v;
  v.kind_ = Kind::kStrings;
  v.strings_ = &strings;
  return v;
}

int AttrValue::size() const {
  if (kind_ == Kind::kProtoList) return list_->values_size();
  if (kind_ == Kind::kStrings) return strings_->size();
  return 0;
}

Scalar AttrValue::at(int i) const {
  if (kind_ == Kind::kStrings) return Scalar::String(strings_->Get(i));
  std::optional<Scalar> s = ScalarFromProto(list_->values(i));
  return s ? *s : Scalar::Bool(false);
}

bool AttrEquals(const AttrValue& a, const AttrValue& b) {
  if (a.missing() || b.missing()) return false;
  if (a.is_list() != b.is_list()) return false;
  if (!a.is_list()) return ScalarEquals(a.scalar(), b.scalar());
  if (a.size() != b.size()) return false;
  for (int i = 0; i < a.size(); ++i) {
    if (!ScalarEquals(a.at(i), b.at(i))) return false;
  }
  return true;
}

Scalar Literal::scalar() const {
  switch (kind) {
    case Scalar::Kind::kString: return Scalar::String(text);
    case Scalar::Kind::kNumber: return Scalar::Number(number);
    case Scalar::Kind::kBool: return Scalar::Bool(boolean);
  }
  return Scalar::Bool(false);
}

std::optional<Literal> LiteralFromProto(const google::protobuf::Value& value,
                                        std::string* error) {
  Literal literal;
  switch (value.kind_case()) {
    case google::protobuf::Value::kStringValue:
      literal.kind = Scalar::Kind::kString;
      literal.text = value.string_value();
      return literal;
    case google::protobuf::Value::kNumberValue:
      literal.kind = Scalar::Kind::kNumber;
      literal.number = value.number_value();
      return literal;
    case google::protobuf::Value::kBoolValue:
      literal.kind = Scalar::Kind::kBool;
      literal.boolean = value.bool_value();
      return literal;
    case google::protobuf::Value::kListValue:
      literal.is_list = true;
      for (const auto& element : value.list_value().values()) {
        if (element.kind_case() == google::protobuf::Value::kListValue) {
          *error = "lists of lists are not supported";
          return std::nullopt;
        }
        std::optional<Literal> item = LiteralFromProto(element, error);
        if (!item) return std::nullopt;
        literal.list.push_back(std::move(*item));
      }
      return literal;
    case google::protobuf::Value::kNullValue:
      *error = "null is not a value";
      return std::nullopt;
    case google::protobuf::Value::kStructValue:
      *error = "objects are not supported as values";
      return std::nullopt;
    default:
      *error = "a value is required";
      return std::nullopt;
  }
}

void ScalarSet::Insert(const Scalar& s) {
  switch (s.kind) {
    case Scalar::Kind::kString: strings_.insert(std::string(s.string)); break;
    case Scalar::Kind::kNumber: numbers_.insert(s.number == 0 ? 0.0 : s.number); break;
    case Scalar::Kind::kBool: (s.boolean ? has_true_ : has_false_) = true; break;
  }
}

bool ScalarSet::Contains(const Scalar& s) const {
  switch (s.kind) {
    case Scalar::Kind::kString: return strings_.contains(ToAbsl(s.string));
    case Scalar::Kind::kNumber: return numbers_.contains(s.number == 0 ? 0.0 : s.number);
    case Scalar::Kind::kBool: return s.boolean ? has_true_ : has_false_;
  }
  return false;
}

size_t ScalarSet::memory_bytes() const {
  size_t bytes = strings_.capacity() * (sizeof(std::string) + 1) +
                 numbers_.capacity() * (sizeof(double) + 1);
  for (const std::string& s : strings_) {
    if (s.size() > 15) bytes += s.capacity();
  }
  return bytes;
}

std::optional<std::string> ValidateRequestValue(
    const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kStringValue:
    case google::protobuf::Value::kNumberValue:
    case google::protobuf::Value::kBoolValue:
      return std::nullopt;
    case google::protobuf::Value::kListValue:
      for (int i = 0; i < value.list_value().values_size(); ++i) {
        const auto& element = value.list_value().values(i);
        if (!ScalarFromProto(element)) {
          return "list elements must be strings, numbers or bools (element " +
                 std::to_string(i) + ")";
        }
      }
      return std::nullopt;
    case google::protobuf::Value::kNullValue:
      return "null values are not supported";
    case google::protobuf::Value::kStructValue:
      return "objects are not supported; flatten them into dotted names";
    default:
      return "the value is empty";
  }
}

}  // namespace pdp::engine
