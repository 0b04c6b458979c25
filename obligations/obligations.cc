// FieldObligations: parsing `filter_fields` / `mask_fields` params and walking
// a google.protobuf.Value or a message (by reflection) along field paths.
//
// Tested by tests/obligations_test.cc.
#include "obligations/obligations.h"

#include <algorithm>
#include <cstddef>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace pdp::obligations {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::ListValue;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;
using ::google::protobuf::Struct;
using ::google::protobuf::Value;

using FieldRule = FieldObligations::FieldRule;

enum class Action { kFilter, kMask };

// ---- Parsing ---------------------------------------------------------------

std::string Describe(int index, const pdp::v1::ObligationResult& obligation) {
  std::string out = absl::StrCat("obligation ", index, " (", obligation.type());
  if (!obligation.rule_id().empty()) {
    absl::StrAppend(&out, " from rule ", obligation.rule_id());
  }
  absl::StrAppend(&out, ")");
  return out;
}

// Appends one FieldRule per entry of params.fields to `out`.
absl::Status ParseFieldRules(int index,
                             const pdp::v1::ObligationResult& obligation,
                             bool is_mask, std::vector<FieldRule>* out) {
  const auto& params = obligation.params().fields();
  std::string mask;
  if (is_mask) {
    mask = kDefaultMask;
    auto it = params.find("mask");
    if (it != params.end()) {
      if (it->second.kind_case() != Value::kStringValue) {
        return absl::InvalidArgumentError(absl::StrCat(
            Describe(index, obligation), ": params.mask must be a string"));
      }
      mask = it->second.string_value();
    }
  }
  auto it = params.find("fields");
  if (it == params.end() || it->second.kind_case() != Value::kListValue ||
      it->second.list_value().values_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe(index, obligation),
                     ": params.fields must be a non-empty list of field paths"));
  }
  const auto& values = it->second.list_value().values();
  for (int i = 0; i < values.size(); ++i) {
    const Value& value = values.Get(i);
    FieldRule rule;
    if (value.kind_case() == Value::kStringValue) {
      for (absl::string_view segment :
           absl::StrSplit(value.string_value(), '.')) {
        rule.path.emplace_back(segment.data(), segment.size());
      }
    }
    const bool valid =
        !rule.path.empty() &&
        std::none_of(rule.path.begin(), rule.path.end(),
                     [](const std::string& s) { return s.empty(); });
    if (!valid) {
      return absl::InvalidArgumentError(absl::StrCat(
          Describe(index, obligation), ": params.fields[", i,
          "] must be a dotted field path such as \"customer.card_number\""));
    }
    rule.mask = mask;
    out->push_back(std::move(rule));
  }
  return absl::OkStatus();
}

// ---- JSON values -----------------------------------------------------------

// Replaces every string, number and bool under `value` with `mask`.
void MaskAllValue(Value* value, const std::string& mask) {
  switch (value->kind_case()) {
    case Value::kStringValue:
    case Value::kNumberValue:
    case Value::kBoolValue:
      value->set_string_value(mask);
      break;
    case Value::kListValue:
      for (Value& element : *value->mutable_list_value()->mutable_values()) {
        MaskAllValue(&element, mask);
      }
      break;
    case Value::kStructValue:
      for (auto& [key, field] : *value->mutable_struct_value()->mutable_fields()) {
        MaskAllValue(&field, mask);
      }
      break;
    default:  // null or unset: nothing to hide
      break;
  }
}

void ApplyToStructAt(Struct* object, const FieldRule& rule, size_t i,
                     Action action);

// Applies rule.path[i..] to `value`; an array applies it to every element.
void ApplyToValueAt(Value* value, const FieldRule& rule, size_t i,
                    Action action) {
  if (value->kind_case() == Value::kListValue) {
    for (Value& element : *value->mutable_list_value()->mutable_values()) {
      ApplyToValueAt(&element, rule, i, action);
    }
  } else if (value->kind_case() == Value::kStructValue) {
    ApplyToStructAt(value->mutable_struct_value(), rule, i, action);
  }
  // A scalar with path left over: the path does not exist.
}

void ApplyToStructAt(Struct* object, const FieldRule& rule, size_t i,
                     Action action) {
  auto* fields = object->mutable_fields();
  auto it = fields->find(rule.path[i]);
  if (it == fields->end()) return;
  if (i + 1 < rule.path.size()) {
    ApplyToValueAt(&it->second, rule, i + 1, action);
  } else if (action == Action::kFilter) {
    fields->erase(it);
  } else {
    MaskAllValue(&it->second, rule.mask);
  }
}

// ---- Messages --------------------------------------------------------------

bool IsJsonType(const Descriptor* descriptor) {
  switch (descriptor->well_known_type()) {
    case Descriptor::WELLKNOWNTYPE_STRUCT:
    case Descriptor::WELLKNOWNTYPE_VALUE:
    case Descriptor::WELLKNOWNTYPE_LISTVALUE:
      return true;
    default:
      return false;
  }
}

