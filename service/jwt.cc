// JWT verification against JWKS files; see jwt.h.
//
// The stages, in the order a token meets them: size limit, split, strict
// base64url, header JSON, algorithm allow-list, key choice by kid, signature
// (OpenSSL EVP), and only then the payload: exp, nbf, iat, iss, aud, subject,
// roles, amr/acr.
//
// Tested by tests/jwt_test.cc.
#include "service/jwt.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/absl_compat.h"
#include "google/protobuf/util/json_util.h"

namespace pdp::service {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// ---------------------------------------------------------------------------
// Algorithms and key kinds.

enum class Alg { kRs256 = 0, kEs256 = 1, kEdDsa = 2, kHs256 = 3 };

struct AlgName {
  Alg alg;
  const char* name;
};
constexpr AlgName kAlgNames[] = {
    {Alg::kRs256, "RS256"},
    {Alg::kEs256, "ES256"},
    {Alg::kEdDsa, "EdDSA"},
    {Alg::kHs256, "HS256"},
};

std::optional<Alg> ParseAlg(std::string_view name) {
  for (const AlgName& a : kAlgNames) {
    if (name == a.name) return a.alg;
  }
  return std::nullopt;
}

const char* AlgToString(Alg alg) {
  for (const AlgName& a : kAlgNames) {
    if (a.alg == alg) return a.name;
  }
  return "?";
}

unsigned AlgBit(Alg alg) { return 1u << static_cast<unsigned>(alg); }

enum class KeyKind { kRsa, kEcP256, kEd25519, kOct };

const char* KindToString(KeyKind kind) {
  switch (kind) {
    case KeyKind::kRsa:
      return "an RSA key";
    case KeyKind::kEcP256:
      return "an EC P-256 key";
    case KeyKind::kEd25519:
      return "an Ed25519 key";
    case KeyKind::kOct:
      return "a symmetric (oct) key";
  }
  return "?";
}

// The one kind of key each algorithm verifies with.
KeyKind KindFor(Alg alg) {
  switch (alg) {
    case Alg::kRs256:
      return KeyKind::kRsa;
    case Alg::kEs256:
      return KeyKind::kEcP256;
    case Alg::kEdDsa:
      return KeyKind::kEd25519;
    case Alg::kHs256:
      return KeyKind::kOct;
  }
  return KeyKind::kOct;
}

// A JWK's own "alg" member, when set, restricts the key to that algorithm.
// "Ed25519" is the fully-specified name (RFC 9864) for EdDSA over Ed25519.
bool JwkAlgAllows(const std::string& jwk_alg, Alg alg) {
  if (jwk_alg.empty()) return true;
  if (alg == Alg::kEdDsa && jwk_alg == "Ed25519") return true;
  return jwk_alg == AlgToString(alg);
}

// ---------------------------------------------------------------------------
// OpenSSL ownership.

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, ParamFree>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;

const unsigned char* Bytes(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// ---------------------------------------------------------------------------
// Text helpers.

// A string from untrusted input, quoted, escaped and cut to a readable size.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out = "\"";
  absl::StrAppend(&out, absl::CHexEscape(ToAbsl(s.substr(0, kMax))));
  if (s.size() > kMax) absl::StrAppend(&out, "...");
  absl::StrAppend(&out, "\"");
  return out;
}

std::string QuoteList(const std::vector<std::string>& items, size_t max_items) {
  std::vector<std::string> quoted;
  for (size_t i = 0; i < items.size() && i < max_items; ++i) quoted.push_back(Quote(items[i]));
  std::string out = absl::StrJoin(quoted, ", ");
  if (items.size() > max_items) absl::StrAppend(&out, ", ... (", items.size(), " in all)");
  return out;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string FormatSeconds(absl::Duration d) {
  return absl::FormatDuration(absl::Ceil(d, absl::Seconds(1)));
}

const char* ValueKind(const Value& v) {
  switch (v.kind_case()) {
    case Value::kNullValue:
      return "null";
    case Value::kNumberValue:
      return "a number";
    case Value::kStringValue:
      return "a string";
    case Value::kBoolValue:
      return "a bool";
    case Value::kStructValue:
      return "an object";
    case Value::kListValue:
      return "an array";
    default:
      return "empty";
  }
}

// Strict base64url (RFC 7515 section 2): the URL-safe alphabet, no padding,
// no whitespace, and the canonical encoding of the bytes it decodes to.
absl::StatusOr<std::string> DecodeBase64Url(std::string_view in) {
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '=') {
      return absl::InvalidArgumentError(
          absl::StrCat("padding '=' at offset ", i, " (base64url here has none)"));
    }
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid character ", Quote(std::string_view(&c, 1)), " at offset ", i));
    }
  }
  if (in.size() % 4 == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("impossible length ", in.size(), " (a multiple of 4 plus 1)"));
  }
  std::string out;
  if (!absl::WebSafeBase64Unescape(ToAbsl(in), &out)) {
    return absl::InvalidArgumentError("not decodable");
  }
  if (absl::WebSafeBase64Escape(out) != ToAbsl(in)) {
    return absl::InvalidArgumentError("not canonical (stray bits in the last character)");
  }
  return out;
}

// Decoded size of `encoded_len` base64url characters, rounded up.
size_t DecodedSize(size_t encoded_len) { return (encoded_len * 3 + 3) / 4; }

