// PolicyRegistry (service/registry.h): installing, replacing and removing
// policies, snapshots that outlive a swap, and a replaced policy freed
// without holding up readers.
#include "service/registry.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/engine_test_util.h"

namespace pdp {
namespace {

using ::pdp::engine_testing::CompileOrDie;
using ::pdp::engine_testing::RuleJson;
using ::pdp::engine_testing::RuleSetJson;

std::shared_ptr<const engine::Policy> PolicyNamed(const std::string& name) {
  return CompileOrDie(RuleSetJson("deny-overrides", {RuleJson("r", "permit")}, name));
}

TEST(PolicyRegistryTest, SetFindReplaceRemove) {
  service::PolicyRegistry registry;
  EXPECT_EQ(registry.Find("a"), nullptr);
  auto a1 = PolicyNamed("a");
  auto b = PolicyNamed("b");
  registry.Set(a1);
  registry.Set(b);
  EXPECT_EQ(registry.Find("a"), a1);
  EXPECT_EQ(registry.Find("b"), b);
  EXPECT_EQ(registry.size(), 2u);

  auto a2 = PolicyNamed("a");
  registry.Set(a2);
  EXPECT_EQ(registry.Find("a"), a2);
  EXPECT_EQ(registry.Find("b"), b);

  registry.Remove("a");
  EXPECT_EQ(registry.Find("a"), nullptr);
  EXPECT_EQ(registry.Find("b"), b);
  registry.Remove("missing");  // no-op
  EXPECT_EQ(registry.size(), 1u);

  service::PolicyRegistry::Map map;
  map["c"] = PolicyNamed("c");
  registry.Reset(std::move(map));
  EXPECT_EQ(registry.Find("b"), nullptr);
  ASSERT_NE(registry.Find("c"), nullptr);
  EXPECT_EQ(registry.List().size(), 1u);
}

TEST(PolicyRegistryTest, AReaderKeepsItsPolicyAcrossASwap) {
  service::PolicyRegistry registry;
  registry.Set(PolicyNamed("a"));
  std::weak_ptr<const engine::Policy> first = registry.Find("a");
  std::shared_ptr<const engine::Policy> held = registry.Find("a");
  registry.Set(PolicyNamed("a"));
  EXPECT_NE(registry.Find("a"), held);
  EXPECT_FALSE(first.expired());  // a decision in flight still has it
  held.reset();
  EXPECT_TRUE(first.expired());   // freed once the last reader lets go
}

// What each writer does while the policy it replaces is destroyed: a reader
// on another thread must still get an answer. Before the fix the old
// snapshot was released under the readers' lock, so this reader could not
// return until the destructor did, and the wait below timed out.
TEST(PolicyRegistryTest, FreeingAReplacedPolicyDoesNotBlockReaders) {
  using Write = void (*)(service::PolicyRegistry&);
  const Write writes[] = {
      [](service::PolicyRegistry& r) { r.Set(PolicyNamed("a")); },
      [](service::PolicyRegistry& r) { r.Remove("a"); },
      [](service::PolicyRegistry& r) { r.Reset({}); },
  };
  for (Write write : writes) {
    service::PolicyRegistry registry;
    registry.Set(PolicyNamed("other"));
    bool reader_answered = false;
    std::thread reader;
    std::shared_ptr<const engine::Policy> compiled = PolicyNamed("a");
    // The same policy, with a destructor that asks the registry from
    // another thread and waits (bounded) for the answer.
    std::shared_ptr<const engine::Policy> watched(
        compiled.get(),
        [&registry, &reader_answered, &reader, compiled](const engine::Policy*) mutable {
          auto answered = std::make_shared<absl::Notification>();
          reader = std::thread([&registry, answered] {
            (void)registry.Find("other");
            answered->Notify();
          });
          reader_answered = answered->WaitForNotificationWithTimeout(absl::Seconds(10));
          compiled.reset();
        });
    registry.Set(std::move(watched));
    write(registry);
    // The reader returns once the writer has let go of every lock.
    ASSERT_TRUE(reader.joinable());
    reader.join();
    EXPECT_TRUE(reader_answered);
  }
}

}  // namespace
}  // namespace pdp
