// Authorization and Admin gRPC services; see services.h.
#include "service/services.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/policy.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"
#include "service/audit.h"
#include "service/log.h"

namespace pdp::service {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

namespace {

grpc::Status Refused(const Caller& caller, const char* what) {
  return grpc::Status(
      grpc::StatusCode::PERMISSION_DENIED,
      caller.identity.empty()
          ? absl::StrCat("no verified client identity may ", what)
          : absl::StrCat("identity '", caller.identity, "' (role ", RoleName(caller.role),
                         ") may not ", what));
}

}  // namespace

AuthorizationService::AuthorizationService(const AccessPolicy* access,
                                           const PolicyRegistry* registry,
                                           std::string default_rule_set,
                                           const DecisionRecorder* recorder,
                                           BackgroundPriority background)
    : access_(access),
      registry_(registry),
      default_rule_set_(std::move(default_rule_set)),
      recorder_(recorder != nullptr && recorder->active() ? recorder : nullptr),
      reaper_(background) {
  SetMessageAllocatorFor_Authorize(&authorize_allocator_);
  SetMessageAllocatorFor_BatchAuthorize(&batch_allocator_);
}

void AuthorizationService::DecideWith(const engine::Policy* policy, const std::string& name,
                                      const v1::AuthorizeRequest& request,
                                      const v1::AuthorizeRequest* common, absl::Time now,
                                      v1::AuthorizeResponse* response) {
  if (!policy) {
    response->Clear();
    response->set_rule_set(name);
    engine::SetIndeterminate(
        absl::StrCat("rule set '", name, "' is not loaded; nothing can be permitted"),
        response);
    return;
  }
  policy->Evaluate(request, common, now, response);
}

void AuthorizationService::Release(std::shared_ptr<const engine::Policy> policy) const {
  // Nobody can take a new reference to a policy the registry no longer
  // holds, so a count of 1 means this is the last one.
  if (policy && policy.use_count() == 1) {
    reaper_.Post([policy = std::move(policy)]() mutable { policy.reset(); });
  }
}

void AuthorizationService::Decide(const v1::AuthorizeRequest& request,
                                  v1::AuthorizeResponse* response) const {
  const std::string& name = request.rule_set().empty() ? default_rule_set_ : request.rule_set();
  std::shared_ptr<const engine::Policy> policy = registry_->Find(name);
  DecideWith(policy.get(), name, request, nullptr, absl::Now(), response);
  Release(std::move(policy));
}

grpc::ServerUnaryReactor* AuthorizationService::Authorize(
    grpc::CallbackServerContext* context, const v1::AuthorizeRequest* request,
    v1::AuthorizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AccessPolicy::MayAuthorize(access_->CallerRole(*context))) {
    // Only a refusal pays for the identity string in its message.
    reactor->Finish(Refused(access_->Identify(*context), "call Authorize"));
    return reactor;
  }
  if (recorder_ == nullptr) {
    Decide(*request, response);
  } else {
    const auto start = DecisionRecorder::Clock::now();
    Decide(*request, response);
    recorder_->Record({DecisionPath::kAuthorize, start, request, response, std::nullopt, -1},
                      [context](CallInfo* call) { *call = GrpcCallInfo(*context); });
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AuthorizationService::BatchAuthorize(
    grpc::CallbackServerContext* context, const v1::BatchAuthorizeRequest* request,
    v1::BatchAuthorizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AccessPolicy::MayAuthorize(access_->CallerRole(*context))) {
    reactor->Finish(Refused(access_->Identify(*context), "call BatchAuthorize"));
    return reactor;
  }
  if (request->requests_size() > kMaxBatchRequests) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("requests: ", request->requests_size(), " requests; the limit is ",
                     kMaxBatchRequests)));
    return reactor;
  }
  // One clock reading for the batch, and one registry lookup per run of
  // requests naming the same rule set rather than one per request (a batch
  // usually names one set): such a run decides on one version, even if a
  // push lands meanwhile.
  const absl::Time now = absl::Now();
  const std::string* last_name = nullptr;
  std::shared_ptr<const engine::Policy> policy;
  response->mutable_responses()->Reserve(request->requests_size());
  // The caller's identity and request id, read once for the batch and only
  // if a decision of it is logged.
  std::optional<CallInfo> call;
  auto describe_call = [&call, context](CallInfo* out) {
    if (!call) call = GrpcCallInfo(*context);
    *out = *call;
  };
  // Without a common part every request is complete as it is.
  const v1::AuthorizeRequest* common = request->has_common() ? &request->common() : nullptr;
  int index = 0;
  for (const v1::AuthorizeRequest& item : request->requests()) {
    const auto start =
        recorder_ != nullptr ? DecisionRecorder::Clock::now() : DecisionRecorder::Clock::time_point();
    const std::string& named = engine::RuleSetOf(item, common);
    const std::string& name = named.empty() ? default_rule_set_ : named;
    if (last_name == nullptr || *last_name != name) {
      Release(std::move(policy));
      policy = registry_->Find(name);
      last_name = &name;
    }
    v1::AuthorizeResponse* decision = response->add_responses();
    DecideWith(policy.get(), name, item, common, now, decision);
    if (recorder_ != nullptr) {
      const DecisionEvent event{DecisionPath::kBatch, start, &item, decision, std::nullopt,
                                index, common};
      recorder_->Record(event, describe_call);
    }
    ++index;
  }
  Release(std::move(policy));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

