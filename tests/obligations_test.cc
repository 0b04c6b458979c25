// pdp_obligations (obligations/obligations.h): filter_fields and mask_fields
// applied to JSON documents and to protobuf messages, and the example service
// built on it.
//
// Covered: JSON filter of nested keys and whole objects, arrays of objects
// (also nested and at the top level), missing paths as no-ops, mask with the
// default and a custom mask, masking numbers / bools / null / arrays /
// objects, both obligations in one decision (filter wins), unhandled types
// reported once each, malformed params rejected naming the obligation, bad
// JSON; messages: filter and mask by reflection (strings, numbers, enums,
// bools, submessages), repeated message and string fields, json_name
// matching, map keys, Struct / Value fields following the JSON rules, unset
// submessages left unset, a DynamicMessage holding a Struct; the
// example_orders_service binary on decisions the engine makes from the demo
// rules (skipped when that binary is not built).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/compiler.h"
#include "engine/rule_set_io.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "obligations/obligations.h"
#include "pdp/v1/authorization.pb.h"
#include "tests/support/gateway_support.h"
#include "tests/support/pdpd_process.h"

namespace pdp::obligations {
namespace {

using ::google::protobuf::Value;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

template <typename Message>
Message FromJson(const std::string& json) {
  Message message;
  auto status = google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.message() << "\n" << json;
  return message;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out);
  return out;
}

// FieldObligations from a list of obligation JSON objects.
absl::StatusOr<FieldObligations> Parse(const std::string& obligations_json) {
  return FieldObligations::FromDecision(FromJson<v1::AuthorizeResponse>(
      absl::StrCat(R"({"decision": "PERMIT", "obligations": )",
                   obligations_json, "}")));
}

FieldObligations MustParse(const std::string& obligations_json) {
  auto parsed = Parse(obligations_json);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *std::move(parsed) : FieldObligations();
}

std::string Filter(const std::string& fields) {
  return absl::StrCat(R"({"type": "filter_fields", "params": {"fields": )",
                      fields, "}}");
}

std::string Mask(const std::string& fields, const std::string& mask = "") {
  return absl::StrCat(R"({"type": "mask_fields", "params": {"fields": )",
                      fields,
                      mask.empty() ? "" : absl::StrCat(R"(, "mask": ")", mask,
                                                       "\""),
                      "}}");
}

// Applies `obligations` to `document` and checks the result against
// `expected`, compared as JSON values (key order does not matter).
void ExpectJson(const FieldObligations& obligations, std::string document,
                const std::string& expected) {
  const std::string input = document;
  absl::Status status = obligations.ApplyToJson(&document);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(MessageDifferencer::Equals(FromJson<Value>(document),
                                         FromJson<Value>(expected)))
      << "input:    " << input << "\nactual:   " << document
      << "\nexpected: " << expected;
}

// ---- JSON ------------------------------------------------------------------

TEST(ObligationsJsonTest, FilterRemovesNestedKeys) {
  ExpectJson(
      MustParse(absl::StrCat("[", Filter(R"(["customer.card_number", "ssn"])"),
                             "]")),
      R"({"id": "o-1", "ssn": "078-05-1120",
          "customer": {"name": "Ada", "card_number": "4111"}})",
      R"({"id": "o-1", "customer": {"name": "Ada"}})");
}

TEST(ObligationsJsonTest, FilterRemovesWholeObjectsAndArrays) {
  ExpectJson(MustParse(absl::StrCat("[", Filter(R"(["payment", "tags"])"), "]")),
             R"({"id": 1, "payment": {"card_number": "4111", "cvv": 123},
                 "tags": ["a", "b"]})",
             R"({"id": 1})");
}

TEST(ObligationsJsonTest, ArraysApplyToEveryElement) {
  const FieldObligations obligations = MustParse(
      absl::StrCat("[", Filter(R"(["orders.payment.card_number"])"), "]"));
  ExpectJson(obligations,
             R"({"orders": [
                  {"id": 1, "payment": {"card_number": "4111", "method": "card"}},
                  {"id": 2},
                  {"id": 3, "payment": {"card_number": "5500"}},
                  "not an object",
                  [{"payment": {"card_number": "3400"}}]
                ]})",
             R"({"orders": [
                  {"id": 1, "payment": {"method": "card"}},
                  {"id": 2},
                  {"id": 3, "payment": {}},
                  "not an object",
                  [{"payment": {}}]
                ]})");
  // An array in the middle of the path, and a document that is an array.
  ExpectJson(obligations,
             R"([{"orders": [{"payment": [{"card_number": "1"},
                                          {"card_number": "2", "x": 0}]}]}])",
             R"([{"orders": [{"payment": [{}, {"x": 0}]}]}])");
}

