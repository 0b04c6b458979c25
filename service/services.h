// The gRPC services pdpd serves: pdp.v1.Authorization and pdp.v1.Admin,
// both on gRPC's callback API.
//
// Authorization decides inline in the reactor: a decision is microseconds of
// CPU on an immutable snapshot, with no lock held while evaluating. Its hot
// path allocates little: request and response live on a per-call arena, the
// caller's role is read without copying its identity, and a replaced policy
// is never freed on a reactor thread. Admin work (parsing a pushed rule set,
// compiling, SQLite) never runs on a reactor thread either: it is handed to
// a dedicated worker thread in the background (service/worker.h), which
// finishes the call. bench/README.md has the measurements behind each of these choices.
//
// Thread-safe. Tested by tests/integration_test.cc.
#ifndef PDP_SERVICE_SERVICES_H_
#define PDP_SERVICE_SERVICES_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "google/protobuf/arena.h"
#include "grpcpp/support/message_allocator.h"
#include "pdp/v1/admin.grpc.pb.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "service/access.h"
#include "service/call_tracker.h"
#include "service/decision_log.h"
#include "service/registry.h"
#include "service/rule_set_manager.h"
#include "service/worker.h"

namespace pdp::service {

// Most requests a BatchAuthorize may carry.
inline constexpr int kMaxBatchRequests = 1000;

// Puts each call's request and response on one protobuf arena whose first
// block lives inside the per-call holder: parsing the request (its maps,
// strings and Values) and building the response (rule ids, reason,
// obligation params) bump a pointer instead of calling malloc per field,
// and the whole call is freed at once when gRPC releases it. Used by
// AuthorizationService and, so that the floor has the same stack, by
// bench/floor_server.cc. With a CallTracker (set before the server starts),
// each call is counted from allocation to release, i.e. until its response
// has been sent. Thread-safe.
template <typename Request, typename Response, size_t kInlineBytes = 4096>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override {
    return new Holder(tracker_);
  }
  void set_tracker(CallTracker* tracker) { tracker_ = tracker; }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    explicit Holder(CallTracker* tracker) : tracker_(tracker), arena_(Options(block_)) {
      if (tracker_ != nullptr) tracker_->Begin();
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override {
      CallTracker* tracker = tracker_;
      delete this;
      if (tracker != nullptr) tracker->End();
    }

   private:
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block;
      options.initial_block_size = kInlineBytes;
      options.start_block_size = kInlineBytes;
      options.max_block_size = 64 << 10;  // batches of many requests
      return options;
    }
    CallTracker* const tracker_;
    alignas(std::max_align_t) char block_[kInlineBytes];
    google::protobuf::Arena arena_;  // after block_, which it uses
  };
  CallTracker* tracker_ = nullptr;
};

class AuthorizationService final : public v1::Authorization::CallbackService {
 public:
  // `recorder` (not owned; may be null) counts and logs every decision.
  // `background`: how replaced rule sets are freed (service/worker.h).
  AuthorizationService(const AccessPolicy* access, const PolicyRegistry* registry,
                       std::string default_rule_set,
                       const DecisionRecorder* recorder = nullptr,
                       BackgroundPriority background = {});

  grpc::ServerUnaryReactor* Authorize(grpc::CallbackServerContext* context,
                                      const v1::AuthorizeRequest* request,
                                      v1::AuthorizeResponse* response) override;
  grpc::ServerUnaryReactor* BatchAuthorize(grpc::CallbackServerContext* context,
                                           const v1::BatchAuthorizeRequest* request,
                                           v1::BatchAuthorizeResponse* response) override;

  // Counts this service's calls in `tracker` (call before the server
  // starts).
  void TrackCalls(CallTracker* tracker) {
    authorize_allocator_.set_tracker(tracker);
    batch_allocator_.set_tracker(tracker);
  }

  // One decision against the current snapshot (also used by tests).
  void Decide(const v1::AuthorizeRequest& request, v1::AuthorizeResponse* response) const;

 private:
  // One decision with `policy`, the active policy of `name` (null: not
  // loaded); `common` is a batch's common part, or null.
  static void DecideWith(const engine::Policy* policy, const std::string& name,
                         const v1::AuthorizeRequest& request,
                         const v1::AuthorizeRequest* common, absl::Time now,
                         v1::AuthorizeResponse* response);
  // Drops a reference taken for a decision. If it was the last one (the
  // version was replaced meanwhile), the policy is freed on reaper_
  // instead: freeing a large compiled rule set takes milliseconds, which
  // would stall this reactor thread's other calls.
  void Release(std::shared_ptr<const engine::Policy> policy) const;

  const AccessPolicy* access_;
  const PolicyRegistry* registry_;
  const std::string default_rule_set_;
  const DecisionRecorder* const recorder_;
  ArenaMessageAllocator<v1::AuthorizeRequest, v1::AuthorizeResponse> authorize_allocator_;
  ArenaMessageAllocator<v1::BatchAuthorizeRequest, v1::BatchAuthorizeResponse>
      batch_allocator_;
  mutable Worker reaper_;
};

