// pdpd: the policy decision point server.
//
// Opens the SQLite store, compiles every active rule set (refusing to start
// if one no longer compiles), optionally bootstraps a rule set from a file,
// and serves pdp.v1.Authorization, pdp.v1.Admin, Envoy's ext_authz
// (envoy.service.auth.v3.Authorization, unless --envoy_ext_authz=false),
// grpc.health.v1 and server reflection over mutual TLS, and, with
// --forward_auth_listen, HTTP forward-auth for nginx, Traefik and Caddy on an
// HTTPS port of its own (service/forward_auth_server.h). With --jwt_jwks_file,
// bearer tokens on both gateway paths are verified and become the subject
// (service/jwt_subject_resolver.h). SIGTERM or SIGINT
// shuts down gracefully: in-flight calls finish, new ones are refused.
//
// Tested end to end by tests/integration_test.cc, tests/jwt_gateway_test.cc
// and tests/nginx_e2e_test.cc.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/rule_set_io.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "service/access.h"
#include "service/call_tracker.h"
#include "service/decision_log.h"
#include "service/envoy_authz.h"
#include "service/forward_auth_server.h"
#include "service/jwt.h"
#include "service/jwt_subject_resolver.h"
#include "service/log.h"
#include "service/metrics.h"
#include "service/metrics_server.h"
#include "service/mutex_checks.h"
#include "service/registry.h"
#include "service/rule_set_manager.h"
#include "service/services.h"
#include "service/store.h"
#include "service/tls.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to serve on (host:port; port 0 picks a free one).");
ABSL_FLAG(std::string, db, "pdp.db", "SQLite database file (created 0600 if absent).");
ABSL_FLAG(std::string, tls_cert, "", "Server certificate chain (PEM).");
ABSL_FLAG(std::string, tls_key, "", "Server private key (PEM).");
ABSL_FLAG(std::string, tls_ca, "", "CA bundle (PEM) that signs client certificates.");
ABSL_FLAG(int, cert_refresh_seconds, 60,
          "How often certificate, key and CA files are re-read (rotation).");
ABSL_FLAG(bool, insecure, false,
          "Serve plaintext with no client authentication; every caller is an admin. "
          "For local experiments only.");
ABSL_FLAG(std::vector<std::string>, admin_identities, {},
          "Client identities (URI SAN, else DNS SAN, else CN) with the admin role; "
          "a trailing '*' matches a prefix.");
ABSL_FLAG(std::vector<std::string>, gateway_identities, {},
          "Client identities with the gateway role (may call Authorize only).");
ABSL_FLAG(std::string, default_rule_set, "default",
          "Rule set used when a request names none.");
ABSL_FLAG(std::string, bootstrap_rule_set, "",
          "Rule-set JSON file to store and activate at startup if its set has no "
          "active version yet (never overwrites).");
ABSL_FLAG(std::string, port_file, "", "Write the bound port to this file once serving.");
ABSL_FLAG(int, max_message_bytes, 64 << 20, "Largest request message accepted.");
ABSL_FLAG(int, shutdown_grace_seconds, 5, "How long in-flight calls may finish on SIGTERM.");
ABSL_FLAG(int, background_idle_ms, 2000,
          "How long a background task (compiling and storing a pushed rule set, a rollback, "
          "freeing a replaced set) may wait in SCHED_IDLE, yielding the core to decisions, "
          "before it competes with them at nice +10. 0: always at nice +10.");
ABSL_FLAG(bool, mutex_deadlock_detection, false,
          "Abseil's lock-order checking on every mutex lock, gRPC's included, aborting on a "
          "potential deadlock. Debian's Abseil has it on; pdpd turns it off, as in release "
          "builds of Abseil: it takes one process-wide lock on every lock. For debugging.");

// Operations: decision log and metrics (service/decision_log.h,
// service/metrics.h; the README's "Operations" section).
ABSL_FLAG(std::string, decision_log, "",
          "Write each decision as a JSON line to this file (\"-\": stdout; empty: off). "
          "Sensitive attributes are masked.");
