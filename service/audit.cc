// ListAuditEvents requests to store queries; see audit.h.
//
// Tested by tests/audit_test.cc.
#include "service/audit.h"

#include <algorithm>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace pdp::service {
namespace {

// A page token is "p" and the id below which the next page starts; the
// letter keeps clients from mistaking it for a count or a version.
constexpr char kTokenPrefix[] = "p";

absl::StatusOr<absl::Time> TimeFrom(const google::protobuf::Timestamp& timestamp,
                                    const char* field) {
  if (timestamp.nanos() < 0 || timestamp.nanos() > 999999999) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": nanos ", timestamp.nanos(),
                                                   " is outside [0, 999999999]"));
  }
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

}  // namespace

absl::StatusOr<AuditQuery> AuditQueryFromRequest(const v1::ListAuditEventsRequest& request) {
  AuditQuery query;
  query.rule_set = request.rule_set();
  query.caller = request.caller();
  query.method = request.method();
  if (request.limit() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: ", request.limit(), " is negative (0 means ", kDefaultAuditLimit,
                     ")"));
  }
  query.limit = request.limit() == 0 ? kDefaultAuditLimit
                                     : std::min(request.limit(), kMaxAuditLimit);
  if (request.has_since()) {
    absl::StatusOr<absl::Time> since = TimeFrom(request.since(), "since");
    if (!since.ok()) return since.status();
    query.since = *since;
  }
  if (request.has_until()) {
    absl::StatusOr<absl::Time> until = TimeFrom(request.until(), "until");
    if (!until.ok()) return until.status();
    query.until = *until;
  }
  if (request.has_since() && request.has_until() && query.since >= query.until) {
    return absl::InvalidArgumentError(
        absl::StrCat("since (", absl::FormatTime(query.since), ") must be before until (",
                     absl::FormatTime(query.until), ")"));
  }
  if (!request.page_token().empty()) {
    const std::string& token = request.page_token();
    int64_t before_id = 0;
    if (token.rfind(kTokenPrefix, 0) != 0 ||
        !absl::SimpleAtoi(token.substr(sizeof(kTokenPrefix) - 1), &before_id) ||
        before_id <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "page_token: \"", absl::CEscape(token),
          "\" is not a next_page_token from ListAuditEvents"));
    }
    query.before_id = before_id;
  }
  return query;
}

std::string AuditPageToken(int64_t next_before_id) {
  if (next_before_id <= 0) return "";
  return absl::StrCat(kTokenPrefix, next_before_id);
}

std::string DescribeAuditQuery(const AuditQuery& query) {
  std::vector<std::string> parts;
  if (!query.rule_set.empty()) parts.push_back(absl::StrCat("rule_set=", query.rule_set));
  if (!query.caller.empty()) parts.push_back(absl::StrCat("caller=", query.caller));
  if (!query.method.empty()) parts.push_back(absl::StrCat("method=", query.method));
  if (query.since != absl::InfinitePast()) {
    parts.push_back(absl::StrCat("since=", absl::FormatTime(query.since, absl::UTCTimeZone())));
  }
  if (query.until != absl::InfiniteFuture()) {
    parts.push_back(absl::StrCat("until=", absl::FormatTime(query.until, absl::UTCTimeZone())));
  }
  if (query.before_id > 0) parts.push_back(absl::StrCat("before id ", query.before_id));
  parts.push_back(absl::StrCat("limit=", query.limit));
  return absl::StrJoin(parts, ", ");
}

}  // namespace pdp::service
