// Test helper: parses the Prometheus text exposition format (what pdpd's
// /metrics serves) into samples, so tests can assert exact values. Used by
// tests/metrics_test.cc and tests/ops_integration_test.cc.
#ifndef PDP_TESTS_SUPPORT_PROMETHEUS_TEXT_H_
#define PDP_TESTS_SUPPORT_PROMETHEUS_TEXT_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace pdp::testing_support {

// Sample lines keyed by name{label="value",...} with the labels sorted by
// name (an unlabelled sample is just its name). "# TYPE name kind" lines
// go to `types`. A malformed line is a test failure.
struct Exposition {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;

  // The value of `name` with exactly `labels`; nullopt when absent.
  std::optional<double> Get(const std::string& name,
                            std::vector<std::pair<std::string, std::string>> labels = {}) const;
  // Get(...) or 0 when absent (counters that have not counted yet).
  double Value(const std::string& name,
               std::vector<std::pair<std::string, std::string>> labels = {}) const;
};

Exposition ParseExposition(const std::string& text);

}  // namespace pdp::testing_support

#endif  // PDP_TESTS_SUPPORT_PROMETHEUS_TEXT_H_
