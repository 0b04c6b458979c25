// pdpd's HTTPS forward-auth endpoint (nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth), on a port of its own, served by
// cpp-httplib on its own thread pool.
//
// TLS: 1.2 or newer, the server certificate pdpd serves gRPC with, and a
// client certificate from the same CA is required (mTLS, as on the gRPC
// port). The caller's identity (URI SAN, else DNS SAN, else CN) must have
// the gateway or admin role (service/access.h); anyone else gets 403 without
// a decision. Certificate, key and CA files are checked for changes at most
// every `cert_refresh_seconds` and re-read when they changed, at the next
// handshake: new connections use the new files, a failed reload keeps the
// previous ones. Session resumption is off, so every connection is verified
// against the current CA bundle.
//
// Each request is mapped (service/forward_auth.h) to an ext_authz
// CheckRequest, decided by the CheckFn (pdpd passes
// EnvoyAuthorizationService::Decide: the same mapping, resolvers, registry
// snapshot and obligation handling as Envoy's Check), and answered.
//
// Thread-safe: requests run concurrently on the server's pool. Tested by
// tests/forward_auth_test.cc and tests/nginx_e2e_test.cc.
#ifndef PDP_SERVICE_FORWARD_AUTH_SERVER_H_
#define PDP_SERVICE_FORWARD_AUTH_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/service/auth/v3/external_auth.pb.h"
#include "service/access.h"
#include "service/tls.h"

struct x509_st;  // OpenSSL's X509

namespace pdp::service {

// A certificate's identity as gRPC reports a peer's: the URI SAN, else the
// DNS SAN, else the subject CN; "" for null.
std::string CertificateIdentity(x509_st* cert);

struct ForwardAuthServerOptions {
  // host:port ("127.0.0.1:8443", "[::1]:0", ":8443" for every address);
  // port 0 picks a free one.
  std::string listen;
  TlsFiles tls;
  int cert_refresh_seconds = 60;
  // Worker threads (each serves one connection at a time).
  int threads = 4;
  // Largest request body read (gateways should send none).
  size_t max_body_bytes = 64 << 10;
};

class ForwardAuthServer {
 public:
  // Decides one mapped request; `caller` is the verified identity of the
  // gateway's client certificate (for the decision log).
  using CheckFn = std::function<void(const ::envoy::service::auth::v3::CheckRequest&,
                                     const std::string& caller,
                                     ::envoy::service::auth::v3::CheckResponse*)>;

  // Loads the TLS files, binds and starts serving on a thread of its own.
  // `access` must outlive the server.
  static absl::StatusOr<std::unique_ptr<ForwardAuthServer>> Start(
      const ForwardAuthServerOptions& options, const AccessPolicy* access, CheckFn check);

  ~ForwardAuthServer();  // Stop()
  ForwardAuthServer(const ForwardAuthServer&) = delete;
  ForwardAuthServer& operator=(const ForwardAuthServer&) = delete;

  int port() const;
  // Stops accepting, lets requests in progress finish, joins the threads.
  // Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit ForwardAuthServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_FORWARD_AUTH_SERVER_H_
