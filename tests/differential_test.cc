// Differential test: the fast engine (engine::Compile + Policy::Evaluate)
// against the naive reference evaluator (tests/support/
// reference_evaluator.h) on random rule sets and requests
// (tests/support/random_rules.h). Decisions, determining_rules (in order)
// and obligations (type, params, rule_id) must agree.
//
// Iteration i uses seed PDP_DIFF_SEED + i (default base kBaseSeed) to draw
// one rule set and kRequestsPerRuleSet requests; PDP_DIFF_ITERATIONS sets
// the number of rule sets. The first mismatch of each kind is shrunk and
// printed: seed, request index, the shrunk rule set and request as JSON,
// and both responses (the engine's with its explain trace). To reproduce:
//   PDP_DIFF_SEED=<seed> PDP_DIFF_ITERATIONS=1 build/tests/differential_test
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/compiler.h"
#include "engine/policy.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "pdp/v1/authorization.pb.h"
#include "pdp/v1/rules.pb.h"
#include "tests/support/random_rules.h"
#include "tests/support/reference_evaluator.h"

namespace pdp::testing {
namespace {

constexpr uint64_t kBaseSeed = 20240601;
constexpr int kDefaultIterations = 5000;
constexpr int kRequestsPerRuleSet = 8;
// Kinds of mismatch told apart and printed in full (one case each); once
// this many are known, further mismatches are only counted.
constexpr size_t kMaxReported = 8;
// Mismatches shrunk and classified at most (shrinking compiles many times).
constexpr int kMaxClassified = 200;
// 2024-06-14T10:30:00Z: the clock for requests without a time.
const absl::Time kNow = absl::FromUnixSeconds(1718361000);

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtoull(value, nullptr, 0);
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

// Empty when `engine` agrees with `reference`, else what differs.
std::string Difference(const v1::AuthorizeResponse& reference,
                       const v1::AuthorizeResponse& engine) {
  std::ostringstream out;
  if (reference.decision() != engine.decision()) {
    out << "decision: reference " << v1::Decision_Name(reference.decision())
        << ", engine " << v1::Decision_Name(engine.decision()) << "\n";
  }
  const std::string ref_rules = absl::StrJoin(reference.determining_rules(), ",");
  const std::string eng_rules = absl::StrJoin(engine.determining_rules(), ",");
  if (ref_rules != eng_rules) {
    out << "determining_rules: reference [" << ref_rules << "], engine ["
        << eng_rules << "]\n";
  }
  bool same_obligations =
      reference.obligations_size() == engine.obligations_size();
  for (int i = 0; same_obligations && i < reference.obligations_size(); ++i) {
    const v1::ObligationResult& a = reference.obligations(i);
    const v1::ObligationResult& b = engine.obligations(i);
    same_obligations =
        a.type() == b.type() && a.rule_id() == b.rule_id() &&
        google::protobuf::util::MessageDifferencer::Equals(a.params(),
                                                           b.params());
  }
  if (!same_obligations) out << "obligations differ\n";
  return out.str();
}

// Mismatch of engine and reference on (rule_set, request); empty when they
// agree or the rule set does not compile.
std::string Mismatch(const v1::RuleSet& rule_set,
                     const v1::AuthorizeRequest& request) {
  engine::CompileResult compiled = engine::Compile(rule_set, {});
  if (!compiled.ok()) return "";
  v1::AuthorizeResponse engine_response;
  compiled.policy->Evaluate(request, kNow, &engine_response);
  return Difference(ReferenceEvaluate(rule_set, request, kNow),
                    engine_response);
}

// One greedy pass of Shrink().
void ShrinkOnce(v1::RuleSet* rule_set, v1::AuthorizeRequest* request) {
  auto keep_if_mismatch = [&](const v1::RuleSet& rs,
                              const v1::AuthorizeRequest& rq) {
    if (Mismatch(rs, rq).empty()) return false;
    *rule_set = rs;
    *request = rq;
    return true;
  };
  for (int i = rule_set->rules_size() - 1; i >= 0; --i) {
    v1::RuleSet candidate = *rule_set;
    candidate.mutable_rules()->DeleteSubrange(i, 1);
    keep_if_mismatch(candidate, *request);
  }
  using Edit = void (*)(v1::Rule*);
  const Edit edits[] = {
      [](v1::Rule* r) { r->clear_obligations(); },
      [](v1::Rule* r) { r->mutable_conditions()->clear_time_windows(); },
      [](v1::Rule* r) { r->mutable_conditions()->clear_location(); },
      [](v1::Rule* r) { r->mutable_conditions()->clear_client_ip(); },
      [](v1::Rule* r) { r->clear_priority(); },
      [](v1::Rule* r) { r->mutable_target()->clear_roles(); },
  };
  using List = google::protobuf::RepeatedPtrField<std::string>* (*)(v1::Rule*);
  const List lists[] = {
      [](v1::Rule* r) { return r->mutable_target()->mutable_resource_types(); },
      [](v1::Rule* r) { return r->mutable_target()->mutable_actions(); },
      [](v1::Rule* r) { return r->mutable_target()->mutable_roles(); },
      [](v1::Rule* r) {
        return r->mutable_conditions()->mutable_location()->mutable_in();
      },
      [](v1::Rule* r) {
        return r->mutable_conditions()->mutable_location()->mutable_not_in();
      },
      [](v1::Rule* r) {
        return r->mutable_conditions()->mutable_client_ip()->mutable_in();
      },
      [](v1::Rule* r) {
        return r->mutable_conditions()->mutable_client_ip()->mutable_not_in();
      },
  };
  for (int i = 0; i < rule_set->rules_size(); ++i) {
    for (Edit edit : edits) {
      v1::RuleSet candidate = *rule_set;
      edit(candidate.mutable_rules(i));
      keep_if_mismatch(candidate, *request);
    }
    for (List list : lists) {
      // Size read on a copy: the accessor may create an empty condition.
      v1::RuleSet probe = *rule_set;
      const int size = list(probe.mutable_rules(i))->size();
      for (int j = size - 1; j >= 0; --j) {
        v1::RuleSet candidate = *rule_set;
        list(candidate.mutable_rules(i))->DeleteSubrange(j, 1);
        keep_if_mismatch(candidate, *request);
      }
    }
    for (int j = rule_set->rules(i).conditions().attributes_size() - 1; j >= 0;
         --j) {
      v1::RuleSet candidate = *rule_set;
      candidate.mutable_rules(i)->mutable_conditions()->mutable_attributes()
          ->DeleteSubrange(j, 1);
      keep_if_mismatch(candidate, *request);
    }
  }
  using RequestEdit = void (*)(v1::AuthorizeRequest*);
  const RequestEdit request_edits[] = {
      [](v1::AuthorizeRequest* r) { r->mutable_subject()->clear_id(); },
      [](v1::AuthorizeRequest* r) { r->mutable_subject()->clear_roles(); },
      [](v1::AuthorizeRequest* r) { r->mutable_resource()->clear_id(); },
      [](v1::AuthorizeRequest* r) { r->mutable_environment()->clear_time(); },
      [](v1::AuthorizeRequest* r) { r->mutable_environment()->clear_client_ip(); },
      [](v1::AuthorizeRequest* r) { r->mutable_environment()->clear_location(); },
  };
  for (RequestEdit edit : request_edits) {
    v1::AuthorizeRequest candidate = *request;
    edit(&candidate);
    keep_if_mismatch(*rule_set, candidate);
  }
  auto shrink_map = [&](auto mutable_map) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : *mutable_map(request)) keys.push_back(key);
    for (const std::string& key : keys) {
      v1::AuthorizeRequest candidate = *request;
      mutable_map(&candidate)->erase(key);
      keep_if_mismatch(*rule_set, candidate);
    }
  };
  shrink_map([](v1::AuthorizeRequest* r) {
    return r->mutable_subject()->mutable_attributes();
  });
  shrink_map([](v1::AuthorizeRequest* r) {
    return r->mutable_resource()->mutable_attributes();
  });
  shrink_map([](v1::AuthorizeRequest* r) {
    return r->mutable_environment()->mutable_attributes();
  });
}

