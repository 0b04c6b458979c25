// Synthetic rule sets and requests; see workload.h.
#include "bench/workload.h"

#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/compiler.h"

namespace pdp::bench {
namespace {

constexpr const char* kTypes[] = {"order", "invoice", "customer", "report", "ticket",
                                  "shipment", "refund", "account"};
constexpr const char* kActions[] = {"read", "list", "create", "update", "delete",
                                    "export", "approve", "refund"};
// Zones whose business hours all contain 12:00 UTC on a weekday in November.
constexpr const char* kZones[] = {"Europe/Berlin", "Europe/London", "Asia/Kolkata",
                                  "Europe/Paris", "Africa/Lagos"};
constexpr int kRoles = 64;
constexpr int kDepartments = 40;

// How to build a request that satisfies one rule.
struct Recipe {
  std::string type;
  std::string action;
  std::string role;
  std::string department;  // empty: no department condition
  int level = 0;           // 0: no level condition
  std::string resource_id;
  std::string client_ip;   // empty: no IP condition
  bool deny = false;
};

struct Generated {
  v1::RuleSet rule_set;
  std::vector<Recipe> recipes;
};

google::protobuf::Value StringValue(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}

Generated Generate(int rule_count, const std::string& name, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const int services = std::max(1, rule_count / 40);
  Generated g;
  g.rule_set.set_name(name);
  g.rule_set.set_combining_algorithm("deny-overrides");
  for (int i = 0; i < rule_count; ++i) {
    v1::Rule* rule = g.rule_set.add_rules();
    Recipe recipe;
    const int service = pick(services);
    recipe.type = absl::StrCat("svc", service, ":", kTypes[pick(8)]);
    recipe.action = kActions[pick(8)];
    recipe.role = absl::StrCat("role", pick(kRoles));
    recipe.deny = pick(10) == 0;
    rule->set_id(absl::StrCat("r", i));
    rule->set_effect(recipe.deny ? "deny" : "permit");
    rule->set_description("generated");
    v1::Target* target = rule->mutable_target();
    // 5% of rules cover a whole service with a prefix.
    target->add_resource_types(pick(20) == 0 ? absl::StrCat("svc", service, ":*") : recipe.type);
    target->add_actions(recipe.action);
    if (pick(3) == 0) target->add_actions(kActions[pick(8)]);
    target->add_roles(recipe.role);
    if (pick(2) == 0) target->add_roles(absl::StrCat("role", pick(kRoles)));

    v1::Conditions* c = rule->mutable_conditions();
    if (pick(10) < 3) {
      v1::TimeWindow* w = c->add_time_windows();
      for (const char* d : {"mon", "tue", "wed", "thu", "fri"}) w->add_days(d);
      w->set_start("08:00");
      w->set_end("18:00");
      w->set_time_zone(kZones[pick(5)]);
    }
    if (pick(10) < 2) {
      const int net = pick(250);
      c->mutable_client_ip()->add_in(absl::StrCat("10.", net, ".0.0/16"));
      c->mutable_client_ip()->add_in(absl::StrCat("2001:db8:", net, "::/48"));
      c->mutable_client_ip()->add_in("192.168.0.0/24");
      c->mutable_client_ip()->add_not_in(absl::StrCat("10.", net, ".99.0/24"));
      recipe.client_ip = absl::StrCat("10.", net, ".", 1 + pick(90), ".", 1 + pick(250));
    }
    if (pick(2) == 0) {
      recipe.department = absl::StrCat("dept", pick(kDepartments));
      v1::AttributeCondition* a = c->add_attributes();
      a->set_attribute("subject.department");
      a->set_op("eq");
      *a->mutable_value() = StringValue(recipe.department);
    }
    if (pick(4) == 0) {
      recipe.level = 1 + pick(5);
      v1::AttributeCondition* a = c->add_attributes();
      a->set_attribute("subject.level");
      a->set_op("ge");
      a->mutable_value()->set_number_value(recipe.level);
    }
    if (pick(4) == 0) {
      v1::AttributeCondition* a = c->add_attributes();
      a->set_attribute("resource.classification");
      a->set_op("in");
      auto* list = a->mutable_value()->mutable_list_value();
      for (const char* v : {"public", "internal", "confidential"}) *list->add_values() = StringValue(v);
    }
    if (pick(20) == 0) {
      v1::AttributeCondition* a = c->add_attributes();
      a->set_attribute("resource.id");
      a->set_op("regex");
      *a->mutable_value() = StringValue("[a-z]+-[0-9]{1,8}");
    }
    if (pick(10) == 0) {
      v1::AttributeCondition* a = c->add_attributes();
      a->set_attribute("resource.owner");
      a->set_op("eq");
      a->set_other("subject.id");
    }
    if (!recipe.deny && pick(5) == 0) {
      v1::Obligation* o = rule->add_obligations();
      o->set_type("filter_fields");
      auto* fields = (*o->mutable_params()->mutable_fields())["fields"].mutable_list_value();
      *fields->add_values() = StringValue("customer.card_number");
    }
    recipe.resource_id = absl::StrCat("res-", pick(100000));
    g.recipes.push_back(std::move(recipe));
  }
  return g;
}

v1::AuthorizeRequest FromRecipe(const Recipe& r, const std::string& name) {
  v1::AuthorizeRequest q;
  q.set_rule_set(name);
  q.set_action(r.action);
  q.mutable_subject()->set_id("user-42");
  q.mutable_subject()->add_roles(r.role);
  q.mutable_subject()->add_roles("employee");
  auto& subject_attrs = *q.mutable_subject()->mutable_attributes();
  subject_attrs["department"] = StringValue(r.department.empty() ? "dept0" : r.department);
  subject_attrs["level"].set_number_value(5);
  q.mutable_resource()->set_type(r.type);
  q.mutable_resource()->set_id(r.resource_id);
  auto& resource_attrs = *q.mutable_resource()->mutable_attributes();
  resource_attrs["owner"] = StringValue("user-42");
  resource_attrs["classification"] = StringValue("internal");
  v1::Environment* env = q.mutable_environment();
  env->mutable_time()->set_seconds(absl::ToUnixSeconds(absl::FromCivil(
      absl::CivilSecond(2026, 11, 24, 12, 0, 0), absl::UTCTimeZone())));
  env->set_client_ip(r.client_ip.empty() ? "192.168.0.7" : r.client_ip);
  env->mutable_location()->set_country("DE");
  return q;
}

}  // namespace

v1::Decision DecisionOf(Expect expect) {
  switch (expect) {
    case Expect::kPermit: return v1::PERMIT;
    case Expect::kDeny: return v1::DENY;
    case Expect::kNotApplicable: break;
  }
  return v1::NOT_APPLICABLE;
}

v1::RuleSet MakeRuleSet(int rule_count, const std::string& name, uint64_t seed) {
  return Generate(rule_count, name, seed).rule_set;
}

std::vector<WorkloadRequest> MakeRequests(int rule_count, int count, const std::string& name,
                                          uint64_t seed) {
  Generated g = Generate(rule_count, name, 1);
  engine::CompileResult compiled = engine::Compile(g.rule_set);
  std::mt19937_64 rng(seed);
  std::vector<WorkloadRequest> permit, deny, none;
  const int want = std::max(1, count / 3);
  // Requests built to satisfy one rule; the engine says what they get.
  for (int tries = 0; tries < count * 50 && (static_cast<int>(permit.size()) < want ||
                                            static_cast<int>(deny.size()) < want);
       ++tries) {
    const Recipe& r = g.recipes[rng() % g.recipes.size()];
    WorkloadRequest w{FromRecipe(r, name), Expect::kNotApplicable};
    v1::AuthorizeResponse response;
    compiled.policy->Evaluate(w.request, absl::Now(), &response);
    if (response.decision() == v1::PERMIT && static_cast<int>(permit.size()) < want) {
      w.expect = Expect::kPermit;
      permit.push_back(std::move(w));
    } else if (response.decision() == v1::DENY && static_cast<int>(deny.size()) < want) {
      w.expect = Expect::kDeny;
      deny.push_back(std::move(w));
    }
  }
  // Requests for types or roles nobody wrote a rule for.
  while (static_cast<int>(none.size()) < want) {
    Recipe r = g.recipes[rng() % g.recipes.size()];
    if (rng() % 2) r.type += "-archive"; else r.role = "contractor";
    WorkloadRequest w{FromRecipe(r, name), Expect::kNotApplicable};
    if (rng() % 2 == 0) w.request.mutable_subject()->clear_roles();
    v1::AuthorizeResponse response;
    compiled.policy->Evaluate(w.request, absl::Now(), &response);
    if (response.decision() == v1::NOT_APPLICABLE) none.push_back(std::move(w));
  }
  std::vector<WorkloadRequest> all;
  const size_t n = std::max({permit.size(), deny.size(), none.size()});
  for (size_t i = 0; i < n; ++i) {
    for (auto* bucket : {&permit, &deny, &none}) {
      if (!bucket->empty()) all.push_back((*bucket)[i % bucket->size()]);
    }
  }
  return all;
}

std::vector<WorkloadBatch> MakeCommonBatches(int rule_count, int count, int batch_size,
                                             const std::string& name, uint64_t seed) {
  Generated g = Generate(rule_count, name, 1);
  engine::CompileResult compiled = engine::Compile(g.rule_set);
  std::map<std::string, std::vector<const Recipe*>> by_role;
  for (const Recipe& r : g.recipes) by_role[r.role].push_back(&r);
  std::mt19937_64 rng(seed);
  const absl::Time now = absl::Now();
  std::vector<WorkloadBatch> batches;
  for (int b = 0; b < count; ++b) {
    const Recipe& user = g.recipes[rng() % g.recipes.size()];
    WorkloadBatch w;
    v1::AuthorizeRequest* common = w.batch.mutable_common();
    *common = FromRecipe(user, name);
    common->clear_action();
    common->clear_resource();
    const std::vector<const Recipe*>& candidates = by_role[user.role];
    for (int i = 0; i < batch_size; ++i) {
      const v1::AuthorizeRequest full =
          FromRecipe(*candidates[rng() % candidates.size()], name);
      v1::AuthorizeRequest* item = w.batch.add_requests();
      item->set_action(full.action());
      *item->mutable_resource() = full.resource();
      v1::AuthorizeResponse response;
      compiled.policy->Evaluate(*item, common, now, &response);
      w.expected.push_back(response.decision());
    }
    batches.push_back(std::move(w));
  }
  return batches;
}

}  // namespace pdp::bench
