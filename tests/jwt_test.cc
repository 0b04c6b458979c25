// Tests for service/jwt.h: JWKS loading and JWT verification.
//
// Keys are generated here with OpenSSL (RSA 2048, EC P-256, Ed25519, an HMAC
// secret), published as a JWKS file in a fresh temporary directory, and
// tokens are signed here with EVP_DigestSign (ES256 signatures converted from
// DER to raw r||s) or HMAC, independently of the code under test.
#include "service/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "engine/absl_compat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace pdp::service {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;
using ::testing::HasSubstr;
using ::testing::Not;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);  // 2023-11-14T22:13:20Z
constexpr char kIssuer[] = "https://idp.example.com";
constexpr char kAudience[] = "orders-api";

std::string B64(std::string_view bytes) { return absl::WebSafeBase64Escape(ToAbsl(bytes)); }

std::string Msg(const absl::Status& status) { return std::string(status.message()); }

// ---------------------------------------------------------------------------
// Keys and JWKs.

std::string BnParam(EVP_PKEY* key, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1) << name;
  const int size = pad > 0 ? pad : BN_num_bytes(bn);
  std::string out(static_cast<size_t>(size), '\0');
  auto* buf = reinterpret_cast<unsigned char*>(out.data());
  if (pad > 0) {
    BN_bn2binpad(bn, buf, pad);
  } else {
    BN_bn2bin(bn, buf);
  }
  BN_free(bn);
  return out;
}

std::string RsaJwk(EVP_PKEY* key, const std::string& kid, const std::string& extra = "") {
  return absl::StrCat(R"({"kty":"RSA","kid":")", kid, R"(","use":"sig","alg":"RS256","n":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_RSA_N, 0)), R"(","e":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_RSA_E, 0)), "\"", extra, "}");
}

std::string EcJwk(EVP_PKEY* key, const std::string& kid) {
  return absl::StrCat(R"({"kty":"EC","crv":"P-256","kid":")", kid, R"(","x":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, 32)), R"(","y":")",
                      B64(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32)), "\"}");
}

std::string EdJwk(EVP_PKEY* key, const std::string& kid) {
  unsigned char raw[32];
  size_t len = sizeof(raw);
  EXPECT_EQ(EVP_PKEY_get_raw_public_key(key, raw, &len), 1);
  return absl::StrCat(R"({"kty":"OKP","crv":"Ed25519","kid":")", kid, R"(","x":")",
                      B64(std::string(reinterpret_cast<char*>(raw), len)), "\"}");
}

std::string OctJwk(const std::string& secret, const std::string& kid) {
  return absl::StrCat(R"({"kty":"oct","kid":")", kid, R"(","k":")", B64(secret), "\"}");
}

std::string Jwks(const std::vector<std::string>& keys) {
  return absl::StrCat(R"({"keys":[)", absl::StrJoin(keys, ","), "]}");
}

std::string PublicKeyPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(len));
}

// ---------------------------------------------------------------------------
// Signing (the test's own, independent of jwt.cc).

std::string DigestSign(EVP_PKEY* key, const EVP_MD* md, const std::string& input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                               &EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key), 1);
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()), 1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                           input.size()),
            1);
  sig.resize(len);
  return sig;
}

std::string DerToRawEcdsa(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));  // NOLINT
  EXPECT_NE(sig, nullptr);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

std::string Hmac(const std::string& secret, const std::string& input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// Signs header.payload (given as JSON text) the way `alg` says: with `key`,
// or with `secret` for HS256. `der_ecdsa` keeps OpenSSL's DER form (wrong
// for JWS, to test its rejection).
std::string SignToken(const std::string& alg, EVP_PKEY* key, const std::string& secret,
                      const std::string& header_json, const std::string& payload_json,
                      bool der_ecdsa = false) {
  const std::string input = absl::StrCat(B64(header_json), ".", B64(payload_json));
  std::string sig;
  if (alg == "RS256") {
    sig = DigestSign(key, EVP_sha256(), input);
  } else if (alg == "ES256") {
    sig = DigestSign(key, EVP_sha256(), input);
    if (!der_ecdsa) sig = DerToRawEcdsa(sig);
  } else if (alg == "EdDSA") {
    sig = DigestSign(key, nullptr, input);
  } else if (alg == "HS256") {
    sig = Hmac(secret, input);
  }
  return absl::StrCat(input, ".", B64(sig));
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(message, &out).ok());
  return out;
}

Value JsonValue(const std::string& json) {
  Value v;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &v).ok()) << json;
  return v;
}

// Claims that pass the default verifier at kNow.
Struct GoodClaims() {
  Struct claims;
  auto& f = *claims.mutable_fields();
  f["iss"].set_string_value(kIssuer);
  f["aud"].set_string_value(kAudience);
  f["sub"].set_string_value("alice");
  f["iat"].set_number_value(absl::ToUnixSeconds(kNow) - 10);
  f["exp"].set_number_value(absl::ToUnixSeconds(kNow) + 600);
  return claims;
}

void Set(Struct* claims, const std::string& name, const std::string& json_value) {
  (*claims->mutable_fields())[name] = JsonValue(json_value);
}

void Unset(Struct* claims, const std::string& name) { claims->mutable_fields()->erase(name); }

std::string Header(const std::string& alg, const std::string& kid) {
  if (kid.empty()) return absl::StrCat(R"({"alg":")", alg, R"(","typ":"JWT"})");
  return absl::StrCat(R"({"alg":")", alg, R"(","typ":"JWT","kid":")", kid, "\"}");
}

