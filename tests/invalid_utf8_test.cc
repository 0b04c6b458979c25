// Invalid UTF-8 in requests and rule sets (issue 4, "bad requests").
//
// Two places bytes that are not UTF-8 can reach pdp:
//   - over gRPC, in a proto3 `string` field: protobuf refuses to parse the
//     message, so gRPC answers the call with an error status before pdp sees
//     it (gRPC 1.51's callback server says UNIMPLEMENTED, code 12, with no
//     message; pdpd's log names the field), except PutRuleSet, which parses
//     its own bytes and answers INVALID_ARGUMENT. Never a decision, never a
//     PERMIT, nothing persisted; the server keeps serving. These tests send
//     such bytes on the wire with a generic stub (a generated stub would not
//     let us).
//   - inside the process, from a gateway path that copies raw bytes into the
//     request (Envoy's header_map raw_value, HTTP forward-auth headers): the
//     engine compares bytes. Every operator must then agree with the naive
//     reference evaluator and a regex must never match by accident.
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "service/envoy_authz.h"
#include "tests/support/engine_test_util.h"
#include "tests/support/pdpd_process.h"
#include "tests/support/reference_evaluator.h"

namespace pdp {
namespace {

using e2e::PdpdProcess;
using e2e::TempDir;
using engine_testing::CompileOrDie;
using engine_testing::Decide;
using engine_testing::DefaultNow;
using engine_testing::RuleSetFromJson;

// A placeholder that is valid UTF-8, replaced in the serialized bytes by
// the same number of bytes that are not.
constexpr char kMarker[] = "MARKER";
// 0xff never occurs in UTF-8; 0xc3 0x28 is a lead byte with a bad
// continuation; 0xed 0xa0 0x80 is a UTF-16 surrogate encoded as UTF-8.
const std::string kInvalid = std::string("\xff\xc3\x28\xed\xa0\x80", 6);
static_assert(sizeof(kMarker) - 1 == 6);

// Serializes `message`, then swaps every kMarker for kInvalid.
std::string SerializeWithInvalidUtf8(const google::protobuf::Message& message) {
  std::string bytes = message.SerializeAsString();
  size_t replaced = 0;
  for (size_t at = bytes.find(kMarker); at != std::string::npos;
       at = bytes.find(kMarker, at + kInvalid.size())) {
    bytes.replace(at, kInvalid.size(), kInvalid);
    ++replaced;
  }
  EXPECT_GT(replaced, 0u) << "no marker in " << message.ShortDebugString();
  return bytes;
}

// One unary call with raw request bytes; the response bytes go to
// `response` when the status is OK.
grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& request_bytes, std::string* response = nullptr) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, method, request, &cq);
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  call->Finish(&reply, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  EXPECT_TRUE(cq.Next(&tag, &ok));
  if (status.ok() && response != nullptr) {
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(reply.Dump(&slices).ok());
    response->clear();
    for (const grpc::Slice& s : slices) {
      response->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return status;
}

// The demo's "customer reads own order" request with kMarker in `where`.
v1::AuthorizeRequest CustomerReadsOrder(const std::string& where) {
  v1::AuthorizeRequest request;
  request.set_rule_set("shop");
  request.mutable_subject()->set_id(where == "subject.id" ? kMarker : "alice");
  request.mutable_subject()->add_roles(where == "subject.roles" ? kMarker : "customer");
  request.set_action(where == "action" ? kMarker : "read");
  request.mutable_resource()->set_type("order");
  request.mutable_resource()->set_id(where == "resource.id" ? kMarker : "o-1");
  auto& attributes = *request.mutable_resource()->mutable_attributes();
  attributes["owner"].set_string_value(where == "resource.owner" ? kMarker : "alice");
  if (where == "attribute key") attributes[kMarker].set_string_value("x");
  return request;
}

class InvalidUtf8E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pdpd_.Start(PdpdProcess::StandardFlags(dir_.File("pdp.db"))));
  }
  TempDir dir_;
  PdpdProcess pdpd_{dir_.path()};
};

