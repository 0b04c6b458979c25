// The gRPC services pdpd serves: pdp.v1.Authorization and pdp.v1.Admin,
// both on gRPC's callback API.
//
// Authorization decides inline in the reactor: a decision is microseconds of
// CPU on an immutable snapshot, with no lock held while evaluating. Admin
// work (compile, SQLite) never runs on a reactor thread: it is handed to a
// dedicated worker thread, which finishes the call.
//
// Thread-safe. Tested by tests/integration_test.cc.
#ifndef PDP_SERVICE_SERVICES_H_
#define PDP_SERVICE_SERVICES_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "pdp/v1/admin.grpc.pb.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "service/access.h"
#include "service/registry.h"
#include "service/rule_set_manager.h"

namespace pdp::service {

// Most requests a BatchAuthorize may carry.
inline constexpr int kMaxBatchRequests = 1000;

class AuthorizationService final : public v1::Authorization::CallbackService {
 public:
  AuthorizationService(const AccessPolicy* access, const PolicyRegistry* registry,
                       std::string default_rule_set)
      : access_(access), registry_(registry), default_rule_set_(std::move(default_rule_set)) {}

  grpc::ServerUnaryReactor* Authorize(grpc::CallbackServerContext* context,
                                      const v1::AuthorizeRequest* request,
                                      v1::AuthorizeResponse* response) override;
  grpc::ServerUnaryReactor* BatchAuthorize(grpc::CallbackServerContext* context,
                                           const v1::BatchAuthorizeRequest* request,
                                           v1::BatchAuthorizeResponse* response) override;

  // One decision against the current snapshot (also used by tests).
  void Decide(const v1::AuthorizeRequest& request, v1::AuthorizeResponse* response) const;

 private:
  const AccessPolicy* access_;
  const PolicyRegistry* registry_;
  const std::string default_rule_set_;
};

// A single thread that runs posted tasks in order.
class Worker {
 public:
  Worker();
  ~Worker();  // runs what is queued, then joins
  void Post(std::function<void()> task);

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

class AdminService final : public v1::Admin::CallbackService {
 public:
  AdminService(const AccessPolicy* access, RuleSetManager* manager)
      : access_(access), manager_(manager) {}

  grpc::ServerUnaryReactor* PutRuleSet(grpc::CallbackServerContext* context,
                                       const v1::PutRuleSetRequest* request,
                                       v1::PutRuleSetResponse* response) override;
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

 private:
  // Checks the admin role, then runs `work` on the worker and finishes the
  // call with its status.
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context, const char* method,
                                std::function<absl::Status(const Caller&)> work);

  const AccessPolicy* access_;
  RuleSetManager* manager_;
  Worker worker_;
};

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace pdp::service

#endif  // PDP_SERVICE_SERVICES_H_
