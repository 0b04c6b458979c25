// Rule conditions: IP parsing and CIDR sets (engine/ip_set.h) directly, and
// through full evaluation: client-IP conditions, weekly time windows across
// the 2026 DST changes of Europe/Berlin and America/New_York, midnight-
// crossing windows and "24:00", location conditions (countries, regions,
// normalisation, malformed input), and every attribute operator, with
// literals and with `other`, on built-ins and on attribute maps, including
// "a condition on something the request lacks does not hold".
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "engine/compiler.h"
#include "engine/ip_set.h"
#include "engine/policy.h"
#include "engine/time_window.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pdp/v1/authorization.pb.h"
#include "tests/support/engine_test_util.h"

namespace pdp {
namespace {

using ::pdp::engine_testing::CompileOrDie;
using ::pdp::engine_testing::Decide;
using ::pdp::engine_testing::RequestFromJson;
using ::pdp::engine_testing::RequestJson;
using ::pdp::engine_testing::RuleJson;
using ::pdp::engine_testing::RuleSetFromJson;
using ::pdp::engine_testing::RuleSetJson;
using ::pdp::engine_testing::UtcTime;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A client address; fails the test when `text` does not parse.
engine::ClientIp Ip(const char* text) {
  std::optional<engine::ClientIp> ip = engine::ParseIpAddress(text);
  EXPECT_TRUE(ip.has_value()) << text;
  return ip.value_or(engine::ClientIp{0, false});
}

// The 128-bit value of an address.
engine::IpAddress Addr(const char* text) { return Ip(text).address; }

engine::IpRange Cidr(const char* text) {
  std::string error;
  std::optional<engine::IpRange> range = engine::ParseCidr(text, &error);
  EXPECT_TRUE(range.has_value()) << text << ": " << error;
  return range.value_or(engine::IpRange{0, 0, false});
}

engine::IpSet SetOf(const std::vector<const char*>& cidrs) {
  std::vector<engine::IpRange> ranges;
  for (const char* c : cidrs) ranges.push_back(Cidr(c));
  return engine::IpSet::Build(std::move(ranges));
}

constexpr engine::IpAddress kMaxIp = ~static_cast<engine::IpAddress>(0);

// An IPv6 client at a raw 128-bit value.
engine::ClientIp V6(engine::IpAddress address) { return {address, false}; }

// A policy with one permit rule "r" under deny-overrides with `conditions`.
std::shared_ptr<const engine::Policy> PermitIf(const std::string& conditions) {
  return CompileOrDie(RuleSetJson("deny-overrides", {RuleJson("r", "permit", conditions)}));
}

// Whether the one-rule policy applies to the request with `members`; fails
// the test if the rule errs instead.
bool Holds(const engine::Policy& policy, const std::string& members) {
  v1::AuthorizeResponse response = Decide(policy, RequestJson(members));
  EXPECT_THAT(response.decision(), ::testing::AnyOf(v1::PERMIT, v1::NOT_APPLICABLE))
      << members << "\n" << response.reason();
  return response.decision() == v1::PERMIT;
}

// ---- IP addresses and sets --------------------------------------------

TEST(IpAddressTest, ParsesBothFamilies) {
  EXPECT_EQ(Addr("::1"), engine::IpAddress{1});
  EXPECT_EQ(Addr("::"), engine::IpAddress{0});
  EXPECT_EQ(Addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), kMaxIp);
  // IPv4 lives in ::ffff:0:0/96, so its mapped IPv6 spelling is the same
  // value; only the family it was written in differs.
  EXPECT_EQ(Addr("10.1.2.3"), Addr("::ffff:10.1.2.3"));
  EXPECT_EQ(Addr("10.1.2.3"), Addr("::ffff:a01:203"));
  EXPECT_EQ(Addr("10.1.2.3"), (static_cast<engine::IpAddress>(0xffff) << 32) | 0x0a010203);
  EXPECT_NE(Addr("10.1.2.3"), Addr("::10.1.2.3"));
  EXPECT_TRUE(Ip("10.1.2.3").written_v4);
  EXPECT_FALSE(Ip("::ffff:10.1.2.3").written_v4);
  EXPECT_FALSE(Ip("2001:db8::1").written_v4);
}

TEST(IpAddressTest, RejectsNonAddresses) {
  for (const char* text : {"", "localhost", "10.0.0.0/8", "10.0.0", "10.0.0.0.1",
                           "10.0.0.256", "[::1]", "fe80::1%eth0", " 10.0.0.1",
                           "2001:db8:::1", "gggg::1"}) {
    EXPECT_FALSE(engine::ParseIpAddress(text).has_value()) << text;
  }
}

// inet_pton stops at a NUL; the text after it must not be ignored.
TEST(IpAddressTest, RejectsEmbeddedNul) {
  using std::string_view_literals::operator""sv;
  for (std::string_view text : {"10.0.0.1\0"sv, "10.0.0.1\0junk"sv, "::1\0"sv}) {
    EXPECT_FALSE(engine::ParseIpAddress(text).has_value()) << text.size();
  }
  std::string error;
  EXPECT_FALSE(engine::ParseCidr("10.0.0.0\0junk/8"sv, &error).has_value());
  EXPECT_FALSE(error.empty());
}

TEST(ParseCidrTest, Ipv4Block) {
  const engine::IpRange r = Cidr("10.0.0.0/8");
  EXPECT_EQ(r.first, Addr("10.0.0.0"));
  EXPECT_EQ(r.last, Addr("10.255.255.255"));
  EXPECT_TRUE(r.written_v4);
}

TEST(ParseCidrTest, Ipv6Block) {
  const engine::IpRange r = Cidr("2001:db8::/32");
  EXPECT_EQ(r.first, Addr("2001:db8::"));
  EXPECT_EQ(r.last, Addr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(r.written_v4);
  // A mapped block is written as IPv6.
  const engine::IpRange mapped = Cidr("::ffff:10.0.0.0/104");
  EXPECT_EQ(mapped.first, Addr("10.0.0.0"));
  EXPECT_EQ(mapped.last, Addr("10.255.255.255"));
  EXPECT_FALSE(mapped.written_v4);
}

TEST(ParseCidrTest, SingleHosts) {
  for (const char* host : {"192.0.2.7", "192.0.2.7/32", "2001:db8::7", "2001:db8::7/128"}) {
    const engine::IpRange r = Cidr(host);
    EXPECT_EQ(r.first, r.last) << host;
  }
  EXPECT_EQ(Cidr("192.0.2.7").first, Addr("192.0.2.7"));
  EXPECT_EQ(Cidr("2001:db8::7/128").first, Addr("2001:db8::7"));
}

TEST(ParseCidrTest, ZeroPrefixes) {
  const engine::IpRange v4 = Cidr("0.0.0.0/0");
  EXPECT_EQ(v4.first, Addr("0.0.0.0"));
  EXPECT_EQ(v4.last, Addr("255.255.255.255"));
  const engine::IpRange v6 = Cidr("::/0");
  EXPECT_EQ(v6.first, engine::IpAddress{0});
  EXPECT_EQ(v6.last, kMaxIp);
}

TEST(ParseCidrTest, Errors) {
  for (const char* text :
       {"10.0.0.0/33", "2001:db8::/129", "10.0.0.1/8", "10.0.0.0/6", "2001:db8::1/64",
        "1.2.3.5/31", "", "/8", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0.0/ 8",
        "10.0.0.0/+8", "10.0.0.0/-0", "10.0.0.0/x", "10.0.0.0/1000", "nope/8",
        "10.0.0/8"}) {
    std::string error;
    EXPECT_FALSE(engine::ParseCidr(text, &error).has_value()) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
}

TEST(IpSetTest, EmptySetContainsNothing) {
  const engine::IpSet set = engine::IpSet::Build({});
  EXPECT_FALSE(set.Contains(V6(0)));
  EXPECT_FALSE(set.Contains(Ip("10.0.0.1")));
  EXPECT_FALSE(set.Contains(Ip("::1")));
}

TEST(IpSetTest, BoundariesOfOneBlock) {
  const engine::IpSet set = SetOf({"10.0.0.0/8"});
  EXPECT_TRUE(set.Contains(Ip("10.0.0.0")));
  EXPECT_TRUE(set.Contains(Ip("10.255.255.255")));
  EXPECT_TRUE(set.Contains(Ip("10.20.30.40")));
  EXPECT_FALSE(set.Contains(Ip("9.255.255.255")));
  EXPECT_FALSE(set.Contains(Ip("11.0.0.0")));
}

TEST(IpSetTest, Ipv6Boundaries) {
  const engine::IpSet set = SetOf({"2001:db8::/32"});
  EXPECT_TRUE(set.Contains(Ip("2001:db8::")));
  EXPECT_TRUE(set.Contains(Ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(set.Contains(Ip("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(set.Contains(Ip("2001:db9::")));
}

TEST(IpSetTest, SingleHost) {
  const engine::IpSet set = SetOf({"192.0.2.7", "2001:db8::7"});
  EXPECT_TRUE(set.Contains(Ip("192.0.2.7")));
  EXPECT_FALSE(set.Contains(Ip("192.0.2.6")));
  EXPECT_FALSE(set.Contains(Ip("192.0.2.8")));
  EXPECT_TRUE(set.Contains(Ip("2001:db8::7")));
  EXPECT_FALSE(set.Contains(Ip("2001:db8::6")));
  EXPECT_FALSE(set.Contains(Ip("2001:db8::8")));
}

TEST(IpSetTest, MergesAdjacentBlocks) {
  const engine::IpSet set = SetOf({"10.128.0.0/9", "10.0.0.0/9"});
  // Stored as one range: the same size as the single /8.
  EXPECT_EQ(set.memory_bytes(), SetOf({"10.0.0.0/8"}).memory_bytes());
  EXPECT_TRUE(set.Contains(Ip("10.127.255.255")));
  EXPECT_TRUE(set.Contains(Ip("10.128.0.0")));
  EXPECT_TRUE(set.Contains(Ip("10.0.0.0")));
  EXPECT_TRUE(set.Contains(Ip("10.255.255.255")));
  EXPECT_FALSE(set.Contains(Ip("11.0.0.0")));
}

TEST(IpSetTest, MergesAdjacentHosts) {
  const engine::IpSet set = SetOf({"10.0.0.3", "10.0.0.1", "10.0.0.2"});
  EXPECT_EQ(set.memory_bytes(), SetOf({"10.0.0.1"}).memory_bytes());
  EXPECT_FALSE(set.Contains(Ip("10.0.0.0")));
  EXPECT_TRUE(set.Contains(Ip("10.0.0.1")));
  EXPECT_TRUE(set.Contains(Ip("10.0.0.3")));
  EXPECT_FALSE(set.Contains(Ip("10.0.0.4")));
}

TEST(IpSetTest, MergesOverlappingAndNested) {
  const engine::IpSet set =
      SetOf({"10.1.0.0/16", "10.0.0.0/8", "10.1.2.0/24", "10.200.0.0/16"});
  EXPECT_EQ(set.memory_bytes(), SetOf({"10.0.0.0/8"}).memory_bytes());
  EXPECT_TRUE(set.Contains(Ip("10.255.255.255")));
  EXPECT_FALSE(set.Contains(Ip("11.0.0.0")));
  // A nested block must not shrink the enclosing one.
  const engine::IpSet nested = SetOf({"10.0.0.0/8", "10.0.0.0/16"});
  EXPECT_TRUE(nested.Contains(Ip("10.200.0.1")));
}

TEST(IpSetTest, KeepsGapsBetweenDisjointBlocks) {
  const engine::IpSet set = SetOf({"12.0.0.0/8", "10.0.0.0/8", "10.0.0.5", "192.0.2.0/24"});
  EXPECT_GT(set.memory_bytes(), SetOf({"10.0.0.0/8"}).memory_bytes());
  EXPECT_TRUE(set.Contains(Ip("10.0.0.1")));
  EXPECT_FALSE(set.Contains(Ip("11.0.0.0")));
  EXPECT_FALSE(set.Contains(Ip("11.255.255.255")));
  EXPECT_TRUE(set.Contains(Ip("12.0.0.0")));
  EXPECT_TRUE(set.Contains(Ip("12.255.255.255")));
  EXPECT_FALSE(set.Contains(Ip("13.0.0.0")));
  EXPECT_FALSE(set.Contains(Ip("192.0.1.255")));
  EXPECT_TRUE(set.Contains(Ip("192.0.2.255")));
  const engine::IpSet gap = SetOf({"10.0.0.1", "10.0.0.3"});
  EXPECT_GT(gap.memory_bytes(), SetOf({"10.0.0.1"}).memory_bytes());
  EXPECT_FALSE(gap.Contains(Ip("10.0.0.2")));
}

TEST(IpSetTest, Ipv4ZeroPrefixIsAllOfIpv4Only) {
  const engine::IpSet set = SetOf({"0.0.0.0/0"});
  EXPECT_TRUE(set.Contains(Ip("0.0.0.0")));
  EXPECT_TRUE(set.Contains(Ip("255.255.255.255")));
  EXPECT_TRUE(set.Contains(Ip("::ffff:1.2.3.4")));
  EXPECT_FALSE(set.Contains(Ip("2001:db8::1")));
  EXPECT_FALSE(set.Contains(Ip("::1")));
  EXPECT_FALSE(set.Contains(Ip("::")));
}

TEST(IpSetTest, Ipv6ZeroPrefixIsAnyIpv6ClientOnly) {
  const engine::IpSet all = SetOf({"::/0"});
  EXPECT_TRUE(all.Contains(V6(0)));
  EXPECT_TRUE(all.Contains(V6(kMaxIp)));
  EXPECT_TRUE(all.Contains(Ip("2001:db8::1")));
  EXPECT_TRUE(all.Contains(Ip("::ffff:10.1.2.3")));  // written as IPv6
  EXPECT_FALSE(all.Contains(Ip("10.1.2.3")));        // written as IPv4
  EXPECT_FALSE(all.Contains(Ip("0.0.0.0")));
}

TEST(IpSetTest, FamiliesStayApart) {
  // Numerically the IPv6 block covers 11.0.0.1, but it was written as IPv6.
  const engine::IpSet set = SetOf({"::/0", "10.0.0.0/8"});
  EXPECT_TRUE(set.Contains(Ip("10.1.2.3")));
  EXPECT_FALSE(set.Contains(Ip("11.0.0.1")));
  EXPECT_TRUE(set.Contains(Ip("::ffff:11.0.0.1")));
  EXPECT_TRUE(set.Contains(Ip("2001:db8::1")));
  // A mapped block written as IPv6 matches only IPv6-written clients.
  const engine::IpSet mapped = SetOf({"::ffff:10.0.0.0/104"});
  EXPECT_TRUE(mapped.Contains(Ip("::ffff:10.1.2.3")));
  EXPECT_FALSE(mapped.Contains(Ip("10.1.2.3")));
  EXPECT_FALSE(mapped.Contains(Ip("::ffff:11.1.2.3")));
}

TEST(IpSetTest, TopOfTheAddressSpace) {
  // Ranges ending at the very last address merge without overflowing.
  const engine::IpSet top = SetOf({"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                                   "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
                                   "::/0", "::1"});
  EXPECT_EQ(top.memory_bytes(), SetOf({"::/0"}).memory_bytes());
  EXPECT_TRUE(top.Contains(V6(kMaxIp)));
  EXPECT_TRUE(top.Contains(V6(0)));
  const engine::IpSet two = SetOf({"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1"});
  EXPECT_TRUE(two.Contains(V6(kMaxIp)));
  EXPECT_FALSE(two.Contains(V6(kMaxIp - 1)));
  EXPECT_TRUE(two.Contains(V6(1)));
  EXPECT_FALSE(two.Contains(V6(0)));
  EXPECT_FALSE(two.Contains(V6(2)));
}

TEST(IpSetTest, MappedIpv6MatchesIpv4Block) {
  const engine::IpSet set = SetOf({"10.0.0.0/8"});
  EXPECT_TRUE(set.Contains(Ip("::ffff:10.1.2.3")));
  EXPECT_TRUE(set.Contains(Ip("::ffff:10.0.0.0")));
  EXPECT_TRUE(set.Contains(Ip("::ffff:10.255.255.255")));
  EXPECT_FALSE(set.Contains(Ip("::ffff:11.1.2.3")));
  EXPECT_FALSE(set.Contains(Ip("::ffff:9.255.255.255")));
  // The deprecated IPv4-compatible form is a different address.
  EXPECT_FALSE(set.Contains(Ip("::10.1.2.3")));
}

// ---- Client IP through evaluation -------------------------------------

TEST(ClientIpConditionTest, InAndNotIn) {
  auto policy = PermitIf(R"({"client_ip": {"in": ["10.0.0.0/8", "2001:db8::/32"],
                                           "not_in": ["10.66.0.0/16"]}})");
  auto ip = [](const char* address) {
    return absl::StrCat(R"("environment": {"client_ip": ")", address, R"("})");
  };
  EXPECT_TRUE(Holds(*policy, ip("10.1.2.3")));
  EXPECT_TRUE(Holds(*policy, ip("10.0.0.0")));
  EXPECT_TRUE(Holds(*policy, ip("10.255.255.255")));
  EXPECT_TRUE(Holds(*policy, ip("10.65.255.255")));
  EXPECT_FALSE(Holds(*policy, ip("10.66.0.0")));
  EXPECT_FALSE(Holds(*policy, ip("10.66.255.255")));
  EXPECT_TRUE(Holds(*policy, ip("10.67.0.0")));
  EXPECT_FALSE(Holds(*policy, ip("11.0.0.1")));
  EXPECT_TRUE(Holds(*policy, ip("2001:db8::1")));
  EXPECT_TRUE(Holds(*policy, ip("2001:DB8:0:0:0:0:0:1")));
  EXPECT_FALSE(Holds(*policy, ip("2001:db9::1")));
  EXPECT_TRUE(Holds(*policy, ip("::ffff:10.1.2.3")));
  EXPECT_FALSE(Holds(*policy, ip("::ffff:10.66.0.1")));
  EXPECT_FALSE(Holds(*policy, ip("::ffff:192.0.2.1")));
  // No client IP: the condition does not hold.
  EXPECT_FALSE(Holds(*policy, ""));
}

TEST(ClientIpConditionTest, FamiliesStayApart) {
  auto ip = [](const char* address) {
    return absl::StrCat(R"("environment": {"client_ip": ")", address, R"("})");
  };
  auto any_v6 = PermitIf(R"({"client_ip": {"in": ["::/0"]}})");
  EXPECT_TRUE(Holds(*any_v6, ip("2001:db8::1")));
  EXPECT_FALSE(Holds(*any_v6, ip("10.1.2.3")));
  auto any_v4 = PermitIf(R"({"client_ip": {"in": ["0.0.0.0/0"]}})");
  EXPECT_TRUE(Holds(*any_v4, ip("10.1.2.3")));
  EXPECT_TRUE(Holds(*any_v4, ip("::ffff:10.1.2.3")));
  EXPECT_FALSE(Holds(*any_v4, ip("2001:db8::1")));
  // Blocking all of IPv6 leaves IPv4 clients alone.
  auto no_v6 = PermitIf(R"({"client_ip": {"not_in": ["::/0"]}})");
  EXPECT_TRUE(Holds(*no_v6, ip("10.1.2.3")));
  EXPECT_FALSE(Holds(*no_v6, ip("2001:db8::1")));
}

TEST(ClientIpConditionTest, NotInOnly) {
  auto policy = PermitIf(R"({"client_ip": {"not_in": ["10.0.0.0/8"]}})");
  EXPECT_TRUE(Holds(*policy, R"("environment": {"client_ip": "192.0.2.1"})"));
  EXPECT_TRUE(Holds(*policy, R"("environment": {"client_ip": "2001:db8::1"})"));
  EXPECT_FALSE(Holds(*policy, R"("environment": {"client_ip": "10.0.0.1"})"));
  EXPECT_FALSE(Holds(*policy, R"("environment": {"client_ip": "::ffff:10.0.0.1"})"));
  EXPECT_FALSE(Holds(*policy, ""));
}

TEST(ClientIpConditionTest, UnparsableIpIsAnErrorForTheRule) {
  auto policy = PermitIf(R"({"client_ip": {"in": ["10.0.0.0/8"]}})");
  for (const char* bad : {"10.0.0.300", "not-an-ip", "10.0.0.0/8", "[::1]"}) {
    v1::AuthorizeResponse response = Decide(
        *policy, RequestJson(absl::StrCat(R"("environment": {"client_ip": ")", bad, R"("})")));
    EXPECT_EQ(response.decision(), v1::INDETERMINATE) << bad;
    EXPECT_THAT(response.determining_rules(), ElementsAre("r")) << bad;
  }
}

// ---- Time windows through evaluation ----------------------------------

// A policy permitting "read doc" inside `windows` (a JSON array).
std::shared_ptr<const engine::Policy> WindowPolicy(const std::string& windows) {
  return PermitIf(absl::StrCat(R"({"time_windows": )", windows, "}"));
}

// Whether the request at RFC 3339 instant `time` falls in the windows.
bool InWindow(const engine::Policy& policy, const std::string& time) {
  return Holds(policy, absl::StrCat(R"("environment": {"time": ")", time, R"("})"));
}

TEST(TimeWindowTest, BerlinOfficeHoursAcrossSpringDst) {
  auto policy = WindowPolicy(R"([{"days": ["mon","tue","wed","thu","fri"],
      "start": "09:00", "end": "17:00", "time_zone": "Europe/Berlin"}])");
  // Friday 2026-03-27, CET (UTC+1).
  EXPECT_FALSE(InWindow(*policy, "2026-03-27T07:59:59Z"));  // 08:59:59
  EXPECT_TRUE(InWindow(*policy, "2026-03-27T08:00:00Z"));   // 09:00 start inclusive
  EXPECT_TRUE(InWindow(*policy, "2026-03-27T08:30:00Z"));   // 09:30
  EXPECT_TRUE(InWindow(*policy, "2026-03-27T15:59:59Z"));   // 16:59:59
  EXPECT_FALSE(InWindow(*policy, "2026-03-27T16:00:00Z"));  // 17:00 end exclusive
  // Saturday and Sunday (the switch is on Sunday 2026-03-29).
  EXPECT_FALSE(InWindow(*policy, "2026-03-28T10:00:00Z"));
  EXPECT_FALSE(InWindow(*policy, "2026-03-29T10:00:00Z"));
  // Monday 2026-03-30, CEST (UTC+2): a fixed +1 offset would get these wrong.
  EXPECT_TRUE(InWindow(*policy, "2026-03-30T07:30:00Z"));   // 09:30 CEST
  EXPECT_FALSE(InWindow(*policy, "2026-03-30T06:30:00Z"));  // 08:30 CEST
  EXPECT_TRUE(InWindow(*policy, "2026-03-30T07:00:00Z"));   // 09:00 CEST
  EXPECT_FALSE(InWindow(*policy, "2026-03-30T15:30:00Z"));  // 17:30 CEST
  EXPECT_TRUE(InWindow(*policy, "2026-03-30T14:59:00Z"));   // 16:59 CEST
}

TEST(TimeWindowTest, BerlinOfficeHoursAcrossAutumnDst) {
  auto policy = WindowPolicy(R"([{"days": ["mon","tue","wed","thu","fri"],
      "start": "09:00", "end": "17:00", "time_zone": "Europe/Berlin"}])");
  // Friday 2026-10-23, CEST (UTC+2).
  EXPECT_TRUE(InWindow(*policy, "2026-10-23T07:30:00Z"));   // 09:30
  EXPECT_FALSE(InWindow(*policy, "2026-10-23T15:30:00Z"));  // 17:30
  // Monday 2026-10-26, CET again (the switch is Sunday 2026-10-25).
  EXPECT_FALSE(InWindow(*policy, "2026-10-26T07:30:00Z"));  // 08:30 CET
  EXPECT_TRUE(InWindow(*policy, "2026-10-26T08:30:00Z"));   // 09:30 CET
  EXPECT_TRUE(InWindow(*policy, "2026-10-26T15:30:00Z"));   // 16:30 CET
  EXPECT_FALSE(InWindow(*policy, "2026-10-26T16:00:00Z"));  // 17:00 CET
}

TEST(TimeWindowTest, NewYorkOfficeHoursAcrossDst) {
  auto policy = WindowPolicy(R"([{"days": ["mon","tue","wed","thu","fri"],
      "start": "09:00", "end": "17:00", "time_zone": "America/New_York"}])");
  // Friday 2026-03-06, EST (UTC-5).
  EXPECT_TRUE(InWindow(*policy, "2026-03-06T14:30:00Z"));   // 09:30
  EXPECT_FALSE(InWindow(*policy, "2026-03-06T13:30:00Z"));  // 08:30
  EXPECT_TRUE(InWindow(*policy, "2026-03-06T21:30:00Z"));   // 16:30
  // Monday 2026-03-09, EDT (UTC-4) after the switch on 2026-03-08.
  EXPECT_TRUE(InWindow(*policy, "2026-03-09T13:30:00Z"));   // 09:30 EDT
  EXPECT_FALSE(InWindow(*policy, "2026-03-09T21:30:00Z"));  // 17:30 EDT
  EXPECT_FALSE(InWindow(*policy, "2026-03-09T12:30:00Z"));  // 08:30 EDT
  // Monday 2026-11-02, EST again after the switch on 2026-11-01.
  EXPECT_FALSE(InWindow(*policy, "2026-11-02T13:30:00Z"));  // 08:30 EST
  EXPECT_TRUE(InWindow(*policy, "2026-11-02T14:30:00Z"));   // 09:30 EST
  EXPECT_TRUE(InWindow(*policy, "2026-11-02T21:30:00Z"));   // 16:30 EST
  EXPECT_FALSE(InWindow(*policy, "2026-11-02T22:00:00Z"));  // 17:00 EST
}