ABSL_FLAG(double, decision_log_sample, 1.0,
          "Fraction of PERMIT decisions logged (0..1).");
ABSL_FLAG(double, decision_log_deny_sample, 1.0,
          "Fraction of DENY, NOT_APPLICABLE and INDETERMINATE decisions logged (0..1).");
ABSL_FLAG(int64_t, decision_log_max_bytes, int64_t{100} << 20,
          "Rotate the decision log file when it would grow past this size (0: never).");
ABSL_FLAG(int, decision_log_max_files, 5,
          "Rotated decision log files kept (FILE.1 newest .. FILE.N).");
ABSL_FLAG(int, decision_log_queue, 65536,
          "Decision log lines that may wait for the writer; more are dropped and counted.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve Prometheus metrics over plain HTTP at http://ADDRESS/metrics "
          "(e.g. 127.0.0.1:9464; port 0 picks a free one); empty: off.");
ABSL_FLAG(std::string, metrics_port_file, "",
          "Write the bound metrics port to this file once serving.");

// Envoy ext_authz (envoy.service.auth.v3.Authorization/Check); see
// service/envoy_authz.h and the README's "Envoy ext_authz" section.
ABSL_FLAG(bool, envoy_ext_authz, true,
          "Serve envoy.service.auth.v3.Authorization/Check (Envoy ext_authz, gRPC v3) "
          "to gateway and admin callers.");
ABSL_FLAG(std::string, envoy_default_rule_set, "",
          "Rule set for Check requests whose route names none; empty means --default_rule_set.");
ABSL_FLAG(std::string, envoy_default_resource_type, "http",
          "Resource type for Check requests whose route names none.");
ABSL_FLAG(std::string, envoy_rule_set_key, "pdp_rule_set",
          "context_extensions key naming the rule set.");
ABSL_FLAG(std::string, envoy_resource_type_key, "pdp_resource_type",
          "context_extensions key naming the resource type.");
ABSL_FLAG(std::string, envoy_action_key, "pdp_action",
          "context_extensions key naming the action (instead of the HTTP method).");
ABSL_FLAG(bool, envoy_lowercase_method, true,
          "The action is the HTTP method in lower case (\"get\"); false keeps Envoy's \"GET\".");
ABSL_FLAG(std::vector<std::string>, envoy_header_attributes,
          std::vector<std::string>({"user-agent", "x-request-id", "x-pdp-*"}),
          "Request headers copied to environment attributes header.<name> (lower-case names; "
          "a trailing '*' matches a prefix, but never authorization, cookie or pseudo-headers).");
ABSL_FLAG(bool, envoy_trust_identity_headers, false,
          "Take the subject from --envoy_subject_header, --envoy_roles_header and "
          "--envoy_subject_attribute_header_prefix headers. Only when the gateway strips "
          "these headers from every client request: otherwise anyone can claim any identity.");
ABSL_FLAG(std::string, envoy_subject_header, "x-pdp-subject", "Trusted header: subject id.");
ABSL_FLAG(std::string, envoy_roles_header, "x-pdp-roles",
          "Trusted header: comma-separated roles.");
ABSL_FLAG(std::string, envoy_subject_attribute_header_prefix, "x-pdp-subject-",
          "Trusted headers <prefix><name>: subject attribute <name>.");
ABSL_FLAG(bool, envoy_principal_as_subject, true,
          "With no other subject, the source principal (the client certificate Envoy "
          "verified) is the subject id.");
ABSL_FLAG(bool, envoy_require_identity, false,
          "Answer 401 (WWW-Authenticate: Bearer) when a Check request has no subject id.");
ABSL_FLAG(std::string, envoy_add_header_to, "upstream",
          "Where add_header obligations go: upstream (the request), client (the response) or "
          "both.");
ABSL_FLAG(std::vector<std::string>, envoy_passthrough_obligations, {},
          "Obligation types other than the built-in ones that may ride on an allowed Check in "
          "dynamic_metadata ('*': any); any other type turns a PERMIT into a 403.");