// A JSON object, parsed by protobuf's JSON mapping. The parser's message is
// not passed on: it may quote the input.
absl::StatusOr<Struct> ParseJsonObject(const std::string& json) {
  Struct out;
  google::protobuf::util::JsonParseOptions options;
  auto status = google::protobuf::util::JsonStringToMessage(json, &out, options);
  if (!status.ok()) return absl::InvalidArgumentError("not a JSON object");
  return out;
}

const Value* FindField(const Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? nullptr : &it->second;
}

// A claim by name: first as a top-level member (whose name may contain
// dots), then as a dotted path through nested objects.
const Value* FindClaim(const Struct& claims, const std::string& name) {
  if (const Value* v = FindField(claims, name)) return v;
  if (name.find('.') == std::string::npos) return nullptr;
  const Struct* current = &claims;
  const Value* found = nullptr;
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    if (current == nullptr) return nullptr;
    found = FindField(*current, std::string(part));
    if (found == nullptr) return nullptr;
    current = found->kind_case() == Value::kStructValue ? &found->struct_value() : nullptr;
  }
  return found;
}

absl::Status Reject(std::string_view message) {
  return absl::UnauthenticatedError(ToAbsl(message));
}

}  // namespace

// ---------------------------------------------------------------------------
// Key snapshot.

struct JwksKeySet::Snapshot {
  struct Key {
    Key() = default;
    Key(Key&&) = default;
    Key& operator=(Key&&) = default;
    ~Key() {
      if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
    }
    JwkInfo info;
    KeyKind kind = KeyKind::kOct;
    std::shared_ptr<EVP_PKEY> pkey;  // null for oct keys
    std::string secret;              // oct keys only
  };
  std::vector<Key> keys;  // file order
  std::vector<std::string> skipped;
};

namespace {

using Key = JwksKeySet::Snapshot::Key;

// A base64url member of a JWK, decoded; its name goes into errors, never its
// value.
absl::StatusOr<std::string> JwkBytes(const Struct& jwk, const char* name) {
  const Value* v = FindField(jwk, name);
  if (v == nullptr) return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is missing"));
  if (v->kind_case() != Value::kStringValue) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", name, "\" is ", ValueKind(*v), ", expected a base64url string"));
  }
  auto bytes = DecodeBase64Url(v->string_value());
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", name, "\" is not valid base64url: ", bytes.status().message()));
  }
  if (bytes->empty()) return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is empty"));
  return bytes;
}

// Optional string member; error when present with another type.
absl::StatusOr<std::string> JwkString(const Struct& jwk, const char* name) {
  const Value* v = FindField(jwk, name);
  if (v == nullptr) return std::string();
  if (v->kind_case() != Value::kStringValue) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", name, "\" is ", ValueKind(*v), ", expected a string"));
  }
  return v->string_value();
}

absl::Status OpenSslError(std::string_view what) {
  ERR_clear_error();
  return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " (rejected by OpenSSL)"));
}

absl::StatusOr<PkeyPtr> FromData(const char* type, OSSL_PARAM_BLD* bld, std::string_view what) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) return OpenSslError(what);
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpenSslError(what);
  }
  return PkeyPtr(raw);
}

absl::Status ParseRsa(const Struct& jwk, const JwksOptions& options, Key* key) {
  auto n = JwkBytes(jwk, "n");
  if (!n.ok()) return n.status();
  auto e = JwkBytes(jwk, "e");
  if (!e.ok()) return e.status();
  BnPtr bn_n(BN_bin2bn(Bytes(*n), static_cast<int>(n->size()), nullptr));
  BnPtr bn_e(BN_bin2bn(Bytes(*e), static_cast<int>(e->size()), nullptr));
  if (!bn_n || !bn_e) return OpenSslError("RSA numbers");
  const int bits = BN_num_bits(bn_n.get());
  if (bits < options.min_rsa_bits) {
    return absl::InvalidArgumentError(absl::StrCat("RSA modulus is ", bits,
                                                   " bits; at least ", options.min_rsa_bits,
                                                   " are required"));
  }
  if (bits > OPENSSL_RSA_MAX_MODULUS_BITS) {
    return absl::InvalidArgumentError(absl::StrCat("RSA modulus is ", bits, " bits; at most ",
                                                   OPENSSL_RSA_MAX_MODULUS_BITS, " are accepted"));
  }
  if (!BN_is_odd(bn_e.get()) || BN_num_bits(bn_e.get()) < 2 ||
      BN_num_bits(bn_e.get()) > OPENSSL_RSA_MAX_PUBEXP_BITS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RSA exponent \"e\" must be odd, at least 3 and at most ", OPENSSL_RSA_MAX_PUBEXP_BITS,
        " bits"));
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return OpenSslError("RSA parameters");
  }
  auto pkey = FromData("RSA", bld.get(), "RSA public key");
  if (!pkey.ok()) return pkey.status();
  key->kind = KeyKind::kRsa;
  key->info.bits = bits;
  key->pkey.reset(pkey->release(), PkeyFree());
  return absl::OkStatus();
}

absl::Status ParseEcP256(const Struct& jwk, Key* key) {
  auto x = JwkBytes(jwk, "x");
  if (!x.ok()) return x.status();
  auto y = JwkBytes(jwk, "y");
  if (!y.ok()) return y.status();
  // RFC 7518 6.2.1.2: each coordinate is the full size of the field.
  if (x->size() != 32 || y->size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("P-256 coordinates must be 32 bytes each; \"x\" is ", x->size(),
                     " and \"y\" is ", y->size()));
  }
  std::string point = absl::StrCat("\x04", *x, *y);  // uncompressed point
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1",
                                      0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return OpenSslError("EC parameters");
  }
  auto pkey = FromData("EC", bld.get(), "the point (x, y) is not on the P-256 curve");
  if (!pkey.ok()) return pkey.status();
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey->get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return OpenSslError("the point (x, y) is not a valid P-256 public key");
  }
  key->kind = KeyKind::kEcP256;
  key->info.bits = 256;
  key->pkey.reset(pkey->release(), PkeyFree());
  return absl::OkStatus();
}

