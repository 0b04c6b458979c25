// Gateway test support; see gateway_support.h.
#include "tests/support/gateway_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/support/pdpd_process.h"

extern char** environ;

namespace pdp::e2e {
namespace {

std::string B64(const std::string& bytes) { return absl::WebSafeBase64Escape(bytes); }

std::string BnParam(EVP_PKEY* key, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1);
  std::string out(pad, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  BN_free(bn);
  return out;
}

}  // namespace

EcKey::EcKey() : key_(EVP_EC_gen("P-256")) {
  if (key_ == nullptr) ADD_FAILURE() << "cannot generate an EC key";
}
EcKey::~EcKey() { EVP_PKEY_free(key_); }

std::string EcKey::Jwk(const std::string& kid) const {
  return absl::StrCat(R"({"kty":"EC","crv":"P-256","use":"sig","kid":")", kid, R"(","x":")",
                      B64(BnParam(key_, OSSL_PKEY_PARAM_EC_PUB_X, 32)), R"(","y":")",
                      B64(BnParam(key_, OSSL_PKEY_PARAM_EC_PUB_Y, 32)), "\"}");
}

std::string JwksJson(const std::vector<std::string>& jwks) {
  return absl::StrCat(R"({"keys":[)", absl::StrJoin(jwks, ","), "]}");
}

std::string SignEs256(const EcKey& key, const std::string& kid, const std::string& claims_json) {
  const std::string header = absl::StrCat(R"({"alg":"ES256","typ":"JWT","kid":")", kid, "\"}");
  const std::string input = absl::StrCat(B64(header), ".", B64(claims_json));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                               &EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()), 1);
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()), 1);
  std::string der(len, '\0');
  EXPECT_EQ(
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len, data,
                     input.size()),
      1);
  der.resize(len);
  // JWS wants r || s, 32 bytes each, not OpenSSL's DER.
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));  // NOLINT
  std::string raw(64, '\0');
  if (sig != nullptr) {
    auto* out = reinterpret_cast<unsigned char*>(raw.data());
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32);
    ECDSA_SIG_free(sig);
  } else {
    ADD_FAILURE() << "cannot decode the ECDSA signature";
  }
  return absl::StrCat(input, ".", B64(raw));
}

std::string Claims(const std::string& issuer, const std::string& audience, const std::string& sub,
                   std::chrono::seconds exp_offset, const std::string& extra) {
  const long long now = static_cast<long long>(std::time(nullptr));  // NOLINT
  return absl::StrCat(R"({"iss":")", issuer, R"(","aud":")", audience, R"(","sub":")", sub,
                      R"(","iat":)", now - 10, R"(,"exp":)", now + exp_offset.count(),
                      extra.empty() ? "" : ",", extra, "}");
}

void ReplaceFile(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  WriteFile(tmp, contents);
  std::error_code error;
  std::filesystem::rename(tmp, path, error);
  if (error) ADD_FAILURE() << "rename " << tmp << ": " << error.message();
}

ChildProcess::ChildProcess(std::string name, std::string log_path)
    : name_(std::move(name)), log_path_(std::move(log_path)) {}

ChildProcess::~ChildProcess() {
  if (running()) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (::testing::Test::HasFailure()) {
    std::cerr << "----- " << name_ << " log (" << log_path_ << ") -----\n"
              << Log() << "----- end of " << name_ << " log -----\n";
  }
}

::testing::AssertionResult ChildProcess::Spawn(const std::vector<std::string>& argv) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "===== " << absl::StrJoin(argv, " ") << "\n";
  }
  const int rc = posix_spawn(&pid_, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    pid_ = -1;
    return ::testing::AssertionFailure() << "cannot run " << argv[0] << ": " << std::strerror(rc);
  }
  return ::testing::AssertionSuccess();
}

bool ChildProcess::Exited(int* status) {
  if (!running()) return true;
  int raw = 0;
  if (waitpid(pid_, &raw, WNOHANG) == pid_) {
    pid_ = -1;
    if (status != nullptr) *status = DecodeWaitStatus(raw);
    return true;
  }
  return false;
}

int ChildProcess::Stop(int signal, std::chrono::milliseconds timeout) {
  if (!running()) return -1;
  kill(pid_, signal);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = -1;
  while (!Exited(&status)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ADD_FAILURE() << name_ << " did not exit within " << timeout.count() << " ms; killing it";
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status;
}

std::string ChildProcess::Log() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int WaitForPortFile(const std::string& path, std::chrono::milliseconds deadline,
                    ChildProcess* process) {
  const auto give_up = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    std::ifstream in(path);
    std::string line;
    int port = 0;
    if (in && std::getline(in, line) && absl::SimpleAtoi(line, &port) && port > 0) return port;
    if (process != nullptr && process->Exited(nullptr)) return 0;
    if (std::chrono::steady_clock::now() >= give_up) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

namespace {

HttpResult FromResult(const httplib::Result& result) {
  HttpResult out;
  if (!result) {
    out.error = httplib::to_string(result.error());
    return out;
  }
  out.status = result->status;
  for (const auto& [name, value] : result->headers) {
    out.headers[absl::AsciiStrToLower(name)] = value;
  }
  out.body = result->body;
  return out;
}

// A server that drops the connection (a refused handshake) must fail the
// request, not kill the test process.
void IgnoreSigpipe() {
  static const bool ignored = [] {
    signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)ignored;
}

httplib::Headers ToHeaders(const std::map<std::string, std::string>& headers) {
  return httplib::Headers(headers.begin(), headers.end());
}

}  // namespace

HttpResult HttpsGet(int port, const std::string& identity, const std::string& target,
                    const std::map<std::string, std::string>& headers) {
  const TestPki& pki = Pki();
  std::string cert, key;
  if (identity == "foreign") {
    cert = pki.foreign_dir + "/admin.pem";
    key = pki.foreign_dir + "/admin.key";
  } else if (identity != "none") {
    cert = absl::StrCat(pki.dir, "/", identity, ".pem");
    key = absl::StrCat(pki.dir, "/", identity, ".key");
  }
  return HttpsGetWithFiles(port, cert, key, pki.dir + "/ca.pem", target, headers);
}

HttpResult HttpsGetWithFiles(int port, const std::string& cert, const std::string& key,
                             const std::string& ca, const std::string& target,
                             const std::map<std::string, std::string>& headers) {
  IgnoreSigpipe();
  std::unique_ptr<httplib::SSLClient> client =
      cert.empty() ? std::make_unique<httplib::SSLClient>("127.0.0.1", port)
                   : std::make_unique<httplib::SSLClient>("127.0.0.1", port, cert, key);
  client->set_ca_cert_path(ca.c_str());
  client->enable_server_certificate_verification(true);
  client->set_connection_timeout(10, 0);
  client->set_read_timeout(10, 0);
  return FromResult(client->Get(target.c_str(), ToHeaders(headers)));
}

HttpResult HttpRequest(int port, const std::string& method, const std::string& target,
                       const std::map<std::string, std::string>& headers) {
  IgnoreSigpipe();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(10, 0);
  client.set_read_timeout(10, 0);
  httplib::Request req;
  req.method = method;
  req.path = target;
  req.headers = ToHeaders(headers);
  return FromResult(client.send(req));
}

}  // namespace pdp::e2e
