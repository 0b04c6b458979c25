// The HTTPS forward-auth endpoint; see forward_auth_server.h.
// Tested by tests/forward_auth_test.cc and tests/nginx_e2e_test.cc.
#include "service/forward_auth_server.h"

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/forward_auth.h"

namespace pdp::service {
namespace {

namespace auth = ::envoy::service::auth::v3;

// Parsed certificate chain, key and CA store; immutable once built.
struct TlsMaterial {
  std::vector<X509*> chain;  // leaf first
  EVP_PKEY* key = nullptr;
  X509_STORE* store = nullptr;

  TlsMaterial() = default;
  TlsMaterial(const TlsMaterial&) = delete;
  TlsMaterial& operator=(const TlsMaterial&) = delete;
  ~TlsMaterial() {
    for (X509* cert : chain) X509_free(cert);
    EVP_PKEY_free(key);
    X509_STORE_free(store);
  }
};

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
Bio MemBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

// Every certificate in a PEM text, in order.
std::vector<X509*> ReadCertificates(const std::string& pem) {
  std::vector<X509*> out;
  Bio bio = MemBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.push_back(cert);
  }
  ERR_clear_error();  // the end of the input is reported as an error
  return out;
}

absl::StatusOr<std::shared_ptr<const TlsMaterial>> LoadTlsMaterial(const TlsFiles& files) {
  auto cert_pem = ReadFile(files.cert);
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = ReadFile(files.key);
  if (!key_pem.ok()) return key_pem.status();
  auto ca_pem = ReadFile(files.ca);
  if (!ca_pem.ok()) return ca_pem.status();

  auto material = std::make_shared<TlsMaterial>();
  material->chain = ReadCertificates(*cert_pem);
  if (material->chain.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(files.cert, ": no PEM certificate"));
  }
  Bio key_bio = MemBio(*key_pem);
  material->key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  ERR_clear_error();
  if (material->key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(files.key, ": not a PEM private key"));
  }
  if (X509_check_private_key(material->chain.front(), material->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(files.key, " does not match the certificate ", files.cert));
  }
  std::vector<X509*> cas = ReadCertificates(*ca_pem);
  if (cas.empty()) return absl::InvalidArgumentError(absl::StrCat(files.ca, ": no PEM certificate"));
  material->store = X509_STORE_new();
  for (X509* ca : cas) {
    X509_STORE_add_cert(material->store, ca);  // takes its own reference
    X509_free(ca);
  }
  ERR_clear_error();  // duplicates in the bundle are not an error
  return std::shared_ptr<const TlsMaterial>(std::move(material));
}

// What identifies a file's content cheaply: replacing it (rename) or
// rewriting it changes one of these.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  long long mtime_ns = 0;  // NOLINT(runtime/int)
  bool operator==(const FileStamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
  }
};

FileStamp Stamp(const std::string& path) {
  struct stat st;
  FileStamp s;
  if (stat(path.c_str(), &st) != 0) return s;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  return s;
}

// The current TLS material, re-read when the files change (checked at most
// every `refresh`). A reload that fails keeps the previous material.
class ReloadingTls {
 public:
  ReloadingTls(TlsFiles files, absl::Duration refresh)
      : files_(std::move(files)), refresh_(refresh) {}

  absl::Status Load() {
    absl::MutexLock lock(&mu_);
    auto stamps = Stamps();
    auto material = LoadTlsMaterial(files_);
    if (!material.ok()) return material.status();
    current_ = *std::move(material);
    stamps_ = stamps;
    next_check_ = absl::Now() + refresh_;
    return absl::OkStatus();
  }

  std::shared_ptr<const TlsMaterial> Current() {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now >= next_check_) {
      next_check_ = now + refresh_;
      auto stamps = Stamps();
      if (!(stamps == stamps_)) {
        // Remembered even when the load fails, so that a broken file is
        // retried only when it changes again.
        stamps_ = stamps;
        if (auto material = LoadTlsMaterial(files_); material.ok()) {
          current_ = *std::move(material);
        }
      }
    }
    return current_;
  }

 private:
  std::array<FileStamp, 3> Stamps() const {
    return {Stamp(files_.cert), Stamp(files_.key), Stamp(files_.ca)};
  }

  const TlsFiles files_;
  const absl::Duration refresh_;
  absl::Mutex mu_;
  std::shared_ptr<const TlsMaterial> current_ ABSL_GUARDED_BY(mu_);
  std::array<FileStamp, 3> stamps_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
};