ABSL_FLAG(bool, envoy_reason_in_body, true,
          "Put the decision's reason in the 401/403 body sent to the client (false: a "
          "generic text; Envoy still gets the reason).");

// HTTP forward-auth (nginx auth_request, Traefik ForwardAuth, Caddy
// forward_auth); see service/forward_auth.h and the README's "HTTP
// forward-auth" section. It uses the --envoy_* mapping flags too.
ABSL_FLAG(std::string, forward_auth_listen, "",
          "Serve HTTP forward-auth over HTTPS (mTLS, the --tls_* files) on this host:port "
          "(port 0 picks a free one); empty: off.");
ABSL_FLAG(std::string, forward_auth_port_file, "",
          "Write the bound forward-auth port to this file once serving.");
ABSL_FLAG(int, forward_auth_threads, 4,
          "Threads serving forward-auth connections (each serves one connection at a time).");

// Bearer tokens (JWT) on the gateway paths; see service/jwt.h and the
// README's "Tokens (JWT)" section.
ABSL_FLAG(std::string, jwt_jwks_file, "",
          "JWKS file (RFC 7517) with the keys that sign accepted bearer tokens; empty: "
          "tokens are not read. Replace it (rename) to rotate keys.");
ABSL_FLAG(std::vector<std::string>, jwt_issuers, {},
          "Accepted token issuers (the iss claim); required with --jwt_jwks_file.");
ABSL_FLAG(std::vector<std::string>, jwt_audiences, {},
          "Accepted audiences (the aud claim must contain one); required with --jwt_jwks_file.");
ABSL_FLAG(std::string, jwt_subject_claim, "sub", "Claim holding the subject id.");
ABSL_FLAG(std::string, jwt_roles_claim, "roles",
          "Claim holding the roles: a claim name or a dotted path (realm_access.roles); an "
          "array of strings or a space/comma-separated string.");
ABSL_FLAG(int, jwt_clock_skew_seconds, 60, "Allowed clock difference for exp, nbf and iat (0-300).");
ABSL_FLAG(std::vector<std::string>, jwt_algorithms,
          std::vector<std::string>({"RS256", "ES256", "EdDSA"}),
          "Accepted signature algorithms (RS256, ES256, EdDSA; HS256 needs --jwt_allow_hs256).");
ABSL_FLAG(bool, jwt_allow_hs256, false,
          "Also accept HS256 with shared secrets (\"oct\" keys) from the JWKS file, which then "
          "holds secrets and must not be readable by group or others.");
ABSL_FLAG(std::vector<std::string>, jwt_mfa_amr_values,
          std::vector<std::string>({"mfa", "otp", "hwk"}),
          "amr values that mean a second factor was used (subject.mfa = true).");
ABSL_FLAG(std::vector<std::string>, jwt_mfa_acr_values,
          std::vector<std::string>({"http://schemas.openid.net/pape/policies/2007/06/multi-factor"}),
          "acr values that mean a second factor was used.");
ABSL_FLAG(int, jwt_refresh_seconds, 10, "How often the JWKS file is checked for changes.");

namespace pdp::service {
namespace {

absl::Status Bootstrap(const std::string& path, const PolicyRegistry& registry,
                       RuleSetManager& manager) {
  auto rule_set = engine::ReadRuleSetFile(path);
  if (!rule_set.ok()) return rule_set.status();
  if (registry.Find(rule_set->name())) {
    LogInfo("bootstrap: rule set '%s' already active; %s not applied", rule_set->name(), path);
    return absl::OkStatus();
  }
  v1::PutRuleSetRequest request;
  *request.mutable_rule_set() = *std::move(rule_set);
  request.set_comment(absl::StrCat("bootstrap from ", path));
  request.set_expected_version(-1);
  // Recorded in the audit trail like an admin's put, in the same
  // transaction.
  v1::AuditEvent audit;
  audit.set_caller("pdpd-bootstrap");
  audit.set_caller_role("local");
  audit.set_method("Bootstrap");
  audit.set_rule_set(request.rule_set().name());
  audit.set_comment(request.comment());
  auto result = manager.Put(request, "pdpd-bootstrap", &audit);
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat("bootstrap ", path, ": ", result.status().message()));
  }
  LogInfo("bootstrap: stored and activated '%s' version %d (%d rules) from %s",
          result->version().rule_set(), result->version().version(), result->rule_count(),
          path);
  return absl::OkStatus();
}

