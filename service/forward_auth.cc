// Forward-auth requests onto ext_authz CheckRequests and back; see
// forward_auth.h. Tested by tests/forward_auth_test.cc.
#include "service/forward_auth.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pdp::service {
namespace {

namespace auth = ::envoy::service::auth::v3;
namespace core = ::envoy::config::core::v3;

// Longest request URI accepted from the gateway.
constexpr size_t kMaxUriBytes = 8192;

bool HasControlCharacters(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Lower-case name -> values in arrival order.
using HeaderIndex = std::map<std::string, std::vector<std::string>>;

const std::string* First(const HeaderIndex& headers, const char* name) {
  auto it = headers.find(name);
  if (it == headers.end() || it->second.empty()) return nullptr;
  return &it->second.front();
}

// The first of `names` that is present, with the name it was found under.
const std::string* FirstOf(const HeaderIndex& headers, std::initializer_list<const char*> names,
                           const char** found) {
  for (const char* name : names) {
    if (const std::string* v = First(headers, name)) {
      *found = name;
      return v;
    }
  }
  return nullptr;
}

// The last non-empty entry of X-Forwarded-For (all occurrences joined).
std::string ClientIp(const HeaderIndex& headers) {
  if (auto it = headers.find("x-forwarded-for"); it != headers.end()) {
    std::string last;
    for (const std::string& value : it->second) {
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        part = absl::StripAsciiWhitespace(part);
        if (!part.empty()) last = std::string(part);
      }
    }
    if (!last.empty()) return last;
  }
  if (const std::string* real = First(headers, "x-real-ip")) {
    return std::string(absl::StripAsciiWhitespace(*real));
  }
  return "";
}

}  // namespace

absl::StatusOr<auth::CheckRequest> ForwardAuthCheckRequest(const ForwardAuthRequest& request) {
  HeaderIndex headers;
  for (const auto& [name, value] : request.headers) {
    headers[absl::AsciiStrToLower(name)].push_back(value);
  }

  auth::CheckRequest check;
  auth::AttributeContext& attributes = *check.mutable_attributes();
  auth::AttributeContext::HttpRequest& http = *attributes.mutable_request()->mutable_http();

  const char* name = nullptr;
  const std::string* method = FirstOf(headers, {"x-forwarded-method", "x-original-method"}, &name);
  if (method == nullptr) {
    return absl::InvalidArgumentError(
        "no X-Forwarded-Method or X-Original-Method header: the gateway must send the "
        "original request's method");
  }
  const std::string method_text(absl::StripAsciiWhitespace(*method));
  if (method_text.empty() || method_text.size() > 32 ||
      !std::all_of(method_text.begin(), method_text.end(),
                   [](char c) { return absl::ascii_isalpha(c) || c == '-' || c == '_'; })) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": not an HTTP method"));
  }
  http.set_method(absl::AsciiStrToUpper(method_text));

  const std::string* uri = FirstOf(headers, {"x-forwarded-uri", "x-original-uri"}, &name);
  if (uri == nullptr) {
    return absl::InvalidArgumentError(
        "no X-Forwarded-Uri or X-Original-URI header: the gateway must send the original "
        "request's path");
  }
  if (uri->empty() || (*uri)[0] != '/' || uri->size() > kMaxUriBytes ||
      HasControlCharacters(*uri)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": must be an origin-form path starting with '/' (at most ",
                     kMaxUriBytes, " bytes, no control characters)"));
  }
  http.set_path(*uri);

  if (const std::string* host = FirstOf(headers, {"x-forwarded-host", "x-original-host"}, &name)) {
    http.set_host(std::string(absl::StripAsciiWhitespace(*host)));
  }
  if (const std::string* scheme = First(headers, "x-forwarded-proto")) {
    http.set_scheme(absl::AsciiStrToLower(absl::StripAsciiWhitespace(*scheme)));
  }
  http.set_protocol("HTTP/1.1");
  // The gateway's request id (nginx: $request_id), for the decision log.
  if (const std::string* id = First(headers, "x-request-id")) {
    http.set_id(std::string(absl::StripAsciiWhitespace(*id)).substr(0, 128));
  }

  const std::string client_ip = ClientIp(headers);
  if (!client_ip.empty()) {
    attributes.mutable_source()->mutable_address()->mutable_socket_address()->set_address(
        client_ip);
  }

  // Every header except the connection's own Host (the original host is
  // http.host); repeated ones stay separate and are joined by the mapping.
  for (const auto& [header, value] : request.headers) {
    const std::string lower = absl::AsciiStrToLower(header);
    if (lower == "host" || lower == "content-length") continue;
    core::HeaderValue* h = http.mutable_header_map()->add_headers();
    h->set_key(lower);
    h->set_value(value);
  }

  // The auth URL's query: the route's context_extensions.
  auto& extensions = *attributes.mutable_context_extensions();
  for (const auto& [key, value] : request.query) {
    if (key.empty()) return absl::InvalidArgumentError("auth URL: empty query parameter name");
    if (!extensions.insert({key, value}).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth URL: query parameter '", key, "' is given more than once"));
    }
  }
  return check;
}

ForwardAuthAnswer ForwardAuthAnswerFrom(const auth::CheckResponse& response) {
  ForwardAuthAnswer answer;
  std::map<std::string, std::string> headers;
  auto put = [&headers](const core::HeaderValueOption& option) {
    const std::string name = absl::AsciiStrToLower(option.header().key());
    if (name.empty()) return;
    const std::string& value =
        option.header().raw_value().empty() ? option.header().value() : option.header().raw_value();
    headers[name] = value;
  };
  if (response.status().code() == 0 && response.has_ok_response()) {
    answer.status = 200;
    // Headers for the upstream first, then those meant for the client, so
    // that a gateway copying either finds them.
    for (const auto& option : response.ok_response().headers()) put(option);
    for (const auto& option : response.ok_response().response_headers_to_add()) put(option);
  } else {
    const int code = response.has_denied_response()
                         ? static_cast<int>(response.denied_response().status().code())
                         : 0;
    answer.status = (code >= 400 && code <= 599) ? code : 403;
    if (response.has_denied_response()) {
      for (const auto& option : response.denied_response().headers()) put(option);
      answer.body = response.denied_response().body();
    }
    if (answer.body.empty()) answer.body = "access denied\n";
  }
  answer.headers.assign(headers.begin(), headers.end());
  return answer;
}

ForwardAuthAnswer ForwardAuthBadRequest(const std::string& why) {
  ForwardAuthAnswer answer;
  answer.status = 400;
  answer.headers = {{"content-type", "text/plain; charset=utf-8"},
                    {"x-pdp-decision", "bad_request"}};
  answer.body = absl::StrCat("pdp forward-auth: ", why, "\n");
  return answer;
}

}  // namespace pdp::service
