// pdpctl: the admin and support CLI for pdpd.
//
//   pdpctl validate FILE...                 compile rule-set files offline
//   pdpctl push FILE [--comment=..] [--expected_version=N] [--validate_only]
//   pdpctl get NAME [--version=N]           print a stored version as JSON
//   pdpctl list                             active version of every set
//   pdpctl history NAME                     every version, newest first
//   pdpctl rollback NAME VERSION            activate a stored version
//   pdpctl delete NAME                      stop serving a set (history kept)
//   pdpctl authorize [FILE|-] [--explain] [--rules=FILE]
//                                           decide a JSON AuthorizeRequest
//                                           (or BatchAuthorizeRequest: one
//                                           with "requests"), on the server
//                                           or offline
//   pdpctl health [SERVICE]                 exit 0 when SERVING
//   pdpctl audit [NAME] [--caller=ID] [--method=M] [--since=T] [--until=T]
//                [--limit=N] [--page_token=P] [--json]
//                                           the admin audit trail, newest
//                                           first, as a table or JSON
//
// Connects with the same certificate files as any client (--ca, --cert,
// --key). Exit status: 0 success, 1 failure (printed), 2 usage error.
// Tested by tests/integration_test.cc, tests/pdpctl_test.cc and
// tests/audit_test.cc.
#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/compiler.h"
#include "engine/rule_set_io.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "service/health_client.h"
#include "service/tls.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:50051", "pdpd address.");
ABSL_FLAG(std::string, ca, ".dev/certs/ca.pem", "CA bundle that signs the server (PEM).");
ABSL_FLAG(std::string, cert, ".dev/certs/admin.pem", "Client certificate (PEM).");
ABSL_FLAG(std::string, key, ".dev/certs/admin.key", "Client private key (PEM).");
ABSL_FLAG(bool, insecure, false, "Plaintext, for a server started with --insecure.");
ABSL_FLAG(int, timeout_seconds, 30, "Deadline of each call.");
ABSL_FLAG(std::string, comment, "", "push: comment stored with the version.");
ABSL_FLAG(int64_t, expected_version, 0,
          "push: succeed only if this is the active version (-1: the set must be new).");
ABSL_FLAG(bool, validate_only, false, "push: validate and compile on the server only.");
ABSL_FLAG(int64_t, version, 0, "get: version to fetch (0 = active).");
ABSL_FLAG(bool, explain, false, "authorize: include the trace of candidate rules.");
ABSL_FLAG(std::string, rules, "",
          "authorize: decide offline against this rule-set file instead of the server.");
ABSL_FLAG(std::string, caller, "", "audit: only calls by this identity (exact).");
ABSL_FLAG(std::string, method, "", "audit: only this Admin method (e.g. PutRuleSet).");
ABSL_FLAG(std::string, since, "",
          "audit: only events at or after this time: RFC 3339 (2026-11-24T10:00:00Z) or a "
          "duration back from now (90m, 24h).");
ABSL_FLAG(std::string, until, "", "audit: only events before this time (same forms as --since).");
ABSL_FLAG(int, limit, 0, "audit: most events to show (0: the server's default, 100; max 1000).");
ABSL_FLAG(std::string, page_token, "", "audit: continue after a previous page.");
ABSL_FLAG(bool, json, false, "audit: print the ListAuditEventsResponse as JSON.");

namespace pdp {
namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

int Fail(const std::string& message) {
  std::cerr << "pdpctl: " << message << "\n";
  return kFailed;
}

int FailRpc(const grpc::Status& status) {
  return Fail(absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())), ": ",
                           status.error_message()));
}