TEST(TimeWindowTest, WeekdayIsTheLocalDay) {
  // Monday 00:00-02:00 in Berlin. Sunday 2026-03-29 23:30 UTC is Monday
  // 01:30 CEST; Monday 2026-03-30 00:30 UTC is Monday 02:30 CEST.
  auto policy = WindowPolicy(R"([{"days": ["mon"], "start": "00:00", "end": "02:00",
                                  "time_zone": "Europe/Berlin"}])");
  EXPECT_TRUE(InWindow(*policy, "2026-03-29T23:30:00Z"));
  EXPECT_TRUE(InWindow(*policy, "2026-03-29T22:00:00Z"));   // mon 00:00
  EXPECT_FALSE(InWindow(*policy, "2026-03-29T21:59:00Z"));  // sun 23:59
  EXPECT_FALSE(InWindow(*policy, "2026-03-30T00:30:00Z"));
}

TEST(TimeWindowTest, MidnightCrossingWindow) {
  // Opens Friday 22:00, closes Saturday 06:00 (UTC). 2026-03-27 is a Friday.
  auto policy = WindowPolicy(R"([{"days": ["fri"], "start": "22:00", "end": "06:00",
                                  "time_zone": "UTC"}])");
  EXPECT_TRUE(InWindow(*policy, "2026-03-28T03:00:00Z"));   // sat 03:00
  EXPECT_FALSE(InWindow(*policy, "2026-03-27T03:00:00Z"));  // fri 03:00
  EXPECT_FALSE(InWindow(*policy, "2026-03-28T22:00:00Z"));  // sat 22:00
  EXPECT_TRUE(InWindow(*policy, "2026-03-27T22:00:00Z"));   // fri 22:00
  EXPECT_TRUE(InWindow(*policy, "2026-03-27T23:59:59Z"));
  EXPECT_TRUE(InWindow(*policy, "2026-03-28T00:00:00Z"));
  EXPECT_FALSE(InWindow(*policy, "2026-03-27T21:59:59Z"));
  EXPECT_TRUE(InWindow(*policy, "2026-03-28T05:59:59Z"));
  EXPECT_FALSE(InWindow(*policy, "2026-03-28T06:00:00Z"));
  EXPECT_FALSE(InWindow(*policy, "2026-03-26T23:00:00Z"));  // thu 23:00
  EXPECT_FALSE(InWindow(*policy, "2026-03-29T03:00:00Z"));  // sun 03:00
}

