// TLS of the real pdpd (issue 4, item 7), end to end over loopback with
// certificates made by scripts/dev-certs.sh and the openssl CLI:
//
// - RotatesServerCertificateAndCaWithoutRestart: pdpd serves certificate,
//   key and CA files copied to a temporary directory, re-read every second
//   (--cert_refresh_seconds=1). While clients keep calling (an established
//   connection and a new connection every few calls), the test replaces the
//   server certificate and key (a second certificate from the same CA, other
//   serial and CN; written to a temporary file and renamed over the old
//   one) and waits until a new TLS handshake presents it; then it adds a new
//   CA to the CA file, after which a client certificate from that CA (refused
//   before: a foreign CA) is accepted; then it removes the old CA, after
//   which clients of the old CA are refused. No call fails that should not,
//   and it is the same pdpd process throughout.
// - RefusesExpiredAndNotYetValidClientCertificates: client certificates from
//   the trusted CA but outside their validity period are refused; the same
//   kind of certificate inside its validity period is accepted.
// - OffersTls12AndNewerOnly: a TLS 1.0 or 1.1 ClientHello gets no handshake;
//   TLS 1.2 and 1.3 handshakes complete with a client certificate.
// - RefusesToStartWithUnusableCertificateFiles: a missing file or a key that
//   does not match the certificate stops pdpd before it serves.
//
// The server certificate a handshake presents is read with `openssl
// s_client`, which also makes the protocol-version probes.
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "tests/support/pdpd_process.h"

namespace pdp::e2e {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr char kOpenssl[] = "/usr/bin/openssl";

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}

// Runs the openssl CLI; a failure is a test failure showing its output.
bool Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kOpenssl};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult result = RunCommand(argv);
  EXPECT_EQ(result.exit_code, 0) << absl::StrJoin(argv, " ") << "\n" << result.out << result.err;
  return result.exit_code == 0;
}

// Writes `contents` to a temporary file next to `path` and renames it over
// `path`, so that a reader sees the old file or the new one, never a part.
void ReplaceFile(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".new";
  WriteFile(tmp, contents);
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0) << path;
}

// The DER encoding of the first PEM certificate in `pem`, or "".
std::string CertificateDer(absl::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) return "";
  unsigned char* der = nullptr;
  const int size = i2d_X509(cert.get(), &der);
  if (size <= 0) return "";
  std::string out(reinterpret_cast<const char*>(der), size);
  OPENSSL_free(der);
  return out;
}

// A client certificate and key (PEM files) and the roots it trusts.
struct ClientFiles {
  std::string cert;
  std::string key;
  std::string roots;
};

std::shared_ptr<grpc::ChannelCredentials> Credentials(const ClientFiles& files) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadFileOrEmpty(files.roots);
  options.pem_cert_chain = ReadFileOrEmpty(files.cert);
  options.pem_private_key = ReadFileOrEmpty(files.key);
  return grpc::SslCredentials(options);
}

v1::AuthorizeRequest SomeRequest() {
  v1::AuthorizeRequest request;
  request.set_rule_set("shop");
  request.set_action("read");
  request.mutable_resource()->set_type("order");
  return request;
}

// One Authorize over a new connection with `files`' credentials, for a
// client that should get through: it waits for the connection
// (wait_for_ready), so that a failed or slow connection attempt on a loaded
// machine delays the call instead of failing it. A refused client therefore
// ends in DEADLINE_EXCEEDED here; see Attempt().
grpc::Status AuthorizeOnce(const PdpdProcess& pdpd, const ClientFiles& files,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto stub = v1::Authorization::NewStub(pdpd.ChannelWithCredentials(Credentials(files)));
  v1::AuthorizeResponse response;
  auto context = ContextWithDeadline(timeout);
  context->set_wait_for_ready(true);
  return stub->Authorize(context.get(), SomeRequest(), &response);
}

bool IsConnectTimeout(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE &&
         absl::StrContains(status.error_message(), "timed out");
}

