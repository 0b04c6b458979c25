// Envoy ext_authz v3 Check; see envoy_authz.h.
#include "service/envoy_authz.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/absl_compat.h"

namespace pdp::service {

namespace auth = ::envoy::service::auth::v3;
namespace core = ::envoy::config::core::v3;
using google::protobuf::Struct;
using google::protobuf::Value;
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace {

// google.rpc.Code values Envoy understands.
constexpr int kRpcOk = 0;
constexpr int kRpcPermissionDenied = 7;
constexpr int kRpcUnauthenticated = 16;

constexpr char kRealm[] = "pdp";
constexpr char kGenericDenyBody[] = "access denied\n";

Value StringValue(std::string s) {
  Value v;
  v.set_string_value(std::move(s));
  return v;
}

std::string Lower(std::string_view s) { return absl::AsciiStrToLower(ToAbsl(s)); }

// Request headers with lower-case names, from header_map when Envoy sends
// it (encode_raw_headers), else from headers; repeated names comma-joined;
// sorted by name.
Headers CollectHeaders(const auth::AttributeContext::HttpRequest& http) {
  std::map<std::string, std::string> joined;
  auto add = [&joined](std::string name, std::string value) {
    auto [it, inserted] = joined.try_emplace(std::move(name), value);
    if (!inserted) absl::StrAppend(&it->second, ",", value);
  };
  if (http.header_map().headers_size() > 0) {
    for (const core::HeaderValue& h : http.header_map().headers()) {
      add(Lower(h.key()), h.raw_value().empty() ? h.value() : h.raw_value());
    }
  } else {
    for (const auto& [name, value] : http.headers()) add(Lower(name), value);
  }
  return Headers(joined.begin(), joined.end());
}

const std::string* FindHeader(const Headers& headers, std::string_view name) {
  auto it = std::lower_bound(headers.begin(), headers.end(), name,
                             [](const auto& entry, std::string_view n) { return entry.first < n; });
  if (it == headers.end() || it->first != name) return nullptr;
  return &it->second;
}

// A JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// "true"/"false" -> bool, a JSON number -> number, anything else a string.
Value HeaderToValue(const std::string& text) {
  Value v;
  double number = 0;
  if (text == "true" || text == "false") {
    v.set_bool_value(text == "true");
  } else if (IsJsonNumber(text) && absl::SimpleAtod(text, &number) && std::isfinite(number)) {
    v.set_number_value(number);
  } else {
    v.set_string_value(text);
  }
  return v;
}

bool IsSensitiveHeader(std::string_view name) {
  return name.empty() || name[0] == ':' || name == "authorization" ||
         name == "proxy-authorization" || name == "cookie" || name == "set-cookie";
}

bool HeaderAllowed(const std::vector<std::string>& patterns, std::string_view name) {
  for (const std::string& p : patterns) {
    if (p == name) return true;
    if (!p.empty() && p.back() == '*' && !IsSensitiveHeader(name) &&
        absl::StartsWith(ToAbsl(name), absl::string_view(p.data(), p.size() - 1))) {
      return true;
    }
  }
  return false;
}

const std::string* FindExtension(const auth::AttributeContext& attributes,
                                 const std::string& key) {
  if (key.empty()) return nullptr;
  auto it = attributes.context_extensions().find(key);
  if (it == attributes.context_extensions().end() || it->second.empty()) return nullptr;
  return &it->second;
}

// Quoted-string for an HTTP auth-param (RFC 9110 5.6.4): backslash-escape
// '"' and '\'; control characters (never expected) become spaces.
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
  }
  out.push_back('"');
  return out;
}