// ---------------------------------------------------------------------------
// Fixture: one key of each kind, published in dir/jwks.json.

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = EVP_RSA_gen(2048);
    rsa2_ = EVP_RSA_gen(2048);
    ec_ = EVP_EC_gen("P-256");
    ed_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    ASSERT_NE(rsa_, nullptr);
    ASSERT_NE(rsa2_, nullptr);
    ASSERT_NE(ec_, nullptr);
    ASSERT_NE(ed_, nullptr);
    secret_ = new std::string(32, '\0');
    ASSERT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(secret_->data()), 32), 1);
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(rsa_);
    EVP_PKEY_free(rsa2_);
    EVP_PKEY_free(ec_);
    EVP_PKEY_free(ed_);
    delete secret_;
  }

  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "jwt_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    jwks_path_ = (std::filesystem::path(dir_) / "jwks.json").string();
    WriteJwks(Jwks({RsaJwk(rsa_, "rsa-1"), EcJwk(ec_, "ec-1"), EdJwk(ed_, "ed-1")}));
    auto keys = JwksKeySet::Open(jwks_path_);
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *keys;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Replaces the JWKS file the way a rotation should: write, then rename.
  void WriteJwks(const std::string& json) {
    const std::string tmp = jwks_path_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << json;
    }
    std::filesystem::rename(tmp, jwks_path_);
  }

  static JwtVerifierOptions Options() {
    JwtVerifierOptions options;
    options.issuers = {kIssuer};
    options.audiences = {kAudience};
    return options;
  }

  std::unique_ptr<const JwtVerifier> Verifier(JwtVerifierOptions options = Options(),
                                              std::shared_ptr<JwksKeySet> keys = nullptr) {
    auto verifier = JwtVerifier::Create(std::move(options), keys ? keys : keys_);
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return verifier.ok() ? *std::move(verifier) : nullptr;
  }

  static std::string Rs256(const Struct& claims, const std::string& kid = "rsa-1",
                           EVP_PKEY* key = nullptr) {
    return SignToken("RS256", key ? key : rsa_, "", Header("RS256", kid), ToJson(claims));
  }
  static std::string Es256(const Struct& claims, const std::string& kid = "ec-1") {
    return SignToken("ES256", ec_, "", Header("ES256", kid), ToJson(claims));
  }
  static std::string EdDsa(const Struct& claims, const std::string& kid = "ed-1") {
    return SignToken("EdDSA", ed_, "", Header("EdDSA", kid), ToJson(claims));
  }
  static std::string Hs256(const Struct& claims, const std::string& kid,
                           const std::string& secret) {
    return SignToken("HS256", nullptr, secret, Header("HS256", kid), ToJson(claims));
  }

  absl::StatusOr<VerifiedToken> Verify(const std::string& token, absl::Time now = kNow) {
    return Verifier()->Verify(token, now);
  }

  static void ExpectRejected(const absl::StatusOr<VerifiedToken>& result,
                             const std::string& reason) {
    ASSERT_FALSE(result.ok()) << "expected a rejection containing: " << reason;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << result.status();
    EXPECT_THAT(Msg(result.status()), HasSubstr(reason));
  }

  static EVP_PKEY* rsa_;
  static EVP_PKEY* rsa2_;
  static EVP_PKEY* ec_;
  static EVP_PKEY* ed_;
  static std::string* secret_;
  std::string dir_;
  std::string jwks_path_;
  std::shared_ptr<JwksKeySet> keys_;
};

EVP_PKEY* JwtTest::rsa_ = nullptr;
EVP_PKEY* JwtTest::rsa2_ = nullptr;
EVP_PKEY* JwtTest::ec_ = nullptr;
EVP_PKEY* JwtTest::ed_ = nullptr;
std::string* JwtTest::secret_ = nullptr;

// ---------------------------------------------------------------------------
// Accepted tokens.

TEST_F(JwtTest, LoadsOneKeyOfEachKind) {
  auto keys = keys_->keys();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0].kid, "rsa-1");
  EXPECT_EQ(keys[0].kty, "RSA");
  EXPECT_EQ(keys[0].bits, 2048);
  EXPECT_EQ(keys[1].crv, "P-256");
  EXPECT_EQ(keys[2].crv, "Ed25519");
  EXPECT_TRUE(keys_->skipped().empty());
}

TEST_F(JwtTest, ValidRs256Accepted) {
  auto token = Verify(Rs256(GoodClaims()));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->subject, "alice");
  EXPECT_EQ(token->algorithm, "RS256");
  EXPECT_EQ(token->key_id, "rsa-1");
  EXPECT_EQ(token->issuer, kIssuer);
  EXPECT_EQ(token->audiences, std::vector<std::string>{kAudience});
  EXPECT_EQ(token->expires_at, kNow + absl::Seconds(600));
  EXPECT_TRUE(token->roles.empty());
  EXPECT_FALSE(token->mfa);
  EXPECT_EQ(token->claims.fields().at("sub").string_value(), "alice");
}

TEST_F(JwtTest, ValidEs256Accepted) {
  auto token = Verify(Es256(GoodClaims()));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->algorithm, "ES256");
  EXPECT_EQ(token->key_id, "ec-1");
}

TEST_F(JwtTest, ValidEdDsaAccepted) {
  auto token = Verify(EdDsa(GoodClaims()));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->algorithm, "EdDSA");
  EXPECT_EQ(token->key_id, "ed-1");
}

TEST_F(JwtTest, EachAlgorithmCanBeDisallowed) {
  JwtVerifierOptions options = Options();
  options.algorithms = {"EdDSA"};
  auto verifier = Verifier(options);
  ExpectRejected(verifier->Verify(Rs256(GoodClaims()), kNow),
                 "alg \"RS256\" is not accepted (accepted: EdDSA)");
  ExpectRejected(verifier->Verify(Es256(GoodClaims()), kNow), "alg \"ES256\" is not accepted");
  EXPECT_TRUE(verifier->Verify(EdDsa(GoodClaims()), kNow).ok());
}

TEST_F(JwtTest, NoKidAcceptedWhenExactlyOneKeyFits) {
  auto token = Verify(SignToken("ES256", ec_, "", Header("ES256", ""), ToJson(GoodClaims())));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->key_id, "ec-1");
}

TEST_F(JwtTest, NoKidRejectedWhenSeveralKeysFit) {
  WriteJwks(Jwks({RsaJwk(rsa_, "rsa-1"), RsaJwk(rsa2_, "rsa-2")}));
  ASSERT_TRUE(keys_->Reload().ok());
  ExpectRejected(Verify(SignToken("RS256", rsa_, "", Header("RS256", ""), ToJson(GoodClaims()))),
                 "token has no kid and 2 loaded keys could verify RS256; a kid is required");
}

// ---------------------------------------------------------------------------
// Algorithms: none, HS256, confusion.

TEST_F(JwtTest, AlgNoneRejected) {
  const std::string payload = B64(ToJson(GoodClaims()));
  for (const char* alg : {"none", "None", "NONE"}) {
    const std::string header = B64(absl::StrCat(R"({"alg":")", alg, R"(","kid":"rsa-1"})"));
    ExpectRejected(Verify(absl::StrCat(header, ".", payload, ".")),
                   "the signature is empty (unsigned tokens are never trusted)");
    ExpectRejected(Verify(absl::StrCat(header, ".", payload, ".", B64("x"))),
                   absl::StrCat("alg \"", alg,
                                "\" is not accepted: unsigned tokens are never trusted"));
  }
}