AdminService::AdminService(const AccessPolicy* access, RuleSetManager* manager,
                           BackgroundPriority background)
    : access_(access), manager_(manager), worker_(background) {
  SetMessageAllocatorFor_GetRuleSet(&get_allocator_);
  SetMessageAllocatorFor_ListRuleSets(&list_allocator_);
  SetMessageAllocatorFor_ListVersions(&versions_allocator_);
  SetMessageAllocatorFor_ActivateVersion(&activate_allocator_);
  SetMessageAllocatorFor_DeleteRuleSet(&delete_allocator_);
  SetMessageAllocatorFor_ListAuditEvents(&audit_allocator_);
}

void AdminService::TrackCalls(CallTracker* tracker) {
  put_tracker_ = tracker;
  get_allocator_.set_tracker(tracker);
  list_allocator_.set_tracker(tracker);
  versions_allocator_.set_tracker(tracker);
  activate_allocator_.set_tracker(tracker);
  delete_allocator_.set_tracker(tracker);
  audit_allocator_.set_tracker(tracker);
}

grpc::ServerUnaryReactor* AdminService::Run(grpc::CallbackServerContext* context,
                                             v1::AuditEvent event, Work work) {
  const std::string method = event.method();
  return Run(context, context->DefaultReactor(), method.c_str(),
             [event = std::move(event)]() mutable { return std::move(event); },
             std::move(work));
}

grpc::ServerUnaryReactor* AdminService::Run(grpc::CallbackServerContext* context,
                                             grpc::ServerUnaryReactor* reactor,
                                             const char* method,
                                             std::function<v1::AuditEvent()> describe,
                                             Work work) {
  Caller caller = access_->Identify(*context);
  // The call's event with who made it, for the worker to build.
  auto describe_call = [describe = std::move(describe), identity = caller.identity,
                        role = RoleName(caller.role), peer = context->peer()] {
    v1::AuditEvent event = describe();
    event.set_caller(identity);
    event.set_caller_role(role);
    event.set_peer(peer);
    return event;
  };
  if (!AccessPolicy::MayAdminister(caller.role)) {
    LogWarning("refused Admin.%s from '%s' (role %s)", method, caller.identity,
               RoleName(caller.role));
    grpc::Status refused = Refused(caller, absl::StrCat("call Admin.", method).c_str());
    // Queued before the answer, so the trail keeps the calls' order.
    RecordRefusal(std::move(describe_call), refused);
    reactor->Finish(refused);
    return reactor;
  }
  worker_.Post([this, reactor, caller = std::move(caller),
                describe_call = std::move(describe_call), work = std::move(work)]() mutable {
    v1::AuditEvent event = describe_call();
    const std::string method = event.method();
    absl::Status status = work(caller, &event);
    LogInfo("Admin.%s by '%s': %s", method, caller.identity,
            status.ok() ? "OK" : std::string(absl::StatusCodeToString(status.code())));
    if (event.id() != 0) {
      // A change, committed together with its record.
      reactor->Finish(ToGrpcStatus(status));
      return;
    }
    event.set_code(static_cast<int32_t>(status.code()));
    event.set_message(std::string(status.message()));
    // A store that could not take the change (locked, read-only, full)
    // would most likely make its audit record wait out the same busy
    // timeout and fail too: answer first, then try to record it.
    const bool store_failed = status.code() == absl::StatusCode::kUnavailable ||
                              status.code() == absl::StatusCode::kResourceExhausted;
    if (!status.ok() && !store_failed) {
      if (absl::Status recorded = manager_->Record(&event); !recorded.ok()) {
        LogError("Admin.%s by '%s' failed and was not recorded in the audit trail: %s", method,
                 caller.identity, recorded.message());
        status = absl::Status(status.code(),
                              absl::StrCat(status.message(),
                                           " (and the audit record of this call could not be "
                                           "written: ",
                                           recorded.message(), ")"));
      }
      reactor->Finish(ToGrpcStatus(status));
      return;
    }
    // A read or a validate-only put (answered first, so that it works and is
    // not delayed while the store cannot be written), or a change the store
    // could not take.
    reactor->Finish(ToGrpcStatus(status));
    if (absl::Status recorded = manager_->Record(&event); !recorded.ok()) {
      LogWarning("Admin.%s by '%s' answered but not recorded in the audit trail: %s", method,
                 caller.identity, recorded.message());
    }
  });
  return reactor;
}