class Client {
 public:
  static absl::StatusOr<Client> Connect() {
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    if (absl::GetFlag(FLAGS_insecure)) {
      credentials = grpc::InsecureChannelCredentials();
    } else {
      auto tls = service::MakeClientCredentials(
          {absl::GetFlag(FLAGS_cert), absl::GetFlag(FLAGS_key), absl::GetFlag(FLAGS_ca)});
      if (!tls.ok()) return tls.status();
      credentials = *tls;
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    return Client(grpc::CreateCustomChannel(absl::GetFlag(FLAGS_addr), credentials, args));
  }

  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(absl::GetFlag(FLAGS_timeout_seconds)));
    return context;
  }

  v1::Admin::Stub& admin() { return *admin_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  v1::Authorization::Stub& authorization() { return *authorization_; }

 private:
  explicit Client(std::shared_ptr<grpc::Channel> channel)
      : channel_(channel),
        admin_(v1::Admin::NewStub(channel)),
        authorization_(v1::Authorization::NewStub(channel)) {}
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<v1::Authorization::Stub> authorization_;
};

int Validate(const std::vector<std::string>& files) {
  if (files.empty()) {
    std::cerr << "usage: pdpctl validate FILE...\n";
    return kUsage;
  }
  int status = kOk;
  for (const std::string& file : files) {
    auto rule_set = engine::ReadRuleSetFile(file);
    if (!rule_set.ok()) {
      std::cerr << rule_set.status().message() << "\n";
      status = kFailed;
      continue;
    }
    engine::CompileResult compiled = engine::Compile(*rule_set);
    if (!compiled.ok()) {
      std::cerr << file << ": " << compiled.ToStatus().message() << "\n";
      status = kFailed;
      continue;
    }
    std::cout << file << ": ok, rule set '" << rule_set->name() << "', "
              << compiled.policy->rule_count() << " rules\n";
  }
  return status;
}

template <typename Request, typename Response, typename Method>
int Call(Client& client, Method method, const Request& request, Response* response) {
  auto context = client.Context();
  grpc::Status status = method(context.get(), request, response);
  if (!status.ok()) return FailRpc(status);
  return kOk;
}

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path.empty() || path == "-") {
    std::stringstream buffer;
    buffer << std::cin.rdbuf();
    return buffer.str();
  }
  return service::ReadFile(path);
}

// Decides `request` (an AuthorizeRequest or a BatchAuthorizeRequest) with
// the rule-set file --rules, as the server would, into `response`.
template <typename Request, typename Response>
absl::Status DecideOffline(const Request& request, Response* response) {
  auto rule_set = engine::ReadRuleSetFile(absl::GetFlag(FLAGS_rules));
  if (!rule_set.ok()) return rule_set.status();
  engine::CompileResult compiled = engine::Compile(*rule_set);
  if (!compiled.ok()) return compiled.ToStatus();
  const absl::Time now = absl::Now();
  if constexpr (std::is_same_v<Request, v1::BatchAuthorizeRequest>) {
    const v1::AuthorizeRequest* common = request.has_common() ? &request.common() : nullptr;
    for (const v1::AuthorizeRequest& item : request.requests()) {
      compiled.policy->Evaluate(item, common, now, response->add_responses());
    }
  } else {
    compiled.policy->Evaluate(request, now, response);
  }
  return absl::OkStatus();
}

template <typename Request, typename Response, typename Method>
int DecideAndPrint(const std::string& json, Method method) {
  Request request;
  auto parsed = google::protobuf::util::JsonStringToMessage(json, &request);
  if (!parsed.ok()) return Fail(absl::StrCat("request JSON: ", parsed.message().as_string()));
  if (absl::GetFlag(FLAGS_explain)) {
    if constexpr (std::is_same_v<Request, v1::BatchAuthorizeRequest>) {
      request.mutable_common()->set_explain(true);
    } else {
      request.set_explain(true);
    }
  }
  Response response;
  if (!absl::GetFlag(FLAGS_rules).empty()) {
    if (absl::Status s = DecideOffline(request, &response); !s.ok()) {
      return Fail(std::string(s.message()));
    }
  } else {
    auto client = Client::Connect();
    if (!client.ok()) return Fail(std::string(client.status().message()));
    if (int rc = Call(*client,
                      [&](grpc::ClientContext* c, const Request& r, Response* out) {
                        return (client->authorization().*method)(c, r, out);
                      },
                      request, &response);
        rc != kOk) {
      return rc;
    }
  }
  std::cout << ToJson(response) << "\n";
  return kOk;
}

