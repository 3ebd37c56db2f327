// venue-engine: one matching-engine partition served over gRPC.
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <new>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "server/cpu_affinity.h"
#include "server/data_dir_lock.h"
#include "server/engine_options.h"
#include "server/matching_service.h"
#include "server/partition_worker.h"

namespace {

constexpr int kExitBadFlags = 2;
// A batch is applied in well under a millisecond; the grace covers the one in flight.
// gRPC waits the whole grace while any client holds a connection (a submitter always
// does), then cancels the open streams; a submitter resends what was not answered.
constexpr auto kShutdownGrace = std::chrono::seconds(2);
constexpr int kMinPingIntervalMs = 1000;  // clients' keepalive pings, at most this often

int serve(const venue::EngineOptions& options) {
  // Signals are taken synchronously by this thread (sigwait below); every thread
  // started from here on, gRPC's and the matching thread, inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // Snapshot children are waited for: an ignored SIGCHLD inherited from a launcher would
  // have the kernel reap them first, and a finished snapshot look lost.
  ::signal(SIGCHLD, SIG_DFL);

  venue::DataDirLock data_dir_lock;
  if (!options.data_dir.empty()) {
    std::string error;
    if (!data_dir_lock.acquire(options.data_dir, stop_signals, error)) {
      std::cerr << "venue-engine: " << error << std::endl;
      return 1;
    }
    if (data_dir_lock.waited()) std::cerr << "venue-engine: " << options.data_dir << " is ours now" << std::endl;
  }

  venue::WorkerOptions worker_options;
  worker_options.partition = options.partition;
  worker_options.instruments = options.instruments;
  worker_options.event_log_capacity = options.event_log_events;
  worker_options.commit_part = std::chrono::microseconds(options.commit_part_us);
  worker_options.exchange.stp_mode = options.stp;
  worker_options.exchange.hugepages = options.hugepages;
  worker_options.exchange.command_index_per_shard = options.command_index;
  worker_options.exchange.done_order_capacity = options.done_orders;
  if (!options.data_dir.empty()) {
    venue::StoreOptions store;
    store.dir = options.data_dir;
    store.fsync = options.fsync;
    store.fsync_interval_ms = options.fsync_interval_ms;
    store.snapshot_every = options.snapshot_every;
    store.keep_snapshots = options.keep_snapshots;
    worker_options.store = store;
  }
  const std::vector<int> allowed = venue::allowed_cpus();
  std::string why;
  const int online = venue::online_cpus();
  if (!venue::choose_cpu(options.cpus, allowed, online, worker_options.cpu, why)) {
    std::cerr << "venue-engine: --cpus " << options.cpus << ": " << why << "\n";
    return kExitBadFlags;
  }

  const auto recovery_started = std::chrono::steady_clock::now();
  venue::PartitionWorker worker(worker_options);
  const auto recovery_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - recovery_started)
                               .count();
  const std::string prefix = "venue-engine partition " + std::to_string(options.partition) + ": ";
  if (worker_options.store) {
    const venue::RecoveryReport& recovery = worker.recovery();
    for (const std::string& note : recovery.notes) std::cerr << prefix << note << "\n";
    std::cerr << prefix << "recovered in " << recovery_ms << " ms: "
              << (recovery.from_snapshot ? "snapshot at command " + std::to_string(recovery.snapshot_commands)
                                         : std::string("no snapshot"))
              << " + " << recovery.replayed_commands << " commands (" << recovery.replayed_batches
              << " batches) from " << recovery.segments << " journal segments; journal fsync "
              << venue::fsync_policy_name(options.fsync) << ", snapshot every " << options.snapshot_every
              << " commands, "
              << (options.keep_snapshots ? "pruned to the last " + std::to_string(options.keep_snapshots) +
                                               " snapshots the writer has persisted past"
                                         : std::string("never pruned"))
              << std::endl;
  } else {
    std::cerr << prefix << "no --data-dir: nothing is journaled" << std::endl;
  }
  std::cerr << prefix << "matching thread "
            << (worker.pinned_cpu() >= 0 ? "pinned to CPU " + std::to_string(worker.pinned_cpu())
                                         : std::string("not pinned"))
            << " (allowed CPUs: " << venue::cpu_list(allowed)
            << (worker.pinned_cpu() < 0 && options.cpus == "auto"
                    ? ", every online CPU of the machine, each shared with the rest of it"
                    : "")
            << "; --cpus " << options.cpus << ")" << std::endl;
  std::cerr << prefix << "order pool: " << worker.memory_summary() << " (--hugepages "
            << venue::hugepages_name(options.hugepages) << ")" << std::endl;
  venue::MatchingService service(worker);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(64 << 20);  // large batches under load
  // A follower of a quiet partition hears nothing for as long as it is quiet: its client
  // pings (venue.contract.wire.FOLLOW_GRPC_OPTIONS, every 2 s) to notice an engine gone
  // without a word. gRPC's default would answer pings more often than every 5 minutes
  // on a connection without data with GOAWAY.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, kMinPingIntervalMs);
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
  } catch (const std::bad_alloc&) {
    std::cerr << "venue-engine: cannot allocate the order pools"
              << (parsed.options.hugepages == venue::HugePages::Require
                      ? " on hugepages (--hugepages require): reserve some in /proc/sys/vm/nr_hugepages"
                      : "")
              << "\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "venue-engine: " << error.what() << "\n";
    return 1;
  }
}