TEST(TimeWindowTest, MidnightCrossingWrapsSundayToMonday) {
  auto policy = WindowPolicy(R"([{"days": ["sunday"], "start": "23:00", "end": "01:00",
                                  "time_zone": "UTC"}])");
  EXPECT_TRUE(InWindow(*policy, "2026-03-29T23:30:00Z"));   // sun 23:30
  EXPECT_TRUE(InWindow(*policy, "2026-03-30T00:30:00Z"));   // mon 00:30
  EXPECT_FALSE(InWindow(*policy, "2026-03-30T23:30:00Z"));  // mon 23:30
  EXPECT_FALSE(InWindow(*policy, "2026-03-29T00:30:00Z"));  // sun 00:30
}

TEST(TimeWindowTest, EndOfDay) {
  auto policy = WindowPolicy(R"([{"days": ["fri"], "start": "18:00", "end": "24:00",
                                  "time_zone": "UTC"}])");
  EXPECT_FALSE(InWindow(*policy, "2026-03-27T17:59:59Z"));
  EXPECT_TRUE(InWindow(*policy, "2026-03-27T18:00:00Z"));
  EXPECT_TRUE(InWindow(*policy, "2026-03-27T23:59:59Z"));
  EXPECT_FALSE(InWindow(*policy, "2026-03-28T00:00:00Z"));  // sat 00:00
  EXPECT_FALSE(InWindow(*policy, "2026-03-28T18:30:00Z"));  // sat
}