TEST_F(JwtTest, Hs256RejectedUnlessEnabled) {
  JwksOptions symmetric;
  symmetric.allow_symmetric_keys = true;
  auto keys = JwksKeySet::FromJson(Jwks({OctJwk(*secret_, "hmac-1")}), symmetric);
  ASSERT_TRUE(keys.ok()) << keys.status();
  const std::string token = Hs256(GoodClaims(), "hmac-1", *secret_);

  // Default algorithms: HS256 is off even though the key set has the secret.
  ExpectRejected(Verifier(Options(), *keys)->Verify(token, kNow),
                 "alg \"HS256\" is not accepted (accepted: RS256, ES256, EdDSA)");

  JwtVerifierOptions options = Options();
  options.algorithms.push_back("HS256");
  auto verified = Verifier(options, *keys)->Verify(token, kNow);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->algorithm, "HS256");
  EXPECT_EQ(verified->key_id, "hmac-1");

  // Wrong secret.
  ExpectRejected(Verifier(options, *keys)->Verify(Hs256(GoodClaims(), "hmac-1",
                                                        std::string(32, 'x')),
                                                  kNow),
                 "signature does not verify with key \"hmac-1\" (HS256)");
}

TEST_F(JwtTest, SymmetricKeysRefusedUnlessAllowed) {
  auto keys = JwksKeySet::FromJson(Jwks({OctJwk(*secret_, "hmac-1")}));
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(Msg(keys.status()),
            "keys[0] (kid \"hmac-1\", kty oct): symmetric keys (kty \"oct\") are refused; allow "
            "them, and HS256, explicitly to use one");

  // HS256 allowed against a key set that refuses symmetric keys is a
  // configuration error, found at Create.
  JwtVerifierOptions options = Options();
  options.algorithms = {"RS256", "HS256"};
  auto verifier = JwtVerifier::Create(options, keys_);
  ASSERT_FALSE(verifier.ok());
  EXPECT_EQ(verifier.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(verifier.status()), HasSubstr("refuses symmetric keys"));
}

TEST_F(JwtTest, ShortHmacSecretRefusedWithoutRevealingIt) {
  JwksOptions symmetric;
  symmetric.allow_symmetric_keys = true;
  const std::string short_secret = "0123456789abcdef";
  auto keys = JwksKeySet::FromJson(Jwks({OctJwk(short_secret, "hmac-1")}), symmetric);
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(Msg(keys.status()), HasSubstr("HMAC secret is 16 bytes; at least 32"));
  EXPECT_THAT(Msg(keys.status()), Not(HasSubstr(B64(short_secret))));
  EXPECT_THAT(Msg(keys.status()), Not(HasSubstr(short_secret)));
}

TEST_F(JwtTest, AlgConfusionRejected) {
  // The attacker knows the RSA public key and uses it as an HMAC secret.
  const std::string pem = PublicKeyPem(rsa_);
  const std::string der_n = BnParam(rsa_, OSSL_PKEY_PARAM_RSA_N, 0);
  for (const std::string& secret : {pem, der_n}) {
    const std::string forged = Hs256(GoodClaims(), "rsa-1", secret);
    // Default verifier: HS256 is not accepted at all.
    ExpectRejected(Verify(forged), "alg \"HS256\" is not accepted");

    // Even with HS256 enabled, the kid names an RSA key, which never serves
    // as an HMAC secret.
    JwksOptions symmetric;
    symmetric.allow_symmetric_keys = true;
    auto keys = JwksKeySet::FromJson(
        Jwks({RsaJwk(rsa_, "rsa-1"), OctJwk(*secret_, "hmac-1")}), symmetric);
    ASSERT_TRUE(keys.ok()) << keys.status();
    JwtVerifierOptions options = Options();
    options.algorithms.push_back("HS256");
    auto verifier = Verifier(options, *keys);
    ExpectRejected(verifier->Verify(forged, kNow),
                   "key \"rsa-1\" is an RSA key and cannot verify HS256");
    // Without a kid the only HMAC key is tried, and the forgery fails.
    ExpectRejected(verifier->Verify(Hs256(GoodClaims(), "", secret), kNow),
                   "signature does not verify with key \"hmac-1\" (HS256)");
  }
}

TEST_F(JwtTest, KidOfAnotherKindOfKeyRejected) {
  // An ES256 token naming the RSA key, and an RS256 token naming the EC key.
  ExpectRejected(Verify(Es256(GoodClaims(), "rsa-1")),
                 "key \"rsa-1\" is an RSA key and cannot verify ES256");
  ExpectRejected(Verify(Rs256(GoodClaims(), "ec-1")),
                 "key \"ec-1\" is an EC P-256 key and cannot verify RS256");
  ExpectRejected(Verify(EdDsa(GoodClaims(), "ec-1")),
                 "key \"ec-1\" is an EC P-256 key and cannot verify EdDSA");
}

TEST_F(JwtTest, JwkAlgRestrictsTheKey) {
  // An RSA key published for PS256 is skipped, so RS256 tokens naming it fail.
  WriteJwks(Jwks({absl::StrCat(R"({"kty":"RSA","kid":"rsa-1","alg":"PS256","n":")",
                               B64(BnParam(rsa_, OSSL_PKEY_PARAM_RSA_N, 0)), R"(","e":"AQAB"})"),
                  EcJwk(ec_, "ec-1")}));
  ASSERT_TRUE(keys_->Reload().ok());
  ASSERT_EQ(keys_->skipped().size(), 1u);
  EXPECT_EQ(keys_->skipped()[0],
            "keys[0] (kid \"rsa-1\", kty RSA): skipped: alg \"PS256\" is not supported for kty "
            "\"RSA\" (pdp verifies RS256)");
  ExpectRejected(Verify(Rs256(GoodClaims())), "no key with kid \"rsa-1\" (known: \"ec-1\")");
}

TEST_F(JwtTest, SameKidForDifferentKindsPicksTheFittingKey) {
  WriteJwks(Jwks({RsaJwk(rsa_, "shared"), EcJwk(ec_, "shared")}));
  ASSERT_TRUE(keys_->Reload().ok());
  EXPECT_TRUE(Verify(Rs256(GoodClaims(), "shared")).ok());
  EXPECT_TRUE(Verify(Es256(GoodClaims(), "shared")).ok());
}