// The ext_authz mapping from the --envoy_* flags.
absl::StatusOr<EnvoyMapping> EnvoyMappingFromFlags() {
  EnvoyMapping m;
  m.default_rule_set = absl::GetFlag(FLAGS_envoy_default_rule_set);
  m.default_resource_type = absl::GetFlag(FLAGS_envoy_default_resource_type);
  m.rule_set_key = absl::GetFlag(FLAGS_envoy_rule_set_key);
  m.resource_type_key = absl::GetFlag(FLAGS_envoy_resource_type_key);
  m.action_key = absl::GetFlag(FLAGS_envoy_action_key);
  m.lowercase_method = absl::GetFlag(FLAGS_envoy_lowercase_method);
  m.header_attributes.clear();
  for (const std::string& h : absl::GetFlag(FLAGS_envoy_header_attributes)) {
    if (!h.empty()) m.header_attributes.push_back(absl::AsciiStrToLower(h));
  }
  m.subject_header = absl::AsciiStrToLower(absl::GetFlag(FLAGS_envoy_subject_header));
  m.roles_header = absl::AsciiStrToLower(absl::GetFlag(FLAGS_envoy_roles_header));
  m.subject_attribute_header_prefix =
      absl::AsciiStrToLower(absl::GetFlag(FLAGS_envoy_subject_attribute_header_prefix));
  m.principal_as_subject = absl::GetFlag(FLAGS_envoy_principal_as_subject);
  m.require_identity = absl::GetFlag(FLAGS_envoy_require_identity);
  if (!ParseAddHeaderTarget(absl::GetFlag(FLAGS_envoy_add_header_to), &m.add_header_to)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--envoy_add_header_to=", absl::GetFlag(FLAGS_envoy_add_header_to),
                     ": must be upstream, client or both"));
  }
  m.passthrough_obligations = absl::GetFlag(FLAGS_envoy_passthrough_obligations);
  m.reason_in_body = absl::GetFlag(FLAGS_envoy_reason_in_body);
  if (absl::GetFlag(FLAGS_envoy_trust_identity_headers)) {
    if (m.subject_header.empty()) {
      return absl::InvalidArgumentError(
          "--envoy_trust_identity_headers needs a non-empty --envoy_subject_header");
    }
    m.resolvers.push_back(std::make_shared<TrustedHeaderSubjectResolver>(m));
  }
  return m;
}

// The decision log from the --decision_log* flags; null when it is off.
absl::StatusOr<std::unique_ptr<DecisionLog>> OpenDecisionLogFromFlags(
    const PolicyRegistry& registry) {
  const std::string path = absl::GetFlag(FLAGS_decision_log);
  if (path.empty()) return nullptr;
  for (const auto& [flag, value] :
       {std::pair{"--decision_log_sample", absl::GetFlag(FLAGS_decision_log_sample)},
        std::pair{"--decision_log_deny_sample", absl::GetFlag(FLAGS_decision_log_deny_sample)}}) {
    if (!(value >= 0.0 && value <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, "=", value, ": must be in [0, 1]"));
    }
  }
  if (absl::GetFlag(FLAGS_decision_log_queue) < 1) {
    return absl::InvalidArgumentError("--decision_log_queue: must be at least 1");
  }
  absl::StatusOr<std::unique_ptr<DecisionLogSink>> sink =
      OpenDecisionLogSink(path, absl::GetFlag(FLAGS_decision_log_max_bytes),
                          absl::GetFlag(FLAGS_decision_log_max_files));
  if (!sink.ok()) {
    return absl::Status(sink.status().code(),
                        absl::StrCat("--decision_log: ", sink.status().message()));
  }
  DecisionLog::Options options;
  options.queue_capacity = static_cast<size_t>(absl::GetFlag(FLAGS_decision_log_queue));
  LogInfo("decision log: %s (permits sampled %g, others %g)", path,
          absl::GetFlag(FLAGS_decision_log_sample), absl::GetFlag(FLAGS_decision_log_deny_sample));
  return std::make_unique<DecisionLog>(
      *std::move(sink), options,
      [&registry](const std::string& name) { return registry.Find(name); });
}