void AdminService::RecordRefusal(std::function<v1::AuditEvent()> describe,
                                 const grpc::Status& refused) {
  if (queued_refusals_.fetch_add(1) >= kMaxQueuedRefusals) {
    queued_refusals_.fetch_sub(1);
    dropped_refusals_.fetch_add(1);
    return;
  }
  worker_.Post([this, describe = std::move(describe), code = refused.error_code(),
                message = refused.error_message()]() mutable {
    v1::AuditEvent event = describe();
    event.set_code(code);
    event.set_message(std::move(message));
    event.set_summary(absl::StrCat("refused: ", event.summary()));
    if (const int64_t dropped = dropped_refusals_.exchange(0); dropped > 0) {
      absl::StrAppend(event.mutable_summary(), "; ", dropped,
                      " earlier refused calls were not recorded (too many queued)");
    }
    if (absl::Status recorded = manager_->Record(&event); !recorded.ok()) {
      LogWarning("refused Admin.%s from '%s' not recorded in the audit trail: %s",
                 event.method(), event.caller(), recorded.message());
    }
    queued_refusals_.fetch_sub(1);
  });
}

namespace {

v1::AuditEvent AuditEventFor(const char* method, const std::string& rule_set = "",
                             int64_t version = 0, const std::string& comment = "",
                             std::string summary = "") {
  v1::AuditEvent event;
  event.set_method(method);
  event.set_rule_set(rule_set);
  event.set_version(version);
  event.set_comment(comment);
  event.set_summary(std::move(summary));
  return event;
}

std::string Plural(int64_t count, const char* one, const char* many) {
  return absl::StrCat(count, " ", count == 1 ? one : many);
}

}  // namespace

namespace {

// A reactor that counts its call in a CallTracker until gRPC is done with
// it (the raw method has no message allocator to count it).
class TrackedReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit TrackedReactor(CallTracker* tracker) : tracker_(tracker) {
    if (tracker_ != nullptr) tracker_->Begin();
  }
  void OnDone() override {
    CallTracker* tracker = tracker_;
    delete this;
    if (tracker != nullptr) tracker->End();
  }

 private:
  CallTracker* const tracker_;
};

}  // namespace

grpc::ServerUnaryReactor* AdminService::PutRuleSet(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request_bytes,
                                                   grpc::ByteBuffer* response_bytes) {
  // The call's bytes, shared (a ByteBuffer copy references the same
  // slices), so that the record of a refusal can still read them after the
  // answer; parsed on the worker by `describe`, freed there by the last
  // of the two closures.
  struct Put {
    grpc::ByteBuffer bytes;
    google::protobuf::Arena arena;
    v1::PutRuleSetRequest* request = nullptr;  // null when the bytes do not parse
  };
  auto put = std::make_shared<Put>();
  put->bytes = *request_bytes;
  auto describe = [put] {
    auto* request = google::protobuf::Arena::CreateMessage<v1::PutRuleSetRequest>(&put->arena);
    grpc::ProtoBufferReader reader(&put->bytes);
    if (request->ParseFromZeroCopyStream(&reader)) put->request = request;
    put->bytes.Clear();
    if (put->request == nullptr) {
      return AuditEventFor("PutRuleSet", "", 0, "", "put, request not parsed");
    }
    std::string what =
        absl::StrCat(request->validate_only() ? "validate only, " : "put, ",
                     Plural(request->rule_set().rules_size(), "rule", "rules"));
    if (request->expected_version() != 0) {
      absl::StrAppend(&what, ", expected_version ", request->expected_version());
    }
    return AuditEventFor("PutRuleSet", request->rule_set().name(), 0, request->comment(),
                         std::move(what));
  };
  auto work = [this, put, response_bytes](const Caller& caller,
                                          v1::AuditEvent* event) -> absl::Status {
    if (put->request == nullptr) {
      return absl::InvalidArgumentError(
          "the request is not a PutRuleSetRequest: bad protobuf encoding, or a string field "
          "that is not UTF-8");
    }
    const v1::PutRuleSetRequest& request = *put->request;
    absl::StatusOr<v1::PutRuleSetResponse> result =
        manager_->Put(request, caller.identity, event);
    if (!result.ok()) return result.status();
    if (request.validate_only()) {
      event->set_summary(absl::StrCat("validate only: ",
                                      Plural(result->rule_count(), "rule", "rules"),
                                      " compile; nothing stored"));
    }
    bool own_buffer = false;
    grpc::ByteBuffer out;
    if (grpc::Status s = grpc::GenericSerialize<grpc::ProtoBufferWriter, v1::PutRuleSetResponse>(
            *result, &out, &own_buffer);
        !s.ok()) {
      return absl::InternalError(absl::StrCat("serializing the response: ", s.error_message()));
    }
    response_bytes->Swap(&out);
    return absl::OkStatus();
  };
  return Run(context, new TrackedReactor(put_tracker_), "PutRuleSet", std::move(describe),
             std::move(work));
}

