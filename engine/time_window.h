// Weekly time windows in local time of an IANA zone, compiled once.
//
// A window is a set of weekdays and a [start, end) span of minutes after
// local midnight. When start > end the window crosses midnight: it opens on
// a listed day and closes on the next. Local time comes from absl's zone
// rules, so DST changes are followed; the zone is loaded at compile time.
//
// Immutable; thread-safe. Tested by tests/engine_conditions_test.cc.
#ifndef PDP_ENGINE_TIME_WINDOW_H_
#define PDP_ENGINE_TIME_WINDOW_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace pdp::engine {

// Minutes after local midnight and the ISO weekday (0 = Monday).
struct LocalTime {
  int minute_of_day;
  int weekday;
};

LocalTime ToLocalTime(absl::Time t, const absl::TimeZone& zone);

struct TimeWindow {
  uint8_t day_mask = 0x7f;  // bit d = weekday d (0 = Monday)
  uint16_t start = 0;       // minutes, inclusive
  uint16_t end = 0;         // minutes, exclusive; may be 1440
  uint16_t zone = 0;        // index into the policy's zone table

  bool Contains(const LocalTime& local) const;
};

// "HH:MM" -> minutes; "24:00" only when allow_24 is set.
std::optional<int> ParseClock(std::string_view text, bool allow_24);
// "mon" / "monday" (any case) -> 0..6.
std::optional<int> ParseWeekday(std::string_view text);

}  // namespace pdp::engine

#endif  // PDP_ENGINE_TIME_WINDOW_H_
