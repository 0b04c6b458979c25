// Minimal stderr logging for the service layer (Debian's Abseil has no
// absl/log). One line per event: time, level, message. Never pass secrets.
#ifndef PDP_SERVICE_LOG_H_
#define PDP_SERVICE_LOG_H_

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pdp::service {

template <typename... Args>
void LogLine(const char* level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  const std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ", level,
      " ", absl::StrFormat(format, args...), "\n");
  std::fputs(line.c_str(), stderr);
}

template <typename... Args>
void LogInfo(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine("INFO", format, args...);
}

template <typename... Args>
void LogWarning(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine("WARN", format, args...);
}

template <typename... Args>
void LogError(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine("ERROR", format, args...);
}

}  // namespace pdp::service

#endif  // PDP_SERVICE_LOG_H_