// Installs the current certificate, key and client CA store on one
// connection, during its handshake (before the client's certificate is
// verified).
int CertCallback(SSL* ssl, void* arg) {
  std::shared_ptr<const TlsMaterial> m = static_cast<ReloadingTls*>(arg)->Current();
  if (m == nullptr) return 0;
  if (SSL_use_certificate(ssl, m->chain.front()) != 1 || SSL_use_PrivateKey(ssl, m->key) != 1) {
    return 0;
  }
  SSL_clear_chain_certs(ssl);
  for (size_t i = 1; i < m->chain.size(); ++i) {
    if (SSL_add1_chain_cert(ssl, m->chain[i]) != 1) return 0;
  }
  return SSL_set1_verify_cert_store(ssl, m->store) == 1 ? 1 : 0;
}

bool SplitListen(const std::string& listen, std::string* host, int* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  *host = h.empty() ? "0.0.0.0" : h;
  return absl::SimpleAtoi(listen.substr(colon + 1), port) && *port >= 0 && *port <= 65535;
}

void Write(const ForwardAuthAnswer& answer, httplib::Response& res) {
  res.status = answer.status;
  std::string content_type = "text/plain; charset=utf-8";
  for (const auto& [name, value] : answer.headers) {
    if (name == "content-type") {
      content_type = value;
    } else {
      res.set_header(name.c_str(), value);
    }
  }
  res.set_content(answer.body, content_type.c_str());
}

// Headers cpp-httplib adds to every request itself.
bool IsServerAddedHeader(const std::string& name) {
  return name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" ||
         name == "LOCAL_PORT";
}

}  // namespace

std::string CertificateIdentity(X509* cert) {
  if (cert == nullptr) return "";
  std::string uri, dns;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      const ASN1_STRING* s = nullptr;
      std::string* out = nullptr;
      if (name->type == GEN_URI) {
        s = name->d.uniformResourceIdentifier;
        out = &uri;
      } else if (name->type == GEN_DNS) {
        s = name->d.dNSName;
        out = &dns;
      }
      if (s != nullptr && out->empty()) {
        out->assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                    static_cast<size_t>(ASN1_STRING_length(s)));
      }
    }
    GENERAL_NAMES_free(names);
  }
  if (!uri.empty()) return uri;
  if (!dns.empty()) return dns;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return "";
  const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
                     static_cast<size_t>(ASN1_STRING_length(cn)));
}

struct ForwardAuthServer::Impl {
  std::unique_ptr<ReloadingTls> tls;
  std::unique_ptr<httplib::SSLServer> server;
  const AccessPolicy* access = nullptr;
  CheckFn check;
  int port = 0;
  std::thread thread;
  // Set by the listening thread when it returns (also when listening failed).
  std::atomic<bool> finished{false};
  bool stopped = false;

  void Handle(const httplib::Request& req, httplib::Response& res) const {
    std::string identity;
    if (req.ssl != nullptr) {
      if (X509* peer = SSL_get0_peer_certificate(req.ssl);
          peer != nullptr && SSL_get_verify_result(req.ssl) == X509_V_OK) {
        identity = CertificateIdentity(peer);
      }
    }
    const Role role = access->RoleOf(identity);
    if (!AccessPolicy::MayAuthorize(role)) {
      ForwardAuthAnswer refused;
      refused.status = 403;
      refused.headers = {{"x-pdp-decision", "caller_refused"}};
      refused.body = absl::StrCat("pdp forward-auth: identity '", identity, "' (role ",
                                  RoleName(role), ") may not ask for decisions\n");
      Write(refused, res);
      return;
    }
    ForwardAuthRequest request;
    for (const auto& [name, value] : req.headers) {
      if (!IsServerAddedHeader(name)) request.headers.emplace_back(name, value);
    }
    for (const auto& [key, value] : req.params) request.query.emplace_back(key, value);
    absl::StatusOr<auth::CheckRequest> mapped = ForwardAuthCheckRequest(request);
    if (!mapped.ok()) {
      Write(ForwardAuthBadRequest(std::string(mapped.status().message())), res);
      return;
    }
    // The one decision call of the forward-auth path.
    auth::CheckResponse response;
    check(*mapped, identity, &response);
    Write(ForwardAuthAnswerFrom(response), res);
  }
};

