// JWT bearer-token verification against JWKS files, for the gateway paths
// (Envoy ext_authz, HTTP forward-auth) that hand pdp a token instead of a
// ready-made subject.
//
//   JwksKeySet  the public keys of one JWKS file (RFC 7517), as OpenSSL
//               EVP_PKEYs, chosen by `kid`; reloaded when the file changes,
//               which is how keys rotate.
//   JwtVerifier checks a compact JWS (RFC 7515/7519): size limits, strict
//               base64url, header, algorithm allow-list, key choice, the
//               signature, and only then the claims (exp, nbf, iat, iss, aud),
//               and derives subject id, roles and the authentication context
//               (amr/acr -> whether MFA was used).
//
// Example:
//
//   auto keys = JwksKeySet::Open("/etc/pdp/jwks.json");
//   if (!keys.ok()) return keys.status();            // names the bad key
//   JwtVerifierOptions options;
//   options.issuers = {"https://idp.example.com"};
//   options.audiences = {"orders-api"};
//   options.roles_claim = "realm_access.roles";
//   auto verifier = JwtVerifier::Create(options, *keys);
//   ...
//   (void)(*keys)->ReloadIfChanged();                // e.g. every few seconds
//   auto token = (*verifier)->Verify(bearer, absl::Now());
//   if (!token.ok()) return Deny(token.status().message());
//   ApplyToSubject(*token, request.mutable_subject());
//
// Security properties:
//  - No claim is read before the signature is verified. The header is read
//    first (it is needed to choose the key) but only `alg`, `kid` and `crit`
//    are looked at; embedded keys and key URLs (`jwk`, `jku`, `x5u`, `x5c`)
//    are ignored, so a token can never bring its own key.
//  - `alg: none` is always rejected; HS256 only when listed in
//    JwtVerifierOptions::algorithms AND the key set accepts symmetric keys.
//  - A token with a `kid` is verified only by the key with that kid, and only
//    if that key's type (and its JWK `alg`, when set) fits the token's alg:
//    an RSA public key is never used as an HMAC secret.
//  - Error messages name what is wrong (expired by how long, which kid, which
//    claim) but never contain key material or the token; strings taken from a
//    token are truncated and escaped.
//
// Thread-safety: JwksKeySet is thread-safe; readers take a short lock to copy
// a shared_ptr to the current immutable key snapshot, and a reload builds a
// new snapshot off to the side and swaps it in (a failed reload keeps the
// previous keys). JwtVerifier is immutable after Create and Verify is const:
// any number of threads may verify while another reloads the keys.
//
// Tested by tests/jwt_test.cc.
#ifndef PDP_SERVICE_JWT_H_
#define PDP_SERVICE_JWT_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "pdp/v1/authorization.pb.h"

namespace pdp::service {

// How a JWKS file is read.
struct JwksOptions {
  // "oct" keys (shared HMAC secrets) are refused unless this is set; set it
  // only together with "HS256" in JwtVerifierOptions::algorithms.
  bool allow_symmetric_keys = false;
  // RSA moduli below this are refused (RSA keys above 16384 bits always are).
  int min_rsa_bits = 2048;
  // HMAC secrets shorter than this are refused (RFC 7518 3.2: at least the
  // hash size).
  size_t min_hmac_key_bytes = 32;
  // Bounds on the file.
  size_t max_file_bytes = 1 << 20;
  size_t max_keys = 256;
};

// One usable key, without its key material.
struct JwkInfo {
  std::string kid;  // may be empty
  std::string kty;  // "RSA", "EC", "OKP" or "oct"
  std::string crv;  // "P-256", "Ed25519" or empty
  std::string alg;  // the JWK's own "alg" member, empty when absent
  int bits = 0;     // key size
};

// The keys of one JWKS document.
//
// Each entry of "keys" is used when it is a signature key of a supported
// kind: RSA (n, e), EC P-256 (x, y), OKP Ed25519 (x) or, when allowed, oct
// (k). Entries with "use" other than "sig", with "key_ops" lacking "verify",
// or of another kind (P-384, X25519, RSA-OAEP...) are skipped and listed in
// skipped(), so that an IdP's JWKS with encryption keys still loads. A
// malformed entry of a supported kind, a refused key (too small, symmetric
// when not allowed) or a duplicate kid for the same kind of key makes the
// whole load fail with a message naming the entry, e.g.
//   "jwks.json: keys[1] (kid \"k2\", kty EC): \"y\": not valid base64url: ..."
class JwksKeySet {
 public:
  // Reads and parses `path`. Reload() and ReloadIfChanged() re-read it.
  static absl::StatusOr<std::shared_ptr<JwksKeySet>> Open(
      std::string path, JwksOptions options = {});
  // A fixed key set from JSON text (no file; reloading is a
  // FailedPrecondition).
  static absl::StatusOr<std::shared_ptr<JwksKeySet>> FromJson(
      std::string_view json, JwksOptions options = {});

  ~JwksKeySet();
  JwksKeySet(const JwksKeySet&) = delete;
  JwksKeySet& operator=(const JwksKeySet&) = delete;

  // Re-reads the file when its modification time, size or inode differ from
  // the last load (replace the file by rename to rotate keys). Returns true
  // when new keys were installed, false when the file is unchanged. On error
  // the previous keys stay in use and the error says why.
  absl::StatusOr<bool> ReloadIfChanged();
  // Re-reads the file unconditionally; on error the previous keys stay.
  absl::Status Reload();

  // The file path ("" for FromJson).
  const std::string& path() const { return path_; }
  const JwksOptions& options() const { return options_; }
  // The usable keys of the current snapshot, in file order.
  std::vector<JwkInfo> keys() const;
  // Why entries of the current file were skipped, one line each.
  std::vector<std::string> skipped() const;