TEST(TimeWindowTest, NoDaysMeansEveryDay) {
  auto policy = WindowPolicy(R"([{"start": "09:00", "end": "10:00", "time_zone": "UTC"}])");
  for (int day = 23; day <= 29; ++day) {  // 2026-03-23 (mon) .. 29 (sun)
    EXPECT_TRUE(InWindow(*policy, absl::StrCat("2026-03-", day, "T09:30:00Z"))) << day;
    EXPECT_FALSE(InWindow(*policy, absl::StrCat("2026-03-", day, "T10:30:00Z"))) << day;
  }
}

TEST(TimeWindowTest, AnyWindowSuffices) {
  auto policy = WindowPolicy(R"([
      {"days": ["MON"], "start": "09:00", "end": "10:00", "time_zone": "UTC"},
      {"days": ["Friday"], "start": "09:00", "end": "10:00", "time_zone": "Asia/Tokyo"}])");
  EXPECT_TRUE(InWindow(*policy, "2026-03-23T09:30:00Z"));   // mon 09:30 UTC
  EXPECT_TRUE(InWindow(*policy, "2026-03-27T00:30:00Z"));   // fri 09:30 JST
  EXPECT_FALSE(InWindow(*policy, "2026-03-27T09:30:00Z"));  // fri 18:30 JST
  EXPECT_FALSE(InWindow(*policy, "2026-03-24T09:30:00Z"));  // tue
}

TEST(TimeWindowTest, OutOfRangeRequestTimeIsAnError) {
  auto policy = WindowPolicy(R"([{"start": "00:00", "end": "24:00", "time_zone": "UTC"}])");
  v1::AuthorizeRequest request = RequestFromJson(RequestJson());
  request.mutable_environment()->mutable_time()->set_seconds(253402300800);  // year 10000
  v1::AuthorizeResponse response = Decide(*policy, request);
  EXPECT_EQ(response.decision(), v1::INDETERMINATE);
  EXPECT_THAT(response.determining_rules(), ElementsAre("r"));

  request.mutable_environment()->mutable_time()->set_seconds(0);
  request.mutable_environment()->mutable_time()->set_nanos(-1);
  EXPECT_EQ(Decide(*policy, request).decision(), v1::INDETERMINATE);

  request.mutable_environment()->mutable_time()->set_nanos(0);
  EXPECT_EQ(Decide(*policy, request).decision(), v1::PERMIT);
}

TEST(TimeWindowUnitTest, ParseClock) {
  EXPECT_EQ(engine::ParseClock("00:00", false), 0);
  EXPECT_EQ(engine::ParseClock("09:30", false), 570);
  EXPECT_EQ(engine::ParseClock("23:59", false), 1439);
  EXPECT_EQ(engine::ParseClock("24:00", true), 1440);
  EXPECT_EQ(engine::ParseClock("24:00", false), std::nullopt);
  EXPECT_EQ(engine::ParseClock("24:01", true), std::nullopt);
  EXPECT_EQ(engine::ParseClock("12:60", false), std::nullopt);
  EXPECT_EQ(engine::ParseClock("9:30", false), std::nullopt);
  EXPECT_EQ(engine::ParseClock("09:3a", false), std::nullopt);
}

TEST(TimeWindowUnitTest, ParseWeekday) {
  EXPECT_EQ(engine::ParseWeekday("mon"), 0);
  EXPECT_EQ(engine::ParseWeekday("Monday"), 0);
  EXPECT_EQ(engine::ParseWeekday("WED"), 2);
  EXPECT_EQ(engine::ParseWeekday("sunday"), 6);
  EXPECT_EQ(engine::ParseWeekday("sun"), 6);
  EXPECT_EQ(engine::ParseWeekday("mo"), std::nullopt);
  EXPECT_EQ(engine::ParseWeekday("mond"), std::nullopt);
  EXPECT_EQ(engine::ParseWeekday(""), std::nullopt);
}

TEST(TimeWindowUnitTest, ToLocalTimeFollowsDst) {
  absl::TimeZone berlin;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  const engine::LocalTime cet = engine::ToLocalTime(UtcTime("2026-03-27T08:30:00Z"), berlin);
  EXPECT_EQ(cet.minute_of_day, 9 * 60 + 30);
  EXPECT_EQ(cet.weekday, 4);  // friday
  const engine::LocalTime cest = engine::ToLocalTime(UtcTime("2026-03-30T07:30:00Z"), berlin);
  EXPECT_EQ(cest.minute_of_day, 9 * 60 + 30);
  EXPECT_EQ(cest.weekday, 0);  // monday
}

// ---- Location ----------------------------------------------------------

std::string At(const std::string& country, const std::string& region = "") {
  return absl::StrCat(R"("environment": {"location": {"country": ")", country,
                      R"(", "region": ")", region, R"("}})");
}

TEST(LocationConditionTest, CountriesAndRegions) {
  auto policy = PermitIf(R"({"location": {"in": ["DE", "US-CA"]}})");
  EXPECT_TRUE(Holds(*policy, At("DE")));
  EXPECT_TRUE(Holds(*policy, At("de")));
  EXPECT_TRUE(Holds(*policy, At("DE", "DE-BY")));  // a country matches its regions
  EXPECT_TRUE(Holds(*policy, At("DE", "BY")));
  EXPECT_TRUE(Holds(*policy, At("US", "CA")));     // "CA" means "US-CA"
  EXPECT_TRUE(Holds(*policy, At("US", "US-CA")));
  EXPECT_TRUE(Holds(*policy, At("us", "us-ca")));
  EXPECT_TRUE(Holds(*policy, At("us", "ca")));
  EXPECT_FALSE(Holds(*policy, At("US", "NY")));
  EXPECT_FALSE(Holds(*policy, At("US")));          // a region entry needs the region
  EXPECT_FALSE(Holds(*policy, At("FR")));
  EXPECT_FALSE(Holds(*policy, At("CA")));          // Canada is not California
  EXPECT_FALSE(Holds(*policy, ""));                // no location: does not hold
}

TEST(LocationConditionTest, RuleEntriesAreCaseInsensitive) {
  auto policy = PermitIf(R"({"location": {"in": ["de", "us-ca"]}})");
  EXPECT_TRUE(Holds(*policy, At("DE")));
  EXPECT_TRUE(Holds(*policy, At("US", "CA")));
  EXPECT_FALSE(Holds(*policy, At("US", "TX")));
}

TEST(LocationConditionTest, NotIn) {
  auto policy = PermitIf(R"({"location": {"not_in": ["US-TX", "RU"]}})");
  EXPECT_TRUE(Holds(*policy, At("US", "CA")));
  EXPECT_TRUE(Holds(*policy, At("US")));
  EXPECT_FALSE(Holds(*policy, At("US", "TX")));
  EXPECT_FALSE(Holds(*policy, At("us", "us-tx")));
  EXPECT_FALSE(Holds(*policy, At("RU")));
  EXPECT_FALSE(Holds(*policy, At("RU", "MOW")));
  EXPECT_TRUE(Holds(*policy, At("DE")));
  EXPECT_FALSE(Holds(*policy, ""));  // no location: does not hold, even for not_in
}

TEST(LocationConditionTest, InAndNotInTogether) {
  auto policy = PermitIf(R"({"location": {"in": ["US"], "not_in": ["US-TX"]}})");
  EXPECT_TRUE(Holds(*policy, At("US")));
  EXPECT_TRUE(Holds(*policy, At("US", "NY")));
  EXPECT_FALSE(Holds(*policy, At("US", "TX")));
  EXPECT_FALSE(Holds(*policy, At("DE")));
}

TEST(LocationConditionTest, MalformedLocationIsARuleError) {
  const std::string json = RuleSetJson(
      "deny-overrides",
      {RuleJson("allow-all", "permit"),
       RuleJson("block-ru", "deny", R"({"location": {"in": ["RU"]}})")});
  auto policy = CompileOrDie(json);
  for (const auto& [country, region] :
       std::vector<std::pair<std::string, std::string>>{
           {"DEU", ""}, {"D", ""}, {"1E", ""}, {"D-", ""}, {"US", "DE-BY"}, {"", "US-CA"},
           {"", "CA"},
           {"US", "CALIF"}, {"US", "C A"}, {"US", "US-"}}) {
    v1::AuthorizeResponse response = Decide(*policy, RequestJson(At(country, region)));
    EXPECT_EQ(response.decision(), v1::INDETERMINATE) << country << "/" << region;
    EXPECT_THAT(response.determining_rules(), ElementsAre("block-ru"))
        << country << "/" << region;
    EXPECT_THAT(response.obligations(), IsEmpty());
  }
  // A well-formed location elsewhere: the deny rule does not apply.
  EXPECT_EQ(Decide(*policy, RequestJson(At("DE", "BE"))).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, RequestJson(At("RU"))).decision(), v1::DENY);
}