// One Authorize over a new connection that fails as soon as the connection
// does (no wait_for_ready), for clients that may be refused. A connection
// attempt that merely timed out (machine load) says nothing about refusal,
// so it is retried on a new connection, a bounded number of times.
grpc::Status Attempt(const PdpdProcess& pdpd, const ClientFiles& files) {
  grpc::Status status;
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto stub = v1::Authorization::NewStub(pdpd.ChannelWithCredentials(Credentials(files)));
    v1::AuthorizeResponse response;
    auto context = ContextWithDeadline(std::chrono::seconds(10));
    status = stub->Authorize(context.get(), SomeRequest(), &response);
    if (!IsConnectTimeout(status)) break;
  }
  return status;
}

// A refusal: the connection failed for a reason other than a timeout.
::testing::AssertionResult Refused(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !IsConnectTimeout(status)) {
    return ::testing::AssertionSuccess() << StatusText(status);
  }
  return ::testing::AssertionFailure() << "not refused: " << StatusText(status);
}

// What `openssl s_client` saw in one handshake with pdpd.
struct Handshake {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::string server_cert_der;  // "" when no certificate was received
  bool completed() const {
    return exit_code == 0 && !absl::StrContains(out, "Cipher is (NONE)") &&
           !server_cert_der.empty();
  }
};

// A TLS handshake with pdpd by `openssl s_client` as the client `files`;
// `extra` are further s_client options (a protocol version, ciphers).
Handshake Probe(const PdpdProcess& pdpd, const ClientFiles& files,
                const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {kOpenssl,    "s_client", "-connect", pdpd.address(),
                                   "-cert",     files.cert, "-key",     files.key,
                                   "-CAfile",   files.roots, "-verify_return_error",
                                   "-alpn",     "h2"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  CommandResult result = RunCommand(argv, std::chrono::seconds(20));
  Handshake h;
  h.exit_code = result.exit_code;
  h.out = result.out;
  h.err = result.err;
  const size_t begin = h.out.find("-----BEGIN CERTIFICATE-----");
  if (begin != std::string::npos) h.server_cert_der = CertificateDer(h.out.substr(begin));
  return h;
}

// Makes `dir`/`name`.pem and .key: an EC P-256 leaf signed by the CA in
// `ca_dir` (ca.pem, ca.key), with `serial`, `cn`, `san` and `eku`.
bool MakeLeaf(const std::string& ca_dir, const std::string& dir, const std::string& name,
              const std::string& serial, const std::string& cn, const std::string& san,
              const std::string& eku) {
  const std::string base = absl::StrCat(dir, "/", name);
  WriteFile(base + ".ext",
            absl::StrCat("basicConstraints = critical, CA:FALSE\n"
                         "keyUsage = critical, digitalSignature",
                         eku == "serverAuth" ? ", keyAgreement" : "",
                         "\nextendedKeyUsage = ", eku, "\nsubjectAltName = ", san,
                         "\nsubjectKeyIdentifier = hash\n"
                         "authorityKeyIdentifier = keyid, issuer\n"));
  return Openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                  base + ".key"}) &&
         Openssl({"req", "-new", "-sha256", "-key", base + ".key", "-subj",
                  absl::StrCat("/O=pdp dev/CN=", cn), "-out", base + ".csr"}) &&
         Openssl({"x509", "-req", "-sha256", "-in", base + ".csr", "-CA", ca_dir + "/ca.pem",
                  "-CAkey", ca_dir + "/ca.key", "-set_serial", serial, "-days", "30", "-extfile",
                  base + ".ext", "-out", base + ".pem"});
}