ForwardAuthServer::ForwardAuthServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ForwardAuthServer::~ForwardAuthServer() { Stop(); }

int ForwardAuthServer::port() const { return impl_->port; }

void ForwardAuthServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  // cpp-httplib's stop() does nothing until the listening loop runs: wait
  // for it to start (or to have ended) so that a stop right after Start()
  // cannot be lost.
  while (!impl_->server->is_running() && !impl_->finished.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

absl::StatusOr<std::unique_ptr<ForwardAuthServer>> ForwardAuthServer::Start(
    const ForwardAuthServerOptions& options, const AccessPolicy* access, CheckFn check) {
  std::string host;
  int port = 0;
  if (!SplitListen(options.listen, &host, &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("forward-auth listen address '", options.listen, "' is not host:port"));
  }
  if (options.threads < 1) {
    return absl::InvalidArgumentError("forward-auth needs at least one thread");
  }
  auto impl = std::make_unique<Impl>();
  impl->access = access;
  impl->check = std::move(check);
  impl->tls = std::make_unique<ReloadingTls>(
      options.tls, absl::Seconds(std::max(1, options.cert_refresh_seconds)));
  if (absl::Status s = impl->tls->Load(); !s.ok()) return s;

  ReloadingTls* tls = impl->tls.get();
  impl->server = std::make_unique<httplib::SSLServer>([tls](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    // Every connection is verified afresh against the current CA bundle.
    SSL_CTX_set_session_cache_mode(&ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(&ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_num_tickets(&ctx, 0);
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_cert_cb(&ctx, &CertCallback, tls);
    return true;
  });
  if (!impl->server->is_valid()) return absl::InternalError("forward-auth: cannot set up TLS");
  const int threads = options.threads;
  impl->server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl->server->set_payload_max_length(options.max_body_bytes);
  impl->server->set_read_timeout(5, 0);
  impl->server->set_write_timeout(5, 0);
  impl->server->set_keep_alive_timeout(5);
  impl->server->set_keep_alive_max_count(1000);
  impl->server->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        // Fail closed: an unexpected error never allows.
        res.status = 500;
        res.set_content("pdp forward-auth: internal error\n", "text/plain; charset=utf-8");
      });
  const Impl* handler_impl = impl.get();
  auto handler = [handler_impl](const httplib::Request& req, httplib::Response& res) {
    handler_impl->Handle(req, res);
  };
  impl->server->Get(".*", handler);
  impl->server->Post(".*", handler);
  impl->server->Put(".*", handler);
  impl->server->Patch(".*", handler);
  impl->server->Delete(".*", handler);
  impl->server->Options(".*", handler);

  if (port == 0) {
    impl->port = impl->server->bind_to_any_port(host);
    if (impl->port <= 0) {
      return absl::UnavailableError(absl::StrCat("forward-auth: cannot listen on ", options.listen));
    }
  } else {
    if (!impl->server->bind_to_port(host, port)) {
      return absl::UnavailableError(absl::StrCat("forward-auth: cannot listen on ", options.listen));
    }
    impl->port = port;
  }
  Impl* running = impl.get();
  impl->thread = std::thread([running] {
    running->server->listen_after_bind();
    running->finished = true;
  });
  return std::unique_ptr<ForwardAuthServer>(new ForwardAuthServer(std::move(impl)));
}

}  // namespace pdp::service
