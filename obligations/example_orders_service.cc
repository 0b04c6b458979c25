// example_orders_service: a stand-in for an orders service behind the
// gateway, in two modes.
//
// CLI mode (no --listen): reads a pdp decision (an AuthorizeResponse in
// protobuf JSON, as `pdpctl authorize` prints it) and an order document, and
// serves the order the way a real service would with pdp_obligations:
//
//   - anything but PERMIT: refused;
//   - the decision's field obligations applied to the JSON body;
//   - add_header fulfilled by the service itself; any other obligation it
//     cannot fulfil turns the permit into a refusal (deny-biased).
//
// stdout carries the body only (pipe it to jq); stderr the status line and
// headers. Exit codes: 0 served, 3 refused, 2 bad usage or input.
//
// HTTP mode (--listen=HOST:PORT, plain HTTP behind a gateway, cpp-httplib):
// GET /orders/<id> answers the order as JSON after applying the field
// obligations the gateway passes on from pdp's forward-auth answer:
//   x-pdp-filter-fields  comma-separated dotted paths to remove
//   x-pdp-mask-fields    comma-separated dotted paths to mask
//   x-pdp-mask           the mask (default "****")
// A header it cannot parse (an empty or malformed path) fails closed: 502,
// no data. The response says what was applied in x-applied-filter-fields /
// x-applied-mask-fields. The authorization decision itself is the gateway's.
//
// Usage: example_orders_service [--order=FILE] [DECISION_FILE | -]
//        example_orders_service [--order=FILE] --listen=HOST:PORT [--port_file=FILE]
//   The decision is read from DECISION_FILE, or stdin when absent or "-".
//   Without --order, a built-in sample order is served. Port 0 picks a free
//   port, written to --port_file once listening.
//
// Covered by tests/obligations_test.cc (ExampleOrdersService*, which run this
// binary when it is built; ExampleOrdersServiceHttp* for the HTTP mode), the
// library by the rest of that file, and end to end behind nginx by
// tests/nginx_e2e_test.cc.
#include <httplib.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "obligations/obligations.h"
#include "pdp/v1/authorization.pb.h"

namespace {

constexpr int kServed = 0;
constexpr int kUsage = 2;
constexpr int kRefused = 3;

constexpr char kSampleOrder[] = R"json({
  "id": "o-5001",
  "owner": "c-1001",
  "status": "shipped",
  "amount": 129.9,
  "customer": {"id": "c-1001", "name": "Ada Lovelace", "email": "ada@example.com",
               "ssn": "078-05-1120"},
  "payment": {"method": "card", "card_number": "4111 1111 1111 1111", "expiry": "12/29"},
  "items": [{"sku": "BOOK-1", "qty": 1, "price": 99.9},
            {"sku": "PEN-2", "qty": 3, "price": 10}],
  "refunds": [{"id": "r-1", "amount": 10, "reason": "damaged"}]
})json";

constexpr char kUsageText[] =
    "usage: example_orders_service [--order=FILE] [DECISION_FILE | -]\n"
    "       example_orders_service [--order=FILE] --listen=HOST:PORT [--port_file=FILE]\n"
    "  Serves an order (built-in sample, or FILE) as JSON on stdout after\n"
    "  applying the pdp decision's obligations; the decision is a pdp\n"
    "  AuthorizeResponse in JSON (as `pdpctl authorize` prints it), read from\n"
    "  DECISION_FILE or stdin. With --listen, serves GET /orders/<id> over\n"
    "  HTTP, applying the x-pdp-filter-fields / x-pdp-mask-fields / x-pdp-mask\n"
    "  headers set by the gateway.\n";

bool ReadAll(const std::string& path, std::string* out) {
  if (path == "-") {
    out->assign(std::istreambuf_iterator<char>(std::cin),
                std::istreambuf_iterator<char>());
    return !std::cin.bad();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

int Refuse(const std::string& why) {
  std::cerr << "403 Forbidden: " << why << "\n";
  return kRefused;
}

// The comma-separated field paths of header `name` as a field obligation
// of `type`; false (with *error) when the header is present but not a list
// of non-empty paths.
bool HeaderObligation(const httplib::Request& req, const char* name, const std::string& type,
                      const std::string& mask, pdp::v1::AuthorizeResponse* decision,
                      std::vector<std::string>* applied, std::string* error) {
  if (!req.has_header(name)) return true;
  if (req.get_header_value_count(name) != 1) {
    *error = absl::StrCat(name, ": sent more than once");
    return false;
  }
  const std::string value = req.get_header_value(name);
  if (absl::StripAsciiWhitespace(value).empty()) return true;  // nothing to apply
  pdp::v1::ObligationResult* o = decision->add_obligations();
  o->set_type(type);
  o->set_rule_id(std::string("header ") + name);
  auto* fields = (*o->mutable_params()->mutable_fields())["fields"].mutable_list_value();
  int position = 0;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    ++position;
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) {
      *error = absl::StrCat(name, ": empty field path at position ", position);
      return false;
    }
    fields->add_values()->set_string_value(std::string(part));
    applied->push_back(std::string(part));
  }
  if (!mask.empty()) (*o->mutable_params()->mutable_fields())["mask"].set_string_value(mask);
  return true;
}

void Fail(httplib::Response& res, int status, const std::string& why) {
  res.status = status;
  res.set_content(why + "\n", "text/plain; charset=utf-8");
}

