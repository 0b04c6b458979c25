// IP addresses and CIDR sets for client-IP conditions.
//
// Every address is held as a 128-bit IPv6 value, IPv4 mapped into
// ::ffff:0:0/96. The families stay apart as users expect: blocks written as
// IPv4 match IPv4 clients and IPv4-mapped IPv6 clients (::ffff:10.1.2.3);
// blocks written as IPv6 match only clients written as IPv6, so "::/0"
// means "any IPv6 client", not everyone. Each family is a sorted list of
// disjoint, merged [first, last] ranges: membership is a binary search, so a
// rule with thousands of CIDRs costs O(log n), not a scan.
//
// Immutable after Build(); thread-safe to read. Tested by
// tests/engine_conditions_test.cc.
#ifndef PDP_ENGINE_IP_SET_H_
#define PDP_ENGINE_IP_SET_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pdp::engine {

using IpAddress = unsigned __int128;

// A client address and the family it was written in.
struct ClientIp {
  IpAddress address;
  bool written_v4;
};

// Parses a textual IPv4 or IPv6 address (no zone index, no brackets).
std::optional<ClientIp> ParseIpAddress(std::string_view text);

struct IpRange {
  IpAddress first;
  IpAddress last;
  bool written_v4;
};

// Parses "10.0.0.0/8", "2001:db8::/32" or a bare address. On failure
// returns nullopt and sets *error to what is wrong (bad address, prefix
// length out of range, host bits set beyond the prefix).
std::optional<IpRange> ParseCidr(std::string_view text, std::string* error);

class IpSet {
 public:
  IpSet() = default;
  // Sorts and merges overlapping or adjacent ranges.
  static IpSet Build(std::vector<IpRange> ranges);

  bool Contains(const ClientIp& ip) const;
  size_t memory_bytes() const {
    return (v4_.capacity() + v6_.capacity()) * sizeof(IpRange);
  }

 private:
  static bool In(const std::vector<IpRange>& ranges, IpAddress address);
  std::vector<IpRange> v4_;  // blocks written as IPv4 (mapped)
  std::vector<IpRange> v6_;  // blocks written as IPv6
};

}  // namespace pdp::engine

#endif  // PDP_ENGINE_IP_SET_H_