  // The immutable parsed keys (defined in jwt.cc).
  struct Snapshot;
  std::shared_ptr<const Snapshot> snapshot() const;

 private:
  struct FileStamp {
    bool valid = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    long long mtime_ns = 0;  // NOLINT(runtime/int)
  };

  JwksKeySet(std::string path, JwksOptions options);
  // Reads the file and, on success, swaps in its keys. Caller holds reload_mu_.
  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);

  const std::string path_;
  const JwksOptions options_;
  // Serializes reloads so that the stamp and the keys installed agree.
  absl::Mutex reload_mu_;
  FileStamp stamp_ ABSL_GUARDED_BY(reload_mu_);
  mutable absl::Mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(mu_);
};

// What a JwtVerifier accepts. Checked by JwtVerifier::Create.
struct JwtVerifierOptions {
  // Accepted JWS algorithms among "RS256", "ES256", "EdDSA" and "HS256".
  // HS256 is off unless listed here; "none" is never accepted.
  std::vector<std::string> algorithms = {"RS256", "ES256", "EdDSA"};
  // The token's "iss" must equal one of these. At least one is required.
  std::vector<std::string> issuers;
  // The token's "aud" (a string or an array) must contain one of these. At
  // least one is required.
  std::vector<std::string> audiences;
  // Allowance for clock differences on exp, nbf and iat; 0 to 300 s.
  absl::Duration clock_skew = absl::Seconds(60);
  // The claim holding the subject id; it must be a non-empty string.
  std::string subject_claim = "sub";
  // The claim holding the roles: a top-level claim name (which may itself
  // contain dots, like "https://example.com/roles"), else a dotted path
  // into nested objects ("realm_access.roles"). Its value is an array of
  // strings or one string of space- or comma-separated roles. Absent means
  // no roles; any other type is an error.
  std::string roles_claim = "roles";
  // MFA was used when "amr" (RFC 8176) contains one of these...
  std::vector<std::string> mfa_amr_values = {"mfa", "otp", "hwk"};
  // ...or "acr" equals one of these.
  std::vector<std::string> mfa_acr_values = {
      "http://schemas.openid.net/pape/policies/2007/06/multi-factor"};
  // Size limits: the whole token, and its decoded header and payload JSON.
  size_t max_token_bytes = 16 * 1024;
  size_t max_header_bytes = 2 * 1024;
  size_t max_payload_bytes = 12 * 1024;
};

// A token whose signature and claims have been verified.
struct VerifiedToken {
  std::string subject;             // from JwtVerifierOptions::subject_claim
  std::vector<std::string> roles;  // in token order, duplicates removed
  bool mfa = false;                // amr or acr shows a second factor
  std::string acr;                 // "" when absent
  std::vector<std::string> amr;    // empty when absent
  std::string issuer;
  std::vector<std::string> audiences;  // the token's aud as a list
  std::string algorithm;               // "RS256", "ES256", "EdDSA", "HS256"
  std::string key_id;                  // the kid of the key that verified it
  absl::Time expires_at;
  google::protobuf::Struct claims;  // the whole payload
};

class JwtVerifier {
 public:
  // InvalidArgument when an option is out of range: an unknown algorithm or
  // "none", no issuer or audience, skew outside 0..300 s, an empty claim
  // name, or HS256 allowed while `keys` refuses symmetric keys.
  static absl::StatusOr<std::unique_ptr<const JwtVerifier>> Create(
      JwtVerifierOptions options, std::shared_ptr<JwksKeySet> keys);

  // Verifies a compact JWS (no "Bearer " prefix; see BearerToken) at time
  // `now`. Every rejection is Unauthenticated with a message saying why:
  //   "token is malformed: 2 parts, expected 3 (header.payload.signature)"
  //   "alg \"none\" is not accepted: unsigned tokens are never trusted"
  //   "no key with kid \"k9\" (known: \"k1\", \"k2\")"
  //   "signature does not verify with key \"k1\" (RS256)"
  //   "token expired 2m5s ago (exp 2024-05-01T10:00:00Z; clock skew 1m)"
  //   "audience [\"billing\"] is not accepted"
  absl::StatusOr<VerifiedToken> Verify(std::string_view token, absl::Time now) const;

  const JwtVerifierOptions& options() const { return options_; }

 private:
  JwtVerifier(JwtVerifierOptions options, std::shared_ptr<JwksKeySet> keys);

  const JwtVerifierOptions options_;
  const std::shared_ptr<JwksKeySet> keys_;
  unsigned allowed_ = 0;  // bit set of the algorithm enum in jwt.cc
};

// The token of an HTTP Authorization header value "Bearer <token>" (scheme
// case-insensitive, RFC 6750); Unauthenticated when it is missing or uses
// another scheme.
absl::StatusOr<std::string_view> BearerToken(std::string_view authorization);

// Replaces *subject with what the token establishes, so that no unverified
// attribute a caller sent survives next to verified ones:
//   id            VerifiedToken::subject
//   roles         VerifiedToken::roles
//   attributes    "mfa" (bool), "acr" (string, "" when absent),
//                 "amr" (list of strings), "iss" (string), and
//                 "token.<claim>" for every top-level claim whose value is a
//                 string, number or bool (e.g. "token.email", "token.exp");
//                 objects, arrays and nulls are left out.
// Rules refer to these as subject.mfa, subject.acr, subject.token.email...
void ApplyToSubject(const VerifiedToken& token, v1::Subject* subject);

}  // namespace pdp::service

#endif  // PDP_SERVICE_JWT_H_