int Authorize(const std::vector<std::string>& args) {
  auto json = ReadInput(args.empty() ? "-" : args[0]);
  if (!json.ok()) return Fail(std::string(json.status().message()));
  // A batch is the JSON object with "requests".
  google::protobuf::Struct object;
  if (google::protobuf::util::JsonStringToMessage(*json, &object).ok() &&
      object.fields().contains("requests")) {
    return DecideAndPrint<v1::BatchAuthorizeRequest, v1::BatchAuthorizeResponse>(
        *json, &v1::Authorization::Stub::BatchAuthorize);
  }
  return DecideAndPrint<v1::AuthorizeRequest, v1::AuthorizeResponse>(
      *json, &v1::Authorization::Stub::Authorize);
}

// Exit 0 only when the server (or the named service) is SERVING: the
// container health check.
int Health(const std::vector<std::string>& args) {
  if (args.size() > 1) {
    std::cerr << "usage: pdpctl health [SERVICE]\n";
    return kUsage;
  }
  auto client = Client::Connect();
  if (!client.ok()) return Fail(std::string(client.status().message()));
  static constexpr const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  absl::StatusOr<service::ServingStatus> status = service::CheckHealth(
      client->channel(), args.empty() ? "" : args[0],
      std::chrono::system_clock::now() + std::chrono::seconds(absl::GetFlag(FLAGS_timeout_seconds)));
  if (!status.ok()) return Fail(std::string(status.status().message()));
  std::cout << kNames[static_cast<int>(*status)] << "\n";
  return *status == service::ServingStatus::kServing ? kOk : kFailed;
}

// --since/--until: RFC 3339, or a duration back from `now`.
absl::StatusOr<google::protobuf::Timestamp> ParseAuditTime(const std::string& flag,
                                                           const std::string& text,
                                                           absl::Time now) {
  absl::Time time;
  std::string error;
  absl::Duration ago;
  if (absl::ParseDuration(text, &ago) && ago >= absl::ZeroDuration()) {
    time = now - ago;
  } else if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", text,
        ": not an RFC 3339 time (2026-11-24T10:00:00Z) or a duration (90m, 24h)"));
  }
  const absl::Duration since_epoch = time - absl::UnixEpoch();
  google::protobuf::Timestamp timestamp;
  timestamp.set_seconds(absl::ToInt64Seconds(since_epoch));
  timestamp.set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(since_epoch - absl::Seconds(timestamp.seconds()))));
  if (timestamp.nanos() < 0) {  // before 1970: floor the seconds
    timestamp.set_seconds(timestamp.seconds() - 1);
    timestamp.set_nanos(timestamp.nanos() + 1000000000);
  }
  return timestamp;
}

