// Random generators for the differential test: valid pdp.v1.RuleSets and
// AuthorizeRequests drawn from small shared pools (resource types, actions,
// roles, zones, countries, CIDR anchors, attribute names and values), so
// that matches, non-matches and per-rule errors are all frequent. Everything
// is a pure function of the std::mt19937_64 passed in, so a seed reproduces
// a case exactly.
//
// Used by tests/differential_test.cc.
#ifndef PDP_TESTS_SUPPORT_RANDOM_RULES_H_
#define PDP_TESTS_SUPPORT_RANDOM_RULES_H_

#include <random>

#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"

namespace pdp::testing {

struct RandomRuleSetOptions {
  int min_rules = 1;
  int max_rules = 40;
};

// A rule set that engine::Compile should accept: unique ids, valid
// patterns, zones, CIDRs (host bits zero), regexes and obligation params;
// all three combining algorithms in various spellings.
v1::RuleSet RandomRuleSet(std::mt19937_64& rng,
                          const RandomRuleSetOptions& options = {});

struct RandomRequestOptions {
  // Chance of an invalid attribute value (null, struct, nested list), which
  // makes the whole request INDETERMINATE. Empty action / resource type are
  // drawn with a similar small chance.
  double invalid_probability = 0.015;
};

// A request over the same pools: times spread over 2024 (crossing DST
// changes, often on window boundaries), client IPs near the CIDR anchors
// (sometimes IPv4-mapped, malformed or absent), locations (sometimes
// malformed or absent) and attributes (sometimes missing or of another
// type).
v1::AuthorizeRequest RandomRequest(std::mt19937_64& rng,
                                   const RandomRequestOptions& options = {});

}  // namespace pdp::testing

#endif  // PDP_TESTS_SUPPORT_RANDOM_RULES_H_