TEST(ConditionCombinationTest, FalseConditionWinsOverError) {
  // The location errs (bad country) but the attribute condition is false:
  // the rule is not applicable rather than erring.
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RuleJson("allow-all", "permit"),
       RuleJson("d", "deny", R"({"location": {"in": ["RU"]},
           "attributes": [{"attribute": "subject.flagged", "op": "eq", "value": true}]})")}));
  EXPECT_EQ(Decide(*policy, RequestJson(At("XYZ") +
                                        R"(, "subject": {"attributes": {"flagged": false}})"))
                .decision(),
            v1::PERMIT);
  EXPECT_EQ(Decide(*policy, RequestJson(At("XYZ") +
                                        R"(, "subject": {"attributes": {"flagged": true}})"))
                .decision(),
            v1::INDETERMINATE);
  // The error comes first (location), the false condition later (client IP).
  auto geo_and_ip = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RuleJson("allow-all", "permit"),
       RuleJson("d", "deny", R"({"location": {"in": ["RU"]},
                                 "client_ip": {"in": ["10.0.0.0/8"]}})")}));
  EXPECT_EQ(Decide(*geo_and_ip, RequestJson(R"("environment": {"client_ip": "192.0.2.1",
                                                 "location": {"country": "XYZ"}})"))
                .decision(),
            v1::PERMIT);
  EXPECT_EQ(Decide(*geo_and_ip, RequestJson(R"("environment": {"client_ip": "10.0.0.1",
                                                 "location": {"country": "XYZ"}})"))
                .decision(),
            v1::INDETERMINATE);
  // An out-of-range time (the first check) and a location that is elsewhere.
  auto time_and_geo = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RuleJson("allow-all", "permit"),
       RuleJson("d", "deny", R"({"time_windows": [{"start": "00:00", "end": "24:00",
                                                   "time_zone": "UTC"}],
                                 "location": {"in": ["RU"]}})")}));
  v1::AuthorizeRequest far_future = RequestFromJson(
      RequestJson(R"("environment": {"location": {"country": "DE"}})"));
  far_future.mutable_environment()->mutable_time()->set_seconds(253402300800);
  EXPECT_EQ(Decide(*time_and_geo, far_future).decision(), v1::PERMIT);
  far_future.mutable_environment()->mutable_location()->set_country("RU");
  EXPECT_EQ(Decide(*time_and_geo, far_future).decision(), v1::INDETERMINATE);
  // Same with an unparsable IP and a time window that does not hold.
  auto windowed = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RuleJson("allow-all", "permit"),
       RuleJson("d", "deny", R"({"time_windows": [{"start": "01:00", "end": "02:00",
                                                   "time_zone": "UTC"}],
                                 "client_ip": {"in": ["10.0.0.0/8"]}})")}));
  EXPECT_EQ(Decide(*windowed, RequestJson(R"("environment": {"client_ip": "bogus",
                                                "time": "2026-03-27T12:00:00Z"})"))
                .decision(),
            v1::PERMIT);
  EXPECT_EQ(Decide(*windowed, RequestJson(R"("environment": {"client_ip": "bogus",
                                                "time": "2026-03-27T01:30:00Z"})"))
                .decision(),
            v1::INDETERMINATE);
}

// ---- Attribute operators ----------------------------------------------

struct AttrCase {
  const char* name;
  const char* condition;  // one attribute condition, JSON
  const char* members;    // request members besides action and resource type
  bool holds;
};

class AttributeOpTest : public ::testing::TestWithParam<AttrCase> {};

TEST_P(AttributeOpTest, Holds) {
  const AttrCase& c = GetParam();
  auto policy = PermitIf(absl::StrCat(R"({"attributes": [)", c.condition, "]}"));
  EXPECT_EQ(Holds(*policy, c.members), c.holds)
      << c.condition << "\nrequest members: " << c.members;
}

// subject attributes {"a": <value>}
#define SA(value) R"("subject": {"attributes": {"a": )" value "}}"

