// Realistic synthetic workloads for the benchmarks: rule sets of any size
// that look like a large API estate (many services, resource types and
// actions, roles, business-hours windows in several zones, office and VPN
// CIDRs, attribute conditions, a few regexes, obligations), and request
// mixes whose answers are known to be permit, deny or not applicable.
//
// Deterministic for a given seed. Used by bench/engine_bench.cc and
// bench/load_gen.cc.
#ifndef PDP_BENCH_WORKLOAD_H_
#define PDP_BENCH_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"

namespace pdp::bench {

// A rule set of `rule_count` rules named `name`.
v1::RuleSet MakeRuleSet(int rule_count, const std::string& name = "bench",
                        uint64_t seed = 1);

enum class Expect { kPermit, kDeny, kNotApplicable };

// The decision an Expect stands for.
v1::Decision DecisionOf(Expect expect);

struct WorkloadRequest {
  v1::AuthorizeRequest request;
  Expect expect;
};

// Requests against MakeRuleSet(rule_count, name): a third each that permit,
// deny and match nothing. The time is fixed inside business hours.
std::vector<WorkloadRequest> MakeRequests(int rule_count, int count,
                                          const std::string& name = "bench",
                                          uint64_t seed = 2);

// A BatchAuthorizeRequest and the decision each of its requests must get.
struct WorkloadBatch {
  v1::BatchAuthorizeRequest batch;
  std::vector<v1::Decision> expected;
};

// `count` batches of `batch_size` requests against MakeRuleSet(rule_count,
// name), each asking "which of these may this user do?": one subject and
// environment, sent once in the batch's common part (with the rule set),
// and in each request only an action on a resource that some rule for one
// of the subject's roles names. The engine says what each gets (a mix of
// permit, deny and not applicable).
std::vector<WorkloadBatch> MakeCommonBatches(int rule_count, int count, int batch_size,
                                             const std::string& name = "bench",
                                             uint64_t seed = 3);

}  // namespace pdp::bench

#endif  // PDP_BENCH_WORKLOAD_H_