// pdp.v1.Admin with PutRuleSet as a raw method (see AdminService).
using AdminServiceBase = v1::Admin::WithRawCallbackMethod_PutRuleSet<
    v1::Admin::WithCallbackMethod_GetRuleSet<v1::Admin::WithCallbackMethod_ListRuleSets<
        v1::Admin::WithCallbackMethod_ListVersions<v1::Admin::WithCallbackMethod_ActivateVersion<
            v1::Admin::WithCallbackMethod_DeleteRuleSet<
                v1::Admin::WithCallbackMethod_ListAuditEvents<v1::Admin::Service>>>>>>>;

// Every call is recorded in the audit trail (RuleSetManager::Record, the
// store): a successful change in the change's own transaction, before the
// answer (so an acknowledged change always has its record, and a change
// whose record cannot be written fails); a failed call in a transaction of
// its own, before the answer (if that write fails too, the answer says so);
// a read, after the answer (if that write fails the read still succeeds,
// and pdpd logs a warning); a refusal for lack of the admin role, queued to
// the worker before the answer (at most kMaxQueuedRefusals at a time; the
// next recorded refusal counts the ones dropped). All of it runs on one
// worker thread in order, so the trail's order is the order of the calls.
//
// PutRuleSet is a raw method: gRPC hands over the request's bytes, and the
// rule set (megabytes at 10k rules) is parsed on the worker, at the
// background priority, instead of on the gRPC thread that also serves
// decisions (bench/README.md, "Updates under load"). Bytes that do not
// parse are INVALID_ARGUMENT.
class AdminService final : public AdminServiceBase {
 public:
  // Most refusals waiting on the worker to be recorded: callers without the
  // admin role must not be able to queue unbounded work.
  static constexpr int kMaxQueuedRefusals = 256;

  // `background`: how admin work runs (service/worker.h).
  AdminService(const AccessPolicy* access, RuleSetManager* manager,
               BackgroundPriority background = {});

  // Counts this service's calls in `tracker` (call before the server
  // starts).
  void TrackCalls(CallTracker* tracker);

  grpc::ServerUnaryReactor* PutRuleSet(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetRuleSet(grpc::CallbackServerContext* context,
                                       const v1::GetRuleSetRequest* request,
                                       v1::GetRuleSetResponse* response) override;
  grpc::ServerUnaryReactor* ListRuleSets(grpc::CallbackServerContext* context,
                                         const v1::ListRuleSetsRequest* request,
                                         v1::ListRuleSetsResponse* response) override;
  grpc::ServerUnaryReactor* ListVersions(grpc::CallbackServerContext* context,
                                         const v1::ListVersionsRequest* request,
                                         v1::ListVersionsResponse* response) override;
  grpc::ServerUnaryReactor* ActivateVersion(grpc::CallbackServerContext* context,
                                            const v1::ActivateVersionRequest* request,
                                            v1::ActivateVersionResponse* response) override;
  grpc::ServerUnaryReactor* DeleteRuleSet(grpc::CallbackServerContext* context,
                                          const v1::DeleteRuleSetRequest* request,
                                          v1::DeleteRuleSetResponse* response) override;
  grpc::ServerUnaryReactor* ListAuditEvents(grpc::CallbackServerContext* context,
                                            const v1::ListAuditEventsRequest* request,
                                            v1::ListAuditEventsResponse* response) override;

 private:
  // Checks the admin role, then runs `work` on the worker and finishes the
  // call with its status, recording it (see the class comment). `event`
  // says what the call is about (method, rule set, version, comment, a
  // summary of the request); Run adds who. `work` may refine the event
  // (the summary of what a read returned) and passes it to the store with
  // a change, which commits it and sets its id.
  using Work = std::function<absl::Status(const Caller&, v1::AuditEvent* event)>;
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context, v1::AuditEvent event,
                                Work work);
  // The same, finishing `reactor`, with the event made by `describe` on the
  // worker (before `work`, or for the record of a refusal) rather than on
  // the gRPC thread.
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                grpc::ServerUnaryReactor* reactor, const char* method,
                                std::function<v1::AuditEvent()> describe, Work work);
  // Queues the record of a call refused for lack of the admin role: the
  // event `describe()` makes on the worker (with who called), and the
  // refusal.
  void RecordRefusal(std::function<v1::AuditEvent()> describe, const grpc::Status& refused);

  const AccessPolicy* access_;
  RuleSetManager* manager_;
  // Per-method message allocators: an arena per call, and the count of
  // calls in flight for a graceful stop.
  template <typename Request, typename Response>
  using Allocator = ArenaMessageAllocator<Request, Response, 1024>;
  CallTracker* put_tracker_ = nullptr;  // PutRuleSet has no allocator (raw)
  Allocator<v1::GetRuleSetRequest, v1::GetRuleSetResponse> get_allocator_;
  Allocator<v1::ListRuleSetsRequest, v1::ListRuleSetsResponse> list_allocator_;
  Allocator<v1::ListVersionsRequest, v1::ListVersionsResponse> versions_allocator_;
  Allocator<v1::ActivateVersionRequest, v1::ActivateVersionResponse> activate_allocator_;
  Allocator<v1::DeleteRuleSetRequest, v1::DeleteRuleSetResponse> delete_allocator_;
  Allocator<v1::ListAuditEventsRequest, v1::ListAuditEventsResponse> audit_allocator_;
  std::atomic<int> queued_refusals_{0};
  std::atomic<int64_t> dropped_refusals_{0};
  Worker worker_;  // last: joined first, while the rest is alive
};

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace pdp::service

#endif  // PDP_SERVICE_SERVICES_H_
