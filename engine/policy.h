// The compiled decision structure for one rule-set version, and its
// evaluator. A Policy is made by Compile() (compiler.h), is immutable, and is
// safe to share between threads without locks: every method is const and
// touches no shared mutable state. Hold it by std::shared_ptr; a hot swap
// replaces the pointer, and decisions in flight finish on the Policy they
// started with.
//
// Example:
//   engine::CompileResult compiled = engine::Compile(rule_set, {.version = 3});
//   if (!compiled.ok()) return compiled.ToStatus();
//   v1::AuthorizeResponse response;
//   compiled.policy->Evaluate(request, absl::Now(), &response);
//
// Tested by tests/engine_*_test.cc and, against a naive linear evaluator, by
// tests/differential_test.cc.
#ifndef PDP_ENGINE_POLICY_H_
#define PDP_ENGINE_POLICY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "pdp/v1/authorization.pb.h"

namespace pdp::engine {

class PolicyImpl;

class Policy {
 public:
  Policy(std::shared_ptr<const PolicyImpl> impl, int64_t version);
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  // The same compiled rules under another version number, sharing the
  // structure (a put compiles before the store assigns the number).
  std::shared_ptr<const Policy> WithVersion(int64_t version) const;

  const std::string& name() const;
  int64_t version() const;
  size_t rule_count() const;
  // Approximate bytes held by the decision structure.
  size_t memory_bytes() const;
  // Whether the rule set marks the attribute `path` ("subject.ssn",
  // "subject.id", "environment.header.authorization") sensitive
  // (RuleSet.sensitive_attributes): logs and traces must mask its value.
  bool IsSensitive(std::string_view path) const;
  // Every path marked sensitive, sorted.
  std::vector<std::string> sensitive_attributes() const;

  // Decides `request` and fills `response` completely (it is cleared
  // first). `now` is used when the request carries no time. Never fails:
  // bad input yields INDETERMINATE with a reason naming the field.
  void Evaluate(const v1::AuthorizeRequest& request, absl::Time now,
                v1::AuthorizeResponse* response) const;
  // The same for one request of a batch whose `common` part (null: none)
  // supplies what the request leaves unset: decides as
  // Evaluate(WithCommon(request, *common)) would, without the copy.
  void Evaluate(const v1::AuthorizeRequest& request, const v1::AuthorizeRequest* common,
                absl::Time now, v1::AuthorizeResponse* response) const;

 private:
  std::shared_ptr<const PolicyImpl> impl_;
  int64_t version_;
};

// `request` completed by a batch's common part (BatchAuthorizeRequest.common):
// the subject, resource and environment of `common` where `request` has none
// (the whole message, not field by field), its action and rule set where
// `request`'s are empty, and explain if either sets it.
v1::AuthorizeRequest WithCommon(const v1::AuthorizeRequest& request,
                                const v1::AuthorizeRequest& common);

// The rule set a request of a batch with `common` (null: none) names, ""
// for the server's default.
const std::string& RuleSetOf(const v1::AuthorizeRequest& request,
                             const v1::AuthorizeRequest* common);

// Fills `response` with an INDETERMINATE decision and `reason`, for callers
// that cannot reach a Policy (unknown rule set, internal error).
void SetIndeterminate(std::string_view reason, v1::AuthorizeResponse* response);

}  // namespace pdp::engine

#endif  // PDP_ENGINE_POLICY_H_