TEST(ObligationsJsonTest, MissingPathsAreNoOps) {
  const std::string document =
      R"({"id": "o-1", "customer": null, "items": [], "n": 5,
          "payment": {"method": "card"}})";
  ExpectJson(MustParse(absl::StrCat(
                 "[",
                 Filter(R"(["nope", "customer.card_number", "items.sku",
                            "n.digits", "payment.card_number",
                            "payment.method.x"])"),
                 ",",
                 Mask(R"(["nope", "customer.name", "items.price",
                          "n.digits", "payment.cvv"])"),
                 "]")),
             document, document);
}

TEST(ObligationsJsonTest, MaskWithDefaultMask) {
  ExpectJson(MustParse(absl::StrCat("[", Mask(R"(["payment.card_number"])"),
                                    "]")),
             R"({"payment": {"card_number": "4111 1111", "method": "card"}})",
             R"({"payment": {"card_number": "****", "method": "card"}})");
}

TEST(ObligationsJsonTest, MaskWithCustomMask) {
  ExpectJson(
      MustParse(absl::StrCat(
          "[", Mask(R"(["payment.card_number", "iban"])", "XXXX-XXXX"), "]")),
      R"({"iban": "DE89", "payment": {"card_number": "4111"}})",
      R"({"iban": "XXXX-XXXX", "payment": {"card_number": "XXXX-XXXX"}})");
  // An empty mask is a mask too.
  ExpectJson(MustParse(R"([{"type": "mask_fields",
                            "params": {"fields": ["a"], "mask": ""}}])"),
             R"({"a": "secret"})", R"({"a": ""})");
}

TEST(ObligationsJsonTest, MaskReplacesNumbersAndBoolsKeepsNull) {
  ExpectJson(
      MustParse(absl::StrCat(
          "[", Mask(R"(["amount", "vip", "note", "empty"])"), "]")),
      R"({"amount": 129.9, "vip": true, "note": null, "empty": "", "id": 7})",
      R"({"amount": "****", "vip": "****", "note": null, "empty": "****",
          "id": 7})");
}

TEST(ObligationsJsonTest, MaskArraysAndObjectsMasksEveryScalarLeaf) {
  ExpectJson(
      MustParse(absl::StrCat("[", Mask(R"(["phones", "payment"])"), "]")),
      R"({"phones": ["+49 1", "+49 2", 3],
          "payment": {"method": "card", "card": {"number": "4111", "cvv": 123},
                      "history": [{"amount": 5}], "gone": null}})",
      R"({"phones": ["****", "****", "****"],
          "payment": {"method": "****", "card": {"number": "****", "cvv": "****"},
                      "history": [{"amount": "****"}], "gone": null}})");
}

TEST(ObligationsJsonTest, BothObligationsAtOnceAndFilterWins) {
  const FieldObligations obligations = MustParse(absl::StrCat(
      "[", Mask(R"(["payment.card_number", "customer.email"])"), ",",
      Filter(R"(["customer.ssn", "customer.email"])"), ",",
      Mask(R"(["customer.name"])", "[hidden]"), "]"));
  EXPECT_FALSE(obligations.empty());
  EXPECT_EQ(obligations.filters().size(), 2);
  EXPECT_EQ(obligations.masks().size(), 3);
  ExpectJson(obligations,
             R"({"payment": {"card_number": "4111"},
                 "customer": {"name": "Ada", "email": "a@x", "ssn": "078"}})",
             R"({"payment": {"card_number": "****"},
                 "customer": {"name": "[hidden]"}})");
}