absl::Status ParseEd25519(const Struct& jwk, Key* key) {
  auto x = JwkBytes(jwk, "x");
  if (!x.ok()) return x.status();
  if (x->size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("Ed25519 public key \"x\" must be 32 bytes, not ", x->size()));
  }
  EVP_PKEY* raw = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, Bytes(*x), x->size());
  if (raw == nullptr) return OpenSslError("Ed25519 public key");
  key->kind = KeyKind::kEd25519;
  key->info.bits = 256;
  key->pkey.reset(raw, PkeyFree());
  return absl::OkStatus();
}

absl::Status ParseOct(const Struct& jwk, const JwksOptions& options, Key* key) {
  if (!options.allow_symmetric_keys) {
    return absl::InvalidArgumentError(
        "symmetric keys (kty \"oct\") are refused; allow them, and HS256, explicitly to use one");
  }
  auto k = JwkBytes(jwk, "k");
  if (!k.ok()) return k.status();
  if (k->size() < options.min_hmac_key_bytes) {
    const size_t size = k->size();
    OPENSSL_cleanse(k->data(), k->size());
    return absl::InvalidArgumentError(absl::StrCat("HMAC secret is ", size, " bytes; at least ",
                                                   options.min_hmac_key_bytes, " are required"));
  }
  key->kind = KeyKind::kOct;
  key->info.bits = static_cast<int>(k->size() * 8);
  key->secret = *std::move(k);
  return absl::OkStatus();
}

// One entry of "keys". Fills *key, or sets *skip to why the entry is not a
// key pdp uses, or returns an error.
absl::Status ParseJwk(const Struct& jwk, const JwksOptions& options, Key* key, std::string* skip) {
  auto kty = JwkString(jwk, "kty");
  if (!kty.ok()) return kty.status();
  if (kty->empty()) return absl::InvalidArgumentError("\"kty\" is missing");
  auto kid = JwkString(jwk, "kid");
  if (!kid.ok()) return kid.status();
  auto use = JwkString(jwk, "use");
  if (!use.ok()) return use.status();
  auto alg = JwkString(jwk, "alg");
  if (!alg.ok()) return alg.status();
  auto crv = JwkString(jwk, "crv");
  if (!crv.ok()) return crv.status();
  key->info.kid = *kid;
  key->info.kty = *kty;
  key->info.crv = *crv;
  key->info.alg = *alg;

  if (!use->empty() && *use != "sig") {
    *skip = absl::StrCat("use ", Quote(*use), " is not \"sig\"");
    return absl::OkStatus();
  }
  if (const Value* ops = FindField(jwk, "key_ops")) {
    if (ops->kind_case() != Value::kListValue) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"key_ops\" is ", ValueKind(*ops), ", expected an array"));
    }
    const auto& values = ops->list_value().values();
    if (std::none_of(values.begin(), values.end(), [](const Value& v) {
          return v.kind_case() == Value::kStringValue && v.string_value() == "verify";
        })) {
      *skip = "\"key_ops\" does not include \"verify\"";
      return absl::OkStatus();
    }
  }
  // A verification key set holds public keys only.
  if (*kty != "oct" && FindField(jwk, "d") != nullptr) {
    return absl::InvalidArgumentError(
        "holds a private key (member \"d\"); publish only public keys to pdp");
  }

  auto skip_alg = [&](const char* expected) {
    *skip = absl::StrCat("alg ", Quote(*alg), " is not supported for kty ", Quote(*kty),
                         " (pdp verifies ", expected, ")");
    return absl::OkStatus();
  };
  if (*kty == "RSA") {
    if (!alg->empty() && *alg != "RS256") return skip_alg("RS256");
    return ParseRsa(jwk, options, key);
  }
  if (*kty == "EC") {
    if (*crv != "P-256") {
      *skip = absl::StrCat("curve ", Quote(*crv),
                           " is not supported (pdp verifies ES256 on P-256)");
      return absl::OkStatus();
    }
    if (!alg->empty() && *alg != "ES256") return skip_alg("ES256");
    return ParseEcP256(jwk, key);
  }
  if (*kty == "OKP") {
    if (*crv != "Ed25519") {
      *skip = absl::StrCat("curve ", Quote(*crv),
                           " is not supported (pdp verifies EdDSA on Ed25519)");
      return absl::OkStatus();
    }
    if (!alg->empty() && *alg != "EdDSA" && *alg != "Ed25519") {
      return skip_alg("EdDSA");
    }
    return ParseEd25519(jwk, key);
  }
  if (*kty == "oct") {
    if (!alg->empty() && *alg != "HS256") return skip_alg("HS256");
    return ParseOct(jwk, options, key);
  }
  *skip = absl::StrCat("kty ", Quote(*kty), " is not supported");
  return absl::OkStatus();
}

