// A client for grpc.health.v1.Health/Check, used by `pdpctl health` (the
// container health check) and by the tests' readiness wait.
//
// Debian ships no generated code for the health proto, so the two tiny
// messages are encoded with protobuf's coded streams and sent through a
// generic stub. Thread-safe. Tested by tests/pdpctl_test.cc and every
// integration test (readiness).
#ifndef PDP_SERVICE_HEALTH_CLIENT_H_
#define PDP_SERVICE_HEALTH_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace pdp::service {

// HealthCheckResponse.ServingStatus values.
enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// The serving status of `service` ("" = the whole server), or the RPC error.
absl::StatusOr<ServingStatus> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                          const std::string& service,
                                          std::chrono::system_clock::time_point deadline);

}  // namespace pdp::service

#endif  // PDP_SERVICE_HEALTH_CLIENT_H_