TEST(ObligationsJsonTest, UnhandledTypesAreReportedOnceInOrder) {
  const FieldObligations obligations = MustParse(R"([
      {"type": "require_mfa", "params": {"level": "totp"}},
      {"type": "filter_fields", "params": {"fields": ["ssn"]}},
      {"type": "add_header", "params": {"name": "X-A", "value": "1"}},
      {"type": "add_header", "params": {"name": "X-B", "value": "2"}},
      {"type": "acme.watermark"},
      {"type": "require_mfa"}])");
  EXPECT_THAT(obligations.unhandled_types(),
              ElementsAre("require_mfa", "add_header", "acme.watermark"));
  EXPECT_EQ(obligations.filters().size(), 1);

  const FieldObligations only_unhandled =
      MustParse(R"([{"type": "require_mfa", "params": {"level": "totp"}}])");
  EXPECT_TRUE(only_unhandled.empty());
  EXPECT_THAT(only_unhandled.unhandled_types(), ElementsAre("require_mfa"));

  const FieldObligations none = MustParse("[]");
  EXPECT_TRUE(none.empty());
  EXPECT_THAT(none.unhandled_types(), IsEmpty());
}

TEST(ObligationsJsonTest, MalformedParamsAreInvalidArgumentNamingTheObligation) {
  struct Case {
    std::string obligation;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"type": "filter_fields", "rule_id": "r9"})",
       "obligation 1 (filter_fields from rule r9): params.fields must be a "
       "non-empty list"},
      {R"({"type": "filter_fields", "params": {"fields": "ssn"}})",
       "obligation 1 (filter_fields): params.fields must be a non-empty list"},
      {R"({"type": "mask_fields", "params": {"fields": []}})",
       "obligation 1 (mask_fields): params.fields must be a non-empty list"},
      {R"({"type": "filter_fields", "params": {"fields": ["ok", 3]}})",
       "obligation 1 (filter_fields): params.fields[1] must be a dotted field "
       "path"},
      {R"({"type": "filter_fields", "params": {"fields": ["a..b"]}})",
       "params.fields[0] must be a dotted field path"},
      {R"({"type": "filter_fields", "params": {"fields": [".a"]}})",
       "params.fields[0] must be a dotted field path"},
      {R"({"type": "mask_fields", "params": {"fields": ["a."]}})",
       "params.fields[0] must be a dotted field path"},
      {R"({"type": "mask_fields", "params": {"fields": [""]}})",
       "params.fields[0] must be a dotted field path"},
      {R"({"type": "mask_fields", "params": {"fields": [["a"]]}})",
       "params.fields[0] must be a dotted field path"},
      {R"({"type": "mask_fields", "rule_id": "r2",
           "params": {"fields": ["a"], "mask": 0}})",
       "obligation 1 (mask_fields from rule r2): params.mask must be a string"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.obligation);
    auto parsed = Parse(absl::StrCat(
        R"([{"type": "require_mfa", "params": {"level": "totp"}}, )",
        c.obligation, "]"));
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.message));
  }
}

TEST(ObligationsJsonTest, NotJsonIsInvalidArgumentAndLeavesTheDocument) {
  const FieldObligations obligations =
      MustParse(absl::StrCat("[", Filter(R"(["a"])"), "]"));
  std::string document = R"({"a": 1,)";
  absl::Status status = obligations.ApplyToJson(&document);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(document, R"({"a": 1,)");
}

TEST(ObligationsJsonTest, NoObligationsLeaveTheTextUntouched) {
  const FieldObligations obligations =
      MustParse(R"([{"type": "add_header",
                     "params": {"name": "X-A", "value": "1"}}])");
  std::string document = "{ \"b\": 12345678901234567890,\n  \"a\": 1 }";
  ASSERT_TRUE(obligations.ApplyToJson(&document).ok());
  EXPECT_EQ(document, "{ \"b\": 12345678901234567890,\n  \"a\": 1 }");
}

TEST(ObligationsJsonTest, NumbersAndTextSurviveTheRoundTrip) {
  const FieldObligations obligations =
      MustParse(absl::StrCat("[", Filter(R"(["x"])"), "]"));
  std::string document =
      R"({"x": 1, "amount": 129.9, "qty": 3, "name": "Zoë \"Z\" \u00e9"})";
  ASSERT_TRUE(obligations.ApplyToJson(&document).ok());
  EXPECT_THAT(document, HasSubstr(R"("amount":129.9)"));
  EXPECT_THAT(document, HasSubstr(R"("qty":3)"));
  EXPECT_EQ(FromJson<Value>(document).struct_value().fields().at("name")
                .string_value(),
            "Zoë \"Z\" é");
}