// Greedily removes rules, rule parts, list entries and request parts while
// the mismatch persists, so that a report shows only what matters.
void Shrink(v1::RuleSet* rule_set, v1::AuthorizeRequest* request) {
  for (int pass = 0; pass < 3; ++pass) {
    const size_t before = rule_set->ByteSizeLong() + request->ByteSizeLong();
    ShrinkOnce(rule_set, request);
    if (rule_set->ByteSizeLong() + request->ByteSizeLong() == before) break;
  }
}

// The shape of a shrunk mismatch (kinds of conditions, request fields
// present), so that each kind of disagreement is printed once.
std::string Signature(const v1::RuleSet& rule_set,
                      const v1::AuthorizeRequest& request) {
  std::set<std::string> parts;
  for (const v1::Rule& rule : rule_set.rules()) {
    const v1::Conditions& c = rule.conditions();
    if (!c.time_windows().empty()) parts.insert("time_windows");
    if (c.has_location()) parts.insert("location");
    if (c.has_client_ip()) parts.insert("client_ip");
    for (const v1::AttributeCondition& a : c.attributes()) {
      parts.insert(absl::StrCat("attr:", a.op()));
    }
  }
  const v1::Environment& env = request.environment();
  std::vector<std::string> fields;
  if (env.has_time()) fields.push_back("time");
  if (!env.client_ip().empty()) fields.push_back("client_ip");
  if (env.has_location()) fields.push_back("location");
  return absl::StrCat("rules{", absl::StrJoin(parts, ","), "} request{",
                      absl::StrJoin(fields, ","), "}");
}