// Makes `dir`/`name`.pem and .key: a gateway client certificate from the CA
// in `ca_dir` valid exactly from `start` to `end` (YYYYMMDDHHMMSSZ), with
// `openssl ca` (`openssl x509 -req` of OpenSSL 3.0 cannot backdate).
bool MakeClientWithDates(const std::string& ca_dir, const std::string& dir,
                         const std::string& name, const std::string& start,
                         const std::string& end) {
  const std::string base = absl::StrCat(dir, "/", name);
  const std::string db_dir = base + "-ca";
  std::filesystem::create_directories(db_dir + "/new");
  WriteFile(db_dir + "/index.txt", "");
  WriteFile(db_dir + "/serial", "4242\n");
  WriteFile(db_dir + "/ca.cnf",
            absl::StrCat("[ca]\ndefault_ca = test_ca\n"
                         "[test_ca]\n"
                         "database = ",
                         db_dir, "/index.txt\nnew_certs_dir = ", db_dir,
                         "/new\nserial = ", db_dir,
                         "/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n"
                         "x509_extensions = leaf\n"
                         "[any]\ncommonName = supplied\norganizationName = optional\n"
                         "[leaf]\nbasicConstraints = critical, CA:FALSE\n"
                         "keyUsage = critical, digitalSignature\n"
                         "extendedKeyUsage = clientAuth\n"
                         "subjectAltName = URI:spiffe://pdp.local/gateway/",
                         name, "\n"));
  return Openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                  base + ".key"}) &&
         Openssl({"req", "-new", "-sha256", "-key", base + ".key", "-subj",
                  absl::StrCat("/O=pdp dev/CN=", name), "-out", base + ".csr"}) &&
         Openssl({"ca", "-batch", "-notext", "-config", db_dir + "/ca.cnf", "-cert",
                  ca_dir + "/ca.pem", "-keyfile", ca_dir + "/ca.key", "-in", base + ".csr",
                  "-out", base + ".pem", "-startdate", start, "-enddate", end});
}

// pdpd's flags for TLS files in `tls_dir` (server.pem, server.key, ca.pem).
std::vector<std::string> FlagsWithTlsDir(const std::string& tls_dir, const std::string& db,
                                         int refresh_seconds) {
  return {absl::StrCat("--tls_cert=", tls_dir, "/server.pem"),
          absl::StrCat("--tls_key=", tls_dir, "/server.key"),
          absl::StrCat("--tls_ca=", tls_dir, "/ca.pem"),
          absl::StrCat("--cert_refresh_seconds=", refresh_seconds),
          "--admin_identities=spiffe://pdp.local/admin/*",
          "--gateway_identities=spiffe://pdp.local/gateway/*",
          absl::StrCat("--db=", db),
          "--default_rule_set=shop",
          "--bootstrap_rule_set=" + SourcePath("rules/demo.json")};
}

ClientFiles PkiClient(const std::string& pki_dir, const std::string& identity,
                      const std::string& roots) {
  return {absl::StrCat(pki_dir, "/", identity, ".pem"), absl::StrCat(pki_dir, "/", identity, ".key"),
          roots};
}

// Polls `condition` every 100 ms until it holds or `deadline` passes.
template <typename Condition>
bool Eventually(Condition condition, std::chrono::seconds deadline) {
  const auto give_up = Clock::now() + deadline;
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Calls Authorize continuously until stopped: on one connection made at the
// start, and on a new connection (new handshake) every fourth call. Every
// call must succeed; only a connection attempt that timed out (machine
// load, see Attempt()) is retried.
class BackgroundCalls {
 public:
  BackgroundCalls(const PdpdProcess& pdpd, ClientFiles files)
      : pdpd_(pdpd), files_(std::move(files)) {
    channel_ = pdpd_.ChannelWithCredentials(Credentials(files_));
    connected_ = channel_->WaitForConnected(std::chrono::system_clock::now() +
                                            std::chrono::seconds(30));
    if (connected_) thread_ = std::thread([this] { Run(); });
  }
  ~BackgroundCalls() { Stop(); }

  bool connected() const { return connected_; }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    // An idle connection would hold pdpd's graceful stop for its grace period.
    channel_.reset();
  }
  int calls() const { return calls_; }
  std::vector<std::string> failures() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  void Run() {
    auto established = v1::Authorization::NewStub(channel_);
    const v1::AuthorizeRequest request = SomeRequest();
    // Bounded; the test stops it long before.
    for (int i = 0; i < 100000 && !stop_; ++i) {
      grpc::Status status;
      if (i % 4 == 3) {
        // Not AuthorizeOnce: waiting for the connection would hide a
        // window in which handshakes fail.
        status = Attempt(pdpd_, files_);
      } else {
        v1::AuthorizeResponse response;
        auto context = ContextWithDeadline();
        // Not waiting: the connection is up, and must stay up.
        status = established->Authorize(context.get(), request, &response);
      }
      ++calls_;
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (failures_.size() < 10) {
          failures_.push_back(absl::StrCat("call ", i, i % 4 == 3 ? " (new connection)" : "",
                                           ": ", StatusText(status)));
        }
      }
    }
  }

  const PdpdProcess& pdpd_;
  const ClientFiles files_;
  std::shared_ptr<grpc::Channel> channel_;
  bool connected_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int> calls_{0};
  mutable std::mutex mu_;
  std::vector<std::string> failures_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------