TEST_F(InvalidUtf8E2eTest, AuthorizeIsRefusedBeforeAnyDecisionAndServingGoesOn) {
  auto channel = pdpd_.Channel("gateway");
  // The valid form of the request permits (the demo's own-order rule): a
  // refusal below is the bytes, not the request.
  {
    std::string reply;
    ASSERT_TRUE(RawCall(channel, "/pdp.v1.Authorization/Authorize",
                        CustomerReadsOrder("").SerializeAsString(), &reply)
                    .ok());
    v1::AuthorizeResponse response;
    ASSERT_TRUE(response.ParseFromString(reply));
    ASSERT_EQ(response.decision(), v1::PERMIT) << response.ShortDebugString();
  }
  for (const std::string where : {"subject.id", "subject.roles", "action", "resource.id",
                                  "resource.owner", "attribute key"}) {
    SCOPED_TRACE(where);
    std::string reply;
    grpc::Status status = RawCall(channel, "/pdp.v1.Authorization/Authorize",
                                  SerializeWithInvalidUtf8(CustomerReadsOrder(where)), &reply);
    // gRPC's protobuf deserializer refuses the message: an error status,
    // never a response, so never a PERMIT.
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << status.error_message();
    EXPECT_TRUE(reply.empty());
  }
  // The operator's precise error: pdpd's log names the field.
  const std::string log = pdpd_.Log();
  for (const char* field : {"pdp.v1.Subject.id", "pdp.v1.Subject.roles",
                            "pdp.v1.AuthorizeRequest.action", "pdp.v1.Resource.id",
                            "google.protobuf.Value.string_value",
                            "pdp.v1.Resource.AttributesEntry.key"}) {
    EXPECT_NE(log.find(std::string("String field '") + field + "' contains invalid UTF-8"),
              std::string::npos)
        << field;
  }
  // In a batch, one bad request refuses the whole call (the message does not
  // parse), so no request in it is decided.
  v1::BatchAuthorizeRequest batch;
  *batch.add_requests() = CustomerReadsOrder("");
  *batch.add_requests() = CustomerReadsOrder("resource.owner");
  EXPECT_EQ(RawCall(channel, "/pdp.v1.Authorization/BatchAuthorize",
                    SerializeWithInvalidUtf8(batch))
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  // The server is unharmed: the next valid call on the same channel decides.
  auto stub = v1::Authorization::NewStub(channel);
  grpc::ClientContext context;
  v1::AuthorizeResponse response;
  ASSERT_TRUE(stub->Authorize(&context, CustomerReadsOrder(""), &response).ok());
  EXPECT_EQ(response.decision(), v1::PERMIT);
  EXPECT_TRUE(pdpd_.HealthServing(std::chrono::seconds(5)));
}

TEST_F(InvalidUtf8E2eTest, PutRuleSetIsRefusedAndNothingIsPersisted) {
  auto channel = pdpd_.Channel("admin");
  auto admin = v1::Admin::NewStub(channel);
  auto versions = [&] {
    grpc::ClientContext context;
    v1::ListVersionsRequest request;
    request.set_name("shop");
    v1::ListVersionsResponse response;
    EXPECT_TRUE(admin->ListVersions(&context, request, &response).ok());
    return response.versions_size();
  };
  const int before = versions();
  ASSERT_GE(before, 1);

  v1::PutRuleSetRequest put;
  *put.mutable_rule_set() = RuleSetFromJson(R"({
    "name": "shop", "combining_algorithm": "deny-overrides",
    "rules": [{"id": "MARKER", "effect": "permit",
               "target": {"resource_types": ["*"], "actions": ["*"]}}]})");
  grpc::Status status =
      RawCall(channel, "/pdp.v1.Admin/PutRuleSet", SerializeWithInvalidUtf8(put));
  // PutRuleSet parses its own bytes (on the admin worker), so it can say
  // what is wrong.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("not UTF-8"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(versions(), before);
  {
    // The audit trail has the failed put, newest first.
    grpc::ClientContext context;
    v1::ListAuditEventsRequest request;
    request.set_method("PutRuleSet");
    request.set_limit(1);
    v1::ListAuditEventsResponse events;
    ASSERT_TRUE(admin->ListAuditEvents(&context, request, &events).ok());
    ASSERT_EQ(events.events_size(), 1);
    EXPECT_EQ(events.events(0).code_name(), "INVALID_ARGUMENT");
    EXPECT_EQ(events.events(0).summary(), "put, request not parsed");
    EXPECT_EQ(events.events(0).version(), 0);
  }

  // The refused permit-everything rule set is not active either.
  auto stub = pdpd_.AuthorizationStub("gateway");
  grpc::ClientContext context;
  v1::AuthorizeResponse response;
  v1::AuthorizeRequest request = CustomerReadsOrder("");
  request.mutable_resource()->mutable_attributes()->at("owner").set_string_value("bob");
  ASSERT_TRUE(stub->Authorize(&context, request, &response).ok());
  EXPECT_NE(response.decision(), v1::PERMIT);
}