// Runs `edit` on `message` (a Struct, Value or ListValue) seen as a generated
// google.protobuf.Value. A message of another pool (a DynamicMessage) is
// converted through its wire form.
template <typename Edit>
absl::Status EditAsValue(Message* message, Edit edit) {
  const Descriptor* descriptor = message->GetDescriptor();
  const auto wkt = descriptor->well_known_type();
  if (auto* s = dynamic_cast<Struct*>(message)) {
    Value value;
    value.mutable_struct_value()->Swap(s);
    edit(&value);
    s->Swap(value.mutable_struct_value());
    return absl::OkStatus();
  }
  if (auto* v = dynamic_cast<Value*>(message)) {
    edit(v);
    return absl::OkStatus();
  }
  if (auto* l = dynamic_cast<ListValue*>(message)) {
    Value value;
    value.mutable_list_value()->Swap(l);
    edit(&value);
    l->Swap(value.mutable_list_value());
    return absl::OkStatus();
  }
  Value value;
  const std::string wire = message->SerializeAsString();
  bool parsed = false;
  if (wkt == Descriptor::WELLKNOWNTYPE_STRUCT) {
    parsed = value.mutable_struct_value()->ParseFromString(wire);
  } else if (wkt == Descriptor::WELLKNOWNTYPE_LISTVALUE) {
    parsed = value.mutable_list_value()->ParseFromString(wire);
  } else {
    parsed = value.ParseFromString(wire);
  }
  if (!parsed) {
    return absl::InternalError(
        absl::StrCat("cannot read ", descriptor->full_name(), " as JSON"));
  }
  edit(&value);
  std::string out;
  if (wkt == Descriptor::WELLKNOWNTYPE_STRUCT) {
    out = value.struct_value().SerializeAsString();
  } else if (wkt == Descriptor::WELLKNOWNTYPE_LISTVALUE) {
    out = value.list_value().SerializeAsString();
  } else {
    out = value.SerializeAsString();
  }
  if (!message->ParseFromString(out)) {
    return absl::InternalError(
        absl::StrCat("cannot write ", descriptor->full_name(), " back"));
  }
  return absl::OkStatus();
}

// A field by proto name, else by JSON name.
const FieldDescriptor* FindField(const Descriptor* descriptor,
                                 const std::string& name) {
  if (const FieldDescriptor* field = descriptor->FindFieldByName(name)) {
    return field;
  }
  for (int i = 0; i < descriptor->field_count(); ++i) {
    if (descriptor->field(i)->json_name() == name) return descriptor->field(i);
  }
  return nullptr;
}

bool MapKeyMatches(const Message& entry, const FieldDescriptor* key_field,
                   const std::string& key) {
  const Reflection* reflection = entry.GetReflection();
  switch (key_field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return reflection->GetString(entry, key_field) == key;
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(reflection->GetInt32(entry, key_field)) == key;
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(reflection->GetInt64(entry, key_field)) == key;
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(reflection->GetUInt32(entry, key_field)) == key;
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(reflection->GetUInt64(entry, key_field)) == key;
    case FieldDescriptor::CPPTYPE_BOOL:
      return (reflection->GetBool(entry, key_field) ? "true" : "false") == key;
    default:
      return false;
  }
}

absl::Status MaskField(Message* message, const FieldDescriptor* field,
                       const std::string& mask);

// Masks every scalar leaf of `message`: strings become the mask, other
// scalars are cleared. Map keys are kept.
absl::Status MaskAllMessage(Message* message, const std::string& mask) {
  if (IsJsonType(message->GetDescriptor())) {
    return EditAsValue(message,
                       [&](Value* value) { MaskAllValue(value, mask); });
  }
  std::vector<const FieldDescriptor*> fields;
  message->GetReflection()->ListFields(*message, &fields);
  for (const FieldDescriptor* field : fields) {
    absl::Status status = MaskField(message, field, mask);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// Masks `field` of `message` (the end of a mask path).
absl::Status MaskField(Message* message, const FieldDescriptor* field,
                       const std::string& mask) {
  const Reflection* reflection = message->GetReflection();
  if (field->is_map()) {
    const FieldDescriptor* value_field = field->message_type()->map_value();
    for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
      absl::Status status = MaskField(
          reflection->MutableRepeatedMessage(message, field, i), value_field,
          mask);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
          reflection->SetRepeatedString(message, field, i, mask);
        }
      } else if (reflection->HasField(*message, field)) {
        reflection->SetString(message, field, mask);
      }
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
          absl::Status status = MaskAllMessage(
              reflection->MutableRepeatedMessage(message, field, i), mask);
          if (!status.ok()) return status;
        }
      } else if (reflection->HasField(*message, field)) {
        return MaskAllMessage(reflection->MutableMessage(message, field), mask);
      }
      return absl::OkStatus();
    default:  // numbers, bools, enums cannot hold the mask
      reflection->ClearField(message, field);
      return absl::OkStatus();
  }
}

absl::Status ApplyToMessageAt(Message* message, const FieldRule& rule,
                              size_t i, Action action);