// GET /orders/<id>: the order with the gateway's field obligations applied.
void ServeOrder(const std::string& order, const httplib::Request& req, httplib::Response& res) {
  pdp::v1::AuthorizeResponse decision;
  decision.set_decision(pdp::v1::PERMIT);
  std::vector<std::string> filtered, masked;
  std::string error;
  const std::string mask =
      req.has_header("x-pdp-mask") ? req.get_header_value("x-pdp-mask") : std::string();
  if (!HeaderObligation(req, "x-pdp-filter-fields", "filter_fields", "", &decision, &filtered,
                        &error) ||
      !HeaderObligation(req, "x-pdp-mask-fields", "mask_fields", mask, &decision, &masked,
                        &error)) {
    // Fail closed: no data when the obligations cannot be understood.
    return Fail(res, 502, "cannot apply the gateway's obligations: " + error);
  }
  auto obligations = pdp::obligations::FieldObligations::FromDecision(decision);
  if (!obligations.ok()) {
    return Fail(res, 502, absl::StrCat("cannot apply the gateway's obligations: ",
                                       obligations.status().message()));
  }
  std::string body = order;
  if (absl::Status s = obligations->ApplyToJson(&body); !s.ok()) {
    return Fail(res, 500, std::string(s.message()));
  }
  res.status = 200;
  res.set_header("x-applied-filter-fields", absl::StrJoin(filtered, ","));
  res.set_header("x-applied-mask-fields", absl::StrJoin(masked, ","));
  res.set_content(body + "\n", "application/json");
}

int ServeHttp(const std::string& listen, const std::string& port_file, const std::string& order) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    std::cerr << "--listen=" << listen << ": not host:port\n";
    return kUsage;
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  // The order must be JSON before anything is served.
  google::protobuf::Value parsed;
  if (!google::protobuf::util::JsonStringToMessage(order, &parsed).ok()) {
    std::cerr << "the order is not JSON\n";
    return kUsage;
  }
  // A client that hangs up must not kill the service.
  signal(SIGPIPE, SIG_IGN);
  httplib::Server server;
  server.Get(R"(/orders/[^/]+)", [&order](const httplib::Request& req, httplib::Response& res) {
    ServeOrder(order, req, res);
  });
  const int bound = port == 0 ? server.bind_to_any_port(host)
                              : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    std::cerr << "cannot listen on " << listen << "\n";
    return kUsage;
  }
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << bound << "\n";
    }
    std::rename(tmp.c_str(), port_file.c_str());
  }
  std::cerr << "example_orders_service listening on " << host << ":" << bound << "\n";
  return server.listen_after_bind() ? kServed : kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  std::string order_path;
  std::string decision_path = "-";
  std::string listen, port_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--listen=", 0) == 0) {
      listen = arg.substr(9);
    } else if (arg.rfind("--port_file=", 0) == 0) {
      port_file = arg.substr(12);
    } else if (arg.rfind("--order=", 0) == 0) {
      order_path = arg.substr(8);
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsageText;
      return kServed;
    } else if (arg.size() > 1 && arg[0] == '-') {
      std::cerr << "unknown flag " << arg << "\n" << kUsageText;
      return kUsage;
    } else {
      decision_path = arg;
    }
  }

  if (!listen.empty()) {
    std::string order = kSampleOrder;
    if (!order_path.empty() && !ReadAll(order_path, &order)) {
      std::cerr << order_path << ": cannot read\n";
      return kUsage;
    }
    return ServeHttp(listen, port_file, order);
  }

  std::string decision_json;
  if (!ReadAll(decision_path, &decision_json)) {
    std::cerr << decision_path << ": cannot read\n";
    return kUsage;
  }
  pdp::v1::AuthorizeResponse decision;
  auto parsed =
      google::protobuf::util::JsonStringToMessage(decision_json, &decision);
  if (!parsed.ok()) {
    std::cerr << decision_path << ": not an AuthorizeResponse: "
              << parsed.message() << "\n";
    return kUsage;
  }

  std::string body = kSampleOrder;
  if (!order_path.empty() && !ReadAll(order_path, &body)) {
    std::cerr << order_path << ": cannot read\n";
    return kUsage;
  }

  // 1. Only PERMIT serves data; DENY, NOT_APPLICABLE and INDETERMINATE all
  //    mean no.
  if (decision.decision() != pdp::v1::PERMIT) {
    return Refuse(pdp::v1::Decision_Name(decision.decision()) +
                  (decision.reason().empty() ? "" : ": " + decision.reason()));
  }

  // 2. Parse the field obligations; malformed ones fail closed.
  auto obligations =
      pdp::obligations::FieldObligations::FromDecision(decision);
  if (!obligations.ok()) {
    return Refuse(std::string(obligations.status().message()));
  }

  // 3. Obligations the helper leaves to the service: this one knows
  //    add_header and nothing else.
  for (const std::string& type : obligations->unhandled_types()) {
    if (type != "add_header") {
      return Refuse("cannot fulfil obligation " + type);
    }
  }

  // 4. Apply filter_fields / mask_fields to the body.
  absl::Status applied = obligations->ApplyToJson(&body);
  if (!applied.ok()) {
    std::cerr << "500 Internal Server Error: " << applied.message() << "\n";
    return kUsage;
  }

  std::vector<std::string> headers;
  for (const auto& obligation : decision.obligations()) {
    if (obligation.type() != "add_header") continue;
    const auto& params = obligation.params().fields();
    auto name = params.find("name");
    auto value = params.find("value");
    if (name == params.end() || value == params.end()) {
      return Refuse("add_header without name or value");
    }
    headers.push_back(name->second.string_value() + ": " +
                      value->second.string_value());
  }
  std::cerr << "200 OK\n";
  for (const std::string& header : headers) std::cerr << header << "\n";
  std::cout << body << "\n";
  return kServed;
}