// The shrunk case with both responses; `signature` receives its shape.
std::string Report(uint64_t seed, int request_index, v1::RuleSet rule_set,
                   v1::AuthorizeRequest request, std::string* signature) {
  Shrink(&rule_set, &request);
  engine::CompileResult compiled = engine::Compile(rule_set, {});
  v1::AuthorizeResponse reference = ReferenceEvaluate(rule_set, request, kNow);
  v1::AuthorizeResponse engine_response;
  v1::AuthorizeRequest explained = request;
  explained.set_explain(true);
  compiled.policy->Evaluate(explained, kNow, &engine_response);
  *signature = Signature(rule_set, request);
  return absl::StrCat(
      "seed ", seed, ", request #", request_index,
      " (reproduce: PDP_DIFF_SEED=", seed, " PDP_DIFF_ITERATIONS=1)\n",
      "kind: ", *signature, "\n", Difference(reference, engine_response),
      "now: ", absl::FormatTime(kNow), "\nshrunk rule set:\n",
      ToJson(rule_set), "\nshrunk request:\n", ToJson(request),
      "\nreference response:\n", ToJson(reference),
      "\nengine response (with explain):\n", ToJson(engine_response));
}

TEST(DifferentialTest, EngineAgreesWithReference) {
  const uint64_t base_seed = EnvOr("PDP_DIFF_SEED", kBaseSeed);
  const int iterations =
      static_cast<int>(EnvOr("PDP_DIFF_ITERATIONS", kDefaultIterations));
  const absl::Time start = absl::Now();

  int pairs = 0;
  int mismatches = 0;
  std::map<v1::Decision, int> decisions;
  int with_obligations = 0;
  std::map<std::string, int> kinds;  // signature -> mismatches
  int classified = 0;
  for (int i = 0; i < iterations; ++i) {
    const uint64_t seed = base_seed + i;
    std::mt19937_64 rng(seed);
    const v1::RuleSet rule_set = RandomRuleSet(rng);
    engine::CompileResult compiled = engine::Compile(rule_set, {});
    ASSERT_TRUE(compiled.ok())
        << "seed " << seed << ": the generated rule set does not compile:\n"
        << compiled.ToStatus() << "\n"
        << ToJson(rule_set);
    for (int j = 0; j < kRequestsPerRuleSet; ++j) {
      const v1::AuthorizeRequest request = RandomRequest(rng);
      const v1::AuthorizeResponse reference =
          ReferenceEvaluate(rule_set, request, kNow);
      v1::AuthorizeResponse engine_response;
      compiled.policy->Evaluate(request, kNow, &engine_response);
      ++pairs;
      ++decisions[reference.decision()];
      if (reference.obligations_size() > 0) ++with_obligations;
      if (Difference(reference, engine_response).empty()) continue;
      ++mismatches;
      if (kinds.size() >= kMaxReported || ++classified > kMaxClassified) {
        continue;
      }
      std::string signature;
      const std::string report = Report(seed, j, rule_set, request, &signature);
      if (kinds[signature]++ == 0) ADD_FAILURE() << report;
    }
  }

  std::cout << "seeds " << base_seed << ".." << base_seed + iterations - 1
            << ": " << pairs << " pairs, " << mismatches << " mismatches, "
            << absl::FormatDuration(absl::Now() - start) << "\n  PERMIT "
            << decisions[v1::PERMIT] << ", DENY " << decisions[v1::DENY]
            << ", NOT_APPLICABLE " << decisions[v1::NOT_APPLICABLE]
            << ", INDETERMINATE " << decisions[v1::INDETERMINATE] << "; "
            << with_obligations << " with obligations\n";
  for (const auto& [signature, count] : kinds) {
    std::cout << "  mismatch kind (" << count << " of the first "
              << std::min(classified, kMaxClassified) << "): "
              << signature << "\n";
  }
  EXPECT_EQ(mismatches, 0);
  if (iterations >= 200) {
    // The generator must keep every outcome frequent.
    for (v1::Decision d : {v1::PERMIT, v1::DENY, v1::NOT_APPLICABLE,
                           v1::INDETERMINATE}) {
      EXPECT_GT(decisions[d], pairs / 20) << v1::Decision_Name(d);
    }
    EXPECT_GT(with_obligations, pairs / 20);
  }
}