TEST(ObligationsJsonTest, ApplyToValueEditsInPlace) {
  const FieldObligations obligations = MustParse(absl::StrCat(
      "[", Filter(R"(["a.b"])"), ",", Mask(R"(["c"])"), "]"));
  Value value = FromJson<Value>(R"({"a": {"b": 1, "k": 2}, "c": "s"})");
  ASSERT_TRUE(obligations.ApplyToValue(&value).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(
      value, FromJson<Value>(R"({"a": {"k": 2}, "c": "****"})")))
      << ToJson(value);
}

// ---- Messages --------------------------------------------------------------

template <typename Message>
void ExpectMessage(const FieldObligations& obligations, const std::string& in,
                   const std::string& expected) {
  Message message = FromJson<Message>(in);
  absl::Status status = obligations.ApplyToMessage(&message);
  ASSERT_TRUE(status.ok()) << status;
  const Message want = FromJson<Message>(expected);
  EXPECT_TRUE(MessageDifferencer::Equals(message, want))
      << "actual:   " << ToJson(message) << "\nexpected: " << ToJson(want);
}

constexpr char kRequest[] = R"({
  "subject": {"id": "u-7", "roles": ["support", "admin"],
              "attributes": {"ssn": "078", "level": 3, "mfa": true,
                             "address": {"street": "Main 1", "city": "Berlin"}}},
  "action": "read",
  "resource": {"type": "order", "id": "o-1",
               "attributes": {"owner": "c-1", "amount": 129.9}},
  "environment": {"client_ip": "198.51.100.23",
                  "location": {"country": "DE", "region": "BE"},
                  "time": "2026-11-24T10:00:00Z"},
  "rule_set": "shop",
  "explain": true
})";

TEST(ObligationsMessageTest, FilterClearsNestedFields) {
  ExpectMessage<v1::AuthorizeRequest>(
      MustParse(absl::StrCat("[",
                             Filter(R"(["subject.id", "environment.location",
                                        "resource.type", "explain"])"),
                             "]")),
      kRequest, R"({
        "subject": {"roles": ["support", "admin"],
                    "attributes": {"ssn": "078", "level": 3, "mfa": true,
                                   "address": {"street": "Main 1", "city": "Berlin"}}},
        "action": "read",
        "resource": {"id": "o-1", "attributes": {"owner": "c-1", "amount": 129.9}},
        "environment": {"client_ip": "198.51.100.23", "time": "2026-11-24T10:00:00Z"},
        "rule_set": "shop"
      })");
}

TEST(ObligationsMessageTest, MaskSetsStringsAndClearsOtherScalars) {
  // Strings take the mask; a bool is cleared; a masked submessage masks its
  // string leaves; repeated strings are masked element by element.
  ExpectMessage<v1::AuthorizeRequest>(
      MustParse(absl::StrCat(
          "[",
          Mask(R"(["subject.id", "explain", "environment.location",
                   "subject.roles"])"),
          ",", Mask(R"(["rule_set"])", "#"), "]")),
      kRequest, R"({
        "subject": {"id": "****", "roles": ["****", "****"],
                    "attributes": {"ssn": "078", "level": 3, "mfa": true,
                                   "address": {"street": "Main 1", "city": "Berlin"}}},
        "action": "read",
        "resource": {"type": "order", "id": "o-1",
                     "attributes": {"owner": "c-1", "amount": 129.9}},
        "environment": {"client_ip": "198.51.100.23",
                        "location": {"country": "****", "region": "****"},
                        "time": "2026-11-24T10:00:00Z"},
        "rule_set": "#"
      })");
  // Numbers and enums cannot hold a mask: cleared.
  ExpectMessage<v1::AuthorizeResponse>(
      MustParse(absl::StrCat(
          "[", Mask(R"(["decision", "rule_set_version", "rule_set"])"), "]")),
      R"({"decision": "PERMIT", "rule_set": "shop", "rule_set_version": "7"})",
      R"({"rule_set": "****"})");
}

TEST(ObligationsMessageTest, MaskedTimestampIsCleared) {
  ExpectMessage<v1::AuthorizeRequest>(
      MustParse(absl::StrCat("[", Mask(R"(["environment.time"])"), "]")),
      R"({"environment": {"time": "2026-11-24T10:00:00Z", "client_ip": "::1"}})",
      R"({"environment": {"time": "1970-01-01T00:00:00Z", "client_ip": "::1"}})");
}