// The JWT resolver from the --jwt_* flags, and its key set (reloaded by
// the caller); both null when --jwt_jwks_file is empty.
struct JwtSetup {
  std::shared_ptr<JwksKeySet> keys;
  std::shared_ptr<const SubjectResolver> resolver;
};

absl::StatusOr<JwtSetup> JwtFromFlags() {
  JwtSetup setup;
  const std::string path = absl::GetFlag(FLAGS_jwt_jwks_file);
  if (path.empty()) return setup;
  JwksOptions jwks_options;
  JwtVerifierOptions options;
  options.algorithms = absl::GetFlag(FLAGS_jwt_algorithms);
  if (absl::GetFlag(FLAGS_jwt_allow_hs256)) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--jwt_allow_hs256: ", path, " holds shared secrets and is readable by group or "
          "others (chmod 600 it)"));
    }
    jwks_options.allow_symmetric_keys = true;
    if (std::find(options.algorithms.begin(), options.algorithms.end(), "HS256") ==
        options.algorithms.end()) {
      options.algorithms.push_back("HS256");
    }
  }
  auto keys = JwksKeySet::Open(path, jwks_options);
  if (!keys.ok()) return absl::Status(keys.status().code(), absl::StrCat("--jwt_jwks_file: ", keys.status().message()));
  options.issuers = absl::GetFlag(FLAGS_jwt_issuers);
  options.audiences = absl::GetFlag(FLAGS_jwt_audiences);
  options.subject_claim = absl::GetFlag(FLAGS_jwt_subject_claim);
  options.roles_claim = absl::GetFlag(FLAGS_jwt_roles_claim);
  options.clock_skew = absl::Seconds(absl::GetFlag(FLAGS_jwt_clock_skew_seconds));
  options.mfa_amr_values = absl::GetFlag(FLAGS_jwt_mfa_amr_values);
  options.mfa_acr_values = absl::GetFlag(FLAGS_jwt_mfa_acr_values);
  auto verifier = JwtVerifier::Create(std::move(options), *keys);
  if (!verifier.ok()) {
    return absl::Status(verifier.status().code(),
                        absl::StrCat("--jwt_* flags: ", verifier.status().message()));
  }
  setup.keys = *keys;
  setup.resolver = std::make_shared<JwtSubjectResolver>(*std::move(verifier));
  return setup;
}

// Calls ReloadIfChanged on the JWKS every `period` until stopped, logging
// each new key set and each new error once.
class JwksReloader {
 public:
  JwksReloader(std::shared_ptr<JwksKeySet> keys, std::chrono::seconds period)
      : keys_(std::move(keys)), period_(period), thread_([this] { Loop(); }) {}
  ~JwksReloader() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    std::string last_error;
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, period_, [this] { return stopping_; })) {
      absl::StatusOr<bool> changed = keys_->ReloadIfChanged();
      if (!changed.ok()) {
        if (std::string(changed.status().message()) != last_error) {
          last_error = std::string(changed.status().message());
          LogError("jwt: reloading %s failed, keeping the previous keys: %s", keys_->path(),
                   last_error);
        }
      } else if (*changed) {
        last_error.clear();
        LogInfo("jwt: reloaded %s (%d keys)", keys_->path(), keys_->keys().size());
      }
    }
  }

  const std::shared_ptr<JwksKeySet> keys_;
  const std::chrono::seconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is set
};