constexpr AttrCase kAttrCases[] = {
    // eq
    {"EqString", R"({"attribute": "subject.a", "op": "eq", "value": "eng"})", SA(R"("eng")"), true},
    {"EqStringDiffers", R"({"attribute": "subject.a", "op": "eq", "value": "eng"})", SA(R"("ops")"), false},
    {"EqCaseSensitive", R"({"attribute": "subject.a", "op": "eq", "value": "eng"})", SA(R"("ENG")"), false},
    {"EqNumber", R"({"attribute": "subject.a", "op": "eq", "value": 1})", SA("1.0"), true},
    {"EqNumberDiffers", R"({"attribute": "subject.a", "op": "eq", "value": 1})", SA("1.5"), false},
    {"EqNumberVsString", R"({"attribute": "subject.a", "op": "eq", "value": 1})", SA(R"("1")"), false},
    {"EqStringVsNumber", R"({"attribute": "subject.a", "op": "eq", "value": "1"})", SA("1"), false},
    {"EqBool", R"({"attribute": "subject.a", "op": "eq", "value": true})", SA("true"), true},
    {"EqBoolDiffers", R"({"attribute": "subject.a", "op": "eq", "value": true})", SA("false"), false},
    {"EqBoolVsString", R"({"attribute": "subject.a", "op": "eq", "value": true})", SA(R"("true")"), false},
    {"EqList", R"({"attribute": "subject.a", "op": "eq", "value": ["a", 1]})", SA(R"(["a", 1])"), true},
    {"EqListOrderMatters", R"({"attribute": "subject.a", "op": "eq", "value": ["a", "b"]})", SA(R"(["b", "a"])"), false},
    {"EqListLengthMatters", R"({"attribute": "subject.a", "op": "eq", "value": ["a", "b"]})", SA(R"(["a"])"), false},
    {"EqListVsScalar", R"({"attribute": "subject.a", "op": "eq", "value": ["a"]})", SA(R"("a")"), false},
    {"EqScalarVsList", R"({"attribute": "subject.a", "op": "eq", "value": "a"})", SA(R"(["a"])"), false},
    // ne
    {"NeDiffers", R"({"attribute": "subject.a", "op": "ne", "value": "eng"})", SA(R"("ops")"), true},
    {"NeSame", R"({"attribute": "subject.a", "op": "ne", "value": "eng"})", SA(R"("eng")"), false},
    {"NeTypeMismatch", R"({"attribute": "subject.a", "op": "ne", "value": 1})", SA(R"("1")"), true},
    {"NeList", R"({"attribute": "subject.a", "op": "ne", "value": ["a", "b"]})", SA(R"(["b", "a"])"), true},
    // in
    {"InHit", R"({"attribute": "subject.a", "op": "in", "value": ["a", "b"]})", SA(R"("b")"), true},
    {"InMiss", R"({"attribute": "subject.a", "op": "in", "value": ["a", "b"]})", SA(R"("c")"), false},
    {"InNumber", R"({"attribute": "subject.a", "op": "in", "value": [1, 2]})", SA("2"), true},
    {"InNumberVsString", R"({"attribute": "subject.a", "op": "in", "value": [1, 2]})", SA(R"("2")"), false},
    {"InStringVsNumber", R"({"attribute": "subject.a", "op": "in", "value": ["1"]})", SA("1"), false},
    {"InBool", R"({"attribute": "subject.a", "op": "in", "value": [true]})", SA("true"), true},
    {"InBoolMiss", R"({"attribute": "subject.a", "op": "in", "value": [true, "false"]})", SA("false"), false},
    {"InListAnyElement", R"({"attribute": "subject.a", "op": "in", "value": ["a", "b"]})", SA(R"(["x", "b"])"), true},
    {"InListNoElement", R"({"attribute": "subject.a", "op": "in", "value": ["a", "b"]})", SA(R"(["x", "y"])"), false},
    {"InEmptyList", R"({"attribute": "subject.a", "op": "in", "value": []})", SA(R"("a")"), false},
    // not_in
    {"NotInMiss", R"({"attribute": "subject.a", "op": "not_in", "value": ["a", "b"]})", SA(R"("c")"), true},
    {"NotInHit", R"({"attribute": "subject.a", "op": "not_in", "value": ["a", "b"]})", SA(R"("a")"), false},
    {"NotInTypeMismatch", R"({"attribute": "subject.a", "op": "not_in", "value": ["1"]})", SA("1"), true},
    {"NotInListOneElementIn", R"({"attribute": "subject.a", "op": "not_in", "value": ["a"]})", SA(R"(["x", "a"])"), false},
    {"NotInListNoElementIn", R"({"attribute": "subject.a", "op": "not_in", "value": ["a"]})", SA(R"(["x", "y"])"), true},
    {"NotInEmptyList", R"({"attribute": "subject.a", "op": "not_in", "value": []})", SA(R"("a")"), true},
    // contains
    {"ContainsHit", R"({"attribute": "subject.a", "op": "contains", "value": "b"})", SA(R"(["a", "b"])"), true},
    {"ContainsMiss", R"({"attribute": "subject.a", "op": "contains", "value": "c"})", SA(R"(["a", "b"])"), false},
    {"ContainsNumber", R"({"attribute": "subject.a", "op": "contains", "value": 2})", SA("[1, 2, 3]"), true},
    {"ContainsNumberVsString", R"({"attribute": "subject.a", "op": "contains", "value": "2"})", SA("[1, 2, 3]"), false},
    {"ContainsScalarEqual", R"({"attribute": "subject.a", "op": "contains", "value": "b"})", SA(R"("b")"), true},
    {"ContainsIsNotSubstring", R"({"attribute": "subject.a", "op": "contains", "value": "b"})", SA(R"("abc")"), false},
    {"ContainsEmptyList", R"({"attribute": "subject.a", "op": "contains", "value": "b"})", SA("[]"), false},
    // ordering on numbers
    {"LtNumber", R"({"attribute": "subject.a", "op": "lt", "value": 3})", SA("2"), true},
    {"LtNumberEqual", R"({"attribute": "subject.a", "op": "lt", "value": 3})", SA("3"), false},
    {"LtNegative", R"({"attribute": "subject.a", "op": "lt", "value": 0})", SA("-1.5"), true},
    {"LeNumberEqual", R"({"attribute": "subject.a", "op": "le", "value": 3})", SA("3"), true},
    {"LeNumberAbove", R"({"attribute": "subject.a", "op": "le", "value": 3})", SA("3.01"), false},
    {"GtNumber", R"({"attribute": "subject.a", "op": "gt", "value": 3})", SA("4"), true},
    {"GtNumberEqual", R"({"attribute": "subject.a", "op": "gt", "value": 3})", SA("3"), false},
    {"GeNumberEqual", R"({"attribute": "subject.a", "op": "ge", "value": 3})", SA("3"), true},
    {"GeNumberBelow", R"({"attribute": "subject.a", "op": "ge", "value": 3})", SA("2"), false},
    {"GtNumericNotLexical", R"({"attribute": "subject.a", "op": "gt", "value": 9})", SA("10"), true},
    // ordering on strings (byte order)
    {"LtString", R"({"attribute": "subject.a", "op": "lt", "value": "abd"})", SA(R"("abc")"), true},
    {"LtStringAbove", R"({"attribute": "subject.a", "op": "lt", "value": "abc"})", SA(R"("abd")"), false},
    {"LtStringPrefix", R"({"attribute": "subject.a", "op": "lt", "value": "abc"})", SA(R"("ab")"), true},
    {"LeStringEqual", R"({"attribute": "subject.a", "op": "le", "value": "x"})", SA(R"("x")"), true},
    {"GtString", R"({"attribute": "subject.a", "op": "gt", "value": "abc"})", SA(R"("b")"), true},
    {"GeStringBelow", R"({"attribute": "subject.a", "op": "ge", "value": "b"})", SA(R"("abc")"), false},
    {"LtStringLexicalNotNumeric", R"({"attribute": "subject.a", "op": "lt", "value": "9"})", SA(R"("10")"), true},
    {"LtStringUppercaseFirst", R"({"attribute": "subject.a", "op": "lt", "value": "a"})", SA(R"("Z")"), true},
    {"GtStringBytesUnsigned", R"({"attribute": "subject.a", "op": "gt", "value": "z"})", SA(R"("\u00e9")"), true},
    // ordering across types is false in every direction
    {"LtNumberVsString", R"({"attribute": "subject.a", "op": "lt", "value": "3"})", SA("2"), false},
    {"GeNumberVsString", R"({"attribute": "subject.a", "op": "ge", "value": "3"})", SA("5"), false},
    {"LtStringVsNumber", R"({"attribute": "subject.a", "op": "lt", "value": 3})", SA(R"("2")"), false},
    {"GeStringVsNumber", R"({"attribute": "subject.a", "op": "ge", "value": 3})", SA(R"("5")"), false},
    {"LeBoolVsNumber", R"({"attribute": "subject.a", "op": "le", "value": 1})", SA("true"), false},
    {"GeBoolVsNumber", R"({"attribute": "subject.a", "op": "ge", "value": 0})", SA("false"), false},
    {"LtListVsNumber", R"({"attribute": "subject.a", "op": "lt", "value": 3})", SA("[1]"), false},
    // regex: full match only
    {"RegexFullMatch", R"({"attribute": "subject.a", "op": "regex", "value": "eng-[0-9]+"})", SA(R"("eng-42")"), true},
    {"RegexPrefixOnly", R"({"attribute": "subject.a", "op": "regex", "value": "eng-[0-9]+"})", SA(R"("eng-42x")"), false},
    {"RegexSuffixOnly", R"({"attribute": "subject.a", "op": "regex", "value": "eng-[0-9]+"})", SA(R"("xeng-42")"), false},
    {"RegexSubstringIsNotAMatch", R"({"attribute": "subject.a", "op": "regex", "value": "eng"})", SA(R"("engineering")"), false},
    {"RegexListAnyElement", R"({"attribute": "subject.a", "op": "regex", "value": "eng-[0-9]+"})", SA(R"(["x", "eng-7"])"), true},
    {"RegexListNoElement", R"({"attribute": "subject.a", "op": "regex", "value": "eng-[0-9]+"})", SA(R"(["x", "eng-"])"), false},
    {"RegexNumberIsNotAString", R"({"attribute": "subject.a", "op": "regex", "value": "[0-9]+"})", SA("42"), false},
    {"RegexAlternationIsAnchored", R"({"attribute": "subject.a", "op": "regex", "value": "a|b"})", SA(R"("ab")"), false},
    // exists
    {"ExistsPresent", R"({"attribute": "subject.a", "op": "exists"})", SA(R"("")"), true},
    {"ExistsPresentFalse", R"({"attribute": "subject.a", "op": "exists"})", SA("false"), true},
    {"ExistsExplicitTrue", R"({"attribute": "subject.a", "op": "exists", "value": true})", SA("0"), true},
    {"ExistsMissing", R"({"attribute": "subject.a", "op": "exists"})", R"("subject": {"attributes": {"b": 1}})", false},
    {"ExistsFalseMissing", R"({"attribute": "subject.a", "op": "exists", "value": false})", R"("subject": {"attributes": {"b": 1}})", true},
    {"ExistsFalsePresent", R"({"attribute": "subject.a", "op": "exists", "value": false})", SA("1"), false},
    // scopes: each looks only in its own map
    {"ScopeSubjectNotResource", R"({"attribute": "subject.a", "op": "eq", "value": 1})", R"("resource": {"type": "doc", "attributes": {"a": 1}})", false},
    {"ScopeResource", R"({"attribute": "resource.a", "op": "eq", "value": 1})", R"("resource": {"type": "doc", "attributes": {"a": 1}})", true},
    {"ScopeEnvironment", R"({"attribute": "environment.channel", "op": "eq", "value": "web"})", R"("environment": {"attributes": {"channel": "web"}})", true},
    {"ScopeEnvironmentNotSubject", R"({"attribute": "environment.a", "op": "eq", "value": 1})", SA("1"), false},
    // other attribute
    {"OtherEq", R"({"attribute": "resource.owner", "op": "eq", "other": "subject.id"})",
     R"("subject": {"id": "alice"}, "resource": {"type": "doc", "attributes": {"owner": "alice"}})", true},
    {"OtherEqDiffers", R"({"attribute": "resource.owner", "op": "eq", "other": "subject.id"})",
     R"("subject": {"id": "bob"}, "resource": {"type": "doc", "attributes": {"owner": "alice"}})", false},
    {"OtherEqTypeMismatch", R"({"attribute": "subject.a", "op": "eq", "other": "subject.b"})",
     R"("subject": {"attributes": {"a": 1, "b": "1"}})", false},
    {"OtherEqLists", R"({"attribute": "subject.a", "op": "eq", "other": "subject.b"})",
     R"("subject": {"attributes": {"a": ["x", 1], "b": ["x", 1]}})", true},
    {"OtherEqListsOrder", R"({"attribute": "subject.a", "op": "eq", "other": "subject.b"})",
     R"("subject": {"attributes": {"a": ["x", 1], "b": [1, "x"]}})", false},
    {"OtherNe", R"({"attribute": "resource.owner", "op": "ne", "other": "subject.id"})",
     R"("subject": {"id": "bob"}, "resource": {"type": "doc", "attributes": {"owner": "alice"}})", true},
    {"OtherNeSame", R"({"attribute": "resource.owner", "op": "ne", "other": "subject.id"})",
     R"("subject": {"id": "alice"}, "resource": {"type": "doc", "attributes": {"owner": "alice"}})", false},
    {"OtherInList", R"({"attribute": "resource.region", "op": "in", "other": "subject.regions"})",
     R"("subject": {"attributes": {"regions": ["eu", "us"]}}, "resource": {"type": "doc", "attributes": {"region": "us"}})", true},
    {"OtherInListMiss", R"({"attribute": "resource.region", "op": "in", "other": "subject.regions"})",
     R"("subject": {"attributes": {"regions": ["eu", "us"]}}, "resource": {"type": "doc", "attributes": {"region": "ap"}})", false},
    {"OtherInScalarIsOneElementList", R"({"attribute": "resource.region", "op": "in", "other": "subject.region"})",
     R"("subject": {"attributes": {"region": "eu"}}, "resource": {"type": "doc", "attributes": {"region": "eu"}})", true},
    {"OtherInScalarMiss", R"({"attribute": "resource.region", "op": "in", "other": "subject.region"})",
     R"("subject": {"attributes": {"region": "eu"}}, "resource": {"type": "doc", "attributes": {"region": "us"}})", false},
    {"OtherNotInScalar", R"({"attribute": "resource.region", "op": "not_in", "other": "subject.region"})",
     R"("subject": {"attributes": {"region": "eu"}}, "resource": {"type": "doc", "attributes": {"region": "us"}})", true},
    {"OtherNotInListHit", R"({"attribute": "resource.region", "op": "not_in", "other": "subject.regions"})",
     R"("subject": {"attributes": {"regions": ["eu", "us"]}}, "resource": {"type": "doc", "attributes": {"region": "us"}})", false},
    {"OtherContains", R"({"attribute": "subject.groups", "op": "contains", "other": "resource.group"})",
     R"("subject": {"attributes": {"groups": ["g1", "g2"]}}, "resource": {"type": "doc", "attributes": {"group": "g2"}})", true},
    {"OtherContainsMiss", R"({"attribute": "subject.groups", "op": "contains", "other": "resource.group"})",
     R"("subject": {"attributes": {"groups": ["g1", "g2"]}}, "resource": {"type": "doc", "attributes": {"group": "g3"}})", false},
    {"OtherGe", R"({"attribute": "subject.level", "op": "ge", "other": "resource.level"})",
     R"("subject": {"attributes": {"level": 3}}, "resource": {"type": "doc", "attributes": {"level": 3}})", true},
    {"OtherGeBelow", R"({"attribute": "subject.level", "op": "ge", "other": "resource.level"})",
     R"("subject": {"attributes": {"level": 1}}, "resource": {"type": "doc", "attributes": {"level": 2}})", false},
    {"OtherGeTypeMismatch", R"({"attribute": "subject.level", "op": "ge", "other": "resource.level"})",
     R"("subject": {"attributes": {"level": 3}}, "resource": {"type": "doc", "attributes": {"level": "2"}})", false},
    {"OtherLtStrings", R"({"attribute": "subject.a", "op": "lt", "other": "environment.b"})",
     R"("subject": {"attributes": {"a": "2026-01-01"}}, "environment": {"attributes": {"b": "2026-02-01"}})", true},
    // built-ins
    {"SubjectId", R"({"attribute": "subject.id", "op": "eq", "value": "alice"})", R"("subject": {"id": "alice"})", true},
    {"SubjectIdDiffers", R"({"attribute": "subject.id", "op": "eq", "value": "alice"})", R"("subject": {"id": "bob"})", false},
    {"SubjectIdEmptyIsAbsentEvenWithAttribute", R"({"attribute": "subject.id", "op": "exists"})",
     R"("subject": {"attributes": {"id": "mallory"}})", false},
    {"SubjectIdBeatsAttribute", R"({"attribute": "subject.id", "op": "eq", "value": "mallory"})",
     R"("subject": {"id": "alice", "attributes": {"id": "mallory"}})", false},
    {"SubjectIdBeatsAttributeOwnValue", R"({"attribute": "subject.id", "op": "eq", "value": "alice"})",
     R"("subject": {"id": "alice", "attributes": {"id": "mallory"}})", true},
    {"SubjectRolesContains", R"({"attribute": "subject.roles", "op": "contains", "value": "admin"})",
     R"("subject": {"roles": ["dev", "admin"]})", true},
    {"SubjectRolesContainsMiss", R"({"attribute": "subject.roles", "op": "contains", "value": "root"})",
     R"("subject": {"roles": ["dev", "admin"]})", false},
    {"SubjectRolesIn", R"({"attribute": "subject.roles", "op": "in", "value": ["admin", "root"]})",
     R"("subject": {"roles": ["dev", "admin"]})", true},
    {"SubjectRolesNotIn", R"({"attribute": "subject.roles", "op": "not_in", "value": ["admin", "root"]})",
     R"("subject": {"roles": ["dev", "admin"]})", false},
    {"SubjectRolesEqList", R"({"attribute": "subject.roles", "op": "eq", "value": ["dev", "admin"]})",
     R"("subject": {"roles": ["dev", "admin"]})", true},
    {"SubjectRolesEqListOrder", R"({"attribute": "subject.roles", "op": "eq", "value": ["admin", "dev"]})",
     R"("subject": {"roles": ["dev", "admin"]})", false},
    {"SubjectRolesRegex", R"({"attribute": "subject.roles", "op": "regex", "value": "team-.*"})",
     R"("subject": {"roles": ["dev", "team-blue"]})", true},
    {"SubjectRolesEmptyIsAbsentNotIn", R"({"attribute": "subject.roles", "op": "not_in", "value": ["admin"]})",
     R"("subject": {"id": "alice"})", false},
    {"SubjectRolesEmptyIsAbsentNe", R"({"attribute": "subject.roles", "op": "ne", "value": ["admin"]})",
     R"("subject": {"id": "alice"})", false},
    {"SubjectRolesEmptyDoesNotExist", R"({"attribute": "subject.roles", "op": "exists"})",
     R"("subject": {"id": "alice"})", false},
    {"SubjectRolesEmptyExistsFalse", R"({"attribute": "subject.roles", "op": "exists", "value": false})",
     R"("subject": {"id": "alice"})", true},
    {"SubjectRolesNotInOther", R"({"attribute": "subject.roles", "op": "not_in", "value": ["admin"]})",
     R"("subject": {"roles": ["dev"]})", true},
    {"SubjectRolesBeatAttribute", R"({"attribute": "subject.roles", "op": "contains", "value": "admin"})",
     R"("subject": {"roles": ["dev"], "attributes": {"roles": ["admin"]}})", false},
    {"ResourceId", R"({"attribute": "resource.id", "op": "eq", "value": "d-1"})", R"("resource": {"type": "doc", "id": "d-1"})", true},
    {"ResourceIdDiffers", R"({"attribute": "resource.id", "op": "eq", "value": "d-1"})", R"("resource": {"type": "doc", "id": "d-2"})", false},
    {"ResourceType", R"({"attribute": "resource.type", "op": "eq", "value": "doc"})", "", true},
    {"ResourceTypeNe", R"({"attribute": "resource.type", "op": "ne", "value": "doc"})", "", false},
    {"ResourceTypeBeatsAttribute", R"({"attribute": "resource.type", "op": "eq", "value": "doc"})",
     R"("resource": {"type": "doc", "attributes": {"type": "secret"}})", true},
    {"Action", R"({"attribute": "action", "op": "eq", "value": "read"})", "", true},
    {"ActionIn", R"({"attribute": "action", "op": "in", "value": ["write", "delete"]})", "", false},
    {"ActionRegex", R"({"attribute": "action", "op": "regex", "value": "re[a-z]+"})", "", true},
    {"OwnerIsSubject", R"({"attribute": "subject.id", "op": "eq", "other": "resource.owner"})",
     R"("subject": {"id": "alice"}, "resource": {"type": "doc", "attributes": {"owner": "alice"}})", true},
    // missing attributes: no operator holds, not even ne / not_in
    {"MissingEq", R"({"attribute": "subject.a", "op": "eq", "value": 1})", "", false},
    {"MissingNe", R"({"attribute": "subject.a", "op": "ne", "value": 1})", "", false},
    {"MissingIn", R"({"attribute": "subject.a", "op": "in", "value": [1]})", "", false},
    {"MissingNotIn", R"({"attribute": "subject.a", "op": "not_in", "value": [1]})", "", false},
    {"MissingContains", R"({"attribute": "subject.a", "op": "contains", "value": 1})", "", false},
    {"MissingLt", R"({"attribute": "subject.a", "op": "lt", "value": 1})", "", false},
    {"MissingLe", R"({"attribute": "subject.a", "op": "le", "value": 1})", "", false},
    {"MissingGt", R"({"attribute": "subject.a", "op": "gt", "value": 1})", "", false},
    {"MissingGe", R"({"attribute": "subject.a", "op": "ge", "value": 1})", "", false},
    {"MissingRegex", R"({"attribute": "subject.a", "op": "regex", "value": ".*"})", "", false},
    {"MissingSubjectIdNe", R"({"attribute": "subject.id", "op": "ne", "value": "x"})", "", false},
    {"MissingResourceIdNotIn", R"({"attribute": "resource.id", "op": "not_in", "value": ["x"]})", "", false},
    {"MissingOtherNe", R"({"attribute": "resource.owner", "op": "ne", "other": "subject.id"})",
     R"("resource": {"type": "doc", "attributes": {"owner": "alice"}})", false},
    {"MissingOtherNotIn", R"({"attribute": "resource.region", "op": "not_in", "other": "subject.regions"})",
     R"("resource": {"type": "doc", "attributes": {"region": "us"}})", false},
    {"MissingAttributeWithOtherNe", R"({"attribute": "resource.owner", "op": "ne", "other": "subject.id"})",
     R"("subject": {"id": "alice"})", false},
};

