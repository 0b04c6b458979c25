// Test harness for end-to-end tests of the real binaries (tests/
// integration_test.cc, tests/pdpctl_test.cc): a development PKI made once per
// build tree with scripts/dev-certs.sh, a pdpd child process on an ephemeral
// port with mutual TLS, mTLS channels and stubs for each test identity, and a
// helper that runs any command capturing its output and exit status.
//
// Readiness is a condition, not a guess: Start() returns once the port file
// exists and grpc.health.v1.Health/Check over mTLS answers SERVING, or fails
// after a bounded deadline (or as soon as pdpd exits). The server's stderr
// and stdout go to a log file that is printed into the test output when the
// test has failed.
//
// Example:
//   TempDir dir;
//   PdpdProcess pdpd(dir.path());
//   ASSERT_TRUE(pdpd.Start(PdpdProcess::StandardFlags(dir.path() + "/pdp.db")));
//   auto stub = pdpd.AuthorizationStub("gateway");
//   ...
//   EXPECT_EQ(pdpd.Stop(), 0);
#ifndef PDP_TESTS_SUPPORT_PDPD_PROCESS_H_
#define PDP_TESTS_SUPPORT_PDPD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "pdp/v1/authorization.grpc.pb.h"

namespace pdp::e2e {

// Paths of the built binaries and the source tree.
std::string PdpdBinary();
std::string PdpctlBinary();
std::string SourcePath(const std::string& relative);  // PDP_SOURCE_DIR/relative

// The development PKI, made by scripts/dev-certs.sh on first use in
// PDP_BINARY_DIR/tests/e2e-pki and reused by later test processes of the
// same build tree (remade when older than 30 days):
//   dir:         ca.pem and server, gateway, admin, other .pem/.key
//   foreign_dir: the same files from an independent CA ("foreign")
// A failure to generate it aborts the test binary with the script's output.
struct TestPki {
  std::string dir;
  std::string foreign_dir;
};
const TestPki& Pki();

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const;

 private:
  std::string path_;
};

// Writes `contents` to `path`; a failure is a test failure.
void WriteFile(const std::string& path, const std::string& contents);
// The whole file, or "" (and a test failure) when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// What a finished command did. exit_code is the exit status, or 128 + the
// signal number when a signal ended it, or -1 when it could not be run or
// was killed at the timeout.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with argv, stdin from /dev/null unless `stdin_file`
// is given, capturing stdout and stderr. Killed (exit_code -1) after
// `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30),
                         const std::string& stdin_file = "");

// Exit status encoding shared by RunCommand and PdpdProcess.
int DecodeWaitStatus(int status);

class PdpdProcess {
 public:
  // Files (log, port file) go into `work_dir`, which must exist.
  explicit PdpdProcess(std::string work_dir);
  // Kills pdpd if it is still running; prints the log if the test failed.
  ~PdpdProcess();
  PdpdProcess(const PdpdProcess&) = delete;
  PdpdProcess& operator=(const PdpdProcess&) = delete;

  // The flags most tests start with: mTLS files from Pki(), the admin and
  // gateway identity patterns, `db`, default rule set "shop", and (unless
  // empty) `bootstrap_file` as --bootstrap_rule_set.
  static std::vector<std::string> StandardFlags(
      const std::string& db, const std::string& bootstrap_file = SourcePath("rules/demo.json"));

  // Spawns pdpd with `flags` plus --listen=127.0.0.1:0 and --port_file, then
  // waits until it serves (see the file comment). On failure the process is
  // killed; the log is printed when this object is destroyed.
  ::testing::AssertionResult Start(const std::vector<std::string>& flags,
                                   std::chrono::milliseconds deadline = std::chrono::seconds(20));

  // Spawns pdpd with exactly `flags` (plus --port_file) without waiting.
  void Spawn(const std::vector<std::string>& flags);

  // Waits for pdpd to exit by itself; nullopt if it is still running after
  // `timeout` (it is left running). The status is encoded as by
  // DecodeWaitStatus.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout);

  // SIGTERM, then waits for the exit (SIGKILL after `timeout`, which is a
  // test failure). Returns the exit status (0 = graceful shutdown).
  int Stop(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // SIGKILL and reap.
  void Kill();

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string address() const;  // "127.0.0.1:PORT"
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;

  // mTLS channel to this pdpd as `identity`: "admin", "gateway", "other"
  // (trusted CA, no role), "foreign" (a client certificate from another CA)
  // or "none" (TLS, no client certificate). Each channel has its own
  // connection.
  std::shared_ptr<grpc::Channel> Channel(const std::string& identity) const;
  std::unique_ptr<v1::Authorization::Stub> AuthorizationStub(const std::string& identity) const;
  std::unique_ptr<v1::Admin::Stub> AdminStub(const std::string& identity) const;
  // Envoy's ext_authz service (envoy.service.auth.v3.Authorization), as
  // Envoy would call it.
  std::unique_ptr<envoy::service::auth::v3::Authorization::Stub> EnvoyAuthorizationStub(
      const std::string& identity) const;

  // grpc.health.v1.Health/Check for the server (service ""): true when the
  // answer is SERVING. Uses the gateway identity.
  bool HealthServing(std::chrono::milliseconds timeout) const;

  // ----- Added for the hardening tests (issue 4: tests/crash_safety_test.cc,
  // tests/concurrency_test.cc, tests/tls_rotation_test.cc). -----

  // The running pdpd's process id (for /proc/<pid>/status), or -1.
  pid_t pid() const { return pid_; }
  // A channel to this pdpd with caller-supplied credentials (any client
  // certificate, any trust roots) and the same channel arguments as
  // Channel(): a connection of its own, quick reconnects.
  std::shared_ptr<grpc::Channel> ChannelWithCredentials(
      const std::shared_ptr<grpc::ChannelCredentials>& credentials) const;

  // ----- End of the hardening-test additions. -----

 private:
  std::string work_dir_;
  std::string log_path_;
  std::string port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
  int starts_ = 0;
};

// Client credentials for `identity` (see PdpdProcess::Channel).
std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(const std::string& identity);
// --ca/--cert/--key flags for pdpctl as `identity` ("admin", "gateway" or
// "other").
std::vector<std::string> PdpctlTlsFlags(const std::string& identity);

// A ClientContext with a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace pdp::e2e

#endif  // PDP_TESTS_SUPPORT_PDPD_PROCESS_H_