std::string DescribeEntry(size_t index, const Struct& jwk) {
  std::string out = absl::StrCat("keys[", index, "]");
  std::vector<std::string> parts;
  const Value* kid = FindField(jwk, "kid");
  if (kid != nullptr && kid->kind_case() == Value::kStringValue) {
    parts.push_back(absl::StrCat("kid ", Quote(kid->string_value())));
  }
  const Value* kty = FindField(jwk, "kty");
  if (kty != nullptr && kty->kind_case() == Value::kStringValue) {
    parts.push_back(absl::StrCat("kty ", kty->string_value().substr(0, 16)));
  }
  if (!parts.empty()) absl::StrAppend(&out, " (", absl::StrJoin(parts, ", "), ")");
  return out;
}

absl::StatusOr<std::shared_ptr<const JwksKeySet::Snapshot>> ParseJwks(
    const std::string& json, const JwksOptions& options) {
  if (json.size() > options.max_file_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("JWKS is ", json.size(),
                                                     " bytes; the limit is ",
                                                     options.max_file_bytes));
  }
  auto doc = ParseJsonObject(json);
  if (!doc.ok()) return absl::InvalidArgumentError("JWKS is not a JSON object");
  const Value* keys = FindField(*doc, "keys");
  if (keys == nullptr) return absl::InvalidArgumentError("JWKS has no \"keys\" member");
  if (keys->kind_case() != Value::kListValue) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWKS \"keys\" is ", ValueKind(*keys), ", expected an array"));
  }
  const auto& entries = keys->list_value().values();
  if (static_cast<size_t>(entries.size()) > options.max_keys) {
    return absl::ResourceExhaustedError(absl::StrCat("JWKS has ", entries.size(),
                                                     " keys; the limit is ", options.max_keys));
  }
  auto snapshot = std::make_shared<JwksKeySet::Snapshot>();
  snapshot->keys.reserve(entries.size());
  for (int i = 0; i < entries.size(); ++i) {
    const Value& entry = entries[i];
    if (entry.kind_case() != Value::kStructValue) {
      return absl::InvalidArgumentError(
          absl::StrCat("keys[", i, "] is ", ValueKind(entry), ", expected an object"));
    }
    const Struct& jwk = entry.struct_value();
    Key key;
    std::string skip;
    absl::Status status = ParseJwk(jwk, options, &key, &skip);
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat(DescribeEntry(i, jwk), ": ", status.message()));
    }
    if (!skip.empty()) {
      snapshot->skipped.push_back(absl::StrCat(DescribeEntry(i, jwk), ": skipped: ", skip));
      continue;
    }
    for (const Key& other : snapshot->keys) {
      if (other.kind == key.kind && other.info.kid == key.info.kid) {
        return absl::InvalidArgumentError(absl::StrCat(
            DescribeEntry(i, jwk), ": duplicate kid for ", KindToString(key.kind),
            key.info.kid.empty() ? " (two such keys without a kid)" : ""));
      }
    }
    snapshot->keys.push_back(std::move(key));
  }
  return std::shared_ptr<const JwksKeySet::Snapshot>(std::move(snapshot));
}

}  // namespace

// ---------------------------------------------------------------------------
// JwksKeySet.

JwksKeySet::JwksKeySet(std::string path, JwksOptions options)
    : path_(std::move(path)), options_(options) {}

JwksKeySet::~JwksKeySet() = default;

absl::StatusOr<std::shared_ptr<JwksKeySet>> JwksKeySet::Open(std::string path,
                                                             JwksOptions options) {
  if (path.empty()) return absl::InvalidArgumentError("JWKS path is empty");
  std::shared_ptr<JwksKeySet> set(new JwksKeySet(std::move(path), options));
  absl::MutexLock lock(&set->reload_mu_);
  absl::Status status = set->LoadLocked();
  if (!status.ok()) return status;
  return set;
}

absl::StatusOr<std::shared_ptr<JwksKeySet>> JwksKeySet::FromJson(std::string_view json,
                                                                 JwksOptions options) {
  auto snapshot = ParseJwks(std::string(json), options);
  if (!snapshot.ok()) return snapshot.status();
  std::shared_ptr<JwksKeySet> set(new JwksKeySet("", options));
  absl::MutexLock lock(&set->mu_);
  set->snapshot_ = *std::move(snapshot);
  return set;
}

absl::Status JwksKeySet::LoadLocked() {
  // Stamp and contents come from the same open file, so a file replaced
  // while it is read is seen as changed on the next ReloadIfChanged.
  const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::NotFoundError(absl::StrCat(path_, ": cannot open: ", strerror(err)));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": not a regular file"));
  }
  if (static_cast<size_t>(st.st_size) > options_.max_file_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(path_, ": ", st.st_size,
                                                     " bytes; the limit is ",
                                                     options_.max_file_bytes));
  }
  std::string json;
  char buffer[8192];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return absl::UnavailableError(absl::StrCat(path_, ": read failed: ", strerror(err)));
    }
    if (n == 0) break;
    json.append(buffer, static_cast<size_t>(n));
    if (json.size() > options_.max_file_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path_, ": larger than the limit of ", options_.max_file_bytes, " bytes"));
    }
  }
  auto snapshot = ParseJwks(json, options_);
  OPENSSL_cleanse(json.data(), json.size());  // may hold HMAC secrets
  if (!snapshot.ok()) {
    return absl::Status(snapshot.status().code(),
                        absl::StrCat(path_, ": ", snapshot.status().message()));
  }
  {
    absl::MutexLock lock(&mu_);
    snapshot_ = *std::move(snapshot);
  }
  stamp_.valid = true;
  stamp_.dev = st.st_dev;
  stamp_.ino = st.st_ino;
  stamp_.size = st.st_size;
  stamp_.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL +  // NOLINT
                    st.st_mtim.tv_nsec;
  return absl::OkStatus();
}