// Inside the process, strings are bytes: a gateway path may hand the engine
// values that are not UTF-8. Each operator must agree with the reference
// evaluator, and a pattern must not match what it does not match bytewise.
TEST(InvalidUtf8EngineTest, EveryOperatorAgreesWithTheReference) {
  const std::string rules_json = R"({
    "name": "utf8", "combining_algorithm": "first-applicable",
    "rules": [
      {"id": "eq", "effect": "permit", "target": {"resource_types": ["doc"], "actions": ["eq"]},
       "conditions": {"attributes": [{"attribute": "resource.v", "op": "eq", "value": "caf\u00e9"}]}},
      {"id": "ne", "effect": "permit", "target": {"resource_types": ["doc"], "actions": ["ne"]},
       "conditions": {"attributes": [{"attribute": "resource.v", "op": "ne", "value": "caf\u00e9"}]}},
      {"id": "in", "effect": "permit", "target": {"resource_types": ["doc"], "actions": ["in"]},
       "conditions": {"attributes": [{"attribute": "resource.v", "op": "in", "value": ["a", "caf\u00e9"]}]}},
      {"id": "regex-dot", "effect": "permit", "target": {"resource_types": ["doc"], "actions": ["regex-dot"]},
       "conditions": {"attributes": [{"attribute": "resource.v", "op": "regex", "value": "^caf.$"}]}},
      {"id": "regex-any", "effect": "permit", "target": {"resource_types": ["doc"], "actions": ["regex-any"]},
       "conditions": {"attributes": [{"attribute": "resource.v", "op": "regex", "value": "^[a-z]+$"}]}},
      {"id": "own", "effect": "permit", "target": {"resource_types": ["doc"], "actions": ["own"]},
       "conditions": {"attributes": [{"attribute": "resource.owner", "op": "eq", "other": "subject.id"}]}},
      {"id": "prefix", "effect": "permit", "target": {"resource_types": ["doc"], "actions": ["p*"]}},
      {"id": "role", "effect": "permit", "target": {"resource_types": ["doc"], "actions": ["role"], "roles": ["caf\u00e9"]}}
    ]})";
  const v1::RuleSet rules = RuleSetFromJson(rules_json);
  auto policy = CompileOrDie(rules_json);

  // "caf" + a broken é (its lead byte alone), a lone continuation byte, a
  // surrogate, 0xff, and the valid é for contrast.
  const std::vector<std::string> values = {
      std::string("caf\xc3", 4), std::string("caf\xa9", 4), std::string("caf\xed\xa0\x80", 6),
      std::string("\xff", 1),     std::string("caf\xc3\xa9", 5)};
  const std::vector<std::string> actions = {"eq",  "ne",  "in",     "regex-dot", "regex-any",
                                            "own", "p\xff", "role"};
  int decided = 0;
  for (const std::string& value : values) {
    for (const std::string& action : actions) {
      v1::AuthorizeRequest request;
      request.mutable_subject()->set_id(value);
      request.mutable_subject()->add_roles(value);
      request.set_action(action);
      request.mutable_resource()->set_type("doc");
      auto& attributes = *request.mutable_resource()->mutable_attributes();
      attributes["v"].set_string_value(value);
      attributes["owner"].set_string_value(value);
      const v1::AuthorizeResponse got = Decide(*policy, request);
      const v1::AuthorizeResponse want =
          testing::ReferenceEvaluate(rules, request, DefaultNow());
      SCOPED_TRACE(::testing::Message() << "action " << action << ", value bytes "
                                        << ::testing::PrintToString(value));
      EXPECT_EQ(got.decision(), want.decision()) << got.ShortDebugString();
      ++decided;
    }
  }
  EXPECT_EQ(decided, 40);

  // And the specific answers: only the valid é equals "café"; the broken
  // forms never satisfy eq, in or the role; "." in RE2's UTF-8 mode matches
  // one character, never a stray byte.
  auto decide = [&](const std::string& action, const std::string& value) {
    v1::AuthorizeRequest request;
    request.mutable_subject()->add_roles(value);
    request.set_action(action);
    request.mutable_resource()->set_type("doc");
    (*request.mutable_resource()->mutable_attributes())["v"].set_string_value(value);
    return Decide(*policy, request).decision();
  };
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    SCOPED_TRACE(::testing::PrintToString(values[i]));
    EXPECT_NE(decide("eq", values[i]), v1::PERMIT);
    EXPECT_NE(decide("in", values[i]), v1::PERMIT);
    EXPECT_NE(decide("role", values[i]), v1::PERMIT);
    EXPECT_NE(decide("regex-any", values[i]), v1::PERMIT);
    EXPECT_EQ(decide("ne", values[i]), v1::PERMIT);
  }
  EXPECT_EQ(decide("eq", values.back()), v1::PERMIT);
  EXPECT_EQ(decide("regex-dot", values.back()), v1::PERMIT);
  EXPECT_NE(decide("regex-dot", values[0]), v1::PERMIT);  // "caf" + a lone lead byte
}

