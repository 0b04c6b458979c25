// A deliberately naive reference evaluator for pdp rule sets: a linear scan
// over the rules written straight from the README's "Rule model" section,
// with no indexing or precompilation. It is the oracle that
// tests/differential_test.cc runs the fast engine (engine/) against, so it
// favours being obviously correct over being fast. It assumes the rule set is
// valid (i.e. engine::Compile accepts it) and does not validate it.
//
// Tested by tests/reference_evaluator_test.cc.
#ifndef PDP_TESTS_SUPPORT_REFERENCE_EVALUATOR_H_
#define PDP_TESTS_SUPPORT_REFERENCE_EVALUATOR_H_

#include "absl/time/time.h"
#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"

namespace pdp::testing {

// Decides `request` against `rules`. `now` is the request time when the
// request carries none. Fills decision, determining_rules, obligations and
// rule_set (the rule set's name); reason, trace and version are left empty.
v1::AuthorizeResponse ReferenceEvaluate(const v1::RuleSet& rules,
                                        const v1::AuthorizeRequest& request,
                                        absl::Time now);

}  // namespace pdp::testing

#endif  // PDP_TESTS_SUPPORT_REFERENCE_EVALUATOR_H_
