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

// An address interval [first, last] of one family.
struct IpInterval {
  IpAddress first;
  IpAddress last;
};

// Membership in sorted, disjoint, merged intervals of each family, wherever
// they are stored: an IpSet's vectors, or a rule's hot record (policy_impl.h),
// where a small set is copied so that checking it costs no further load.
struct IpSetView {
  const IpInterval* v4 = nullptr;  // blocks written as IPv4 (mapped)
  size_t v4_size = 0;
  const IpInterval* v6 = nullptr;  // blocks written as IPv6
  size_t v6_size = 0;

  bool Contains(const ClientIp& ip) const;
};

class IpSet {
 public:
  IpSet() = default;
  // Sorts and merges overlapping or adjacent ranges.
  static IpSet Build(std::vector<IpRange> ranges);

  bool Contains(const ClientIp& ip) const { return view().Contains(ip); }
  IpSetView view() const { return {v4_.data(), v4_.size(), v6_.data(), v6_.size()}; }
  size_t memory_bytes() const {
    return (v4_.capacity() + v6_.capacity()) * sizeof(IpInterval);
  }

 private:
  std::vector<IpInterval> v4_;
  std::vector<IpInterval> v6_;
};

}  // namespace pdp::engine

#endif  // PDP_ENGINE_IP_SET_H_