absl::Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return absl::UnavailableError(absl::StrCat(tmp, ": cannot write"));
    out << port << "\n";
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat(path, ": cannot rename"));
  }
  return absl::OkStatus();
}

int Run() {
  // Signals are taken by a dedicated thread; block them everywhere else
  // before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A peer that closes its connection must not kill the server: writes to
  // it fail with EPIPE instead (gRPC's own sockets never raise SIGPIPE, but
  // the forward-auth server's TLS writes would).
  signal(SIGPIPE, SIG_IGN);
  SetMutexDeadlockDetection(absl::GetFlag(FLAGS_mutex_deadlock_detection));

  const bool insecure = absl::GetFlag(FLAGS_insecure);
  const TlsFiles tls{absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                     absl::GetFlag(FLAGS_tls_ca)};
  if (insecure) {
    LogWarning("*** --insecure: plaintext, NO client authentication, every caller is an "
               "ADMIN. Never use this outside a local experiment. ***");
  } else if (absl::Status s = CheckTlsFiles(tls); !s.ok()) {
    LogError("TLS: %s", s.message());
    return 2;
  }
  const auto admins = absl::GetFlag(FLAGS_admin_identities);
  const auto gateways = absl::GetFlag(FLAGS_gateway_identities);
  if (!insecure && admins.empty() && gateways.empty()) {
    LogWarning("no --admin_identities or --gateway_identities: every caller will be refused");
  }

  const int background_idle_ms = absl::GetFlag(FLAGS_background_idle_ms);
  if (background_idle_ms < 0) {
    LogError("--background_idle_ms=%d: must be 0 or more", background_idle_ms);
    return 2;
  }
  const BackgroundPriority background{
      .nice = 10, .escalate_after = std::chrono::milliseconds(background_idle_ms)};

  absl::StatusOr<EnvoyMapping> envoy_mapping = EnvoyMappingFromFlags();
  if (!envoy_mapping.ok()) {
    LogError("%s", envoy_mapping.status().message());
    return 2;
  }
  absl::StatusOr<JwtSetup> jwt = JwtFromFlags();
  if (!jwt.ok()) {
    LogError("%s", jwt.status().message());
    return 2;
  }
  std::unique_ptr<JwksReloader> jwks_reloader;
  if (jwt->resolver != nullptr) {
    // A presented token is checked before any trusted identity header.
    envoy_mapping->resolvers.insert(envoy_mapping->resolvers.begin(), jwt->resolver);
    jwks_reloader = std::make_unique<JwksReloader>(
        jwt->keys, std::chrono::seconds(std::max(1, absl::GetFlag(FLAGS_jwt_refresh_seconds))));
    LogInfo("jwt: bearer tokens from issuers [%s] for audiences [%s], %d keys from %s",
            absl::StrJoin(absl::GetFlag(FLAGS_jwt_issuers), ", "),
            absl::StrJoin(absl::GetFlag(FLAGS_jwt_audiences), ", "), jwt->keys->keys().size(),
            jwt->keys->path());
  }
  const std::string forward_auth_listen = absl::GetFlag(FLAGS_forward_auth_listen);
  if (!forward_auth_listen.empty() && insecure) {
    LogError("--forward_auth_listen needs mTLS: it cannot be used with --insecure");
    return 2;
  }
  if (absl::GetFlag(FLAGS_envoy_trust_identity_headers)) {
    LogWarning("--envoy_trust_identity_headers: Check takes the subject from the %s/%s headers; "
               "the gateway must strip them from client requests",
               envoy_mapping->subject_header, envoy_mapping->roles_header);
  }

  // Metrics exist whether or not they are served (counting is a few relaxed
  // atomic adds); gRPC's log lines go through the hook that counts failed
  // TLS handshakes.
  Metrics metrics;
  InstallGrpcLogHook(&metrics);
  absl::Cleanup unhook = [] { InstallGrpcLogHook(nullptr); };

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(absl::GetFlag(FLAGS_db));
  if (!store.ok()) {
    LogError("store %s: %s", absl::GetFlag(FLAGS_db), store.status().message());
    return 2;
  }
  PolicyRegistry registry;
  RuleSetManager manager(store->get(), &registry);
  manager.SetMetrics(&metrics);
  metrics.SetActiveRuleSetsSource([&registry] {
    std::vector<ActiveRuleSet> sets;
    for (const auto& policy : registry.List()) {
      sets.push_back({policy->name(), policy->version(), policy->rule_count(),
                      policy->memory_bytes()});
    }
    return sets;
  });
  if (absl::Status s = manager.LoadAll(); !s.ok()) {
    LogError("%s", s.message());
    return 2;
  }
  LogInfo("loaded %d active rule set(s) from %s", registry.size(), absl::GetFlag(FLAGS_db));
  if (const std::string path = absl::GetFlag(FLAGS_bootstrap_rule_set); !path.empty()) {
    if (absl::Status s = Bootstrap(path, registry, manager); !s.ok()) {
      LogError("%s", s.message());
      return 2;
    }
  }

  absl::StatusOr<std::unique_ptr<DecisionLog>> decision_log = OpenDecisionLogFromFlags(registry);
  if (!decision_log.ok()) {
    LogError("%s", decision_log.status().message());
    return 2;
  }
  if (*decision_log) {
    DecisionLog* log = decision_log->get();
    metrics.SetDecisionLogSource([log] { return log->stats(); });
  }
  const DecisionRecorder recorder(
      &metrics, decision_log->get(),
      {absl::GetFlag(FLAGS_decision_log_sample), absl::GetFlag(FLAGS_decision_log_deny_sample)});

  AccessPolicy access(admins, gateways, insecure);
  AuthorizationService authorization(&access, &registry, absl::GetFlag(FLAGS_default_rule_set),
                                     &recorder, background);
  AdminService admin(&access, &manager, background);
  EnvoyAuthorizationService envoy_authz(
      &access,
      [&authorization](const v1::AuthorizeRequest& request, v1::AuthorizeResponse* response) {
        authorization.Decide(request, response);
      },
      *std::move(envoy_mapping), &recorder);

  // Calls in flight, for a graceful stop that does not wait for idle
  // connections (call_tracker.h).
  CallTracker calls;
  authorization.TrackCalls(&calls);
  admin.TrackCalls(&calls);
  envoy_authz.TrackCalls(&calls);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(
      absl::GetFlag(FLAGS_listen),
      insecure ? grpc::InsecureServerCredentials()
               : MakeServerCredentials(tls, absl::GetFlag(FLAGS_cert_refresh_seconds)),
      &port);
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.RegisterService(&authorization);
  builder.RegisterService(&admin);
  if (absl::GetFlag(FLAGS_envoy_ext_authz)) builder.RegisterService(&envoy_authz);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    LogError("cannot listen on %s", absl::GetFlag(FLAGS_listen));
    return 2;
  }
  for (const char* service : {"pdp.v1.Authorization", "pdp.v1.Admin"}) {
    server->GetHealthCheckService()->SetServingStatus(service, true);
  }
  if (absl::GetFlag(FLAGS_envoy_ext_authz)) {
    server->GetHealthCheckService()->SetServingStatus("envoy.service.auth.v3.Authorization", true);
  }
  LogInfo("pdpd serving on port %d (%s); admins [%s], gateways [%s], default rule set '%s'",
          port, insecure ? "INSECURE plaintext" : "mTLS", absl::StrJoin(admins, ", "),
          absl::StrJoin(gateways, ", "), absl::GetFlag(FLAGS_default_rule_set));
  std::unique_ptr<ForwardAuthServer> forward_auth;
  if (!forward_auth_listen.empty()) {
    ForwardAuthServerOptions options;
    options.listen = forward_auth_listen;
    options.tls = tls;
    options.cert_refresh_seconds = absl::GetFlag(FLAGS_cert_refresh_seconds);
    options.threads = absl::GetFlag(FLAGS_forward_auth_threads);
    auto started = ForwardAuthServer::Start(
        options, &access,
        [&envoy_authz](const envoy::service::auth::v3::CheckRequest& request,
                       const std::string& caller,
                       envoy::service::auth::v3::CheckResponse* response) {
          envoy_authz.DecideAndRecord(request, caller, DecisionPath::kForwardAuth, response);
        });
    if (!started.ok()) {
      LogError("%s", started.status().message());
      server->Shutdown();
      return 2;
    }
    forward_auth = *std::move(started);
    LogInfo("forward-auth serving on port %d (HTTPS, mTLS)", forward_auth->port());
    if (const std::string path = absl::GetFlag(FLAGS_forward_auth_port_file); !path.empty()) {
      if (absl::Status s = WritePortFile(path, forward_auth->port()); !s.ok()) {
        LogError("%s", s.message());
      }
    }
  }
  if (const std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    if (absl::Status s = WritePortFile(path, port); !s.ok()) LogError("%s", s.message());
  }
  std::unique_ptr<MetricsServer> metrics_server;
  if (const std::string address = absl::GetFlag(FLAGS_metrics_listen); !address.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> started =
        MetricsServer::Start(address, [&metrics] { return metrics.ExpositionText(); });
    if (!started.ok()) {
      LogError("%s", started.status().message());
      server->Shutdown();
      return 2;
    }
    metrics_server = *std::move(started);
    LogInfo("metrics on http://%s/metrics (port %d)", address, metrics_server->port());
    if (const std::string path = absl::GetFlag(FLAGS_metrics_port_file); !path.empty()) {
      if (absl::Status s = WritePortFile(path, metrics_server->port()); !s.ok()) {
        LogError("%s", s.message());
      }
    }
  }

  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    const int grace = absl::GetFlag(FLAGS_shutdown_grace_seconds);
    LogInfo("signal %d: shutting down (grace %ds, %d call(s) in flight)", signal, grace,
            static_cast<int>(calls.active()));
    server->GetHealthCheckService()->SetServingStatus(false);
    if (forward_auth != nullptr) forward_auth->Stop();
    // Stop admitting calls and connections (gRPC core; idempotent, so the
    // Shutdown below repeats it harmlessly), let the calls in flight finish,
    // then close the connections that are only open: Shutdown with a
    // deadline would wait for those too, and gateways keep theirs open.
    grpc_completion_queue* stop_queue = grpc_completion_queue_create_for_next(nullptr);
    grpc_server_shutdown_and_notify(server->c_server(), stop_queue, nullptr);
    if (!calls.WaitUntilIdle(absl::Now() + absl::Seconds(grace))) {
      LogWarning("grace period over: cancelling %d call(s) still in flight",
                 static_cast<int>(calls.active()));
    }
    server->Shutdown(std::chrono::system_clock::now());
    grpc_completion_queue_shutdown(stop_queue);
    while (grpc_completion_queue_next(stop_queue, gpr_inf_future(GPR_CLOCK_REALTIME), nullptr)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(stop_queue);
  });
  server->Wait();
  signal_thread.join();
  metrics_server.reset();
  if (*decision_log) {
    // Every decision made is queued by now; write them all before exiting.
    decision_log->get()->Flush(std::chrono::seconds(10));
    const DecisionLogStats stats = decision_log->get()->stats();
    LogInfo("decision log: %d lines written, %d dropped, %d write errors", stats.lines,
            stats.dropped, stats.write_errors);
  }
  LogInfo("pdpd stopped");
  return 0;
}

}  // namespace
}  // namespace pdp::service

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "pdpd: policy decision point server.\n"
      "  pdpd --tls_cert=server.pem --tls_key=server.key --tls_ca=ca.pem \\\n"
      "       --admin_identities=spiffe://pdp.local/admin/* \\\n"
      "       --gateway_identities=spiffe://pdp.local/gateway/* --db=pdp.db");
  absl::ParseCommandLine(argc, argv);
  return pdp::service::Run();
}