absl::StatusOr<bool> JwksKeySet::ReloadIfChanged() {
  if (path_.empty()) return absl::FailedPreconditionError("key set was not loaded from a file");
  absl::MutexLock lock(&reload_mu_);
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) {
    const int err = errno;
    return absl::NotFoundError(absl::StrCat(path_, ": cannot stat: ", strerror(err),
                                            " (keeping the keys loaded before)"));
  }
  const long long mtime_ns =  // NOLINT(runtime/int)
      static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  if (stamp_.valid && stamp_.dev == st.st_dev && stamp_.ino == st.st_ino &&
      stamp_.size == st.st_size && stamp_.mtime_ns == mtime_ns) {
    return false;
  }
  absl::Status status = LoadLocked();
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(status.message(), " (keeping the keys loaded before)"));
  }
  return true;
}

absl::Status JwksKeySet::Reload() {
  if (path_.empty()) return absl::FailedPreconditionError("key set was not loaded from a file");
  absl::MutexLock lock(&reload_mu_);
  absl::Status status = LoadLocked();
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(status.message(), " (keeping the keys loaded before)"));
  }
  return absl::OkStatus();
}

std::shared_ptr<const JwksKeySet::Snapshot> JwksKeySet::snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

std::vector<JwkInfo> JwksKeySet::keys() const {
  std::vector<JwkInfo> out;
  for (const Key& key : snapshot()->keys) out.push_back(key.info);
  return out;
}

std::vector<std::string> JwksKeySet::skipped() const { return snapshot()->skipped; }

// ---------------------------------------------------------------------------
// Signatures.

namespace {

bool DigestVerify(EVP_PKEY* pkey, const EVP_MD* md, bool pkcs1, std::string_view data,
                  const std::string& signature) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, pkey) == 1 &&
            (!pkcs1 || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1) &&
            EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(),
                             reinterpret_cast<const unsigned char*>(data.data()),
                             data.size()) == 1;
  ERR_clear_error();
  return ok;
}

// JWS ES256 signatures are r||s, 32 bytes each (RFC 7518 3.4); OpenSSL
// verifies DER.
std::optional<std::string> RawEcdsaToDer(const std::string& raw) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BnPtr r(BN_bin2bn(Bytes(raw), 32, nullptr));
  BnPtr s(BN_bin2bn(Bytes(raw) + 32, 32, nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  r.release();  // owned by sig now
  s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return std::nullopt;
  std::string der(static_cast<size_t>(len), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) return std::nullopt;
  return der;
}

// OK when `signature` is valid for `signing_input` under `key`; otherwise
// the reason (a wrong size, or a signature that does not verify).
absl::Status VerifySignature(const Key& key, Alg alg, std::string_view signing_input,
                             const std::string& signature) {
  const std::string kid = Quote(key.info.kid);
  auto bad_size = [&](size_t expected, const char* form) {
    return Reject(absl::StrCat(AlgToString(alg), " signature is ", signature.size(),
                               " bytes; expected ", expected, form));
  };
  bool ok = false;
  switch (alg) {
    case Alg::kRs256: {
      const size_t size = static_cast<size_t>(EVP_PKEY_get_size(key.pkey.get()));
      if (signature.size() != size) return bad_size(size, " (the modulus size)");
      ok = DigestVerify(key.pkey.get(), EVP_sha256(), /*pkcs1=*/true, signing_input, signature);
      break;
    }
    case Alg::kEs256: {
      if (signature.size() != 64) return bad_size(64, " (raw r||s, not DER)");
      auto der = RawEcdsaToDer(signature);
      ok = der.has_value() &&
           DigestVerify(key.pkey.get(), EVP_sha256(), /*pkcs1=*/false, signing_input, *der);
      break;
    }
    case Alg::kEdDsa: {
      if (signature.size() != 64) return bad_size(64, "");
      ok = DigestVerify(key.pkey.get(), nullptr, /*pkcs1=*/false, signing_input, signature);
      break;
    }
    case Alg::kHs256: {
      if (signature.size() != 32) return bad_size(32, "");
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      ok = HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
                reinterpret_cast<const unsigned char*>(signing_input.data()),
                signing_input.size(), mac, &mac_len) != nullptr &&
           mac_len == 32 && CRYPTO_memcmp(mac, signature.data(), 32) == 0;
      OPENSSL_cleanse(mac, sizeof(mac));
      ERR_clear_error();
      break;
    }
  }
  if (!ok) {
    return Reject(absl::StrCat("signature does not verify with key ", kid, " (",
                               AlgToString(alg), ")"));
  }
  return absl::OkStatus();
}

