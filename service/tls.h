// TLS credentials for pdpd and its clients.
//
// The server requires and verifies a client certificate from the configured
// CA and reloads its certificate, key and CA from disk when they change
// (gRPC's file-watcher provider), so certificates rotate without a restart.
// Files are checked at startup so that a missing or mismatched file stops
// the server with a clear message instead of failing every handshake.
//
// Tested by tests/integration_test.cc.
#ifndef PDP_SERVICE_TLS_H_
#define PDP_SERVICE_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace pdp::service {

struct TlsFiles {
  std::string cert;  // PEM certificate chain
  std::string key;   // PEM private key
  std::string ca;    // PEM CA bundle that signs peers
};

// Each file readable, PEM-parsable, and the key matching the certificate.
absl::Status CheckTlsFiles(const TlsFiles& files);

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const TlsFiles& files, int refresh_seconds);

// mTLS channel credentials for pdpctl and tests.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeClientCredentials(
    const TlsFiles& files);

absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace pdp::service

#endif  // PDP_SERVICE_TLS_H_