#undef SA

INSTANTIATE_TEST_SUITE_P(Ops, AttributeOpTest, ::testing::ValuesIn(kAttrCases),
                         [](const ::testing::TestParamInfo<AttrCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(AttributeConditionsTest, AllMustHold) {
  auto policy = PermitIf(R"({"attributes": [
      {"attribute": "subject.dept", "op": "eq", "value": "eng"},
      {"attribute": "subject.level", "op": "ge", "value": 2}]})");
  EXPECT_TRUE(Holds(*policy, R"("subject": {"attributes": {"dept": "eng", "level": 2}})"));
  EXPECT_FALSE(Holds(*policy, R"("subject": {"attributes": {"dept": "eng", "level": 1}})"));
  EXPECT_FALSE(Holds(*policy, R"("subject": {"attributes": {"dept": "ops", "level": 5}})"));
  EXPECT_FALSE(Holds(*policy, R"("subject": {"attributes": {"dept": "eng"}})"));
}

TEST(AttributeConditionsTest, OperatorNamesAreCaseInsensitive) {
  auto policy = PermitIf(R"({"attributes": [
      {"attribute": "subject.a", "op": "NOT_IN", "value": ["x"]}]})");
  EXPECT_TRUE(Holds(*policy, R"("subject": {"attributes": {"a": "y"}})"));
  EXPECT_FALSE(Holds(*policy, R"("subject": {"attributes": {"a": "x"}})"));
}

TEST(AttributeConditionsTest, DenyOnMissingAttributeDoesNotApply) {
  // The README's warning: a deny rule conditioned on a missing attribute
  // does not apply, so the permit wins.
  auto policy = CompileOrDie(RuleSetJson(
      "deny-overrides",
      {RuleJson("allow", "permit"),
       RuleJson("deny-non-eng", "deny",
                R"({"attributes": [{"attribute": "subject.dept", "op": "ne", "value": "eng"}]})")}));
  EXPECT_EQ(Decide(*policy, RequestJson()).decision(), v1::PERMIT);
  EXPECT_EQ(Decide(*policy, RequestJson(R"("subject": {"attributes": {"dept": "ops"}})"))
                .decision(),
            v1::DENY);
  EXPECT_EQ(Decide(*policy, RequestJson(R"("subject": {"attributes": {"dept": "eng"}})"))
                .decision(),
            v1::PERMIT);
}

// ---- Inline and out-of-line forms -------------------------------------
// The compiler keeps short keys, literals, `in` lists and client_ip lists
// inside a rule's hot record and longer ones in the cold condition; both
// forms must decide alike at and around each limit.