TEST(ObligationsMessageTest, RepeatedMessageFieldsApplyToEveryElement) {
  const std::string batch = R"({"responses": [
      {"decision": "PERMIT", "determining_rules": ["r1", "r2"],
       "obligations": [{"type": "filter_fields", "rule_id": "r1"},
                       {"type": "add_header", "rule_id": "r2"}],
       "trace": [{"rule_id": "r1", "detail": "ok"}]},
      {"decision": "DENY"},
      {"decision": "PERMIT", "obligations": [{"type": "t", "rule_id": "r3"}],
       "trace": [{"rule_id": "r3", "detail": "why"}]}]})";
  ExpectMessage<v1::BatchAuthorizeResponse>(
      MustParse(absl::StrCat(
          "[", Filter(R"(["responses.obligations.rule_id"])"), ",",
          Mask(R"(["responses.determining_rules", "responses.trace.detail"])"),
          "]")),
      batch, R"({"responses": [
      {"decision": "PERMIT", "determining_rules": ["****", "****"],
       "obligations": [{"type": "filter_fields"}, {"type": "add_header"}],
       "trace": [{"rule_id": "r1", "detail": "****"}]},
      {"decision": "DENY"},
      {"decision": "PERMIT", "obligations": [{"type": "t"}],
       "trace": [{"rule_id": "r3", "detail": "****"}]}]})");
  // At the end of a path: filter clears the list, mask masks each element.
  ExpectMessage<v1::BatchAuthorizeResponse>(
      MustParse(absl::StrCat("[", Filter(R"(["responses.trace"])"), ",",
                             Mask(R"(["responses.obligations"])"), "]")),
      batch, R"({"responses": [
      {"decision": "PERMIT", "determining_rules": ["r1", "r2"],
       "obligations": [{"type": "****", "rule_id": "****"},
                       {"type": "****", "rule_id": "****"}]},
      {"decision": "DENY"},
      {"decision": "PERMIT",
       "obligations": [{"type": "****", "rule_id": "****"}]}]})");
}

TEST(ObligationsMessageTest, FieldsMatchByJsonName) {
  ExpectMessage<v1::AuthorizeResponse>(
      MustParse(absl::StrCat(
          "[", Filter(R"(["ruleSetVersion", "trace.ruleId"])"), ",",
          Mask(R"(["determiningRules"])"), "]")),
      R"({"rule_set_version": "3", "determining_rules": ["r1"],
          "trace": [{"rule_id": "r1", "outcome": "match"}]})",
      R"({"determining_rules": ["****"], "trace": [{"outcome": "match"}]})");
  ExpectMessage<v1::AuthorizeRequest>(
      MustParse(absl::StrCat("[", Mask(R"(["environment.clientIp"])"), "]")),
      R"({"environment": {"client_ip": "10.0.0.1"}})",
      R"({"environment": {"client_ip": "****"}})");
}

TEST(ObligationsMessageTest, MapKeysAndStructValuesFollowJsonRules) {
  // A map key as a path segment: filter removes the entry; mask masks its
  // value, which is a google.protobuf.Value and so follows the JSON rules
  // (a number becomes the mask string).
  ExpectMessage<v1::AuthorizeRequest>(
      MustParse(absl::StrCat(
          "[",
          Filter(R"(["subject.attributes.ssn", "subject.attributes.address.city",
                     "subject.attributes.nope", "resource.attributes.owner.x"])"),
          ",",
          Mask(R"(["resource.attributes.owner", "resource.attributes.amount",
                   "subject.attributes.address.street"])"),
          "]")),
      R"({"subject": {"id": "u-7",
                      "attributes": {"ssn": "078", "level": 3,
                                     "address": {"street": "Main 1", "city": "Berlin"}}},
          "resource": {"attributes": {"owner": "c-1", "amount": 129.9, "k": "v"}}})",
      R"({"subject": {"id": "u-7",
                      "attributes": {"level": 3, "address": {"street": "****"}}},
          "resource": {"attributes": {"owner": "****", "amount": "****", "k": "v"}}})");
  // A whole map: filter clears it; mask masks every value and keeps the keys.
  ExpectMessage<v1::AuthorizeRequest>(
      MustParse(absl::StrCat("[", Filter(R"(["subject.attributes"])"), ",",
                             Mask(R"(["resource.attributes"])"), "]")),
      R"({"subject": {"id": "u", "attributes": {"a": 1}},
          "resource": {"attributes": {"owner": "c-1", "tags": ["x", 2],
                                      "flag": false}}})",
      R"({"subject": {"id": "u"},
          "resource": {"attributes": {"owner": "****", "tags": ["****", "****"],
                                      "flag": "****"}}})");
  // A Struct field: its keys are path segments, arrays apply to every element.
  ExpectMessage<v1::AuthorizeResponse>(
      MustParse(absl::StrCat("[", Filter(R"(["obligations.params.fields"])"),
                             ",", Mask(R"(["obligations.params.level"])"),
                             "]")),
      R"({"obligations": [
          {"type": "filter_fields", "params": {"fields": ["ssn"]}},
          {"type": "require_mfa", "params": {"level": "totp"}},
          {"type": "x"}]})",
      R"({"obligations": [
          {"type": "filter_fields", "params": {}},
          {"type": "require_mfa", "params": {"level": "****"}},
          {"type": "x"}]})");
}