// ---------------------------------------------------------------------------
// Signatures and kids.

TEST_F(JwtTest, TamperedPayloadRejected) {
  const std::string token = Rs256(GoodClaims());
  Struct evil = GoodClaims();
  Set(&evil, "sub", R"("root")");
  Set(&evil, "roles", R"(["admin"])");
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  const std::string tampered =
      absl::StrCat(token.substr(0, dot1), ".", B64(ToJson(evil)), token.substr(dot2));
  ExpectRejected(Verify(tampered), "signature does not verify with key \"rsa-1\" (RS256)");

  for (const std::string& good : {Rs256(GoodClaims()), Es256(GoodClaims()), EdDsa(GoodClaims())}) {
    // One flipped bit in the signature.
    const size_t sig_at = good.rfind('.') + 1;
    std::string sig;
    ASSERT_TRUE(absl::WebSafeBase64Unescape(good.substr(sig_at), &sig));
    sig[5] ^= 0x01;
    ExpectRejected(Verify(absl::StrCat(good.substr(0, sig_at), B64(sig))),
                   "signature does not verify");
  }
}

TEST_F(JwtTest, WrongKidRejected) {
  ExpectRejected(Verify(Rs256(GoodClaims(), "rsa-9")),
                 "no key with kid \"rsa-9\" (known: \"rsa-1\", \"ec-1\", \"ed-1\")");
}

TEST_F(JwtTest, KidNeverFallsBackToAnotherKey) {
  // Signed by rsa-1's key but naming rsa-2: verified with rsa-2 only, fails.
  WriteJwks(Jwks({RsaJwk(rsa_, "rsa-1"), RsaJwk(rsa2_, "rsa-2")}));
  ASSERT_TRUE(keys_->Reload().ok());
  ExpectRejected(Verify(Rs256(GoodClaims(), "rsa-2", rsa_)),
                 "signature does not verify with key \"rsa-2\" (RS256)");
  EXPECT_TRUE(Verify(Rs256(GoodClaims(), "rsa-2", rsa2_)).ok());
}

TEST_F(JwtTest, DerEncodedEs256SignatureRejected) {
  const std::string token =
      SignToken("ES256", ec_, "", Header("ES256", "ec-1"), ToJson(GoodClaims()), true);
  ExpectRejected(Verify(token), "bytes; expected 64 (raw r||s, not DER)");
}

TEST_F(JwtTest, CritHeaderRejected) {
  const std::string token = SignToken(
      "RS256", rsa_, "", R"({"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1})",
      ToJson(GoodClaims()));
  ExpectRejected(Verify(token), "critical extensions (\"crit\")");
}

TEST_F(JwtTest, EmbeddedKeyInHeaderIgnored) {
  // A token that brings its own key (jwk) and names no known kid is not
  // verified with the embedded key.
  auto ec_other = Pkey(EVP_EC_gen("P-256"));
  const std::string own_jwk = EcJwk(ec_other.get(), "attacker");
  const std::string token = SignToken(
      "ES256", ec_other.get(), "", absl::StrCat(R"({"alg":"ES256","kid":"attacker","jwk":)",
                                                own_jwk, "}"),
      ToJson(GoodClaims()));
  ExpectRejected(Verify(token), "no key with kid \"attacker\"");
}

// ---------------------------------------------------------------------------
// Time claims.

TEST_F(JwtTest, ExpiredBeyondSkewRejected) {
  Struct claims = GoodClaims();
  Set(&claims, "iat", absl::StrCat(absl::ToUnixSeconds(kNow) - 3600));
  Set(&claims, "exp", absl::StrCat(absl::ToUnixSeconds(kNow) - 125));
  ExpectRejected(Verify(Es256(claims)),
                 "token expired 2m5s ago (exp 2023-11-14T22:11:15Z; clock skew 1m)");
}

TEST_F(JwtTest, ExpiredWithinSkewAccepted) {
  Struct claims = GoodClaims();
  Set(&claims, "exp", absl::StrCat(absl::ToUnixSeconds(kNow) - 30));
  EXPECT_TRUE(Verify(Es256(claims)).ok());
  // The boundary: exp + skew == now is expired.
  Set(&claims, "exp", absl::StrCat(absl::ToUnixSeconds(kNow) - 60));
  ExpectRejected(Verify(Es256(claims)), "token expired 1m ago");
  // With no skew, exp == now is expired.
  JwtVerifierOptions options = Options();
  options.clock_skew = absl::ZeroDuration();
  Set(&claims, "exp", absl::StrCat(absl::ToUnixSeconds(kNow)));
  ExpectRejected(Verifier(options)->Verify(Es256(claims), kNow), "token expired 0 ago");
}

TEST_F(JwtTest, ExpRequiredAndMustBeANumber) {
  Struct claims = GoodClaims();
  Unset(&claims, "exp");
  ExpectRejected(Verify(Rs256(claims)), "token has no \"exp\" claim (an expiry is required)");
  Set(&claims, "exp", R"("1700000600")");
  ExpectRejected(Verify(Rs256(claims)), "\"exp\" is a string, expected a NumericDate");
}

TEST_F(JwtTest, NbfInFutureRejected) {
  Struct claims = GoodClaims();
  Set(&claims, "nbf", absl::StrCat(absl::ToUnixSeconds(kNow) + 120));
  ExpectRejected(Verify(EdDsa(claims)),
                 "token is not valid until 2023-11-14T22:15:20Z (2m from now; clock skew 1m)");
  Set(&claims, "nbf", absl::StrCat(absl::ToUnixSeconds(kNow) + 30));
  EXPECT_TRUE(Verify(EdDsa(claims)).ok());
}

TEST_F(JwtTest, IatInFutureRejected) {
  Struct claims = GoodClaims();
  Set(&claims, "iat", absl::StrCat(absl::ToUnixSeconds(kNow) + 3600));
  ExpectRejected(Verify(EdDsa(claims)), "token was issued in the future");
  Set(&claims, "iat", absl::StrCat(absl::ToUnixSeconds(kNow) + 59));
  EXPECT_TRUE(Verify(EdDsa(claims)).ok());
}

