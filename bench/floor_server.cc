// floor_server: the floor pdpd is compared with (bench/README.md). It is
// pdpd's server stack and TLS configuration -- service::MakeServerCredentials
// (mTLS, client certificate required and verified, file-watched rotation),
// the callback API with the same per-call arena message allocator, health
// checking and reflection on, the same builder settings -- serving
// pdp.v1.Authorization whose Authorize and BatchAuthorize finish at once
// with a default response: no access check, no rule-set lookup, no
// evaluation. What pdpd costs beyond it is pdp's own.
//
//   floor_server --listen=127.0.0.1:0 --port_file=port
//                --tls_cert=server.pem --tls_key=server.key --tls_ca=ca.pem
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "pdp/v1/authorization.grpc.pb.h"
#include "service/log.h"
#include "service/mutex_checks.h"
#include "service/services.h"
#include "service/tls.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0 picks a free one).");
ABSL_FLAG(std::string, tls_cert, "", "Server certificate chain (PEM).");
ABSL_FLAG(std::string, tls_key, "", "Server private key (PEM).");
ABSL_FLAG(std::string, tls_ca, "", "CA bundle (PEM) that signs client certificates.");
ABSL_FLAG(int, cert_refresh_seconds, 60, "As pdpd's.");
ABSL_FLAG(bool, insecure, false, "Plaintext, to compare with pdpd --insecure.");
ABSL_FLAG(std::string, port_file, "", "Write the bound port to this file once serving.");
ABSL_FLAG(int, max_message_bytes, 64 << 20, "As pdpd's.");
ABSL_FLAG(bool, mutex_deadlock_detection, false,
          "As pdpd's: Abseil's lock-order checking on every lock (Debian's Abseil has it "
          "on); off by default, as in pdpd, so that the floor runs the same server stack.");
ABSL_FLAG(bool, arena, true,
          "Parse requests onto a per-call arena, as pdpd's Authorization service does "
          "(service::ArenaMessageAllocator); false: gRPC's default message allocation.");

namespace pdp::bench {
namespace {

class FloorService final : public v1::Authorization::CallbackService {
 public:
  explicit FloorService(bool arena) {
    if (arena) {
      SetMessageAllocatorFor_Authorize(&authorize_allocator_);
      SetMessageAllocatorFor_BatchAuthorize(&batch_allocator_);
    }
  }

  grpc::ServerUnaryReactor* Authorize(grpc::CallbackServerContext* context,
                                      const v1::AuthorizeRequest*,
                                      v1::AuthorizeResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* BatchAuthorize(grpc::CallbackServerContext* context,
                                           const v1::BatchAuthorizeRequest*,
                                           v1::BatchAuthorizeResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  service::ArenaMessageAllocator<v1::AuthorizeRequest, v1::AuthorizeResponse>
      authorize_allocator_;
  service::ArenaMessageAllocator<v1::BatchAuthorizeRequest, v1::BatchAuthorizeResponse>
      batch_allocator_;
};

int Run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  service::SetMutexDeadlockDetection(absl::GetFlag(FLAGS_mutex_deadlock_detection));
  const bool insecure = absl::GetFlag(FLAGS_insecure);
  const service::TlsFiles tls{absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                              absl::GetFlag(FLAGS_tls_ca)};
  if (!insecure) {
    if (absl::Status s = service::CheckTlsFiles(tls); !s.ok()) {
      service::LogError("TLS: %s", s.message());
      return 2;
    }
  }
  FloorService floor(absl::GetFlag(FLAGS_arena));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(
      absl::GetFlag(FLAGS_listen),
      insecure ? grpc::InsecureServerCredentials()
               : service::MakeServerCredentials(tls, absl::GetFlag(FLAGS_cert_refresh_seconds)),
      &port);
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.RegisterService(&floor);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    service::LogError("cannot listen on %s", absl::GetFlag(FLAGS_listen));
    return 2;
  }
  server->GetHealthCheckService()->SetServingStatus("pdp.v1.Authorization", true);
  service::LogInfo("floor_server serving on port %d (%s)", port,
                   insecure ? "INSECURE plaintext" : "mTLS");
  if (const std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << port << "\n";
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      service::LogError("%s: cannot write", path);
      return 2;
    }
  }
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  });
  server->Wait();
  signal_thread.join();
  return 0;
}

}  // namespace
}  // namespace pdp::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "floor_server: pdpd's gRPC+mTLS stack with empty Authorization handlers.\n"
      "  floor_server --listen=127.0.0.1:0 --port_file=F --tls_cert=server.pem \\\n"
      "               --tls_key=server.key --tls_ca=ca.pem");
  absl::ParseCommandLine(argc, argv);
  return pdp::bench::Run();
}