// A batch's common part (BatchAuthorizeRequest.common): each part of a
// random request goes to the request, to the common part, or to both with a
// different value in the common part (the request's must win). The engine,
// reading through the common part, must decide exactly as it does on the
// completed request (WithCommon), and that as the reference evaluator does.
TEST(DifferentialTest, CommonPartDecidesAsTheCompletedRequest) {
  const uint64_t base_seed = EnvOr("PDP_DIFF_SEED", kBaseSeed);
  const int iterations =
      static_cast<int>(EnvOr("PDP_DIFF_ITERATIONS", kDefaultIterations)) / 5;
  int pairs = 0, from_common = 0;
  std::map<v1::Decision, int> decisions;
  for (int i = 0; i < iterations; ++i) {
    const uint64_t seed = base_seed + i;
    std::mt19937_64 rng(seed);
    const v1::RuleSet rule_set = RandomRuleSet(rng);
    engine::CompileResult compiled = engine::Compile(rule_set, {});
    ASSERT_TRUE(compiled.ok()) << compiled.ToStatus();
    for (int j = 0; j < kRequestsPerRuleSet; ++j) {
      const v1::AuthorizeRequest whole = RandomRequest(rng);
      const v1::AuthorizeRequest other = RandomRequest(rng);
      v1::AuthorizeRequest item, common;
      // 0: in the request only; 1: in the common part only; 2: in both.
      auto place = [&](auto has, auto copy) {
        const int where = static_cast<int>(rng() % 3);
        if (!has(whole)) return;
        if (where != 1) copy(whole, &item);
        if (where == 1) copy(whole, &common);
        if (where == 2) copy(other, &common);
        from_common += where == 1;
      };
      place([](const auto& r) { return r.has_subject(); },
            [](const auto& r, auto* to) { *to->mutable_subject() = r.subject(); });
      place([](const auto& r) { return r.has_resource(); },
            [](const auto& r, auto* to) { *to->mutable_resource() = r.resource(); });
      place([](const auto& r) { return r.has_environment(); },
            [](const auto& r, auto* to) { *to->mutable_environment() = r.environment(); });
      place([](const auto& r) { return !r.action().empty(); },
            [](const auto& r, auto* to) { to->set_action(r.action()); });
      if (rng() % 8 == 0) (rng() % 2 ? item : common).set_explain(true);

      const v1::AuthorizeRequest completed = engine::WithCommon(item, common);
      v1::AuthorizeRequest expected_completed = whole;
      expected_completed.set_explain(item.explain() || common.explain());
      ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(completed,
                                                                     expected_completed))
          << "seed " << seed << ": WithCommon\n" << ToJson(completed) << "\nexpected\n"
          << ToJson(expected_completed);

      v1::AuthorizeResponse through_common, on_completed;
      compiled.policy->Evaluate(item, &common, kNow, &through_common);
      compiled.policy->Evaluate(completed, kNow, &on_completed);
      // Errors name the part of the batch request they are in.
      through_common.set_reason(
          absl::StrReplaceAll(through_common.reason(), {{"common.", ""}}));
      for (v1::RuleTrace& t : *through_common.mutable_trace()) {
        t.set_detail(absl::StrReplaceAll(t.detail(), {{"common.", ""}}));
      }
      ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(through_common,
                                                                     on_completed))
          << "seed " << seed << ", request #" << j << "\nrequest:\n" << ToJson(item)
          << "\ncommon:\n" << ToJson(common) << "\nthrough common:\n"
          << ToJson(through_common) << "\non the completed request:\n"
          << ToJson(on_completed);
      EXPECT_EQ(Difference(ReferenceEvaluate(rule_set, completed, kNow), on_completed), "")
          << "seed " << seed << ", request #" << j;
      ++pairs;
      ++decisions[on_completed.decision()];
    }
  }
  std::cout << pairs << " pairs, " << from_common << " parts from the common part; PERMIT "
            << decisions[v1::PERMIT] << ", DENY " << decisions[v1::DENY]
            << ", NOT_APPLICABLE " << decisions[v1::NOT_APPLICABLE] << ", INDETERMINATE "
            << decisions[v1::INDETERMINATE] << "\n";
  if (iterations >= 200) {
    EXPECT_GT(from_common, pairs);  // about 1.3 per request
    for (v1::Decision d : {v1::PERMIT, v1::DENY, v1::NOT_APPLICABLE, v1::INDETERMINATE}) {
      EXPECT_GT(decisions[d], pairs / 20) << v1::Decision_Name(d);
    }
  }
}

}  // namespace
}  // namespace pdp::testing