// rule.path[i] is a key of the map `field`.
absl::Status ApplyToMapAt(Message* message, const FieldDescriptor* field,
                          const FieldRule& rule, size_t i, Action action) {
  const Reflection* reflection = message->GetReflection();
  const FieldDescriptor* key_field = field->message_type()->map_key();
  const FieldDescriptor* value_field = field->message_type()->map_value();
  const int size = reflection->FieldSize(*message, field);
  int found = -1;
  for (int j = 0; j < size && found < 0; ++j) {
    if (MapKeyMatches(reflection->GetRepeatedMessage(*message, field, j),
                      key_field, rule.path[i])) {
      found = j;
    }
  }
  if (found < 0) return absl::OkStatus();
  if (i + 1 == rule.path.size()) {
    if (action == Action::kFilter) {
      reflection->SwapElements(message, field, found, size - 1);
      reflection->RemoveLast(message, field);
      return absl::OkStatus();
    }
    return MaskField(reflection->MutableRepeatedMessage(message, field, found),
                     value_field, rule.mask);
  }
  if (value_field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    return absl::OkStatus();
  }
  Message* entry = reflection->MutableRepeatedMessage(message, field, found);
  return ApplyToMessageAt(
      entry->GetReflection()->MutableMessage(entry, value_field), rule, i + 1,
      action);
}

// Applies rule.path[i..] to `message`.
absl::Status ApplyToMessageAt(Message* message, const FieldRule& rule,
                              size_t i, Action action) {
  if (IsJsonType(message->GetDescriptor())) {
    return EditAsValue(message, [&](Value* value) {
      ApplyToValueAt(value, rule, i, action);
    });
  }
  const FieldDescriptor* field =
      FindField(message->GetDescriptor(), rule.path[i]);
  if (field == nullptr) return absl::OkStatus();
  const Reflection* reflection = message->GetReflection();
  const bool last = i + 1 == rule.path.size();
  if (field->is_map() && !last) {
    return ApplyToMapAt(message, field, rule, i + 1, action);
  }
  if (last) {
    if (action == Action::kFilter) {
      reflection->ClearField(message, field);
      return absl::OkStatus();
    }
    return MaskField(message, field, rule.mask);
  }
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    return absl::OkStatus();  // the path goes on through a scalar
  }
  if (field->is_repeated()) {
    for (int j = 0; j < reflection->FieldSize(*message, field); ++j) {
      absl::Status status = ApplyToMessageAt(
          reflection->MutableRepeatedMessage(message, field, j), rule, i + 1,
          action);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }
  if (!reflection->HasField(*message, field)) return absl::OkStatus();
  return ApplyToMessageAt(reflection->MutableMessage(message, field), rule,
                          i + 1, action);
}

}  // namespace

absl::StatusOr<FieldObligations> FieldObligations::FromDecision(
    const pdp::v1::AuthorizeResponse& response) {
  return FromObligations(response.obligations());
}

absl::StatusOr<FieldObligations> FieldObligations::FromObligations(
    const google::protobuf::RepeatedPtrField<pdp::v1::ObligationResult>&
        obligations) {
  FieldObligations result;
  for (int i = 0; i < obligations.size(); ++i) {
    const pdp::v1::ObligationResult& obligation = obligations.Get(i);
    const std::string& type = obligation.type();
    absl::Status status;
    if (type == kFilterFields) {
      status = ParseFieldRules(i, obligation, false, &result.filters_);
    } else if (type == kMaskFields) {
      status = ParseFieldRules(i, obligation, true, &result.masks_);
    } else if (std::find(result.unhandled_types_.begin(),
                         result.unhandled_types_.end(),
                         type) == result.unhandled_types_.end()) {
      result.unhandled_types_.push_back(type);
    }
    if (!status.ok()) return status;
  }
  return result;
}

absl::Status FieldObligations::ApplyToJson(std::string* json) const {
  if (empty()) return absl::OkStatus();
  Value value;
  auto parsed = google::protobuf::util::JsonStringToMessage(*json, &value);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON document: ", std::string(parsed.message())));
  }
  absl::Status status = ApplyToValue(&value);
  if (!status.ok()) return status;
  std::string out;
  auto printed = google::protobuf::util::MessageToJsonString(value, &out);
  if (!printed.ok()) {
    return absl::InternalError(
        absl::StrCat("JSON document: ", std::string(printed.message())));
  }
  *json = std::move(out);
  return absl::OkStatus();
}

absl::Status FieldObligations::ApplyToValue(Value* value) const {
  for (const FieldRule& rule : filters_) {
    ApplyToValueAt(value, rule, 0, Action::kFilter);
  }
  for (const FieldRule& rule : masks_) {
    ApplyToValueAt(value, rule, 0, Action::kMask);
  }
  return absl::OkStatus();
}

absl::Status FieldObligations::ApplyToMessage(Message* message) const {
  for (const FieldRule& rule : filters_) {
    absl::Status status = ApplyToMessageAt(message, rule, 0, Action::kFilter);
    if (!status.ok()) return status;
  }
  for (const FieldRule& rule : masks_) {
    absl::Status status = ApplyToMessageAt(message, rule, 0, Action::kMask);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace pdp::obligations
