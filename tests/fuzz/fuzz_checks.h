// Checks shared by the libFuzzer targets in tests/fuzz/: one evaluation of
// a compiled rule set is compared with the reference evaluator
// (tests/support/reference_evaluator.h) and checked against invariants of
// the README's rule model that hold for any rule set. A violation prints
// the rule set, the request and the responses to stderr and aborts, which
// libFuzzer records as a crash (crash-<sha1> in its working directory).
#ifndef PDP_TESTS_FUZZ_FUZZ_CHECKS_H_
#define PDP_TESTS_FUZZ_FUZZ_CHECKS_H_

#include <string>

#include "absl/time/time.h"
#include "engine/policy.h"
#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"

namespace pdp::fuzz {

// The clock for requests without a time: 2024-06-14T10:30:00Z (a Friday).
inline const absl::Time kNow = absl::FromUnixSeconds(1718361000);

// Silences protobuf's logging (binary parses of fuzz bytes log invalid
// UTF-8 by the thousand). Call once from LLVMFuzzerInitialize.
void QuietProtobufLogs();

// True when the README makes `request` INDETERMINATE as a whole: no action
// or resource type, or an attribute value that is not a string, number,
// bool or flat list of those. Written independently of both evaluators.
bool RequestIsInvalid(const v1::AuthorizeRequest& request);

// Evaluates `request` with `policy` (compiled from `rules`), with and
// without explain, and with the reference evaluator; aborts with a report
// on any disagreement in decision, determining_rules or obligations, on a
// decision other than INDETERMINATE for an invalid request, or on a broken
// invariant (determining rules of the decision's effect, obligations only
// from determining rules, the explain trace covering exactly the candidate
// rules in evaluation order, ...).
void CheckEvaluation(const v1::RuleSet& rules, const engine::Policy& policy,
                     const v1::AuthorizeRequest& request);

// Prints `what` with the rule set and request, then aborts.
[[noreturn]] void Fail(const std::string& what, const v1::RuleSet& rules,
                       const v1::AuthorizeRequest* request);

// Text format (robust to NaN and invalid UTF-8, unlike JSON).
std::string Dump(const google::protobuf::Message& message);

}  // namespace pdp::fuzz

#endif  // PDP_TESTS_FUZZ_FUZZ_CHECKS_H_