TEST(ObligationsMessageTest, MissingPathsLeaveTheMessageAlone) {
  const FieldObligations obligations = MustParse(absl::StrCat(
      "[",
      Filter(R"(["nope", "subject.nope", "environment.location.country",
                 "subject.id.x", "resource.attributes.none"])"),
      ",", Mask(R"(["environment.client_ip", "resource.id"])"), "]"));
  v1::AuthorizeRequest request =
      FromJson<v1::AuthorizeRequest>(R"({"subject": {"id": "u-1"}})");
  const v1::AuthorizeRequest before = request;
  ASSERT_TRUE(obligations.ApplyToMessage(&request).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(request, before)) << ToJson(request);
  // Walking a path never creates a submessage that was not there.
  EXPECT_FALSE(request.has_environment());
  EXPECT_FALSE(request.has_resource());
}

TEST(ObligationsMessageTest, TopLevelStructMessage) {
  google::protobuf::Struct document =
      FromJson<google::protobuf::Struct>(R"({"a": {"b": "x", "c": 1}, "d": [{"b": "y"}]})");
  const FieldObligations obligations = MustParse(
      absl::StrCat("[", Filter(R"(["a.c"])"), ",", Mask(R"(["d.b", "a.b"])"), "]"));
  ASSERT_TRUE(obligations.ApplyToMessage(&document).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(
      document, FromJson<google::protobuf::Struct>(
                    R"({"a": {"b": "****"}, "d": [{"b": "****"}]})")))
      << ToJson(document);
}

TEST(ObligationsMessageTest, DynamicMessageWithStructField) {
  // A message type the binary was not compiled with, as a service that loads
  // its descriptors at run time has: its Struct is a DynamicMessage too.
  google::protobuf::DescriptorPool pool;
  google::protobuf::FileDescriptorProto struct_file;
  google::protobuf::Struct::descriptor()->file()->CopyTo(&struct_file);
  ASSERT_NE(pool.BuildFile(struct_file), nullptr);
  google::protobuf::FileDescriptorProto doc_file;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(name: "doc.proto"
           package: "test"
           syntax: "proto3"
           dependency: "google/protobuf/struct.proto"
           message_type {
             name: "Doc"
             field { name: "card_number" number: 1 type: TYPE_STRING
                     label: LABEL_OPTIONAL json_name: "cardNumber" }
             field { name: "extra" number: 2 type: TYPE_MESSAGE
                     label: LABEL_OPTIONAL
                     type_name: ".google.protobuf.Struct" json_name: "extra" }
             field { name: "ids" number: 3 type: TYPE_INT64
                     label: LABEL_REPEATED json_name: "ids" }
           })pb",
      &doc_file));
  ASSERT_NE(pool.BuildFile(doc_file), nullptr);
  const google::protobuf::Descriptor* descriptor =
      pool.FindMessageTypeByName("test.Doc");
  ASSERT_NE(descriptor, nullptr);
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::unique_ptr<google::protobuf::Message> doc(
      factory.GetPrototype(descriptor)->New());
  const google::protobuf::Reflection* reflection = doc->GetReflection();
  reflection->SetString(doc.get(), descriptor->FindFieldByName("card_number"),
                        "4111");
  reflection->AddInt64(doc.get(), descriptor->FindFieldByName("ids"), 42);
  google::protobuf::Struct extra = FromJson<google::protobuf::Struct>(
      R"({"ssn": "078", "keep": "k", "inner": {"pin": 1234}})");
  google::protobuf::Message* extra_message =
      reflection->MutableMessage(doc.get(), descriptor->FindFieldByName("extra"));
  ASSERT_EQ(dynamic_cast<google::protobuf::Struct*>(extra_message), nullptr);
  ASSERT_TRUE(extra_message->ParseFromString(extra.SerializeAsString()));

  const FieldObligations obligations = MustParse(absl::StrCat(
      "[", Filter(R"(["extra.ssn"])"), ",",
      Mask(R"(["cardNumber", "extra.inner.pin", "ids"])"), "]"));
  ASSERT_TRUE(obligations.ApplyToMessage(doc.get()).ok());

  EXPECT_EQ(reflection->GetString(*doc, descriptor->FindFieldByName("card_number")),
            "****");
  EXPECT_EQ(reflection->FieldSize(*doc, descriptor->FindFieldByName("ids")), 0);
  google::protobuf::Struct got;
  ASSERT_TRUE(got.ParseFromString(
      reflection->GetMessage(*doc, descriptor->FindFieldByName("extra"))
          .SerializeAsString()));
  EXPECT_TRUE(MessageDifferencer::Equals(
      got, FromJson<google::protobuf::Struct>(
               R"({"keep": "k", "inner": {"pin": "****"}})")))
      << ToJson(got);
}