// Envoy with encode_raw_headers sends header values as bytes (header_map's
// raw_value), so they may be anything: they are decided on bytewise, and
// what goes back to Envoy still parses (a CheckResponse that Envoy could not
// read would turn every such request into an ext_authz error).
TEST(InvalidUtf8EnvoyTest, RawHeaderBytesAreDecidedAndTheAnswerStillParses) {
  auto policy = CompileOrDie(R"({
    "name": "web", "combining_algorithm": "first-applicable",
    "rules": [
      {"id": "team-cafe", "effect": "permit",
       "target": {"resource_types": ["http"], "actions": ["get"]},
       "conditions": {"attributes": [
         {"attribute": "environment.header.x-pdp-team", "op": "eq", "value": "caf\u00e9"}]},
       "obligations": [{"type": "add_header", "params": {"name": "x-team", "value": "cafe"}}]}
    ]})");
  service::EnvoyMapping mapping;
  mapping.default_rule_set = "web";
  service::EnvoyAuthorizationService envoy(
      nullptr,
      [&](const v1::AuthorizeRequest& request, v1::AuthorizeResponse* response) {
        policy->Evaluate(request, DefaultNow(), response);
      },
      mapping);
  auto check = [&](const std::string& team, const std::string& path) {
    envoy::service::auth::v3::CheckRequest request;
    auto* http = request.mutable_attributes()->mutable_request()->mutable_http();
    http->set_method("GET");
    auto* headers = http->mutable_header_map();
    auto add = [&](const std::string& key, const std::string& raw) {
      auto* h = headers->add_headers();
      h->set_key(key);
      h->set_raw_value(raw);
    };
    add(":method", "GET");
    add(":path", path);
    add("x-pdp-team", team);
    add("user-agent", std::string("agent\xff", 6));
    envoy::service::auth::v3::CheckResponse response;
    envoy.Decide(request, &response);
    // What Envoy receives must parse, UTF-8 checks included.
    envoy::service::auth::v3::CheckResponse parsed;
    EXPECT_TRUE(parsed.ParseFromString(response.SerializeAsString()))
        << response.ShortDebugString();
    return response;
  };
  const std::string bad_path = std::string("/orders/\xc3\x28", 10);
  EXPECT_EQ(check("caf\xc3\xa9", "/orders").status().code(), 0);
  EXPECT_EQ(check("caf\xc3\xa9", bad_path).status().code(), 0);
  for (const std::string& team : {std::string("caf\xc3", 4), std::string("caf\xe9", 4),
                                 std::string("\xff\xfe", 2)}) {
    SCOPED_TRACE(::testing::PrintToString(team));
    const auto response = check(team, bad_path);
    EXPECT_EQ(response.status().code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(response.denied_response().status().code(), 403);
  }
}

}  // namespace
}  // namespace pdp
