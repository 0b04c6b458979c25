// The end-to-end harness: dev PKI, temp dirs, command runner and the pdpd
// child process; see pdpd_process.h.
#include "tests/support/pdpd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/generic/generic_stub.h"
#include "service/health_client.h"

extern char** environ;

namespace pdp::e2e {
namespace {

using Clock = std::chrono::steady_clock;

// How long to wait between two polls of a readiness or exit condition.
constexpr std::chrono::milliseconds kPollInterval(10);

std::string TempRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
}

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = absl::StrCat(TempRoot(), "/", prefix, "XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    std::cerr << "mkdtemp " << pattern << ": " << std::strerror(errno) << "\n";
    std::abort();
  }
  return pattern;
}

// Spawns argv with stdin from `stdin_path` and stdout/stderr appended to
// `out_path`/`err_path` (the same path is opened once and shared). Returns
// the pid, or -1 with errno-based detail in *error.
pid_t SpawnRedirected(const std::vector<std::string>& argv, const std::string& stdin_path,
                      const std::string& out_path, const std::string& err_path,
                      std::string* error) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (err_path == out_path) {
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  // The child starts with default signal dispositions and an empty mask,
  // whatever the test process has set.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    *error = absl::StrCat("posix_spawn ", argv[0], ": ", std::strerror(rc));
    return -1;
  }
  return pid;
}

// Polls waitpid until `pid` exits or `timeout` passes; nullopt on timeout.
std::optional<int> WaitPid(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeWaitStatus(status);
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
}

grpc::ChannelArguments ChannelArgs() {
  grpc::ChannelArguments args;
  // A connection of its own per channel, so that identities never share one.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Reconnect quickly while polling a server that is just starting. Not
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also uses it as the minimum
  // connect timeout, and a TLS handshake on a loaded machine can take longer
  // than a few milliseconds (the default is 20 s).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  return args;
}

bool CheckHealth(const std::shared_ptr<grpc::Channel>& channel, std::chrono::milliseconds timeout) {
  absl::StatusOr<service::ServingStatus> status =
      service::CheckHealth(channel, "", std::chrono::system_clock::now() + timeout);
  return status.ok() && *status == service::ServingStatus::kServing;
}

// Certificates older than this are made afresh (dev-certs.sh leaves last
// 825 days), so a long-lived build tree never serves expired ones.
constexpr time_t kPkiMaxAgeSeconds = 30 * 24 * 3600;

bool FreshPki(const std::string& dir) {
  struct stat st;
  if (stat((dir + "/ca.pem").c_str(), &st) != 0) return false;
  return time(nullptr) - st.st_mtime < kPkiMaxAgeSeconds;
}

}  // namespace