// ---- The example service ---------------------------------------------------

std::string ExampleBinary() {
  return absl::StrCat(PDP_BINARY_DIR, "/obligations/example_orders_service");
}

class ExampleOrdersServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(ExampleBinary())) {
      FAIL() << ExampleBinary() << " is not built (tests depend on it in tests/CMakeLists.txt)";
    }
  }

  // The demo rules' decision for one of rules/requests/, as a file.
  std::string DemoDecision(const std::string& request_file) {
    auto rule_set = engine::ReadRuleSetFile(e2e::SourcePath("rules/demo.json"));
    EXPECT_TRUE(rule_set.ok()) << rule_set.status();
    engine::CompileResult compiled = engine::Compile(*rule_set, {.version = 1});
    EXPECT_TRUE(compiled.ok()) << compiled.ToStatus();
    v1::AuthorizeRequest request = FromJson<v1::AuthorizeRequest>(
        e2e::ReadFileOrEmpty(e2e::SourcePath("rules/requests/" + request_file)));
    v1::AuthorizeResponse response;
    compiled.policy->Evaluate(request, absl::Now(), &response);
    return WriteDecision(ToJson(response));
  }

  std::string WriteDecision(const std::string& json) {
    const std::string path = dir_.File(absl::StrCat("decision", ++files_, ".json"));
    e2e::WriteFile(path, json);
    return path;
  }

  e2e::TempDir dir_;
  int files_ = 0;
};

TEST_F(ExampleOrdersServiceTest, MasksTheCardNumberForSupport) {
  const std::string decision =
      DemoDecision("09-support-updates-order.permit.json");
  e2e::CommandResult r = e2e::RunCommand({ExampleBinary(), decision});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("200 OK"));
  const Value body = FromJson<Value>(r.out);
  const auto& order = body.struct_value().fields();
  EXPECT_EQ(order.at("payment").struct_value().fields().at("card_number")
                .string_value(),
            "**** **** **** ****");
  EXPECT_EQ(order.at("id").string_value(), "o-5001");
  EXPECT_EQ(order.at("amount").number_value(), 129.9);

  // The same decision from stdin, and an order from a file.
  const std::string order_file = dir_.File("order.json");
  e2e::WriteFile(order_file,
                 R"({"id": "o-1", "payment": {"card_number": "5500"}})");
  r = e2e::RunCommand({ExampleBinary(), "--order=" + order_file},
                      std::chrono::seconds(30), decision);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(MessageDifferencer::Equals(
      FromJson<Value>(r.out),
      FromJson<Value>(
          R"({"id": "o-1", "payment": {"card_number": "**** **** **** ****"}})")))
      << r.out;
}