bool SafeHeaderValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void AddHeader(google::protobuf::RepeatedPtrField<core::HeaderValueOption>* headers,
               std::string name, std::string value) {
  core::HeaderValueOption* option = headers->Add();
  option->mutable_header()->set_key(std::move(name));
  option->mutable_header()->set_value(std::move(value));
  // `append` stays unset: older Envoys then overwrite too.
  option->set_append_action(core::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
}

std::string DecisionName(v1::Decision decision) {
  switch (decision) {
    case v1::PERMIT: return "permit";
    case v1::DENY: return "deny";
    case v1::NOT_APPLICABLE: return "not_applicable";
    case v1::INDETERMINATE: return "indeterminate";
    default: break;
  }
  return "indeterminate";
}

// dynamic_metadata: the decision for access logs and later filters.
Struct DecisionMetadata(const v1::AuthorizeResponse& decision) {
  Struct s;
  auto& f = *s.mutable_fields();
  f["decision"] = StringValue(DecisionName(decision.decision()));
  f["rule_set"] = StringValue(decision.rule_set());
  f["rule_set_version"].set_number_value(static_cast<double>(decision.rule_set_version()));
  auto* rules = f["determining_rules"].mutable_list_value();
  for (const std::string& id : decision.determining_rules()) *rules->add_values() = StringValue(id);
  auto* obligations = f["obligations"].mutable_list_value();
  for (const v1::ObligationResult& o : decision.obligations()) {
    auto& of = *obligations->add_values()->mutable_struct_value()->mutable_fields();
    of["type"] = StringValue(o.type());
    of["rule_id"] = StringValue(o.rule_id());
    *of["params"].mutable_struct_value() = o.params();
  }
  f["reason"] = StringValue(decision.reason());
  return s;
}

const Value* Param(const v1::ObligationResult& o, const char* name) {
  auto it = o.params().fields().find(name);
  return it == o.params().fields().end() ? nullptr : &it->second;
}

std::string StringParam(const v1::ObligationResult& o, const char* name) {
  const Value* v = Param(o, name);
  return v != nullptr && v->kind_case() == Value::kStringValue ? v->string_value() : "";
}

// The `fields` of filter_fields / mask_fields as header-safe strings, or
// false (with *problem) when they cannot travel in a comma-joined header.
bool FieldList(const v1::ObligationResult& o, std::vector<std::string>* out,
               std::string* problem) {
  const Value* v = Param(o, "fields");
  if (v == nullptr || v->kind_case() != Value::kListValue || v->list_value().values_size() == 0) {
    *problem = absl::StrCat(o.type(), " (rule ", o.rule_id(), ") has no field list");
    return false;
  }
  for (const Value& field : v->list_value().values()) {
    if (field.kind_case() != Value::kStringValue || field.string_value().empty() ||
        absl::StrContains(field.string_value(), ",") || !SafeHeaderValue(field.string_value())) {
      *problem = absl::StrCat(o.type(), " (rule ", o.rule_id(),
                              ") has a field path that cannot travel in a header");
      return false;
    }
    out->push_back(field.string_value());
  }
  return true;
}

void AppendUnique(std::vector<std::string>* list, const std::vector<std::string>& items) {
  for (const std::string& item : items) {
    if (std::find(list->begin(), list->end(), item) == list->end()) list->push_back(item);
  }
}

// Fills a deny: `rpc_code`, HTTP `http_status`, body and headers.
void Deny(int rpc_code, envoy::type::v3::StatusCode http_status, const std::string& decision_name,
          const std::string& reason, const std::string& www_authenticate,
          const EnvoyMapping& mapping, auth::CheckResponse* response) {
  response->mutable_status()->set_code(rpc_code);
  response->mutable_status()->set_message(absl::StrCat("pdp: ", decision_name, ": ", reason));
  auth::DeniedHttpResponse* denied = response->mutable_denied_response();
  denied->mutable_status()->set_code(http_status);
  AddHeader(denied->mutable_headers(), "content-type", "text/plain; charset=utf-8");
  if (mapping.reason_in_body) {
    AddHeader(denied->mutable_headers(), kDecisionHeader, decision_name);
    std::string body = reason;
    std::replace_if(body.begin(), body.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
    denied->set_body(absl::StrCat(body, "\n"));
  } else {
    denied->set_body(kGenericDenyBody);
  }
  if (!www_authenticate.empty()) {
    AddHeader(denied->mutable_headers(), "www-authenticate", www_authenticate);
  }
}

std::string BearerChallenge(const std::string& error, const std::string& description,
                            const std::string& acr_values, const EnvoyMapping& mapping) {
  std::string out = absl::StrCat("Bearer realm=", Quoted(kRealm));
  if (!error.empty()) absl::StrAppend(&out, ", error=", Quoted(error));
  if (!description.empty() && mapping.reason_in_body) {
    absl::StrAppend(&out, ", error_description=", Quoted(description));
  }
  if (!acr_values.empty()) absl::StrAppend(&out, ", acr_values=", Quoted(acr_values));
  return out;
}

// The require_mfa obligation of `decision`, if any.
const v1::ObligationResult* FindRequireMfa(const v1::AuthorizeResponse& decision) {
  for (const v1::ObligationResult& o : decision.obligations()) {
    if (o.type() == "require_mfa") return &o;
  }
  return nullptr;
}

void StepUp(const v1::AuthorizeResponse& decision, const v1::ObligationResult& mfa,
            const std::string& reason, const EnvoyMapping& mapping,
            auth::CheckResponse* response) {
  const std::string level = StringParam(mfa, "level");
  const std::string why =
      level.empty() ? absl::StrCat("multi-factor authentication required (", reason, ")")
                    : absl::StrCat("multi-factor authentication (", level, ") required (",
                                   reason, ")");
  // A PERMIT that still asks for MFA is enforced as a deny.
  const std::string name =
      decision.decision() == v1::PERMIT ? "deny" : DecisionName(decision.decision());
  Deny(kRpcUnauthenticated, envoy::type::v3::Unauthorized, name, why,
       BearerChallenge("insufficient_user_authentication", why, level, mapping), mapping,
       response);
}

}  // namespace

bool ParseAddHeaderTarget(std::string_view text, EnvoyMapping::AddHeaderTarget* out) {
  if (text == "upstream") {
    *out = EnvoyMapping::AddHeaderTarget::kUpstream;
  } else if (text == "client") {
    *out = EnvoyMapping::AddHeaderTarget::kClient;
  } else if (text == "both") {
    *out = EnvoyMapping::AddHeaderTarget::kBoth;
  } else {
    return false;
  }
  return true;
}

SubjectResolution TrustedHeaderSubjectResolver::Resolve(const EnvoyAttributes&,
                                                        const Headers& headers,
                                                        v1::Subject* subject) const {
  const std::string* id = FindHeader(headers, subject_header_);
  if (id == nullptr) return SubjectResolution::None();
  const std::string trimmed(absl::StripAsciiWhitespace(*id));
  if (trimmed.empty()) return SubjectResolution::None();
  subject->set_id(trimmed);
  if (const std::string* roles = FindHeader(headers, roles_header_); roles != nullptr) {
    for (absl::string_view role : absl::StrSplit(*roles, ',')) {
      role = absl::StripAsciiWhitespace(role);
      if (!role.empty()) subject->add_roles(std::string(role));
    }
  }
  if (!attribute_prefix_.empty()) {
    for (const auto& [name, value] : headers) {
      if (name.size() > attribute_prefix_.size() && absl::StartsWith(name, attribute_prefix_)) {
        (*subject->mutable_attributes())[name.substr(attribute_prefix_.size())] =
            HeaderToValue(value);
      }
    }
  }
  return SubjectResolution::Resolved();
}

MappedCheck MapCheckRequest(const auth::CheckRequest& check, const EnvoyMapping& mapping) {
  MappedCheck out;
  const auth::AttributeContext& attributes = check.attributes();
  v1::AuthorizeRequest& request = out.request;
  v1::Resource* resource = request.mutable_resource();
  v1::Environment* environment = request.mutable_environment();
  auto& env = *environment->mutable_attributes();

  // Rule set and resource type: per route, else the defaults.
  const std::string* rule_set = FindExtension(attributes, mapping.rule_set_key);
  request.set_rule_set(rule_set != nullptr ? *rule_set : mapping.default_rule_set);
  const std::string* type = FindExtension(attributes, mapping.resource_type_key);
  resource->set_type(type != nullptr ? *type : mapping.default_resource_type);
  // Every context extension is also an environment attribute.
  for (const auto& [key, value] : attributes.context_extensions()) {
    env[absl::StrCat("context.", key)] = StringValue(value);
  }

  // Peers.
  if (attributes.source().address().has_socket_address()) {
    environment->set_client_ip(attributes.source().address().socket_address().address());
  }
  const std::string& principal = attributes.source().principal();
  if (!principal.empty()) env["source_principal"] = StringValue(principal);
  if (!attributes.destination().principal().empty()) {
    env["destination_principal"] = StringValue(attributes.destination().principal());
  }
  if (!attributes.tls_session().sni().empty()) {
    env["sni"] = StringValue(attributes.tls_session().sni());
  }
  if (attributes.request().has_time()) {
    const auto& t = attributes.request().time();
    if (t.seconds() != 0 || t.nanos() != 0) *environment->mutable_time() = t;
  }

  if (!attributes.request().has_http()) {
    out.refusal = MappedCheck::Refusal::kNotHttp;
    out.refusal_reason = "not an HTTP request: pdp serves the HTTP ext_authz filter only";
    return out;
  }
  const auth::AttributeContext::HttpRequest& http = attributes.request().http();

  // Action: per route, else the method.
  if (const std::string* action = FindExtension(attributes, mapping.action_key)) {
    request.set_action(*action);
  } else {
    request.set_action(mapping.lowercase_method ? Lower(http.method()) : http.method());
  }
  if (!http.method().empty()) env["method"] = StringValue(http.method());
  if (!http.scheme().empty()) env["scheme"] = StringValue(http.scheme());
  if (!http.protocol().empty()) env["protocol"] = StringValue(http.protocol());

  // Resource: the path without the query (as sent: not decoded).
  std::string_view path = http.path();
  std::string_view query;
  if (size_t q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  resource->set_id(std::string(path));
  auto& res = *resource->mutable_attributes();
  res["path"] = StringValue(std::string(path));
  if (!query.empty()) res["query"] = StringValue(std::string(query));
  if (!http.host().empty()) res["host"] = StringValue(Lower(http.host()));

  // Headers (never the identity headers, trusted or not).
  const Headers headers = CollectHeaders(http);
  for (const auto& [name, value] : headers) {
    if (name == mapping.subject_header || name == mapping.roles_header ||
        (!mapping.subject_attribute_header_prefix.empty() &&
         absl::StartsWith(name, mapping.subject_attribute_header_prefix))) {
      continue;
    }
    if (HeaderAllowed(mapping.header_attributes, name)) {
      env[absl::StrCat("header.", name)] = StringValue(value);
    }
  }

  // Subject: the resolvers in order, then the source principal.
  v1::Subject* subject = request.mutable_subject();
  std::string source;
  for (const auto& resolver : mapping.resolvers) {
    v1::Subject candidate;
    SubjectResolution r = resolver->Resolve(attributes, headers, &candidate);
    if (r.outcome == SubjectResolution::Outcome::kRejected) {
      out.refusal = MappedCheck::Refusal::kRejectedIdentity;
      out.refusal_reason = r.reason.empty() ? "the presented credential is not accepted"
                                            : r.reason;
      request.clear_subject();
      return out;
    }
    if (r.outcome == SubjectResolution::Outcome::kResolved) {
      *subject = std::move(candidate);
      source = resolver->name();
      break;
    }
  }
  if (source.empty() && mapping.principal_as_subject && !principal.empty()) {
    subject->set_id(principal);
    source = "peer_certificate";
  }
  if (!source.empty()) (*subject->mutable_attributes())["identity_source"] = StringValue(source);
  if (subject->id().empty() && mapping.require_identity) {
    out.refusal = MappedCheck::Refusal::kMissingIdentity;
    out.refusal_reason = "no identity: the request carries no credential pdp accepts";
  }
  return out;
}

namespace {

void BuildCheckResponseImpl(const MappedCheck& mapped, const v1::AuthorizeResponse& decision,
                            const EnvoyMapping& mapping, auth::CheckResponse* response) {
  switch (mapped.refusal) {
    case MappedCheck::Refusal::kNone:
      break;
    case MappedCheck::Refusal::kMissingIdentity:
    case MappedCheck::Refusal::kRejectedIdentity: {
      const bool rejected = mapped.refusal == MappedCheck::Refusal::kRejectedIdentity;
      Deny(kRpcUnauthenticated, envoy::type::v3::Unauthorized, "unauthenticated",
           mapped.refusal_reason,
           BearerChallenge(rejected ? "invalid_token" : "", rejected ? mapped.refusal_reason : "",
                           "", mapping),
           mapping, response);
      auto& f = *response->mutable_dynamic_metadata()->mutable_fields();
      f["decision"] = StringValue("unauthenticated");
      f["reason"] = StringValue(mapped.refusal_reason);
      return;
    }
    case MappedCheck::Refusal::kNotHttp: {
      Deny(kRpcPermissionDenied, envoy::type::v3::Forbidden, "indeterminate",
           mapped.refusal_reason, "", mapping, response);
      auto& f = *response->mutable_dynamic_metadata()->mutable_fields();
      f["decision"] = StringValue("indeterminate");
      f["reason"] = StringValue(mapped.refusal_reason);
      return;
    }
  }

  *response->mutable_dynamic_metadata() = DecisionMetadata(decision);
  const std::string decision_name = DecisionName(decision.decision());

  if (decision.decision() != v1::PERMIT) {
    const std::string reason =
        decision.reason().empty() ? absl::StrCat("decision ", decision_name) : decision.reason();
    if (const v1::ObligationResult* mfa = FindRequireMfa(decision); mfa != nullptr) {
      StepUp(decision, *mfa, reason, mapping, response);
    } else {
      Deny(kRpcPermissionDenied, envoy::type::v3::Forbidden, decision_name, reason, "", mapping,
           response);
    }
    return;
  }

  // PERMIT: allowed only if every obligation can be fulfilled on this path.
  std::vector<std::string> filter_fields, mask_fields;
  std::set<std::string> masks;
  std::vector<std::pair<std::string, std::string>> added;
  std::string problem;
  const v1::ObligationResult* mfa = nullptr;
  for (const v1::ObligationResult& o : decision.obligations()) {
    if (!problem.empty()) break;
    if (o.type() == "filter_fields") {
      std::vector<std::string> fields;
      if (FieldList(o, &fields, &problem)) AppendUnique(&filter_fields, fields);
    } else if (o.type() == "mask_fields") {
      std::vector<std::string> fields;
      if (FieldList(o, &fields, &problem)) AppendUnique(&mask_fields, fields);
      const std::string mask = StringParam(o, "mask");
      masks.insert(mask.empty() ? "****" : mask);
    } else if (o.type() == "add_header") {
      const std::string name = Lower(StringParam(o, "name"));
      const std::string value = StringParam(o, "value");
      if (name.empty() || !SafeHeaderValue(name) || !SafeHeaderValue(value)) {
        problem = absl::StrCat("add_header (rule ", o.rule_id(), ") is not a valid header");
      } else {
        added.emplace_back(name, value);
      }
    } else if (o.type() == "require_mfa") {
      // A permit that still asks for MFA: the gateway cannot check it, so
      // the client is sent to step up.
      if (mfa == nullptr) mfa = &o;
    } else {
      const auto& pass = mapping.passthrough_obligations;
      if (std::find(pass.begin(), pass.end(), "*") == pass.end() &&
          std::find(pass.begin(), pass.end(), o.type()) == pass.end()) {
        problem = absl::StrCat("obligation '", o.type(), "' (rule ", o.rule_id(),
                               ") cannot be fulfilled by Envoy");
      }
    }
  }
  if (problem.empty() && masks.size() > 1) {
    problem = "mask_fields obligations with different masks cannot travel in one header";
  }
  if (!problem.empty()) {
    Deny(kRpcPermissionDenied, envoy::type::v3::Forbidden, "deny",
         absl::StrCat(decision.reason(), ", but ", problem), "", mapping, response);
    return;
  }
  if (mfa != nullptr) {
    StepUp(decision, *mfa, decision.reason(), mapping, response);
    return;
  }

  response->mutable_status()->set_code(kRpcOk);
  auth::OkHttpResponse* ok = response->mutable_ok_response();
  for (const auto& [name, value] : added) {
    if (mapping.add_header_to != EnvoyMapping::AddHeaderTarget::kClient) {
      AddHeader(ok->mutable_headers(), name, value);
    }
    if (mapping.add_header_to != EnvoyMapping::AddHeaderTarget::kUpstream) {
      AddHeader(ok->mutable_response_headers_to_add(), name, value);
    }
  }
  // pdp's own headers last, so that they win over any add_header.
  AddHeader(ok->mutable_headers(), kDecisionHeader, "permit");
  AddHeader(ok->mutable_headers(), kRuleSetHeader, decision.rule_set());
  AddHeader(ok->mutable_headers(), kRuleSetVersionHeader,
            absl::StrCat(decision.rule_set_version()));
  // Field obligations; a client's own copy of these headers never reaches
  // the upstream.
  if (!filter_fields.empty()) {
    AddHeader(ok->mutable_headers(), kFilterFieldsHeader, absl::StrJoin(filter_fields, ","));
  } else {
    ok->add_headers_to_remove(kFilterFieldsHeader);
  }
  if (!mask_fields.empty()) {
    AddHeader(ok->mutable_headers(), kMaskFieldsHeader, absl::StrJoin(mask_fields, ","));
    AddHeader(ok->mutable_headers(), kMaskHeader, *masks.begin());
  } else {
    ok->add_headers_to_remove(kMaskFieldsHeader);
    ok->add_headers_to_remove(kMaskHeader);
  }
}

}  // namespace

void BuildCheckResponse(const MappedCheck& mapped, const v1::AuthorizeResponse& decision,
                        const EnvoyMapping& mapping, auth::CheckResponse* response) {
  response->Clear();
  BuildCheckResponseImpl(mapped, decision, mapping, response);
  // Whether Envoy lets the request through, next to what pdp decided.
  (*response->mutable_dynamic_metadata()->mutable_fields())["allowed"].set_bool_value(
      response->status().code() == kRpcOk);
}

void EnvoyAuthorizationService::Decide(const auth::CheckRequest& request,
                                       auth::CheckResponse* response) const {
  const MappedCheck mapped = MapCheckRequest(request, mapping_);
  v1::AuthorizeResponse decision;
  if (mapped.refusal == MappedCheck::Refusal::kNone) decide_(mapped.request, &decision);
  BuildCheckResponse(mapped, decision, mapping_, response);
}

grpc::ServerUnaryReactor* EnvoyAuthorizationService::Check(grpc::CallbackServerContext* context,
                                                           const auth::CheckRequest* request,
                                                           auth::CheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const Caller caller = access_->Identify(*context);
  if (!AccessPolicy::MayAuthorize(caller.role)) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        caller.identity.empty()
            ? std::string("no verified client identity may call Check")
            : absl::StrCat("identity '", caller.identity, "' (role ", RoleName(caller.role),
                           ") may not call Check")));
    return reactor;
  }
  DecideAndRecord(*request, caller.identity, DecisionPath::kEnvoy, response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

void EnvoyAuthorizationService::DecideAndRecord(const auth::CheckRequest& request,
                                                const std::string& caller, DecisionPath path,
                                                auth::CheckResponse* response) const {
  if (recorder_ == nullptr) {
    Decide(request, response);
    return;
  }
  // Decide's steps, keeping the mapped request and the decision to record.
  const auto start = DecisionRecorder::Clock::now();
  const MappedCheck mapped = MapCheckRequest(request, mapping_);
  v1::AuthorizeResponse decision;
  if (mapped.refusal == MappedCheck::Refusal::kNone) {
    decide_(mapped.request, &decision);
  } else {
    decision.set_decision(v1::INDETERMINATE);
    decision.set_reason(mapped.refusal_reason);
  }
  BuildCheckResponse(mapped, decision, mapping_, response);
  DecisionEvent event;
  event.path = path;
  event.start = start;
  event.request = &mapped.request;
  event.response = &decision;
  event.allowed = response->status().code() == kRpcOk;
  recorder_->Record(event, [&](CallInfo* call) {
    call->caller = caller;
    call->request_id = request.attributes().request().http().id();
  });
}

}  // namespace pdp::service