std::string PdpdBinary() { return PDP_BINARY_DIR "/service/pdpd"; }
std::string PdpctlBinary() { return PDP_BINARY_DIR "/service/pdpctl"; }
std::string SourcePath(const std::string& relative) {
  return absl::StrCat(PDP_SOURCE_DIR, "/", relative);
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

const TestPki& Pki() {
  // Made once per build tree and shared by every test process (ctest runs
  // each test case in a process of its own), under an exclusive lock so that
  // concurrent processes never see a half-written directory. dev-certs.sh
  // installs ca.pem last, so its presence marks a complete directory.
  static const TestPki* pki = [] {
    const std::string root = PDP_BINARY_DIR "/tests/e2e-pki";
    std::error_code ignored;
    std::filesystem::create_directories(root, ignored);
    const int lock = open((root + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
      std::cerr << "cannot lock " << root << ".lock: " << std::strerror(errno) << "\n";
      std::abort();
    }
    auto* result = new TestPki{root + "/main", root + "/foreign"};
    const std::string script = SourcePath("scripts/dev-certs.sh");
    for (const auto& [dir, ca_name] : {std::pair{result->dir, std::string("pdp dev CA")},
                                       std::pair{result->foreign_dir, std::string("foreign")}}) {
      if (FreshPki(dir)) continue;
      const std::vector<std::string> argv = {"/bin/bash", script,  "--force",
                                             "--ca-name", ca_name, dir};
      CommandResult r = RunCommand(argv, std::chrono::seconds(60));
      if (r.exit_code != 0 || !FreshPki(dir)) {
        std::cerr << "dev-certs.sh failed (" << r.exit_code << "): " << absl::StrJoin(argv, " ")
                  << "\n"
                  << r.out << r.err;
        std::abort();
      }
    }
    flock(lock, LOCK_UN);
    close(lock);
    return result;
  }();
  return *pki;
}

TempDir::TempDir() : path_(MakeTempDir("pdp-test-")) {}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::File(const std::string& name) const { return absl::StrCat(path_, "/", name); }

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  if (!out) ADD_FAILURE() << "cannot write " << path;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return "";
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::string& stdin_file) {
  CommandResult result;
  const std::string dir = MakeTempDir("pdp-cmd-");
  const std::string out_path = dir + "/stdout";
  const std::string err_path = dir + "/stderr";
  std::string error;
  pid_t pid = SpawnRedirected(argv, stdin_file.empty() ? "/dev/null" : stdin_file, out_path,
                              err_path, &error);
  if (pid < 0) {
    result.err = error;
  } else {
    std::optional<int> status = WaitPid(pid, timeout);
    if (!status) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      result.exit_code = -1;
    } else {
      result.exit_code = *status;
    }
    std::ifstream out(out_path), err(err_path);
    std::stringstream out_buffer, err_buffer;
    out_buffer << out.rdbuf();
    err_buffer << err.rdbuf();
    result.out = out_buffer.str();
    result.err = err_buffer.str();
    if (!status) result.err += absl::StrCat("\n[killed after ", timeout.count(), " ms]\n");
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return result;
}

std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(const std::string& identity) {
  const TestPki& pki = Pki();
  grpc::SslCredentialsOptions options;
  // Every identity trusts the CA that signed the server, so a failure can
  // only come from the server's side of the handshake.
  options.pem_root_certs = ReadFileOrEmpty(pki.dir + "/ca.pem");
  if (identity == "admin" || identity == "gateway" || identity == "other") {
    options.pem_cert_chain = ReadFileOrEmpty(absl::StrCat(pki.dir, "/", identity, ".pem"));
    options.pem_private_key = ReadFileOrEmpty(absl::StrCat(pki.dir, "/", identity, ".key"));
  } else if (identity == "foreign") {
    // An admin identity (spiffe://pdp.local/admin/dev), but from another CA.
    options.pem_cert_chain = ReadFileOrEmpty(pki.foreign_dir + "/admin.pem");
    options.pem_private_key = ReadFileOrEmpty(pki.foreign_dir + "/admin.key");
  } else if (identity != "none") {
    ADD_FAILURE() << "unknown test identity '" << identity << "'";
  }
  return grpc::SslCredentials(options);
}

std::vector<std::string> PdpctlTlsFlags(const std::string& identity) {
  const TestPki& pki = Pki();
  return {absl::StrCat("--ca=", pki.dir, "/ca.pem"),
          absl::StrCat("--cert=", pki.dir, "/", identity, ".pem"),
          absl::StrCat("--key=", pki.dir, "/", identity, ".key")};
}

std::unique_ptr<grpc::ClientContext> ContextWithDeadline(std::chrono::milliseconds timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

PdpdProcess::PdpdProcess(std::string work_dir)
    : work_dir_(std::move(work_dir)),
      log_path_(work_dir_ + "/pdpd.log"),
      port_file_(work_dir_ + "/pdpd.port") {}

PdpdProcess::~PdpdProcess() {
  if (running()) Kill();
  if (::testing::Test::HasFailure() && starts_ > 0) {
    std::cerr << "----- pdpd log (" << log_path_ << ") -----\n"
              << Log() << "----- end of pdpd log -----\n";
  }
}

std::vector<std::string> PdpdProcess::StandardFlags(const std::string& db,
                                                    const std::string& bootstrap_file) {
  const TestPki& pki = Pki();
  std::vector<std::string> flags = {
      absl::StrCat("--tls_cert=", pki.dir, "/server.pem"),
      absl::StrCat("--tls_key=", pki.dir, "/server.key"),
      absl::StrCat("--tls_ca=", pki.dir, "/ca.pem"),
      "--admin_identities=spiffe://pdp.local/admin/*",
      "--gateway_identities=spiffe://pdp.local/gateway/*",
      absl::StrCat("--db=", db),
      "--default_rule_set=shop",
  };
  if (!bootstrap_file.empty()) flags.push_back("--bootstrap_rule_set=" + bootstrap_file);
  return flags;
}

void PdpdProcess::Spawn(const std::vector<std::string>& flags) {
  if (running()) {
    ADD_FAILURE() << "pdpd is already running (pid " << pid_ << ")";
    return;
  }
  ++starts_;
  port_ = 0;
  // A port file left by an earlier run must not be mistaken for this one's.
  std::remove(port_file_.c_str());
  std::vector<std::string> argv = {PdpdBinary()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("--port_file=" + port_file_);
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "===== pdpd start " << starts_ << ": " << absl::StrJoin(argv, " ") << "\n";
  }
  std::string error;
  pid_ = SpawnRedirected(argv, "/dev/null", log_path_, log_path_, &error);
  if (pid_ < 0) ADD_FAILURE() << error;
}

::testing::AssertionResult PdpdProcess::Start(const std::vector<std::string>& flags,
                                              std::chrono::milliseconds deadline) {
  std::vector<std::string> all = {"--listen=127.0.0.1:0"};
  all.insert(all.end(), flags.begin(), flags.end());
  Spawn(all);
  if (!running()) return ::testing::AssertionFailure() << "pdpd could not be spawned";
  const auto give_up = Clock::now() + deadline;
  std::shared_ptr<grpc::Channel> channel;
  for (;;) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return ::testing::AssertionFailure() << "pdpd exited with status " << DecodeWaitStatus(status)
                                           << " before serving (its log follows the failure)";
    }
    if (port_ == 0) {
      std::ifstream in(port_file_);
      std::string line;
      int port = 0;
      if (in && std::getline(in, line) && absl::SimpleAtoi(line, &port) && port > 0) {
        port_ = port;
        channel = Channel("gateway");
      }
    }
    if (channel != nullptr && CheckHealth(channel, std::chrono::milliseconds(500))) {
      return ::testing::AssertionSuccess();
    }
    if (Clock::now() >= give_up) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  Kill();
  return ::testing::AssertionFailure()
         << "pdpd did not serve within " << deadline.count() << " ms (port "
         << (port_ == 0 ? std::string("file not written") : absl::StrCat(port_))
         << "; its log follows the failure)";
}

std::optional<int> PdpdProcess::WaitForExit(std::chrono::milliseconds timeout) {
  if (!running()) {
    ADD_FAILURE() << "WaitForExit: pdpd is not running";
    return -1;
  }
  std::optional<int> status = WaitPid(pid_, timeout);
  if (status) pid_ = -1;
  return status;
}

int PdpdProcess::Stop(std::chrono::milliseconds timeout) {
  if (!running()) {
    ADD_FAILURE() << "Stop: pdpd is not running";
    return -1;
  }
  kill(pid_, SIGTERM);
  std::optional<int> status = WaitPid(pid_, timeout);
  if (!status) {
    ADD_FAILURE() << "pdpd did not exit within " << timeout.count() << " ms of SIGTERM; killing it";
    Kill();
    return -1;
  }
  pid_ = -1;
  return *status;
}

void PdpdProcess::Kill() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::string PdpdProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string PdpdProcess::Log() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::shared_ptr<grpc::Channel> PdpdProcess::Channel(const std::string& identity) const {
  return grpc::CreateCustomChannel(address(), ClientCredentials(identity), ChannelArgs());
}

std::unique_ptr<v1::Authorization::Stub> PdpdProcess::AuthorizationStub(
    const std::string& identity) const {
  return v1::Authorization::NewStub(Channel(identity));
}

std::unique_ptr<v1::Admin::Stub> PdpdProcess::AdminStub(const std::string& identity) const {
  return v1::Admin::NewStub(Channel(identity));
}

std::unique_ptr<envoy::service::auth::v3::Authorization::Stub>
PdpdProcess::EnvoyAuthorizationStub(const std::string& identity) const {
  return envoy::service::auth::v3::Authorization::NewStub(Channel(identity));
}

bool PdpdProcess::HealthServing(std::chrono::milliseconds timeout) const {
  return CheckHealth(Channel("gateway"), timeout);
}

// ----- Added for the hardening tests (issue 4); see pdpd_process.h. -----

std::shared_ptr<grpc::Channel> PdpdProcess::ChannelWithCredentials(
    const std::shared_ptr<grpc::ChannelCredentials>& credentials) const {
  return grpc::CreateCustomChannel(address(), credentials, ChannelArgs());
}

// ----- End of the hardening-test additions. -----

}  // namespace pdp::e2e
