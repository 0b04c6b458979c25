// The one place where std::string_view meets Debian bookworm's Abseil
// (20220623), whose absl::string_view is its own type, not std's.
#ifndef PDP_ENGINE_ABSL_COMPAT_H_
#define PDP_ENGINE_ABSL_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace pdp {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

inline std::string_view FromAbsl(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace pdp

#endif  // PDP_ENGINE_ABSL_COMPAT_H_
