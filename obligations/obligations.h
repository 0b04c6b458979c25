// The obligation helper for services: applies the field obligations of a pdp
// decision (`filter_fields`, `mask_fields`) to a response before it leaves
// the service, as a JSON document or as a protobuf message.
//
// Depends on protobuf and Abseil only (no gRPC, no SQLite, no engine).
// Tested by tests/obligations_test.cc; obligations/example_orders_service.cc
// shows it in use.
//
// Example:
//
//   pdp::v1::AuthorizeResponse decision = ...;  // from pdp, via the gateway
//   if (decision.decision() != pdp::v1::PERMIT) return Forbidden();
//   auto obligations = pdp::obligations::FieldObligations::FromDecision(decision);
//   if (!obligations.ok()) return Forbidden();  // malformed: fail closed
//   for (const std::string& type : obligations->unhandled_types()) {
//     if (!MyServiceHandles(type)) return Forbidden();  // cannot fulfil it
//   }
//   std::string body = RenderOrder(order);      // JSON
//   if (!obligations->ApplyToJson(&body).ok()) return InternalError();
//   return Ok(body);
//
// Field paths are dotted ("customer.card_number"):
//   - A segment that reaches a JSON array or a repeated message field applies
//     to every element ("orders.payment.card_number" edits every order).
//   - A path that does not exist in the document is a no-op, not an error.
//   - `filter_fields` removes the field: a JSON key is erased (whatever its
//     value: scalar, array or object); a proto field is cleared.
//   - `mask_fields` replaces a value with the mask (default "****"). A JSON
//     string, number or bool becomes the mask string; null stays null. A
//     proto string or bytes field is set to the mask; any other proto scalar
//     (number, bool, enum) is cleared, because the mask cannot be stored in
//     it. A masked array masks each element, and a masked object or message
//     masks every scalar leaf inside it (structure is kept, nothing leaks).
//   - Proto fields match by their proto name ("card_number") or their JSON
//     name ("cardNumber"); JSON keys match exactly.
//   - A proto map field takes the map key as the next segment
//     ("resource.attributes.owner"); at the end of a path, filter removes the
//     entry and mask masks its value. Integer and bool keys match their
//     decimal / "true" / "false" spelling.
//   - google.protobuf.Struct, Value and ListValue inside a message follow the
//     JSON rules.
//   - When one path is both filtered and masked, filtering wins (all filters
//     run first, then all masks).
//
// Caveats of the JSON route (the document goes through google.protobuf.Value,
// never a hand-rolled parser): object key order is not preserved and numbers
// are doubles, so integers beyond 2^53 lose precision. A key that itself
// contains a '.' cannot be addressed.
//
// Thread safety: a FieldObligations is immutable after it is made; its const
// methods may be called concurrently (each on its own document).
#ifndef PDP_OBLIGATIONS_OBLIGATIONS_H_
#define PDP_OBLIGATIONS_OBLIGATIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/struct.pb.h"
#include "pdp/v1/authorization.pb.h"

namespace pdp::obligations {

// Obligation types this helper fulfils.
inline constexpr char kFilterFields[] = "filter_fields";
inline constexpr char kMaskFields[] = "mask_fields";
// The mask when `mask_fields` has no `mask` param.
inline constexpr char kDefaultMask[] = "****";

// The `filter_fields` and `mask_fields` obligations of one decision, parsed
// once and applied to any number of responses.
class FieldObligations {
 public:
  // One parsed field path and, for a mask, its replacement string.
  struct FieldRule {
    std::vector<std::string> path;  // "a.b.c" -> {"a", "b", "c"}
    std::string mask;               // the replacement; unused by filters
  };

  // No obligations: every Apply* is a no-op.
  FieldObligations() = default;

  // Collects the field obligations of `response`. It does not look at
  // `response.decision()`: serve data only on PERMIT, then apply these.
  // InvalidArgument, naming the obligation, when a filter_fields or
  // mask_fields obligation has malformed params (`fields` missing, empty, not
  // a list of dotted paths; `mask` not a string).
  static absl::StatusOr<FieldObligations> FromDecision(
      const pdp::v1::AuthorizeResponse& response);
  // As FromDecision, from the obligations alone.
  static absl::StatusOr<FieldObligations> FromObligations(
      const google::protobuf::RepeatedPtrField<pdp::v1::ObligationResult>&
          obligations);

  // True when there is nothing to filter or mask.
  bool empty() const { return filters_.empty() && masks_.empty(); }

  // Obligation types in the decision that this helper does not fulfil
  // ("require_mfa", "add_header", ...), each once, in order of first
  // appearance. An enforcement point that cannot fulfil one of them must not
  // serve the response (XACML: an unfulfillable obligation turns a permit
  // into a deny).
  const std::vector<std::string>& unhandled_types() const {
    return unhandled_types_;
  }

  // The parsed rules, in obligation order.
  const std::vector<FieldRule>& filters() const { return filters_; }
  const std::vector<FieldRule>& masks() const { return masks_; }

  // Parses `*json` (any JSON value) with protobuf's JSON parser, applies the
  // obligations and prints it back compactly. InvalidArgument when `*json` is
  // not JSON; `*json` is then unchanged. When empty(), `*json` is left as it
  // is, not even parsed.
  absl::Status ApplyToJson(std::string* json) const;

  // Applies the obligations to a JSON value in place. Always OK today; the
  // Status leaves room for limits.
  absl::Status ApplyToValue(google::protobuf::Value* value) const;

  // Applies the obligations to a message in place, through reflection
  // (generated or dynamic messages). Internal only when a Struct / Value of a
  // foreign descriptor pool cannot be converted through its wire form.
  absl::Status ApplyToMessage(google::protobuf::Message* message) const;

 private:
  std::vector<FieldRule> filters_;
  std::vector<FieldRule> masks_;
  std::vector<std::string> unhandled_types_;
};

}  // namespace pdp::obligations

#endif  // PDP_OBLIGATIONS_OBLIGATIONS_H_
