// TLS credentials; see tls.h.
#include "service/tls.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace pdp::service {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::Status CheckTlsFiles(const TlsFiles& files) {
  struct Named { const char* flag; const std::string* path; };
  for (const Named& f : {Named{"--tls_cert", &files.cert}, Named{"--tls_key", &files.key},
                         Named{"--tls_ca", &files.ca}}) {
    if (f.path->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.flag, " is required (or pass --insecure for a local experiment)"));
    }
  }
  auto cert_pem = ReadFile(files.cert);
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = ReadFile(files.key);
  if (!key_pem.ok()) return key_pem.status();
  auto ca_pem = ReadFile(files.ca);
  if (!ca_pem.ok()) return ca_pem.status();

  auto bio = [](const std::string& pem) {
    return std::unique_ptr<BIO, decltype(&BIO_free)>(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  };
  auto cert_bio = bio(*cert_pem);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) return absl::InvalidArgumentError(absl::StrCat(files.cert, ": not a PEM certificate"));
  auto key_bio = bio(*key_pem);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  // The key's contents are never printed, only its path.
  if (!key) return absl::InvalidArgumentError(absl::StrCat(files.key, ": not a PEM private key"));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(files.key, " does not match the certificate ", files.cert));
  }
  auto ca_bio = bio(*ca_pem);
  std::unique_ptr<X509, decltype(&X509_free)> ca(
      PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!ca) return absl::InvalidArgumentError(absl::StrCat(files.ca, ": not a PEM certificate"));
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsFiles& files,
                                                               int refresh_seconds) {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeClientCredentials(
    const TlsFiles& files) {
  grpc::SslCredentialsOptions options;
  auto ca = ReadFile(files.ca);
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *ca;
  if (!files.cert.empty() || !files.key.empty()) {
    auto cert = ReadFile(files.cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(files.key);
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

}  // namespace pdp::service
