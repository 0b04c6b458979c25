// Tests of engine/rule_index.h: exact, prefix and "*" patterns at both
// levels, against a naive matcher on random pattern sets (the evaluator's
// use of the index is covered by differential_test.cc).
#include "engine/rule_index.h"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pdp::engine {
namespace {

bool Matches(const std::string& pattern, const std::string& key) {
  if (pattern == "*") return true;
  if (pattern.back() == '*') {
    return key.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0 &&
           key.size() >= pattern.size() - 1;
  }
  return pattern == key;
}

std::vector<uint32_t> Collected(const RuleIndex& index, const std::string& type,
                                const std::string& action) {
  RuleIndex::Spans spans;
  index.Collect(type, action, &spans);
  std::vector<uint32_t> ranks;
  for (const RuleIndex::Span& span : spans) {
    EXPECT_TRUE(std::is_sorted(span.values, span.values + span.size));
    ranks.insert(ranks.end(), span.values, span.values + span.size);
  }
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  return ranks;
}

TEST(RuleIndexTest, ExactPrefixAndAny) {
  RuleIndex::Builder builder;
  builder.Add("order", "read", 0);
  builder.Add("order", "re*", 1);
  builder.Add("ord*", "read", 2);
  builder.Add("*", "*", 3);
  builder.Add("order", "read", 4);
  builder.Add("order", "read", 4);  // duplicate pair: listed once
  builder.Add("invoice", "list", 5);
  builder.Add("order*", "*", 6);  // a prefix equal to the whole type
  const RuleIndex index = builder.Build();
  EXPECT_EQ(Collected(index, "order", "read"), (std::vector<uint32_t>{0, 1, 2, 3, 4, 6}));
  EXPECT_EQ(Collected(index, "order", "reap"), (std::vector<uint32_t>{1, 3, 6}));
  EXPECT_EQ(Collected(index, "ordinal", "read"), (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(Collected(index, "invoice", "list"), (std::vector<uint32_t>{3, 5}));
  EXPECT_EQ(Collected(index, "or", "read"), (std::vector<uint32_t>{3}));
  EXPECT_EQ(Collected(index, "Order", "read"), (std::vector<uint32_t>{3}));
  RuleIndex::Spans spans;
  index.Collect("order", "read", &spans);
  size_t total = 0;
  for (const auto& span : spans) total += span.size;
  // (0, 4) under "read", (1) under "re*", (2), (6) and (3): the duplicate
  // pair is listed once.
  EXPECT_EQ(total, 6u);
  EXPECT_GT(index.memory_bytes(), 0u);
}

TEST(RuleIndexTest, PrefixesOfOneLengthWithDifferentLastBytes) {
  RuleIndex::Builder builder;
  builder.Add("svc1:*", "read", 0);
  builder.Add("svc12*", "read", 1);
  builder.Add("svc12:*", "read", 2);
  builder.Add("svc9:*", "*", 3);
  builder.Add("reports:*", "export*", 4);
  builder.Add("reports:*", "ex*", 5);
  const RuleIndex index = builder.Build();
  EXPECT_EQ(Collected(index, "svc12:order", "read"), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Collected(index, "svc1:order", "read"), (std::vector<uint32_t>{0}));
  EXPECT_EQ(Collected(index, "svc1", "read"), std::vector<uint32_t>{});
  EXPECT_EQ(Collected(index, "svc9:", "anything"), (std::vector<uint32_t>{3}));
  EXPECT_EQ(Collected(index, "reports:daily", "export-csv"), (std::vector<uint32_t>{4, 5}));
  EXPECT_EQ(Collected(index, "reports:daily", "exit"), (std::vector<uint32_t>{5}));
}

TEST(RuleIndexTest, EmptyIndexFindsNothing) {
  const RuleIndex index = RuleIndex::Builder().Build();
  EXPECT_TRUE(Collected(index, "order", "read").empty());
}

TEST(RuleIndexTest, RandomPatternsAgreeWithNaiveMatching) {
  std::mt19937 rng(7);
  const std::vector<std::string> words = {"a", "ab", "abc", "b", "ba", "order",
                                          "orders:list", "orders:", "x:y:z", ""};
  auto pattern = [&]() {
    switch (rng() % 4) {
      case 0: return std::string("*");
      case 1: return words[rng() % (words.size() - 1)] + "*";
      default: return words[rng() % (words.size() - 1)];
    }
  };
  for (int round = 0; round < 200; ++round) {
    RuleIndex::Builder builder;
    std::vector<std::vector<std::pair<std::string, std::string>>> targets;
    const int rules = 1 + static_cast<int>(rng() % 60);
    for (int rank = 0; rank < rules; ++rank) {
      std::vector<std::pair<std::string, std::string>> pairs;
      std::vector<std::string> types(1 + rng() % 3), actions(1 + rng() % 3);
      for (auto& t : types) t = pattern();
      for (auto& a : actions) a = pattern();
      for (const auto& t : types) {
        for (const auto& a : actions) {
          builder.Add(t, a, rank);
          pairs.emplace_back(t, a);
        }
      }
      targets.push_back(std::move(pairs));
    }
    const RuleIndex index = builder.Build();
    for (const std::string& type : words) {
      if (type.empty()) continue;
      for (const std::string& action : words) {
        std::vector<uint32_t> expected;
        for (uint32_t rank = 0; rank < targets.size(); ++rank) {
          for (const auto& [t, a] : targets[rank]) {
            if (Matches(t, type) && Matches(a, action)) {
              expected.push_back(rank);
              break;
            }
          }
        }
        ASSERT_EQ(Collected(index, type, action), expected)
            << "round " << round << " type " << type << " action " << action;
      }
    }
  }
}

}  // namespace
}  // namespace pdp::engine
