// Prometheus text format parser for tests; see prometheus_text.h.
#include "tests/support/prometheus_text.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pdp::testing_support {
namespace {

std::string Key(const std::string& name,
                std::vector<std::pair<std::string, std::string>> labels) {
  if (labels.empty()) return name;
  std::sort(labels.begin(), labels.end());
  std::string key = name + "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    absl::StrAppend(&key, i ? "," : "", labels[i].first, "=\"", labels[i].second, "\"");
  }
  return key + "}";
}

}  // namespace

std::optional<double> Exposition::Get(
    const std::string& name, std::vector<std::pair<std::string, std::string>> labels) const {
  auto it = samples.find(Key(name, std::move(labels)));
  if (it == samples.end()) return std::nullopt;
  return it->second;
}

double Exposition::Value(const std::string& name,
                         std::vector<std::pair<std::string, std::string>> labels) const {
  return Get(name, std::move(labels)).value_or(0.0);
}

Exposition ParseExposition(const std::string& text) {
  Exposition out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 2) out.types[parts[0]] = parts[1];
      continue;
    }
    if (line.front() == '#') continue;
    // name[{labels}] value
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    const std::string name(line.substr(0, i));
    std::vector<std::pair<std::string, std::string>> labels;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const size_t eq = line.find('=', i);
        if (eq == absl::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          ADD_FAILURE() << "malformed label in: " << line;
          return out;
        }
        std::string label(line.substr(i, eq - i));
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value.push_back(line[j] == 'n' ? '\n' : line[j]);
          } else {
            value.push_back(line[j]);
          }
        }
        labels.emplace_back(std::move(label), std::move(value));
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    while (i < line.size() && line[i] == ' ') ++i;
    const std::string number(line.substr(i, line.find(' ', i) - i));
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size()) {
      ADD_FAILURE() << "malformed value in: " << line;
      continue;
    }
    out.samples[Key(name, std::move(labels))] = value;
  }
  return out;
}

}  // namespace pdp::testing_support
