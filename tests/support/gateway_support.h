// Support for the gateway tests (tests/jwt_gateway_test.cc,
// tests/forward_auth_test.cc, tests/nginx_e2e_test.cc): signing test JWTs
// with real keys, child processes other than pdpd (the example service,
// nginx), port files, and an HTTPS client that presents the test PKI's
// client certificates to pdpd's forward-auth port.
#ifndef PDP_TESTS_SUPPORT_GATEWAY_SUPPORT_H_
#define PDP_TESTS_SUPPORT_GATEWAY_SUPPORT_H_

#include <openssl/evp.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pdp::e2e {

// ---------------------------------------------------------------------------
// Tokens.

// An EC P-256 key pair (freed with the object).
class EcKey {
 public:
  EcKey();
  ~EcKey();
  EcKey(const EcKey&) = delete;
  EcKey& operator=(const EcKey&) = delete;
  EVP_PKEY* get() const { return key_; }
  // The public key as a JWK with `kid` ({"kty":"EC","crv":"P-256",...}).
  std::string Jwk(const std::string& kid) const;

 private:
  EVP_PKEY* key_;
};

// {"keys":[...]} from JWK texts.
std::string JwksJson(const std::vector<std::string>& jwks);

// A compact ES256 JWS of `claims_json` with header {"alg":"ES256","kid":kid}.
std::string SignEs256(const EcKey& key, const std::string& kid, const std::string& claims_json);

// Claims JSON: iss, aud, sub, exp = now + exp_offset, iat = now - 10s, and
// `extra` (a JSON object's members without braces, e.g. R"("roles":["a"])").
std::string Claims(const std::string& issuer, const std::string& audience, const std::string& sub,
                   std::chrono::seconds exp_offset, const std::string& extra = "");

// Replaces `path` atomically (write a temporary file, then rename).
void ReplaceFile(const std::string& path, const std::string& contents);

// ---------------------------------------------------------------------------
// Processes and ports.

// A child process with stdout and stderr appended to a log file; killed
// (SIGKILL) on destruction if still running, its log printed when the test
// has failed.
class ChildProcess {
 public:
  ChildProcess(std::string name, std::string log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  ::testing::AssertionResult Spawn(const std::vector<std::string>& argv);
  // Whether it has exited (reaping it); *status as DecodeWaitStatus.
  bool Exited(int* status);
  // `signal`, then waits up to `timeout` (then SIGKILL). Returns the status.
  int Stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool running() const { return pid_ > 0; }
  std::string Log() const;

 private:
  std::string name_;
  std::string log_path_;
  pid_t pid_ = -1;
};

// Polls `path` until it holds a port number; 0 after `deadline`, or as soon
// as `process` (if given) exits.
int WaitForPortFile(const std::string& path, std::chrono::milliseconds deadline,
                    ChildProcess* process = nullptr);

// A TCP port on 127.0.0.1 that was free a moment ago (for servers that
// cannot report the port they bound, like nginx).
int PickFreePort();

// ---------------------------------------------------------------------------
// HTTP clients.

struct HttpResult {
  int status = 0;  // 0: no HTTP answer (connection or TLS failure)
  std::string error;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// GET https://127.0.0.1:port`target` with the test PKI's client certificate
// for `identity` ("gateway", "admin", "other", "foreign" or "none"),
// verifying the server against the test CA.
HttpResult HttpsGet(int port, const std::string& identity, const std::string& target,
                    const std::map<std::string, std::string>& headers);

// The same with any client certificate and key ("" for none) and CA file.
HttpResult HttpsGetWithFiles(int port, const std::string& cert, const std::string& key,
                             const std::string& ca, const std::string& target,
                             const std::map<std::string, std::string>& headers);

// A plain HTTP request to 127.0.0.1:port (nginx's client side).
HttpResult HttpRequest(int port, const std::string& method, const std::string& target,
                       const std::map<std::string, std::string>& headers);

}  // namespace pdp::e2e

#endif  // PDP_TESTS_SUPPORT_GATEWAY_SUPPORT_H_