// The audit table's columns, each as wide as its widest cell; the last one
// (what happened) is not padded. Messages are cut to keep rows readable;
// --json has them whole.
void PrintAuditTable(const v1::ListAuditEventsResponse& response) {
  constexpr size_t kMaxMessage = 160;
  std::vector<std::vector<std::string>> rows = {
      {"ID", "TIME (UTC)", "CALLER", "ROLE", "METHOD", "RULE SET", "VERSION", "RESULT",
       "DETAIL"}};
  for (const v1::AuditEvent& event : response.events()) {
    const absl::Time time = absl::FromUnixSeconds(event.time().seconds()) +
                            absl::Nanoseconds(event.time().nanos());
    std::string detail = event.summary();
    if (!event.comment().empty()) absl::StrAppend(&detail, "; comment \"", event.comment(), "\"");
    if (!event.message().empty()) {
      std::string message = absl::StrReplaceAll(event.message(), {{"\n", " "}});
      if (message.size() > kMaxMessage) message = message.substr(0, kMaxMessage - 3) + "...";
      absl::StrAppend(&detail, ": ", message);
    }
    rows.push_back({absl::StrCat(event.id()),
                    absl::FormatTime("%Y-%m-%d %H:%M:%S", time, absl::UTCTimeZone()),
                    event.caller().empty() ? "-" : event.caller(), event.caller_role(),
                    event.method(), event.rule_set().empty() ? "-" : event.rule_set(),
                    event.version() == 0 ? "-" : absl::StrCat(event.version()),
                    event.code_name(), detail});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i + 1 < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  if (!response.next_page_token().empty()) {
    std::cout << "more: add --page_token=" << response.next_page_token() << "\n";
  }
}

int Audit(const std::vector<std::string>& args) {
  if (args.size() > 1) {
    std::cerr << "usage: pdpctl audit [NAME] [--caller=ID] [--method=M] [--since=T] "
                 "[--until=T] [--limit=N] [--page_token=P] [--json]\n";
    return kUsage;
  }
  v1::ListAuditEventsRequest request;
  if (!args.empty()) request.set_rule_set(args[0]);
  request.set_caller(absl::GetFlag(FLAGS_caller));
  request.set_method(absl::GetFlag(FLAGS_method));
  request.set_limit(absl::GetFlag(FLAGS_limit));
  request.set_page_token(absl::GetFlag(FLAGS_page_token));
  const absl::Time now = absl::Now();
  for (const char* flag : {"since", "until"}) {
    const bool since = flag == std::string("since");
    const std::string text = absl::GetFlag(since ? FLAGS_since : FLAGS_until);
    if (text.empty()) continue;  // unset: no bound (mutable_* would set it)
    absl::StatusOr<google::protobuf::Timestamp> time = ParseAuditTime(flag, text, now);
    if (!time.ok()) {
      std::cerr << "pdpctl: " << time.status().message() << "\n";
      return kUsage;
    }
    *(since ? request.mutable_since() : request.mutable_until()) = *time;
  }
  if (request.limit() < 0) {
    std::cerr << "pdpctl: --limit must not be negative\n";
    return kUsage;
  }
  auto client = Client::Connect();
  if (!client.ok()) return Fail(std::string(client.status().message()));
  v1::ListAuditEventsResponse response;
  auto context = client->Context();
  grpc::Status status = client->admin().ListAuditEvents(context.get(), request, &response);
  if (!status.ok()) return FailRpc(status);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(response) << "\n";
  } else {
    PrintAuditTable(response);
  }
  return kOk;
}

int Usage() {
  std::cerr << absl::ProgramUsageMessage() << "\n";
  return kUsage;
}

