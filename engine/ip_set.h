// IP addresses and CIDR sets for client-IP conditions.
//
// Every address is held as a 128-bit IPv6 value; IPv4 is mapped into
// ::ffff:0:0/96, so one set answers for both families and an IPv4-mapped
// IPv6 client address matches IPv4 blocks. A set is a sorted list of
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

// Parses a textual IPv4 or IPv6 address (no zone index, no brackets).
std::optional<IpAddress> ParseIpAddress(std::string_view text);

struct IpRange {
  IpAddress first;
  IpAddress last;
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

  bool Contains(IpAddress address) const;
  bool empty() const { return ranges_.empty(); }
  size_t size() const { return ranges_.size(); }
  size_t memory_bytes() const { return ranges_.capacity() * sizeof(IpRange); }

 private:
  std::vector<IpRange> ranges_;
};

}  // namespace pdp::engine

#endif  // PDP_ENGINE_IP_SET_H_
