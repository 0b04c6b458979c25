// make_rules: writes the benchmark rule set MakeRuleSet(--rules, --name,
// --seed) (bench/workload.h) as rule-set JSON, for `pdpctl push`.
//
//   make_rules --rules=10000 --out=bench-10k.json
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/workload.h"
#include "engine/rule_set_io.h"

ABSL_FLAG(int, rules, 10000, "Number of rules.");
ABSL_FLAG(std::string, name, "bench", "Rule-set name.");
ABSL_FLAG(uint64_t, seed, 1, "Generator seed (load_gen's requests assume 1).");
ABSL_FLAG(std::string, out, "", "Output file (required).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("make_rules --rules=N --out=FILE [--name=bench] [--seed=1]");
  absl::ParseCommandLine(argc, argv);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty() || absl::GetFlag(FLAGS_rules) < 1) {
    std::fprintf(stderr, "make_rules: --out and a positive --rules are required\n");
    return 2;
  }
  const std::string json = pdp::engine::RuleSetToJson(pdp::bench::MakeRuleSet(
      absl::GetFlag(FLAGS_rules), absl::GetFlag(FLAGS_name), absl::GetFlag(FLAGS_seed)));
  std::ofstream file(out, std::ios::trunc | std::ios::binary);
  file << json << "\n";
  if (!file.flush()) {
    std::fprintf(stderr, "make_rules: %s: cannot write\n", out.c_str());
    return 1;
  }
  return 0;
}
