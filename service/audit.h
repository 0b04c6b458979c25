// The admin audit trail's wire side: ListAuditEvents requests turned into
// store queries (with the limits and the page token), and the events that
// describe each admin call before it runs. The rows themselves are written
// by the store (service/store.h), a change's in the change's transaction;
// AdminService (service/services.h) decides when each call is recorded.
//
// Stateless; thread-safe. Tested by tests/audit_test.cc.
#ifndef PDP_SERVICE_AUDIT_H_
#define PDP_SERVICE_AUDIT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "pdp/v1/admin.pb.h"
#include "service/store.h"

namespace pdp::service {

// ListAuditEventsRequest.limit: 0 means this many; more means kMaxAuditLimit.
inline constexpr int kDefaultAuditLimit = 100;
inline constexpr int kMaxAuditLimit = 1000;

// The store query for `request`. INVALID_ARGUMENT naming the field for a
// negative limit, a timestamp with nanos out of [0, 1e9), `since` not
// before `until`, or a page token ListAuditEvents did not hand out.
absl::StatusOr<AuditQuery> AuditQueryFromRequest(const v1::ListAuditEventsRequest& request);

// The next_page_token for a page whose AuditPage::next_before_id is
// `next_before_id` ("" for the last page).
std::string AuditPageToken(int64_t next_before_id);

// A few words on the filters of `query` ("rule_set=shop, limit=100"), for
// the audit event of a ListAuditEvents call.
std::string DescribeAuditQuery(const AuditQuery& query);

}  // namespace pdp::service

#endif  // PDP_SERVICE_AUDIT_H_