grpc::ServerUnaryReactor* AdminService::GetRuleSet(grpc::CallbackServerContext* context,
                                                   const v1::GetRuleSetRequest* request,
                                                   v1::GetRuleSetResponse* response) {
  return Run(context,
             AuditEventFor("GetRuleSet", request->name(), request->version(), "",
                           request->version() == 0
                               ? std::string("get the active version")
                               : absl::StrCat("get version ", request->version())),
             [this, request, response](const Caller&, v1::AuditEvent* event) {
               auto result = manager_->Get(request->name(), request->version());
               if (!result.ok()) return result.status();
               event->set_version(result->version().version());
               event->set_summary(absl::StrCat(
                   "read version ", result->version().version(),
                   result->version().active() ? " (active), " : ", ",
                   Plural(result->version().rule_count(), "rule", "rules")));
               *response = *std::move(result);
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* AdminService::ListRuleSets(grpc::CallbackServerContext* context,
                                                     const v1::ListRuleSetsRequest* request,
                                                     v1::ListRuleSetsResponse* response) {
  return Run(context, AuditEventFor("ListRuleSets", "", 0, "", "list rule sets"),
             [this, response](const Caller&, v1::AuditEvent* event) {
               auto result = manager_->List();
               if (!result.ok()) return result.status();
               event->set_summary(
                   Plural(static_cast<int64_t>(result->size()), "active rule set",
                          "active rule sets"));
               for (auto& info : *result) *response->add_rule_sets() = std::move(info);
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* AdminService::ListVersions(grpc::CallbackServerContext* context,
                                                     const v1::ListVersionsRequest* request,
                                                     v1::ListVersionsResponse* response) {
  return Run(context, AuditEventFor("ListVersions", request->name(), 0, "", "list versions"),
             [this, request, response](const Caller&, v1::AuditEvent* event) {
               auto result = manager_->Versions(request->name());
               if (!result.ok()) return result.status();
               event->set_summary(
                   Plural(static_cast<int64_t>(result->size()), "version", "versions"));
               for (auto& info : *result) *response->add_versions() = std::move(info);
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* AdminService::ActivateVersion(
    grpc::CallbackServerContext* context, const v1::ActivateVersionRequest* request,
    v1::ActivateVersionResponse* response) {
  return Run(context,
             AuditEventFor("ActivateVersion", request->name(), request->version(),
                           request->comment(),
                           absl::StrCat("activate version ", request->version())),
             [this, request, response](const Caller&, v1::AuditEvent* event) {
               auto result = manager_->Activate(request->name(), request->version(), event);
               if (!result.ok()) return result.status();
               *response->mutable_version() = *std::move(result);
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* AdminService::DeleteRuleSet(grpc::CallbackServerContext* context,
                                                      const v1::DeleteRuleSetRequest* request,
                                                      v1::DeleteRuleSetResponse*) {
  return Run(context, AuditEventFor("DeleteRuleSet", request->name(), 0, "", "delete"),
             [this, request](const Caller&, v1::AuditEvent* event) {
               return manager_->Delete(request->name(), event);
             });
}

grpc::ServerUnaryReactor* AdminService::ListAuditEvents(
    grpc::CallbackServerContext* context, const v1::ListAuditEventsRequest* request,
    v1::ListAuditEventsResponse* response) {
  return Run(context,
             AuditEventFor("ListAuditEvents", request->rule_set(), 0, "", "list audit events"),
             [this, request, response](const Caller&, v1::AuditEvent* event) {
               absl::StatusOr<AuditQuery> query = AuditQueryFromRequest(*request);
               if (!query.ok()) return query.status();
               absl::StatusOr<AuditPage> page = manager_->AuditEvents(*query);
               if (!page.ok()) return page.status();
               event->set_summary(absl::StrCat(
                   Plural(static_cast<int64_t>(page->events.size()), "event", "events"), " (",
                   DescribeAuditQuery(*query), ")"));
               for (auto& item : page->events) *response->add_events() = std::move(item);
               response->set_next_page_token(AuditPageToken(page->next_before_id));
               return absl::OkStatus();
             });
}

}  // namespace pdp::service