// Picks the key for a token: by kid when it has one (never falling back to
// another key), else the only key that fits the algorithm.
absl::StatusOr<const Key*> ChooseKey(const JwksKeySet::Snapshot& snapshot, Alg alg,
                                     const std::optional<std::string>& kid) {
  const KeyKind kind = KindFor(alg);
  if (kid.has_value()) {
    const Key* same_kid = nullptr;
    for (const Key& key : snapshot.keys) {
      if (key.info.kid != *kid) continue;
      if (key.kind == kind && JwkAlgAllows(key.info.alg, alg)) return &key;
      if (same_kid == nullptr) same_kid = &key;
    }
    if (same_kid == nullptr) {
      std::vector<std::string> known;
      for (const Key& key : snapshot.keys) {
        if (!key.info.kid.empty()) known.push_back(key.info.kid);
      }
      return Reject(absl::StrCat("no key with kid ", Quote(*kid), " (known: ",
                                 known.empty() ? "none" : QuoteList(known, 8), ")"));
    }
    if (same_kid->kind != kind) {
      return Reject(absl::StrCat("key ", Quote(*kid), " is ", KindToString(same_kid->kind),
                                 " and cannot verify ", AlgToString(alg)));
    }
    return Reject(absl::StrCat("key ", Quote(*kid), " is restricted to alg ",
                               Quote(same_kid->info.alg), " and cannot verify ",
                               AlgToString(alg)));
  }
  const Key* only = nullptr;
  int count = 0;
  for (const Key& key : snapshot.keys) {
    if (key.kind == kind && JwkAlgAllows(key.info.alg, alg)) {
      only = &key;
      ++count;
    }
  }
  if (count == 0) {
    return Reject(absl::StrCat("token has no kid and no loaded key can verify ",
                               AlgToString(alg)));
  }
  if (count > 1) {
    return Reject(absl::StrCat("token has no kid and ", count, " loaded keys could verify ",
                               AlgToString(alg), "; a kid is required"));
  }
  return only;
}

// ---------------------------------------------------------------------------
// Claims (read only after the signature verified).

// A NumericDate claim (RFC 7519 2): seconds since the epoch, possibly
// fractional. nullopt when absent.
absl::StatusOr<std::optional<absl::Time>> NumericDate(const Struct& claims, const char* name) {
  const Value* v = FindField(claims, name);
  if (v == nullptr) return std::optional<absl::Time>();
  if (v->kind_case() != Value::kNumberValue) {
    return Reject(absl::StrCat("\"", name, "\" is ", ValueKind(*v),
                               ", expected a NumericDate (seconds since 1970)"));
  }
  const double seconds = v->number_value();
  constexpr double kYear9999 = 253402300799.0;
  if (!std::isfinite(seconds) || seconds < 0 || seconds > kYear9999) {
    return Reject(absl::StrCat("\"", name, "\" is out of range"));
  }
  return std::optional<absl::Time>(absl::UnixEpoch() + absl::Seconds(seconds));
}

// A claim holding one string or an array of strings.
absl::StatusOr<std::vector<std::string>> StringOrList(const Value& v, std::string_view what) {
  std::vector<std::string> out;
  if (v.kind_case() == Value::kStringValue) {
    out.push_back(v.string_value());
    return out;
  }
  if (v.kind_case() != Value::kListValue) {
    return Reject(absl::StrCat(ToAbsl(what), " is ", ValueKind(v),
                               ", expected a string or an array of strings"));
  }
  const auto& values = v.list_value().values();
  for (int i = 0; i < values.size(); ++i) {
    if (values[i].kind_case() != Value::kStringValue) {
      return Reject(absl::StrCat(ToAbsl(what), "[", i, "] is ", ValueKind(values[i]),
                                 ", expected a string"));
    }
    out.push_back(values[i].string_value());
  }
  return out;
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

// ---------------------------------------------------------------------------
// JwtVerifier.

JwtVerifier::JwtVerifier(JwtVerifierOptions options, std::shared_ptr<JwksKeySet> keys)
    : options_(std::move(options)), keys_(std::move(keys)) {}

absl::StatusOr<std::unique_ptr<const JwtVerifier>> JwtVerifier::Create(
    JwtVerifierOptions options, std::shared_ptr<JwksKeySet> keys) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("JWT verifier: ", parts...));
  };
  if (keys == nullptr) return invalid("no key set");
  if (options.algorithms.empty()) return invalid("no algorithm is allowed");
  unsigned allowed = 0;
  for (const std::string& name : options.algorithms) {
    if (absl::EqualsIgnoreCase(ToAbsl(name), "none")) {
      return invalid("alg \"none\" can never be allowed");
    }
    std::optional<Alg> alg = ParseAlg(name);
    if (!alg.has_value()) {
      return invalid("unsupported algorithm ", Quote(name),
                     " (supported: RS256, ES256, EdDSA, HS256)");
    }
    allowed |= AlgBit(*alg);
  }
  if ((allowed & AlgBit(Alg::kHs256)) != 0 && !keys->options().allow_symmetric_keys) {
    return invalid("HS256 is allowed but the key set refuses symmetric keys "
                   "(set JwksOptions::allow_symmetric_keys)");
  }
  if (options.issuers.empty()) return invalid("at least one issuer is required");
  if (options.audiences.empty()) return invalid("at least one audience is required");
  for (const auto* list : {&options.issuers, &options.audiences}) {
    if (Contains(*list, "")) return invalid("an issuer or audience is empty");
  }
  if (options.clock_skew < absl::ZeroDuration() || options.clock_skew > absl::Seconds(300)) {
    return invalid("clock skew ", absl::FormatDuration(options.clock_skew),
                   " is outside 0s..5m");
  }
  if (options.subject_claim.empty()) return invalid("subject claim name is empty");
  if (options.roles_claim.empty()) return invalid("roles claim name is empty");
  if (options.max_token_bytes < 64 || options.max_token_bytes > (1u << 20)) {
    return invalid("max_token_bytes must be in 64..1048576");
  }
  if (options.max_header_bytes == 0 || options.max_payload_bytes == 0) {
    return invalid("header and payload size limits must be positive");
  }
  std::unique_ptr<JwtVerifier> verifier(new JwtVerifier(std::move(options), std::move(keys)));
  verifier->allowed_ = allowed;
  return std::unique_ptr<const JwtVerifier>(std::move(verifier));
}