int Main(const std::vector<std::string>& positional) {
  if (positional.empty()) return Usage();
  const std::string& command = positional[0];
  const std::vector<std::string> args(positional.begin() + 1, positional.end());
  if (command == "validate") return Validate(args);
  if (command == "authorize") return Authorize(args);
  if (command == "health") return Health(args);
  if (command == "audit") return Audit(args);

  // Usage is checked before any certificate is read or connection made.
  struct Command { const char* name; size_t args; const char* usage; };
  static constexpr Command kCommands[] = {
      {"push", 1, "push FILE [--comment=TEXT] [--expected_version=N] [--validate_only]"},
      {"get", 1, "get NAME [--version=N]"},
      {"list", 0, "list"},
      {"history", 1, "history NAME"},
      {"rollback", 2, "rollback NAME VERSION"},
      {"delete", 1, "delete NAME"},
  };
  const Command* found = nullptr;
  for (const Command& c : kCommands) {
    if (command == c.name) found = &c;
  }
  if (!found) {
    std::cerr << "pdpctl: unknown command '" << command << "'\n";
    return Usage();
  }
  if (args.size() != found->args) {
    std::cerr << "usage: pdpctl " << found->usage << "\n";
    return kUsage;
  }
  int64_t version = 0;
  if (command == "rollback" && (!absl::SimpleAtoi(args[1], &version) || version <= 0)) {
    std::cerr << "pdpctl: VERSION must be a positive number\n";
    return kUsage;
  }

  auto connected = Client::Connect();
  if (!connected.ok()) return Fail(std::string(connected.status().message()));
  Client& client = *connected;
  v1::Admin::Stub& admin = client.admin();
  auto context = client.Context();

  grpc::Status status;
  if (command == "push") {
    auto rule_set = engine::ReadRuleSetFile(args[0]);
    if (!rule_set.ok()) return Fail(std::string(rule_set.status().message()));
    v1::PutRuleSetRequest request;
    *request.mutable_rule_set() = *std::move(rule_set);
    request.set_comment(absl::GetFlag(FLAGS_comment));
    request.set_expected_version(absl::GetFlag(FLAGS_expected_version));
    request.set_validate_only(absl::GetFlag(FLAGS_validate_only));
    v1::PutRuleSetResponse response;
    status = admin.PutRuleSet(context.get(), request, &response);
    if (status.ok()) std::cout << ToJson(response) << "\n";
  } else if (command == "get") {
    v1::GetRuleSetRequest request;
    request.set_name(args[0]);
    request.set_version(absl::GetFlag(FLAGS_version));
    v1::GetRuleSetResponse response;
    status = admin.GetRuleSet(context.get(), request, &response);
    if (status.ok()) std::cout << ToJson(response) << "\n";
  } else if (command == "list") {
    v1::ListRuleSetsResponse response;
    status = admin.ListRuleSets(context.get(), v1::ListRuleSetsRequest(), &response);
    if (status.ok()) std::cout << ToJson(response) << "\n";
  } else if (command == "history") {
    v1::ListVersionsRequest request;
    request.set_name(args[0]);
    v1::ListVersionsResponse response;
    status = admin.ListVersions(context.get(), request, &response);
    if (status.ok()) std::cout << ToJson(response) << "\n";
  } else if (command == "rollback") {
    v1::ActivateVersionRequest request;
    request.set_name(args[0]);
    request.set_version(version);
    request.set_comment(absl::GetFlag(FLAGS_comment));
    v1::ActivateVersionResponse response;
    status = admin.ActivateVersion(context.get(), request, &response);
    if (status.ok()) std::cout << ToJson(response) << "\n";
  } else if (command == "delete") {
    v1::DeleteRuleSetRequest request;
    request.set_name(args[0]);
    v1::DeleteRuleSetResponse response;
    status = admin.DeleteRuleSet(context.get(), request, &response);
    if (status.ok()) std::cout << "deleted " << args[0] << "\n";
  }
  return status.ok() ? kOk : FailRpc(status);
}

}  // namespace
}  // namespace pdp

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "pdpctl COMMAND [ARGS] [FLAGS]\n"
      "  validate FILE...          compile rule-set files offline\n"
      "  push FILE                 store and activate a rule set (--comment, "
      "--expected_version, --validate_only)\n"
      "  get NAME                  print the active (or --version) rule set\n"
      "  list                      active version of every rule set\n"
      "  history NAME              every stored version, newest first\n"
      "  rollback NAME VERSION     activate a stored version\n"
      "  delete NAME               stop serving a rule set (history kept)\n"
      "  authorize [FILE|-]        decide a JSON AuthorizeRequest, or a BatchAuthorizeRequest "
      "(an object with \"requests\") (--explain; --rules=FILE decides offline)\n"
      "  health [SERVICE]          exit 0 when the server is SERVING\n"
      "  audit [NAME]              the admin audit trail, newest first (--caller, --method, "
      "--since, --until, --limit, --page_token, --json)\n"
      "Connection: --addr, --ca, --cert, --key (defaults: the dev PKI in .dev/certs), "
      "--insecure");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> positional(rest.begin() + 1, rest.end());
  return pdp::Main(positional);
}
