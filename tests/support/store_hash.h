// What the store computes for a rule-set version, recomputed independently
// by the end-to-end tests (tests/integration_test.cc, crash_safety_test.cc)
// to check what pdpd stored and reported.
#ifndef PDP_TESTS_SUPPORT_STORE_HASH_H_
#define PDP_TESTS_SUPPORT_STORE_HASH_H_

#include <string>

#include "pdp/v1/rules.pb.h"

namespace pdp::e2e {

// Protobuf's deterministic encoding, as the store hashes it.
std::string CanonicalBytes(const v1::RuleSet& rule_set);

// Lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(const std::string& bytes);

}  // namespace pdp::e2e

#endif  // PDP_TESTS_SUPPORT_STORE_HASH_H_