TEST_F(ExampleOrdersServiceTest, FulfilsAddHeaderItself) {
  e2e::CommandResult r = e2e::RunCommand(
      {ExampleBinary(),
       DemoDecision("02-customer-reads-own-order.permit.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("Cache-Control: private, no-store"));
  EXPECT_THAT(r.out, HasSubstr("4111 1111 1111 1111"));
}

TEST_F(ExampleOrdersServiceTest, RefusesAnythingButPermit) {
  e2e::CommandResult r = e2e::RunCommand(
      {ExampleBinary(), DemoDecision("04-big-refund-without-mfa.deny.json")});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("403 Forbidden: DENY"));
  EXPECT_EQ(r.out, "");
}

TEST_F(ExampleOrdersServiceTest, RefusesObligationsItCannotFulfil) {
  e2e::CommandResult r = e2e::RunCommand(
      {ExampleBinary(),
       WriteDecision(R"({"decision": "PERMIT", "obligations": [
           {"type": "filter_fields", "params": {"fields": ["ssn"]}},
           {"type": "require_mfa", "params": {"level": "totp"}}]})")});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("cannot fulfil obligation require_mfa"));
  EXPECT_EQ(r.out, "");

  r = e2e::RunCommand(
      {ExampleBinary(),
       WriteDecision(R"({"decision": "PERMIT", "obligations": [
           {"type": "filter_fields", "params": {"fields": "ssn"}}]})")});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("obligation 0 (filter_fields)"));
  EXPECT_EQ(r.out, "");
}

TEST_F(ExampleOrdersServiceTest, BadInputIsAUsageError) {
  e2e::CommandResult r =
      e2e::RunCommand({ExampleBinary(), WriteDecision("not json")});
  EXPECT_EQ(r.exit_code, 2);
  r = e2e::RunCommand({ExampleBinary(), dir_.File("missing.json")});
  EXPECT_EQ(r.exit_code, 2);
  r = e2e::RunCommand({ExampleBinary(), "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
}

// ---- The example service over HTTP (--listen) -------------------------------

class ExampleOrdersServiceHttpTest : public ExampleOrdersServiceTest {
 protected:
  void SetUp() override {
    ExampleOrdersServiceTest::SetUp();
    ASSERT_TRUE(service_.Spawn({ExampleBinary(), "--listen=127.0.0.1:0",
                                "--port_file=" + dir_.File("port")}));
    port_ = e2e::WaitForPortFile(dir_.File("port"), std::chrono::seconds(10), &service_);
    ASSERT_GT(port_, 0) << "the service did not start";
  }

  e2e::HttpResult Get(const std::string& path, std::map<std::string, std::string> headers) {
    return e2e::HttpRequest(port_, "GET", path, headers);
  }

  e2e::ChildProcess service_{"example_orders_service", dir_.File("service.log")};
  int port_ = 0;
};

TEST_F(ExampleOrdersServiceHttpTest, AppliesTheGatewaysObligationHeaders) {
  // No obligations: the whole order.
  e2e::HttpResult r = Get("/orders/o-5001", {});
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_THAT(r.body, HasSubstr("4111 1111 1111 1111"));
  EXPECT_EQ(r.headers["content-type"], "application/json");

  r = Get("/orders/o-5001", {{"X-Pdp-Filter-Fields", "payment.card_number, customer.ssn"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, Not(HasSubstr("card_number")));
  EXPECT_THAT(r.body, Not(HasSubstr("078-05-1120")));
  EXPECT_THAT(r.body, HasSubstr("\"expiry\""));
  EXPECT_EQ(r.headers["x-applied-filter-fields"], "payment.card_number,customer.ssn");

  r = Get("/orders/o-5001",
          {{"X-Pdp-Mask-Fields", "customer.email"}, {"X-Pdp-Mask", "[hidden]"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("\"email\":\"[hidden]\""));
  EXPECT_EQ(r.headers["x-applied-mask-fields"], "customer.email");

  EXPECT_EQ(Get("/elsewhere", {}).status, 404);
}

TEST_F(ExampleOrdersServiceHttpTest, FailsClosedOnHeadersItCannotParse) {
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"X-Pdp-Filter-Fields", "payment.card_number,,ssn"},
           {"X-Pdp-Filter-Fields", "payment..card_number"},
           {"X-Pdp-Mask-Fields", ","}}) {
    e2e::HttpResult r = Get("/orders/o-5001", {{name, value}});
    EXPECT_EQ(r.status, 502) << name << ": " << value;
    EXPECT_THAT(r.body, HasSubstr("cannot apply the gateway's obligations")) << value;
    EXPECT_THAT(r.body, Not(HasSubstr("4111"))) << value;
  }
}

TEST_F(ExampleOrdersServiceTest, HttpModeRefusesABadListenAddress) {
  e2e::CommandResult r = e2e::RunCommand({ExampleBinary(), "--listen=nowhere"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not host:port"));
}

}  // namespace
}  // namespace pdp::obligations
