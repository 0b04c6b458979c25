// example_orders_service: a stand-in for an orders service behind the
// gateway, without the HTTP. It reads a pdp decision (an AuthorizeResponse in
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
// Usage: example_orders_service [--order=FILE] [DECISION_FILE | -]
//   The decision is read from DECISION_FILE, or stdin when absent or "-".
//   Without --order, a built-in sample order is served.
//
// Covered by tests/obligations_test.cc (ExampleOrdersService*, which run this
// binary when it is built); the library by the rest of that file.
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

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
    "  Serves an order (built-in sample, or FILE) as JSON on stdout after\n"
    "  applying the pdp decision's obligations; the decision is a pdp\n"
    "  AuthorizeResponse in JSON (as `pdpctl authorize` prints it), read from\n"
    "  DECISION_FILE or stdin.\n";

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

}  // namespace

int main(int argc, char** argv) {
  std::string order_path;
  std::string decision_path = "-";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--order=", 0) == 0) {
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