absl::StatusOr<VerifiedToken> JwtVerifier::Verify(std::string_view token, absl::Time now) const {
  // 1. Shape.
  if (token.empty()) return Reject("token is empty");
  if (token.size() > options_.max_token_bytes) {
    return Reject(absl::StrCat("token is ", token.size(), " bytes; the limit is ",
                               options_.max_token_bytes));
  }
  const size_t dots = static_cast<size_t>(std::count(token.begin(), token.end(), '.'));
  if (dots != 2) {
    return Reject(absl::StrCat("token is malformed: ", dots + 1,
                               dots + 1 == 1 ? " part" : " parts",
                               ", expected 3 (header.payload.signature)",
                               dots == 4 ? "; encrypted tokens (JWE) are not supported" : ""));
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);
  const std::string_view signing_input = token.substr(0, dot2);
  if (header_b64.empty()) return Reject("token is malformed: the header is empty");
  if (payload_b64.empty()) return Reject("token is malformed: the payload is empty");
  if (signature_b64.empty()) {
    return Reject("token is malformed: the signature is empty (unsigned tokens are never trusted)");
  }

  // 2. Header: only alg, kid and crit are read.
  if (DecodedSize(header_b64.size()) > options_.max_header_bytes) {
    return Reject(absl::StrCat("token header is larger than ", options_.max_header_bytes,
                               " bytes"));
  }
  auto header_json = DecodeBase64Url(header_b64);
  if (!header_json.ok()) {
    return Reject(absl::StrCat("token header is not valid base64url: ",
                               header_json.status().message()));
  }
  auto header = ParseJsonObject(*header_json);
  if (!header.ok()) return Reject("token header is not a JSON object");
  const Value* alg_value = FindField(*header, "alg");
  if (alg_value == nullptr) return Reject("token header has no \"alg\"");
  if (alg_value->kind_case() != Value::kStringValue) {
    return Reject(absl::StrCat("token header \"alg\" is ", ValueKind(*alg_value),
                               ", expected a string"));
  }
  const std::string& alg_name = alg_value->string_value();
  if (absl::EqualsIgnoreCase(alg_name, "none")) {
    return Reject(absl::StrCat("alg ", Quote(alg_name),
                               " is not accepted: unsigned tokens are never trusted"));
  }
  std::optional<Alg> alg = ParseAlg(alg_name);
  if (!alg.has_value() || (allowed_ & AlgBit(*alg)) == 0) {
    return Reject(absl::StrCat("alg ", Quote(alg_name), " is not accepted (accepted: ",
                               absl::StrJoin(options_.algorithms, ", "), ")"));
  }
  if (FindField(*header, "crit") != nullptr) {
    return Reject("token header lists critical extensions (\"crit\") that pdp does not support");
  }
  std::optional<std::string> kid;
  if (const Value* kid_value = FindField(*header, "kid")) {
    if (kid_value->kind_case() != Value::kStringValue) {
      return Reject(absl::StrCat("token header \"kid\" is ", ValueKind(*kid_value),
                                 ", expected a string"));
    }
    kid = kid_value->string_value();
  }

  // 3. Key and signature. The snapshot stays alive while it is used even if
  // the keys are reloaded meanwhile.
  const std::shared_ptr<const JwksKeySet::Snapshot> snapshot = keys_->snapshot();
  auto key = ChooseKey(*snapshot, *alg, kid);
  if (!key.ok()) return key.status();
  auto signature = DecodeBase64Url(signature_b64);
  if (!signature.ok()) {
    return Reject(absl::StrCat("token signature is not valid base64url: ",
                               signature.status().message()));
  }
  absl::Status verified = VerifySignature(**key, *alg, signing_input, *signature);
  if (!verified.ok()) return verified;

  // 4. Claims, trusted from here on.
  if (DecodedSize(payload_b64.size()) > options_.max_payload_bytes) {
    return Reject(absl::StrCat("token payload is larger than ", options_.max_payload_bytes,
                               " bytes"));
  }
  auto payload_json = DecodeBase64Url(payload_b64);
  if (!payload_json.ok()) {
    return Reject(absl::StrCat("token payload is not valid base64url: ",
                               payload_json.status().message()));
  }
  auto claims = ParseJsonObject(*payload_json);
  if (!claims.ok()) return Reject("token payload is not a JSON object");

  const absl::Duration skew = options_.clock_skew;
  auto exp = NumericDate(*claims, "exp");
  if (!exp.ok()) return exp.status();
  if (!exp->has_value()) return Reject("token has no \"exp\" claim (an expiry is required)");
  if (now >= **exp + skew) {
    return Reject(absl::StrCat("token expired ", FormatSeconds(now - **exp), " ago (exp ",
                               Rfc3339(**exp), "; clock skew ",
                               absl::FormatDuration(skew), ")"));
  }
  auto nbf = NumericDate(*claims, "nbf");
  if (!nbf.ok()) return nbf.status();
  if (nbf->has_value() && now + skew < **nbf) {
    return Reject(absl::StrCat("token is not valid until ", Rfc3339(**nbf), " (",
                               FormatSeconds(**nbf - now), " from now; clock skew ",
                               absl::FormatDuration(skew), ")"));
  }
  auto iat = NumericDate(*claims, "iat");
  if (!iat.ok()) return iat.status();
  if (iat->has_value() && **iat > now + skew) {
    return Reject(absl::StrCat("token was issued in the future (iat ", Rfc3339(**iat), ", ",
                               FormatSeconds(**iat - now), " from now; clock skew ",
                               absl::FormatDuration(skew), ")"));
  }

  VerifiedToken out;
  out.algorithm = AlgToString(*alg);
  out.key_id = (*key)->info.kid;
  out.expires_at = **exp;

  const Value* iss = FindField(*claims, "iss");
  if (iss == nullptr) return Reject("token has no \"iss\" claim");
  if (iss->kind_case() != Value::kStringValue) {
    return Reject(absl::StrCat("\"iss\" is ", ValueKind(*iss), ", expected a string"));
  }
  if (!Contains(options_.issuers, iss->string_value())) {
    return Reject(absl::StrCat("issuer ", Quote(iss->string_value()), " is not accepted"));
  }
  out.issuer = iss->string_value();

  const Value* aud = FindField(*claims, "aud");
  if (aud == nullptr) return Reject("token has no \"aud\" claim");
  auto audiences = StringOrList(*aud, "\"aud\"");
  if (!audiences.ok()) return audiences.status();
  if (std::none_of(audiences->begin(), audiences->end(),
                   [&](const std::string& a) { return Contains(options_.audiences, a); })) {
    return Reject(absl::StrCat("audience [", QuoteList(*audiences, 4), "] is not accepted"));
  }
  out.audiences = *std::move(audiences);

  const std::string subject_name = Quote(options_.subject_claim);
  const Value* sub = FindClaim(*claims, options_.subject_claim);
  if (sub == nullptr) return Reject(absl::StrCat("token has no ", subject_name, " claim"));
  if (sub->kind_case() != Value::kStringValue) {
    return Reject(absl::StrCat("subject claim ", subject_name, " is ", ValueKind(*sub),
                               ", expected a string"));
  }
  if (sub->string_value().empty()) {
    return Reject(absl::StrCat("subject claim ", subject_name, " is empty"));
  }
  out.subject = sub->string_value();

  if (const Value* roles = FindClaim(*claims, options_.roles_claim)) {
    std::vector<std::string> raw;
    const std::string what = absl::StrCat("roles claim ", Quote(options_.roles_claim));
    if (roles->kind_case() == Value::kStringValue) {
      for (absl::string_view role :
           absl::StrSplit(roles->string_value(), absl::ByAnyChar(" ,\t"), absl::SkipEmpty())) {
        raw.emplace_back(role);
      }
    } else if (roles->kind_case() == Value::kNullValue) {
      // null: no roles
    } else {
      auto list = StringOrList(*roles, what);
      if (!list.ok()) return list.status();
      raw = *std::move(list);
    }
    absl::flat_hash_set<std::string> seen;
    for (std::string& role : raw) {
      if (!role.empty() && seen.insert(role).second) out.roles.push_back(std::move(role));
    }
  }

  if (const Value* amr = FindField(*claims, "amr")) {
    auto list = StringOrList(*amr, "\"amr\"");
    if (!list.ok()) return list.status();
    out.amr = *std::move(list);
  }
  if (const Value* acr = FindField(*claims, "acr")) {
    if (acr->kind_case() != Value::kStringValue) {
      return Reject(absl::StrCat("\"acr\" is ", ValueKind(*acr), ", expected a string"));
    }
    out.acr = acr->string_value();
  }
  out.mfa = Contains(options_.mfa_acr_values, out.acr) && !out.acr.empty();
  for (const std::string& method : out.amr) {
    if (Contains(options_.mfa_amr_values, method)) out.mfa = true;
  }
  out.claims = *std::move(claims);
  return out;
}

