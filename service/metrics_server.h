// The HTTP endpoint Prometheus scrapes: GET /metrics answers the text
// exposition format (text/plain; version=0.0.4) produced by a callback
// (Metrics::ExpositionText); every other path is 404. Served by
// cpp-httplib on its own thread (one worker: scrapes are rare), never on
// the gRPC threads.
//
// Plain HTTP on purpose: the metrics carry counts, rule-set names and
// versions, never request data; Prometheus scrapes plain HTTP by default;
// and a second TLS configuration would be one more set of certificates to
// rotate. Bind it to loopback or a management interface (README,
// "Operations: decision log and metrics").
//
// Thread-safe. Tested by tests/ops_integration_test.cc (a real pdpd
// scraped over HTTP) and tests/metrics_test.cc.
#ifndef PDP_SERVICE_METRICS_SERVER_H_
#define PDP_SERVICE_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace pdp::service {

class MetricsServer {
 public:
  // Listens on `address` ("127.0.0.1:9464", "[::1]:9464"; port 0 picks a
  // free one) and serves `render()` at /metrics.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::function<std::string()> render);
  // Stops listening and joins the thread.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace pdp::service

#endif  // PDP_SERVICE_METRICS_SERVER_H_