TEST(TlsRotationTest, RotatesServerCertificateAndCaWithoutRestart) {
  const TestPki& pki = Pki();
  TempDir dir;
  const std::string tls = dir.File("tls");
  const std::string made = dir.File("made");
  std::filesystem::create_directories(tls);
  std::filesystem::create_directories(made);
  for (const char* file : {"server.pem", "server.key", "ca.pem"}) {
    std::filesystem::copy_file(pki.dir + "/" + file, tls + "/" + file);
  }
  const std::string old_ca_pem = ReadFileOrEmpty(pki.dir + "/ca.pem");
  // Every client trusts the CA that signed both server certificates.
  const ClientFiles gateway = PkiClient(pki.dir, "gateway", pki.dir + "/ca.pem");

  // The second server certificate: same CA, other serial and CN.
  ASSERT_TRUE(MakeLeaf(pki.dir, made, "server2", "0x5e77e72", "pdpd-rotated",
                       "DNS:localhost, IP:127.0.0.1, IP:::1", "serverAuth"));
  // A new CA with its own gateway certificate (dev-certs.sh into `made`).
  const std::string new_ca = made + "/new-ca";
  {
    CommandResult r = RunCommand({"/bin/bash", SourcePath("scripts/dev-certs.sh"), "--ca-name",
                                  "pdp rotated CA", new_ca},
                                 std::chrono::seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  const ClientFiles new_ca_gateway = PkiClient(new_ca, "gateway", pki.dir + "/ca.pem");

  PdpdProcess pdpd(dir.path());
  ASSERT_TRUE(pdpd.Start(FlagsWithTlsDir(tls, dir.File("pdp.db"), /*refresh_seconds=*/1)));
  const pid_t pid = pdpd.pid();
  const std::string old_server_der = CertificateDer(ReadFileOrEmpty(pki.dir + "/server.pem"));
  const std::string new_server_der = CertificateDer(ReadFileOrEmpty(made + "/server2.pem"));
  ASSERT_FALSE(old_server_der.empty());
  ASSERT_FALSE(new_server_der.empty());
  ASSERT_NE(old_server_der, new_server_der);

  {
    const Handshake before = Probe(pdpd, gateway);
    ASSERT_TRUE(before.completed()) << before.out << before.err;
    EXPECT_EQ(before.server_cert_der, old_server_der);
  }
  ASSERT_TRUE(AuthorizeOnce(pdpd, gateway).ok());
  // Refused before the CA rotation: a client certificate from a CA the
  // server does not trust (yet).
  EXPECT_TRUE(Refused(Attempt(pdpd, new_ca_gateway)));

  BackgroundCalls calls(pdpd, gateway);
  ASSERT_TRUE(calls.connected());

  // 1. The server certificate and key. The key is renamed into place first
  // and the certificate right after; the provider reads both by path.
  ReplaceFile(tls + "/server.key", ReadFileOrEmpty(made + "/server2.key"));
  ReplaceFile(tls + "/server.pem", ReadFileOrEmpty(made + "/server2.pem"));
  Handshake seen;
  const bool rotated = Eventually(
      [&] {
        seen = Probe(pdpd, gateway);
        return seen.completed() && seen.server_cert_der == new_server_der;
      },
      std::chrono::seconds(20));
  ASSERT_TRUE(rotated) << "new handshakes still present the old certificate 20 s after "
                          "rotation (refresh is 1 s); last probe:\n"
                       << seen.out << seen.err;
  // New gRPC connections verify the new certificate too.
  EXPECT_TRUE(AuthorizeOnce(pdpd, gateway).ok());

  // 2. The CA: trust the old and the new CA.
  ReplaceFile(tls + "/ca.pem", old_ca_pem + ReadFileOrEmpty(new_ca + "/ca.pem"));
  grpc::Status last;
  EXPECT_TRUE(Eventually(
      [&] {
        last = Attempt(pdpd, new_ca_gateway);
        return last.ok();
      },
      std::chrono::seconds(20)))
      << "a client of the added CA is still refused 20 s after the CA file changed: "
      << StatusText(last);
  EXPECT_TRUE(AuthorizeOnce(pdpd, gateway).ok()) << "clients of the old CA must still work";

  calls.Stop();
  EXPECT_THAT(calls.failures(), ::testing::IsEmpty())
      << "calls failed during the rotation (" << calls.calls() << " calls in all)";
  EXPECT_GE(calls.calls(), 4) << "the background client hardly ran";

  // 3. Retire the old CA: its clients are refused on new connections, the
  // new CA's clients are not.
  ReplaceFile(tls + "/ca.pem", ReadFileOrEmpty(new_ca + "/ca.pem"));
  EXPECT_TRUE(Eventually(
      [&] {
        last = Attempt(pdpd, gateway);
        return Refused(last);
      },
      std::chrono::seconds(20)))
      << "a client of the removed CA is still accepted 20 s later: " << StatusText(last);
  EXPECT_TRUE(AuthorizeOnce(pdpd, new_ca_gateway).ok());

  // All of it without a restart.
  EXPECT_TRUE(pdpd.running());
  EXPECT_EQ(pdpd.pid(), pid);
  EXPECT_FALSE(absl::StrContains(pdpd.Log(), "===== pdpd start 2"));
  EXPECT_EQ(pdpd.Stop(), 0);
}

TEST(TlsRotationTest, RefusesExpiredAndNotYetValidClientCertificates) {
  const TestPki& pki = Pki();
  TempDir dir;
  const std::string made = dir.File("made");
  std::filesystem::create_directories(made);
  // All three from the trusted CA, made the same way, with gateway
  // identities; only the validity period differs.
  ASSERT_TRUE(MakeClientWithDates(pki.dir, made, "expired", "20200101000000Z", "20200102000000Z"));
  ASSERT_TRUE(
      MakeClientWithDates(pki.dir, made, "not-yet-valid", "20990101000000Z", "20991231000000Z"));
  ASSERT_TRUE(MakeClientWithDates(pki.dir, made, "valid", "20200101000000Z", "20991231000000Z"));
  const std::string roots = pki.dir + "/ca.pem";

  PdpdProcess pdpd(dir.path());
  ASSERT_TRUE(pdpd.Start(PdpdProcess::StandardFlags(dir.File("pdp.db"))));

  // The control: this way of making a certificate yields one pdpd accepts.
  {
    const grpc::Status status =
        AuthorizeOnce(pdpd, {made + "/valid.pem", made + "/valid.key", roots});
    EXPECT_TRUE(status.ok()) << StatusText(status);
  }
  for (const char* name : {"expired", "not-yet-valid"}) {
    SCOPED_TRACE(name);
    const ClientFiles client{absl::StrCat(made, "/", name, ".pem"),
                             absl::StrCat(made, "/", name, ".key"), roots};
    const grpc::Status status = Attempt(pdpd, client);
    EXPECT_TRUE(Refused(status));
    std::cout << "[ tls ] " << name << " client certificate: " << StatusText(status) << "\n";
  }
  // The server is unaffected.
  EXPECT_TRUE(AuthorizeOnce(pdpd, PkiClient(pki.dir, "gateway", roots)).ok());
  EXPECT_EQ(pdpd.Stop(), 0);
}

TEST(TlsRotationTest, OffersTls12AndNewerOnly) {
  const TestPki& pki = Pki();
  TempDir dir;
  PdpdProcess pdpd(dir.path());
  ASSERT_TRUE(pdpd.Start(PdpdProcess::StandardFlags(dir.File("pdp.db"))));
  const ClientFiles gateway = PkiClient(pki.dir, "gateway", pki.dir + "/ca.pem");

  for (const char* version : {"-tls1", "-tls1_1"}) {
    SCOPED_TRACE(version);
    // SECLEVEL=0 lets this client offer the old protocols at all (OpenSSL
    // 3 refuses them locally otherwise), so that the refusal is pdpd's.
    const Handshake h = Probe(pdpd, gateway, {version, "-cipher", "DEFAULT@SECLEVEL=0"});
    EXPECT_NE(h.exit_code, 0) << h.out << h.err;
    EXPECT_FALSE(h.completed()) << h.out;
    EXPECT_THAT(h.out, HasSubstr("Cipher is (NONE)"));
    EXPECT_TRUE(h.server_cert_der.empty()) << "pdpd answered the old ClientHello";
    // The ClientHello did go out: the refusal is not the client's.
    EXPECT_THAT(h.out, ::testing::ContainsRegex("handshake has read 0 bytes and written [1-9]"));
    EXPECT_THAT(h.err, ::testing::Not(HasSubstr("no protocols available")));
  }
  for (const auto& [flag, name] : {std::pair{"-tls1_2", "TLSv1.2"}, std::pair{"-tls1_3", "TLSv1.3"}}) {
    SCOPED_TRACE(flag);
    const Handshake h = Probe(pdpd, gateway, {flag});
    EXPECT_TRUE(h.completed()) << h.out << h.err;
    EXPECT_THAT(h.out, HasSubstr(absl::StrCat("New, ", name, ", Cipher is ")));
  }
  EXPECT_EQ(pdpd.Stop(), 0);
}

TEST(TlsRotationTest, RefusesToStartWithUnusableCertificateFiles) {
  const TestPki& pki = Pki();
  TempDir dir;
  struct Case {
    const char* what;
    std::string cert, key, ca;
    const char* log;
  };
  const std::vector<Case> cases = {
      {"missing certificate", dir.File("nope.pem"), pki.dir + "/server.key", pki.dir + "/ca.pem",
       "nope.pem"},
      {"key of another certificate", pki.dir + "/server.pem", pki.dir + "/gateway.key",
       pki.dir + "/ca.pem", "does not match"},
      {"CA file that is not PEM", pki.dir + "/server.pem", pki.dir + "/server.key",
       dir.File("garbage.pem"), "garbage.pem"},
  };
  WriteFile(dir.File("garbage.pem"), "not a certificate\n");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    PdpdProcess pdpd(dir.path());
    pdpd.Spawn({"--listen=127.0.0.1:0", "--tls_cert=" + c.cert, "--tls_key=" + c.key,
                "--tls_ca=" + c.ca, "--db=" + dir.File("pdp.db"),
                "--gateway_identities=spiffe://pdp.local/gateway/*"});
    const std::optional<int> status = pdpd.WaitForExit(std::chrono::seconds(20));
    ASSERT_TRUE(status.has_value()) << "pdpd kept running";
    EXPECT_NE(*status, 0);
    const std::string log = pdpd.Log();
    const std::string last = log.substr(log.rfind("===== pdpd start"));
    EXPECT_THAT(last, HasSubstr(c.log));
    EXPECT_FALSE(std::filesystem::exists(dir.File("pdpd.port")));
  }
}

}  // namespace
}  // namespace pdp::e2e