// ---------------------------------------------------------------------------
// Helpers for the gateway paths.

absl::StatusOr<std::string_view> BearerToken(std::string_view authorization) {
  authorization = FromAbsl(absl::StripAsciiWhitespace(ToAbsl(authorization)));
  if (authorization.empty()) return Reject("no Authorization header");
  const size_t space = authorization.find(' ');
  const std::string_view scheme = authorization.substr(0, space);
  if (!absl::EqualsIgnoreCase(ToAbsl(scheme), "Bearer")) {
    return Reject(absl::StrCat("Authorization scheme ", Quote(scheme), " is not Bearer"));
  }
  if (space == std::string_view::npos) return Reject("Authorization header has no token");
  std::string_view token =
      FromAbsl(absl::StripLeadingAsciiWhitespace(ToAbsl(authorization.substr(space + 1))));
  if (token.empty()) return Reject("Authorization header has no token");
  return token;
}

void ApplyToSubject(const VerifiedToken& token, v1::Subject* subject) {
  subject->Clear();
  subject->set_id(token.subject);
  for (const std::string& role : token.roles) subject->add_roles(role);
  auto& attributes = *subject->mutable_attributes();
  attributes["mfa"].set_bool_value(token.mfa);
  attributes["acr"].set_string_value(token.acr);
  auto* amr = attributes["amr"].mutable_list_value();
  for (const std::string& method : token.amr) amr->add_values()->set_string_value(method);
  attributes["iss"].set_string_value(token.issuer);
  for (const auto& [name, value] : token.claims.fields()) {
    switch (value.kind_case()) {
      case Value::kStringValue:
      case Value::kNumberValue:
      case Value::kBoolValue:
        attributes[absl::StrCat("token.", name)] = value;
        break;
      default:
        break;
    }
  }
}

}  // namespace pdp::service
