// IP parsing and range sets; see ip_set.h. Tested by
// tests/engine_conditions_test.cc.
#include "engine/ip_set.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/absl_compat.h"

namespace pdp::engine {
namespace {

constexpr IpAddress kV4MappedPrefix = static_cast<IpAddress>(0xffff) << 32;

IpAddress FromBytes(const unsigned char* bytes, int n) {
  IpAddress value = 0;
  for (int i = 0; i < n; ++i) value = (value << 8) | bytes[i];
  return value;
}

// Parses an address and reports whether it was written as IPv4.
std::optional<IpAddress> Parse(std::string_view text, bool* is_v4) {
  // inet_pton needs a NUL-terminated string; addresses are short. An
  // embedded NUL would make it read only the text before it
  // ("10.0.0.1\0junk"), so such text is not an address.
  char buffer[64];
  if (text.empty() || text.size() >= sizeof(buffer) ||
      text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  unsigned char bytes[16];
  if (inet_pton(AF_INET, buffer, bytes) == 1) {
    *is_v4 = true;
    return kV4MappedPrefix | FromBytes(bytes, 4);
  }
  if (inet_pton(AF_INET6, buffer, bytes) == 1) {
    *is_v4 = false;
    return FromBytes(bytes, 16);
  }
  return std::nullopt;
}

}  // namespace

std::optional<ClientIp> ParseIpAddress(std::string_view text) {
  bool is_v4 = false;
  std::optional<IpAddress> address = Parse(text, &is_v4);
  if (!address) return std::nullopt;
  return ClientIp{*address, is_v4};
}

std::optional<IpRange> ParseCidr(std::string_view text, std::string* error) {
  std::string_view address_text = text;
  std::string_view length_text;
  size_t slash = text.find('/');
  if (slash != std::string_view::npos) {
    address_text = text.substr(0, slash);
    length_text = text.substr(slash + 1);
  }
  bool is_v4 = false;
  std::optional<IpAddress> address = Parse(address_text, &is_v4);
  if (!address) {
    *error = absl::StrCat("\"", std::string(address_text),
                          "\" is not an IPv4 or IPv6 address");
    return std::nullopt;
  }
  const int max_length = is_v4 ? 32 : 128;
  int length = max_length;
  if (slash != std::string_view::npos) {
    if (length_text.empty() || length_text.size() > 3 ||
        !absl::SimpleAtoi(ToAbsl(length_text), &length) || length < 0 ||
        length > max_length ||
        !std::all_of(length_text.begin(), length_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      *error = absl::StrCat("prefix length \"", std::string(length_text),
                            "\" must be 0..", max_length);
      return std::nullopt;
    }
  }
  const int bits = length + (is_v4 ? 96 : 0);  // prefix bits of 128
  const IpAddress host_mask =
      bits >= 128 ? 0 : (~static_cast<IpAddress>(0)) >> bits;
  if ((*address & host_mask) != 0) {
    *error = absl::StrCat("\"", std::string(text),
                          "\" has host bits set beyond the /", length,
                          " prefix");
    return std::nullopt;
  }
  return IpRange{*address, *address | host_mask, is_v4};
}

IpSet IpSet::Build(std::vector<IpRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const IpRange& a, const IpRange& b) { return a.first < b.first; });
  IpSet set;
  for (const IpRange& range : ranges) {
    std::vector<IpInterval>& family = range.written_v4 ? set.v4_ : set.v6_;
    if (!family.empty()) {
      IpInterval& back = family.back();
      // Overlapping or adjacent (guarding the +1 against overflow).
      if (range.first <= back.last ||
          (back.last != ~static_cast<IpAddress>(0) && range.first == back.last + 1)) {
        back.last = std::max(back.last, range.last);
        continue;
      }
    }
    family.push_back({range.first, range.last});
  }
  set.v4_.shrink_to_fit();
  set.v6_.shrink_to_fit();
  return set;
}

namespace {

bool In(const IpInterval* begin, const IpInterval* end, IpAddress address) {
  // First interval whose start is > address; the candidate is the one before.
  const IpInterval* it = std::upper_bound(
      begin, end, address, [](IpAddress a, const IpInterval& r) { return a < r.first; });
  if (it == begin) return false;
  --it;
  return address <= it->last;
}

}  // namespace

bool IpSetView::Contains(const ClientIp& ip) const {
  const bool mapped = (ip.address >> 32) == 0xffff;
  if (ip.written_v4) return In(v4, v4 + v4_size, ip.address);
  return (mapped && In(v4, v4 + v4_size, ip.address)) || In(v6, v6 + v6_size, ip.address);
}

}  // namespace pdp::engine