// A JSON list of `n` strings "v0".."v<n-1>", then the number 0 and true.
std::string MixedList(int n) {
  std::string list = "[";
  for (int i = 0; i < n; ++i) absl::StrAppend(&list, "\"v", i, "\", ");
  return absl::StrCat(list, "0, true]");
}

TEST(InlineFormsTest, InListsOfEverySize) {
  // A condition head's payload holds 192 bytes: 38 strings and the two
  // scalars take 191 of them, 39 take 196 and go to the cold condition.
  for (int n : {1, 6, 38, 39, 300}) {
    SCOPED_TRACE(absl::StrCat(n, " strings"));
    const std::string list = MixedList(n);
    auto in = PermitIf(absl::StrCat(
        R"({"attributes": [{"attribute": "subject.a", "op": "in", "value": )", list, "}]}"));
    auto not_in = PermitIf(absl::StrCat(
        R"({"attributes": [{"attribute": "subject.a", "op": "not_in", "value": )", list,
        "}]}"));
    auto a = [](const std::string& value) {
      return absl::StrCat(R"("subject": {"attributes": {"a": )", value, "}}");
    };
    const std::string last = absl::StrCat("\"v", n - 1, "\"");
    for (const std::string& member : {std::string(R"("v0")"), last, std::string("0"),
                                      std::string("-0"), std::string("0.0"),
                                      std::string("true"), std::string(R"(["x", "v0"])")}) {
      EXPECT_TRUE(Holds(*in, a(member))) << member;
      EXPECT_FALSE(Holds(*not_in, a(member))) << member;
    }
    for (const std::string& other :
         {absl::StrCat("\"v", n, "\""), std::string(R"("v")"), std::string(R"("0")"),
          std::string("1"), std::string("false"), std::string(R"("true")"),
          std::string("[]"), std::string(R"(["x"])")}) {
      EXPECT_FALSE(Holds(*in, a(other))) << other;
      EXPECT_TRUE(Holds(*not_in, a(other))) << other;
    }
    // A missing attribute satisfies neither.
    EXPECT_FALSE(Holds(*in, ""));
    EXPECT_FALSE(Holds(*not_in, ""));
  }
}

TEST(InlineFormsTest, NegativeZeroEqualsZero) {
  // JSON turns -0 into 0, but binary protobuf (gRPC) carries -0.0 as such;
  // in lists kept inline (1 string) and cold (300) must agree with eq.
  for (int n : {1, 300}) {
    for (double rule_zero : {0.0, -0.0}) {
      SCOPED_TRACE(absl::StrCat(n, " strings, the rule's zero ", rule_zero));
      v1::RuleSet rules = RuleSetFromJson(RuleSetJson(
          "deny-overrides",
          {RuleJson("r", "permit",
                    absl::StrCat(R"({"attributes": [
                        {"attribute": "subject.a", "op": "in", "value": )",
                                 MixedList(n), R"(},
                        {"attribute": "subject.b", "op": "eq", "value": 0}]})"))}));
      v1::Conditions* conditions = rules.mutable_rules(0)->mutable_conditions();
      conditions->mutable_attributes(0)->mutable_value()->mutable_list_value()
          ->mutable_values(n)->set_number_value(rule_zero);
      conditions->mutable_attributes(1)->mutable_value()->set_number_value(rule_zero);
      engine::CompileResult compiled = engine::Compile(rules, {});
      ASSERT_TRUE(compiled.ok());
      for (double request_zero : {0.0, -0.0}) {
        v1::AuthorizeRequest request = RequestFromJson(RequestJson());
        auto& attributes = *request.mutable_subject()->mutable_attributes();
        attributes["a"].set_number_value(request_zero);
        attributes["b"].set_number_value(request_zero);
        EXPECT_EQ(Decide(*compiled.policy, request).decision(), v1::PERMIT)
            << "the request's zero " << request_zero;
      }
    }
  }
}

TEST(InlineFormsTest, KeysAndLiteralsAroundTheInlineLength) {
  // 22 bytes are kept inline; keys and string literals of 23 and more are
  // read from the cold condition. Literals that share their first 22 bytes
  // must still differ.
  const std::string k22(22, 'k'), k23(23, 'k'), k40(40, 'k');
  const std::string s22 = "abcdefghijklmnopqrstuv", s23 = s22 + "w", s40 = s23 + "xyz0123456789abcdef";
  for (const std::string& key : {k22, k23, k40}) {
    for (const std::string& literal : {s22, s23, s40}) {
      SCOPED_TRACE(absl::StrCat("key of ", key.size(), " bytes, literal of ", literal.size()));
      auto eq = PermitIf(absl::StrCat(R"({"attributes": [{"attribute": "resource.)", key,
                                      R"(", "op": "eq", "value": ")", literal, R"("}]})"));
      auto contains = PermitIf(absl::StrCat(R"({"attributes": [{"attribute": "resource.)", key,
                                            R"(", "op": "contains", "value": ")", literal,
                                            R"("}]})"));
      auto value = [&](const std::string& v) {
        return absl::StrCat(R"("resource": {"type": "doc", "attributes": {")", key,
                            R"(": )", v, "}}");
      };
      for (const std::string& v : {s22, s23, s40}) {
        const std::string quoted = absl::StrCat("\"", v, "\"");
        EXPECT_EQ(Holds(*eq, value(quoted)), v == literal) << v;
        EXPECT_EQ(Holds(*contains, value(absl::StrCat(R"(["x", )", quoted, "]"))), v == literal)
            << v;
      }
      // The same value under a key one byte shorter is another attribute.
      EXPECT_FALSE(Holds(*eq, absl::StrCat(R"("resource": {"type": "doc", "attributes": {")",
                                           key.substr(1), R"(": ")", literal, R"("}})")));
    }
  }
}

TEST(InlineFormsTest, OtherAttributeWithShortAndLongKeys) {
  const std::string k22(22, 'o'), k23(23, 'o');
  for (const std::string& key : {std::string("owner"), k22, k23}) {
    SCOPED_TRACE(absl::StrCat("other key of ", key.size(), " bytes"));
    auto eq = PermitIf(absl::StrCat(R"({"attributes": [{"attribute": "subject.id", "op": "eq",
                                        "other": "resource.)", key, R"("}]})"));
    auto lt = PermitIf(absl::StrCat(R"({"attributes": [{"attribute": "subject.level", "op": "lt",
                                        "other": "resource.)", key, R"("}]})"));
    auto in = PermitIf(absl::StrCat(R"({"attributes": [{"attribute": "subject.id", "op": "in",
                                        "other": "resource.)", key, R"("}]})"));
    auto members = [&](const std::string& subject, const std::string& value) {
      return absl::StrCat(R"("subject": )", subject,
                          R"(, "resource": {"type": "doc", "attributes": {")", key, R"(": )",
                          value, "}}");
    };
    EXPECT_TRUE(Holds(*eq, members(R"({"id": "alice"})", R"("alice")")));
    EXPECT_FALSE(Holds(*eq, members(R"({"id": "alice"})", R"("bob")")));
    EXPECT_FALSE(Holds(*eq, R"("subject": {"id": "alice"})"));
    EXPECT_TRUE(Holds(*lt, members(R"({"attributes": {"level": 2}})", "3")));
    EXPECT_FALSE(Holds(*lt, members(R"({"attributes": {"level": 3}})", "3")));
    EXPECT_TRUE(Holds(*in, members(R"({"id": "alice"})", R"(["bob", "alice"])")));
    EXPECT_FALSE(Holds(*in, members(R"({"id": "alice"})", R"(["bob"])")));
  }
}

TEST(InlineFormsTest, ClientIpListsOfEverySize) {
  // Up to 8 intervals (allow and block lists together) are kept inline;
  // more are read from the cold IpSet. Hosts are 10.0.<i*2>.1 and
  // 2001:db8::<i*2>:1, so no two merge; the block list takes the last host.
  for (int n : {1, 3, 4, 5, 12}) {
    SCOPED_TRACE(absl::StrCat(n, " hosts of each family"));
    std::vector<std::string> allow;
    for (int i = 0; i < n; ++i) {
      allow.push_back(absl::StrCat("\"10.0.", i * 2, ".1\""));
      allow.push_back(absl::StrCat("\"2001:db8::", i * 2, ":1\""));
    }
    const std::string blocked_v4 = absl::StrCat("10.0.", (n - 1) * 2, ".1");
    auto policy = PermitIf(absl::StrCat(R"({"client_ip": {"in": [)", absl::StrJoin(allow, ", "),
                                        R"(], "not_in": [")", blocked_v4, R"("]}})"));
    auto ip = [](const std::string& address) {
      return absl::StrCat(R"("environment": {"client_ip": ")", address, R"("})");
    };
    for (int i = 0; i < n; ++i) {
      const std::string v4 = absl::StrCat("10.0.", i * 2, ".1");
      const bool blocked = i == n - 1;
      EXPECT_EQ(Holds(*policy, ip(v4)), !blocked) << v4;
      EXPECT_EQ(Holds(*policy, ip(absl::StrCat("::ffff:", v4))), !blocked) << v4;
      EXPECT_TRUE(Holds(*policy, ip(absl::StrCat("2001:db8::", i * 2, ":1"))));
      EXPECT_FALSE(Holds(*policy, ip(absl::StrCat("10.0.", i * 2 + 1, ".1"))));
      EXPECT_FALSE(Holds(*policy, ip(absl::StrCat("10.0.", i * 2, ".2"))));
      EXPECT_FALSE(Holds(*policy, ip(absl::StrCat("2001:db8::", i * 2 + 1, ":1"))));
    }
    EXPECT_FALSE(Holds(*policy, ip("10.0.0.0")));
    EXPECT_FALSE(Holds(*policy, ip("::a00:1")));  // 10.0.0.1's bits, not mapped
  }
}

}  // namespace
}  // namespace pdp