TEST_F(JwtTest, FractionalNumericDatesAccepted) {
  Struct claims = GoodClaims();
  Set(&claims, "exp", absl::StrCat(absl::ToUnixSeconds(kNow) + 10, ".5"));
  auto token = Verify(Rs256(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->expires_at, kNow + absl::Milliseconds(10500));
}

// ---------------------------------------------------------------------------
// Issuer, audience, subject.

TEST_F(JwtTest, WrongIssuerRejected) {
  Struct claims = GoodClaims();
  Set(&claims, "iss", R"("https://evil.example.com")");
  ExpectRejected(Verify(Rs256(claims)), "issuer \"https://evil.example.com\" is not accepted");
  Unset(&claims, "iss");
  ExpectRejected(Verify(Rs256(claims)), "token has no \"iss\" claim");
}

TEST_F(JwtTest, SeveralIssuersConfigured) {
  JwtVerifierOptions options = Options();
  options.issuers = {"https://other.example.com", kIssuer};
  EXPECT_TRUE(Verifier(options)->Verify(Rs256(GoodClaims()), kNow).ok());
}

TEST_F(JwtTest, WrongAudienceRejected) {
  Struct claims = GoodClaims();
  Set(&claims, "aud", R"("billing")");
  ExpectRejected(Verify(Rs256(claims)), "audience [\"billing\"] is not accepted");
  Set(&claims, "aud", R"(["billing","reports"])");
  ExpectRejected(Verify(Rs256(claims)), "audience [\"billing\", \"reports\"] is not accepted");
  Set(&claims, "aud", R"(["billing","orders-api"])");
  auto token = Verify(Rs256(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->audiences, (std::vector<std::string>{"billing", "orders-api"}));
  Set(&claims, "aud", "42");
  ExpectRejected(Verify(Rs256(claims)),
                 "\"aud\" is a number, expected a string or an array of strings");
  Unset(&claims, "aud");
  ExpectRejected(Verify(Rs256(claims)), "token has no \"aud\" claim");
}

TEST_F(JwtTest, SubjectRequired) {
  Struct claims = GoodClaims();
  Unset(&claims, "sub");
  ExpectRejected(Verify(Rs256(claims)), "token has no \"sub\" claim");
  Set(&claims, "sub", R"("")");
  ExpectRejected(Verify(Rs256(claims)), "subject claim \"sub\" is empty");
  Set(&claims, "sub", "7");
  ExpectRejected(Verify(Rs256(claims)), "subject claim \"sub\" is a number");
}

TEST_F(JwtTest, SubjectClaimConfigurable) {
  JwtVerifierOptions options = Options();
  options.subject_claim = "preferred_username";
  Struct claims = GoodClaims();
  Set(&claims, "preferred_username", R"("alice@example.com")");
  auto token = Verifier(options)->Verify(Rs256(claims), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->subject, "alice@example.com");
}

// ---------------------------------------------------------------------------
// Roles.

TEST_F(JwtTest, RolesFromArray) {
  Struct claims = GoodClaims();
  Set(&claims, "roles", R"(["clerk","auditor","clerk"])");
  auto token = Verify(Rs256(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->roles, (std::vector<std::string>{"clerk", "auditor"}));
}

TEST_F(JwtTest, RolesFromSpaceOrCommaSeparatedString) {
  JwtVerifierOptions options = Options();
  options.roles_claim = "scope";
  Struct claims = GoodClaims();
  Set(&claims, "scope", R"("orders:read  orders:write")");
  auto token = Verifier(options)->Verify(Rs256(claims), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->roles, (std::vector<std::string>{"orders:read", "orders:write"}));

  Set(&claims, "scope", R"("a,b, c")");
  token = Verifier(options)->Verify(Rs256(claims), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->roles, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(JwtTest, RolesFromDottedClaimPath) {
  JwtVerifierOptions options = Options();
  options.roles_claim = "realm_access.roles";
  Struct claims = GoodClaims();
  Set(&claims, "realm_access", R"({"roles":["offline_access","manager"]})");
  auto token = Verifier(options)->Verify(Rs256(claims), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->roles, (std::vector<std::string>{"offline_access", "manager"}));

  // A path that does not lead anywhere means no roles.
  Set(&claims, "realm_access", R"("flat")");
  token = Verifier(options)->Verify(Rs256(claims), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(token->roles.empty());
}

TEST_F(JwtTest, RolesFromNamespacedClaimWithDots) {
  JwtVerifierOptions options = Options();
  options.roles_claim = "https://example.com/roles";
  Struct claims = GoodClaims();
  Set(&claims, "https://example.com/roles", R"(["editor"])");
  auto token = Verifier(options)->Verify(Rs256(claims), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->roles, std::vector<std::string>{"editor"});
}

TEST_F(JwtTest, RolesOfAnotherTypeRejected) {
  Struct claims = GoodClaims();
  Set(&claims, "roles", R"(["clerk", 3])");
  ExpectRejected(Verify(Rs256(claims)), "roles claim \"roles\"[1] is a number, expected a string");
  Set(&claims, "roles", R"({"a":1})");
  ExpectRejected(Verify(Rs256(claims)), "roles claim \"roles\" is an object");
}

// ---------------------------------------------------------------------------
// Authentication context.

TEST_F(JwtTest, MfaFromAmr) {
  Struct claims = GoodClaims();
  Set(&claims, "amr", R"(["pwd","mfa"])");
  auto token = Verify(Es256(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(token->mfa);
  EXPECT_EQ(token->amr, (std::vector<std::string>{"pwd", "mfa"}));

  Set(&claims, "amr", R"(["pwd"])");
  token = Verify(Es256(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_FALSE(token->mfa);

  Set(&claims, "amr", R"(["pwd","otp"])");
  token = Verify(Es256(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(token->mfa);

  Set(&claims, "amr", R"([1])");
  ExpectRejected(Verify(Es256(claims)), "\"amr\"[0] is a number");
}

TEST_F(JwtTest, MfaFromAcr) {
  Struct claims = GoodClaims();
  Set(&claims, "acr", R"("http://schemas.openid.net/pape/policies/2007/06/multi-factor")");
  auto token = Verify(Es256(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(token->mfa);

  JwtVerifierOptions options = Options();
  options.mfa_acr_values = {"gold"};
  Set(&claims, "acr", R"("silver")");
  token = Verifier(options)->Verify(Es256(claims), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_FALSE(token->mfa);
  EXPECT_EQ(token->acr, "silver");
  Set(&claims, "acr", R"("gold")");
  token = Verifier(options)->Verify(Es256(claims), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(token->mfa);
}

TEST_F(JwtTest, ApplyToSubjectReplacesTheSubject) {
  Struct claims = GoodClaims();
  Set(&claims, "roles", R"(["clerk"])");
  Set(&claims, "amr", R"(["pwd","hwk"])");
  Set(&claims, "acr", R"("phr")");
  Set(&claims, "email", R"("alice@example.com")");
  Set(&claims, "email_verified", "true");
  Set(&claims, "address", R"({"country":"DE"})");
  auto token = Verify(EdDsa(claims));
  ASSERT_TRUE(token.ok()) << token.status();

  v1::Subject subject;
  subject.set_id("mallory");
  subject.add_roles("admin");
  (*subject.mutable_attributes())["mfa"].set_bool_value(true);
  (*subject.mutable_attributes())["department"].set_string_value("finance");
  ApplyToSubject(*token, &subject);

  EXPECT_EQ(subject.id(), "alice");
  ASSERT_EQ(subject.roles_size(), 1);
  EXPECT_EQ(subject.roles(0), "clerk");
  const auto& attrs = subject.attributes();
  EXPECT_TRUE(attrs.at("mfa").bool_value());
  EXPECT_EQ(attrs.at("acr").string_value(), "phr");
  ASSERT_EQ(attrs.at("amr").list_value().values_size(), 2);
  EXPECT_EQ(attrs.at("amr").list_value().values(1).string_value(), "hwk");
  EXPECT_EQ(attrs.at("iss").string_value(), kIssuer);
  EXPECT_EQ(attrs.at("token.email").string_value(), "alice@example.com");
  EXPECT_TRUE(attrs.at("token.email_verified").bool_value());
  EXPECT_EQ(attrs.at("token.exp").number_value(), absl::ToUnixSeconds(kNow) + 600);
  EXPECT_EQ(attrs.at("token.sub").string_value(), "alice");
  EXPECT_EQ(attrs.count("token.address"), 0u);    // objects are left out
  EXPECT_EQ(attrs.count("token.amr"), 0u);        // arrays too
  EXPECT_EQ(attrs.count("department"), 0u);       // nothing unverified survives

  // Without MFA the attribute says so explicitly.
  Set(&claims, "amr", R"(["pwd"])");
  Unset(&claims, "acr");
  token = Verify(EdDsa(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  ApplyToSubject(*token, &subject);
  EXPECT_FALSE(subject.attributes().at("mfa").bool_value());
  EXPECT_EQ(subject.attributes().at("acr").string_value(), "");
}

// ---------------------------------------------------------------------------
// Key rotation and reloading.

TEST_F(JwtTest, KeyRotationByReplacingTheFile) {
  const std::string old_token = Rs256(GoodClaims(), "rsa-1", rsa_);
  const std::string new_token = Rs256(GoodClaims(), "rsa-2", rsa2_);
  EXPECT_TRUE(Verify(old_token).ok());
  ExpectRejected(Verify(new_token), "no key with kid \"rsa-2\"");

  auto unchanged = keys_->ReloadIfChanged();
  ASSERT_TRUE(unchanged.ok()) << unchanged.status();
  EXPECT_FALSE(*unchanged);

  WriteJwks(Jwks({RsaJwk(rsa2_, "rsa-2")}));
  auto changed = keys_->ReloadIfChanged();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  ExpectRejected(Verify(old_token), "no key with kid \"rsa-1\" (known: \"rsa-2\")");
  EXPECT_TRUE(Verify(new_token).ok());

  changed = keys_->ReloadIfChanged();
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
}

TEST_F(JwtTest, FailedReloadKeepsTheOldKeys) {
  const std::string token = Rs256(GoodClaims());
  WriteJwks(R"({"keys":[{"kty":"RSA","kid":"rsa-1","n":"AQAB"})");  // truncated JSON
  auto reloaded = keys_->ReloadIfChanged();
  ASSERT_FALSE(reloaded.ok());
  EXPECT_EQ(Msg(reloaded.status()),
            absl::StrCat(jwks_path_,
                         ": JWKS is not a JSON object (keeping the keys loaded before)"));
  EXPECT_TRUE(Verify(token).ok());

  WriteJwks(Jwks({R"({"kty":"EC","crv":"P-256","kid":"ec-2","x":"AAAA"})"}));
  EXPECT_EQ(Msg(keys_->Reload()),
            absl::StrCat(jwks_path_, ": keys[0] (kid \"ec-2\", kty EC): \"y\" is missing "
                                     "(keeping the keys loaded before)"));
  EXPECT_TRUE(Verify(token).ok());

  std::filesystem::remove(jwks_path_);
  reloaded = keys_->ReloadIfChanged();
  ASSERT_FALSE(reloaded.ok());
  EXPECT_EQ(reloaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Verify(token).ok());

  // Fixed file: picked up again.
  WriteJwks(Jwks({RsaJwk(rsa_, "rsa-1")}));
  reloaded = keys_->ReloadIfChanged();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_TRUE(*reloaded);
}

TEST_F(JwtTest, OpenReportsAMissingFile) {
  auto keys = JwksKeySet::Open(dir_ + "/nope.json");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(keys.status()), HasSubstr("nope.json: cannot open"));
  auto fixed = JwksKeySet::FromJson(Jwks({EcJwk(ec_, "ec-1")}));
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ((*fixed)->Reload().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JwtTest, VerifyWhileReloading) {
  const std::string token = Es256(GoodClaims());
  auto verifier = Verifier();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        if (!verifier->Verify(token, kNow).ok()) failures.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    WriteJwks(i % 2 == 0 ? Jwks({EcJwk(ec_, "ec-1"), EdJwk(ed_, "ed-1")})
                         : Jwks({EcJwk(ec_, "ec-1")}));
    ASSERT_TRUE(keys_->Reload().ok());
  }
  stop.store(true);
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---------------------------------------------------------------------------
// JWKS errors, each naming the key and what is wrong.

TEST_F(JwtTest, JwksErrorsArePrecise) {
  struct Case {
    std::string json;
    std::string error;
  };
  const std::string n = B64(BnParam(rsa_, OSSL_PKEY_PARAM_RSA_N, 0));
  const std::string x = B64(BnParam(ec_, OSSL_PKEY_PARAM_EC_PUB_X, 32));
  const std::string y = B64(BnParam(ec_, OSSL_PKEY_PARAM_EC_PUB_Y, 32));
  Pkey small(EVP_RSA_gen(1024));
  const Case cases[] = {
      {"not json", "JWKS is not a JSON object"},
      {"[]", "JWKS is not a JSON object"},
      {R"({"keys":{}})", "JWKS \"keys\" is an object, expected an array"},
      {R"({"kid":"a"})", "JWKS has no \"keys\" member"},
      {R"({"keys":[1]})", "keys[0] is a number, expected an object"},
      {R"({"keys":[{"kid":"a"}]})", "keys[0] (kid \"a\"): \"kty\" is missing"},
      {R"({"keys":[{"kty":"RSA","kid":"r","e":"AQAB"}]})",
       "keys[0] (kid \"r\", kty RSA): \"n\" is missing"},
      {absl::StrCat(R"({"keys":[{"kty":"RSA","kid":"r","n":")", n, R"(=","e":"AQAB"}]})"),
       "keys[0] (kid \"r\", kty RSA): \"n\" is not valid base64url: padding '=' at offset"},
      {absl::StrCat(R"({"keys":[{"kty":"RSA","kid":"r","n":")", n, R"(","e":"AAAA"}]})"),
       "RSA exponent \"e\" must be odd"},
      {absl::StrCat(R"({"keys":[{"kty":"RSA","kid":"r","n":")", n, R"(","e":5}]})"),
       "\"e\" is a number, expected a base64url string"},
      {Jwks({RsaJwk(small.get(), "small")}),
       "keys[0] (kid \"small\", kty RSA): RSA modulus is 1024 bits; at least 2048 are required"},
      {absl::StrCat(R"({"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":")", x,
                    R"(","y":"AAAA"}]})"),
       "keys[0] (kid \"e\", kty EC): P-256 coordinates must be 32 bytes each; \"x\" is 32 and "
       "\"y\" is 3"},
      {absl::StrCat(R"({"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":")", x, R"(","y":")",
                    x, R"("}]})"),
       "keys[0] (kid \"e\", kty EC): the point (x, y) is not"},
      {absl::StrCat(R"({"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"*","y":")", y,
                    R"("}]})"),
       "\"x\" is not valid base64url: invalid character \"*\" at offset 0"},
      {R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"d","x":"AAAA"}]})",
       "keys[0] (kid \"d\", kty OKP): Ed25519 public key \"x\" must be 32 bytes, not 3"},
      {Jwks({RsaJwk(rsa_, "same"), RsaJwk(rsa2_, "same")}),
       "keys[1] (kid \"same\", kty RSA): duplicate kid for an RSA key"},
      {Jwks({RsaJwk(rsa_, "p", R"(,"d":"AAAA")")}),
       "keys[0] (kid \"p\", kty RSA): holds a private key (member \"d\")"},
      {R"({"keys":[{"kty":"RSA","kid":7}]})", "\"kid\" is a number, expected a string"},
  };
  for (const Case& c : cases) {
    auto keys = JwksKeySet::FromJson(c.json);
    ASSERT_FALSE(keys.ok()) << c.json;
    EXPECT_THAT(Msg(keys.status()), HasSubstr(c.error)) << c.json;
  }
}

TEST_F(JwtTest, UnsupportedKeysAreSkippedNotFatal) {
  const std::string json = Jwks({
      absl::StrCat(R"({"kty":"RSA","kid":"enc-1","use":"enc","alg":"RSA-OAEP","n":")",
                   B64(BnParam(rsa2_, OSSL_PKEY_PARAM_RSA_N, 0)), R"(","e":"AQAB"})"),
      R"({"kty":"EC","crv":"P-384","kid":"p384","x":"AAAA","y":"AAAA"})",
      R"({"kty":"OKP","crv":"X25519","kid":"x","x":"AAAA"})",
      R"({"kty":"XYZ","kid":"odd"})",
      RsaJwk(rsa_, "ops", R"(,"key_ops":["encrypt"])"),
      EcJwk(ec_, "ec-1"),
  });
  auto keys = JwksKeySet::FromJson(json);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ((*keys)->keys().size(), 1u);
  EXPECT_EQ((*keys)->keys()[0].kid, "ec-1");
  EXPECT_THAT((*keys)->skipped(),
              ::testing::ElementsAre(
                  "keys[0] (kid \"enc-1\", kty RSA): skipped: use \"enc\" is not \"sig\"",
                  "keys[1] (kid \"p384\", kty EC): skipped: curve \"P-384\" is not supported "
                  "(pdp verifies ES256 on P-256)",
                  "keys[2] (kid \"x\", kty OKP): skipped: curve \"X25519\" is not supported "
                  "(pdp verifies EdDSA on Ed25519)",
                  "keys[3] (kid \"odd\", kty XYZ): skipped: kty \"XYZ\" is not supported",
                  "keys[4] (kid \"ops\", kty RSA): skipped: \"key_ops\" does not include "
                  "\"verify\""));
}

// ---------------------------------------------------------------------------
// Malformed tokens: a precise rejection, never a crash.

TEST_F(JwtTest, MalformedTokensRejected) {
  const std::string good = Rs256(GoodClaims());
  const std::string header = good.substr(0, good.find('.'));
  const std::string payload = B64(ToJson(GoodClaims()));
  struct Case {
    std::string token;
    std::string error;
  };
  const Case cases[] = {
      {"", "token is empty"},
      {"abc", "token is malformed: 1 part, expected 3 (header.payload.signature)"},
      {absl::StrCat(header, ".", payload),
       "token is malformed: 2 parts, expected 3 (header.payload.signature)"},
      {absl::StrCat(good, ".x"), "token is malformed: 4 parts"},
      {"a.b.c.d.e", "5 parts, expected 3 (header.payload.signature); encrypted tokens (JWE) "
                    "are not supported"},
      {absl::StrCat(".", payload, ".sig"), "token is malformed: the header is empty"},
      {absl::StrCat(header, "..sig"), "token is malformed: the payload is empty"},
      {absl::StrCat("e30=.", payload, ".sig"),
       "token header is not valid base64url: padding '=' at offset 3"},
      {absl::StrCat("e3+.", payload, ".sig"),
       "token header is not valid base64url: invalid character \"+\" at offset 2"},
      {absl::StrCat("e 3.", payload, ".sig"),
       "token header is not valid base64url: invalid character \" \" at offset 1"},
      {absl::StrCat("e30xx.", payload, ".sig"),
       "token header is not valid base64url: impossible length 5"},
      {absl::StrCat("e31.", payload, ".sig"),
       "token header is not valid base64url: not canonical"},
      {absl::StrCat(B64("not json"), ".", payload, ".sig"), "token header is not a JSON object"},
      {absl::StrCat(B64("[1,2]"), ".", payload, ".sig"), "token header is not a JSON object"},
      {absl::StrCat(B64(R"({"kid":"rsa-1"})"), ".", payload, ".sig"),
       "token header has no \"alg\""},
      {absl::StrCat(B64(R"({"alg":256})"), ".", payload, ".sig"),
       "token header \"alg\" is a number, expected a string"},
      {absl::StrCat(B64(R"({"alg":"RS512"})"), ".", payload, ".sig"),
       "alg \"RS512\" is not accepted"},
      {absl::StrCat(B64(R"({"alg":"RS256","kid":5})"), ".", payload, ".sig"),
       "token header \"kid\" is a number, expected a string"},
      {absl::StrCat(header, ".", payload, ".sig!"),
       "token signature is not valid base64url: invalid character \"!\" at offset 3"},
      {absl::StrCat(header, ".", payload, ".", B64("short")),
       "RS256 signature is 5 bytes; expected 256 (the modulus size)"},
      {std::string(20000, 'a'), "token is 20000 bytes; the limit is 16384"},
      {absl::StrCat(B64(std::string(3000, ' ')), ".", payload, ".sig"),
       "token header is larger than 2048 bytes"},
  };
  for (const Case& c : cases) {
    ExpectRejected(Verify(c.token), c.error);
  }
}

TEST_F(JwtTest, SignedGarbagePayloadRejected) {
  // The signature is good, but the payload is not a JSON object.
  for (const char* payload : {"not json", "[1]", "\"str\"", "{\"exp\":"}) {
    ExpectRejected(
        Verify(SignToken("EdDSA", ed_, "", Header("EdDSA", "ed-1"), payload)),
        "token payload is not a JSON object");
  }
}

TEST_F(JwtTest, ErrorsNeverContainTheToken) {
  Struct claims = GoodClaims();
  Set(&claims, "exp", absl::StrCat(absl::ToUnixSeconds(kNow) - 3600));
  const std::string expired = Rs256(claims);
  const std::string bad_kid = Rs256(GoodClaims(), "nope");
  for (const std::string& token : {expired, bad_kid}) {
    auto result = Verify(token);
    ASSERT_FALSE(result.ok());
    const std::string message = Msg(result.status());
    const std::string signature = token.substr(token.rfind('.') + 1);
    const std::string payload = token.substr(token.find('.') + 1, 40);
    EXPECT_THAT(message, Not(HasSubstr(signature.substr(0, 16))));
    EXPECT_THAT(message, Not(HasSubstr(payload)));
  }
  // A long kid is cut short and escaped.
  const std::string long_kid = std::string(500, 'k') + "\n";
  auto result = Verify(Rs256(GoodClaims(), long_kid));
  ASSERT_FALSE(result.ok());
  EXPECT_LT(result.status().message().size(), 200u);
}

TEST_F(JwtTest, RandomInputNeverCrashes) {
  std::mt19937 rng(12345);
  const std::string good = Es256(GoodClaims());
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x01\xff";
  auto verifier = Verifier();
  for (int i = 0; i < 3000; ++i) {
    std::string token;
    if (i % 2 == 0) {
      // Mutations of a good token.
      token = good;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        const size_t at = rng() % token.size();
        switch (rng() % 3) {
          case 0:
            token[at] = alphabet[rng() % alphabet.size()];
            break;
          case 1:
            token.erase(at, 1 + rng() % 8);
            break;
          default:
            token.insert(at, 1, alphabet[rng() % alphabet.size()]);
        }
        if (token.empty()) token = ".";
      }
    } else {
      const size_t len = rng() % 200;
      for (size_t j = 0; j < len; ++j) token.push_back(alphabet[rng() % alphabet.size()]);
    }
    auto result = verifier->Verify(token, kNow);
    if (!result.ok()) {
      EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << token;
      EXPECT_FALSE(result.status().message().empty());
    } else {
      EXPECT_EQ(token, good);  // only the untouched token can verify
    }
  }
}

// ---------------------------------------------------------------------------
// Options and helpers.

TEST_F(JwtTest, CreateRejectsBadOptions) {
  struct Case {
    std::function<void(JwtVerifierOptions*)> change;
    std::string error;
  };
  const Case cases[] = {
      {[](auto* o) { o->algorithms = {"RS256", "none"}; }, "alg \"none\" can never be allowed"},
      {[](auto* o) { o->algorithms = {"RS384"}; }, "unsupported algorithm \"RS384\""},
      {[](auto* o) { o->algorithms.clear(); }, "no algorithm is allowed"},
      {[](auto* o) { o->issuers.clear(); }, "at least one issuer is required"},
      {[](auto* o) { o->audiences.clear(); }, "at least one audience is required"},
      {[](auto* o) { o->audiences = {""}; }, "an issuer or audience is empty"},
      {[](auto* o) { o->clock_skew = absl::Seconds(301); }, "clock skew 5m1s is outside 0s..5m"},
      {[](auto* o) { o->clock_skew = -absl::Seconds(1); }, "is outside 0s..5m"},
      {[](auto* o) { o->roles_claim.clear(); }, "roles claim name is empty"},
      {[](auto* o) { o->max_token_bytes = 10; }, "max_token_bytes"},
  };
  for (const Case& c : cases) {
    JwtVerifierOptions options = Options();
    c.change(&options);
    auto verifier = JwtVerifier::Create(options, keys_);
    ASSERT_FALSE(verifier.ok()) << c.error;
    EXPECT_EQ(verifier.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(verifier.status()), HasSubstr(c.error));
  }
  EXPECT_FALSE(JwtVerifier::Create(Options(), nullptr).ok());
}

TEST(BearerTokenTest, ParsesTheAuthorizationHeader) {
  auto token = BearerToken("Bearer abc.def.ghi");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*token, "abc.def.ghi");
  token = BearerToken("  bearer   abc.def.ghi ");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*token, "abc.def.ghi");
  EXPECT_THAT(Msg(BearerToken("").status()), HasSubstr("no Authorization header"));
  EXPECT_THAT(Msg(BearerToken("Basic dXNlcjpwdw==").status()),
              HasSubstr("Authorization scheme \"Basic\" is not Bearer"));
  EXPECT_THAT(Msg(BearerToken("Bearer").status()), HasSubstr("has no token"));
  EXPECT_THAT(Msg(BearerToken("Bearer    ").status()), HasSubstr("has no token"));
}

}  // namespace
}  // namespace pdp::service
