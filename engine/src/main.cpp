// venue-engine: one matching-engine partition served over gRPC.
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "server/engine_options.h"
#include "server/matching_service.h"
#include "server/partition_worker.h"

namespace {

constexpr int kExitBadFlags = 2;
// A batch is applied in well under a millisecond; the grace covers the one in flight.
// gRPC waits the whole grace while any client holds a connection (a submitter always
// does), then cancels the open streams; a submitter resends what was not answered.
constexpr auto kShutdownGrace = std::chrono::seconds(2);

int serve(const venue::EngineOptions& options) {
  // Signals are taken synchronously by this thread (sigwait below); every thread
  // started from here on, gRPC's and the matching thread, inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  venue::PartitionWorker worker(options.partition, options.instruments, options.event_log_events);
  venue::MatchingService service(worker);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(64 << 20);  // large batches under load
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "venue-engine: cannot listen on " << options.listen << "\n";
    return 1;
  }
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  std::cerr << "venue-engine partition " << options.partition << " listening on " << host << ":" << port << " with "
            << options.instruments.size() << " instruments" << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "venue-engine partition " << options.partition << " stopping on signal " << signal_number
            << std::endl;
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  worker.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const venue::ParsedOptions parsed = venue::parse_engine_options(args);
  switch (parsed.outcome) {
    case venue::ParsedOptions::Outcome::Help:
      std::cout << venue::engine_usage();
      return 0;
    case venue::ParsedOptions::Outcome::Error:
      std::cerr << "venue-engine: " << parsed.error << "\n\n" << venue::engine_usage();
      return kExitBadFlags;
    case venue::ParsedOptions::Outcome::Run:
      break;
  }
  if (!parsed.options.data_dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(parsed.options.data_dir, error);
    if (error) {
      std::cerr << "venue-engine: --data-dir " << parsed.options.data_dir << ": " << error.message() << "\n\n"
                << venue::engine_usage();
      return kExitBadFlags;
    }
  }
  try {
    return serve(parsed.options);
  } catch (const std::exception& error) {
    std::cerr << "venue-engine: " << error.what() << "\n";
    return 1;
  }
}
