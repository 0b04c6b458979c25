// Time windows; see time_window.h. Tested by tests/engine_conditions_test.cc.
#include "engine/time_window.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "engine/absl_compat.h"

namespace pdp::engine {

LocalTime ToLocalTime(absl::Time t, const absl::TimeZone& zone) {
  const absl::CivilSecond cs = absl::ToCivilSecond(t, zone);
  const absl::Weekday wd = absl::GetWeekday(absl::CivilDay(cs));
  // absl::Weekday numbers Monday as 0.
  return {cs.hour() * 60 + cs.minute(), static_cast<int>(wd)};
}

bool TimeWindow::Contains(const LocalTime& local) const {
  const int m = local.minute_of_day;
  const bool today = (day_mask >> local.weekday) & 1;
  if (start < end) return today && m >= start && m < end;
  // Crosses midnight: the evening part belongs to a listed day, the morning
  // part to the day after one.
  const int yesterday = (local.weekday + 6) % 7;
  return (today && m >= start) || (((day_mask >> yesterday) & 1) && m < end);
}

std::optional<int> ParseClock(std::string_view text, bool allow_24) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  for (int i : {0, 1, 3, 4}) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  }
  const int hours = (text[0] - '0') * 10 + (text[1] - '0');
  const int minutes = (text[3] - '0') * 10 + (text[4] - '0');
  if (minutes > 59) return std::nullopt;
  if (hours == 24 && minutes == 0 && allow_24) return 24 * 60;
  if (hours > 23) return std::nullopt;
  return hours * 60 + minutes;
}

std::optional<int> ParseWeekday(std::string_view text) {
  static constexpr const char* kNames[] = {"monday", "tuesday", "wednesday",
                                           "thursday", "friday", "saturday",
                                           "sunday"};
  const std::string lower = absl::AsciiStrToLower(ToAbsl(text));
  for (int d = 0; d < 7; ++d) {
    const std::string_view name = kNames[d];
    if (lower == name || lower == name.substr(0, 3)) return d;
  }
  return std::nullopt;
}

}  // namespace pdp::engine
