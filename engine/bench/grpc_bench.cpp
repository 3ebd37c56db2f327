// venue-engine-grpc-bench: orders per second through the real engine server over
// loopback, journal on. Starts venue-engine on a free port with a fresh --data-dir
// (or uses --target), streams pre-encoded CommandBatches on one Submit stream with up
// to --window batches in flight, and counts a batch done when its ReportBatch arrives
// (which the engine sends only once the batch is in the journal). Prints JSON.
//
//   venue-engine-grpc-bench [--workload mixed|insert] [--ops N] [--batch N] [--window W]
//       [--fsync batch|interval|none] [--engine PATH | --target HOST:PORT] [--parse] --json
//
// Batches are encoded before the clock starts and answers are not decoded (unless
// --parse): the client's own work stays out of the server's number as far as one
// machine allows (client and server share its CPUs).
#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "engine.pb.h"
#include "latency.h"
#include "workloads.h"

namespace {

namespace pb = ::tradingvenue::engine::v1;
using namespace venue;

struct Flags {
  std::string workload = "mixed";
  std::size_t ops = 2'000'000;
  std::size_t batch = 4'096;
  std::size_t window = 8;
  std::string fsync = "batch";
  std::string engine = VENUE_ENGINE_BINARY;
  std::string target;
  std::string cpus = "auto";
  bool parse = false;
};

int usage(const std::string& error) {
  std::cerr << "venue-engine-grpc-bench: " << error << "\n"
            << "usage: venue-engine-grpc-bench [--workload mixed|insert] [--ops N] [--batch N] [--window W]\n"
            << "         [--fsync batch|interval|none] [--cpus auto|none|LIST] [--engine PATH | --target HOST:PORT]\n"
            << "         [--parse] --json\n";
  return 2;
}

// The engine as a child process on a free port, stopped and its data removed at the end.
class EngineChild {
 public:
  EngineChild(const Flags& flags, const std::string& data_dir) : data_dir_(data_dir) {
    int fds[2];
    if (pipe(fds) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDERR_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<std::string> args = {flags.engine, "--listen", "127.0.0.1:0", "--instrument",
                                       "1:" + std::to_string(bench::kBenchInstrument.min_price) + ":" +
                                           std::to_string(bench::kBenchInstrument.max_price),
                                       "--data-dir", data_dir, "--fsync", flags.fsync, "--cpus", flags.cpus};
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(flags.engine.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    stderr_ = fds[0];
  }
  ~EngineChild() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    if (stderr_ >= 0) close(stderr_);
    std::filesystem::remove_all(data_dir_);
  }

  // The address from the engine's "listening on" line, or "" when it did not start.
  std::string address() {
    std::string buffer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd fd{stderr_, POLLIN, 0};
      if (poll(&fd, 1, 100) <= 0) continue;
      char chunk[4096];
      const ssize_t n = read(stderr_, chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(n));
      log_ += std::string(chunk, static_cast<std::size_t>(n));
      const auto at = buffer.find("listening on ");
      if (at != std::string::npos) {
        const auto end = buffer.find(' ', at + 13);
        if (end != std::string::npos) return buffer.substr(at + 13, end - at - 13);
      }
    }
    return "";
  }
  const std::string& log() const { return log_; }

 private:
  std::string data_dir_;
  pid_t pid_ = -1;
  int stderr_ = -1;
  std::string log_;
};

pb::Command to_proto(const Command& command, std::uint64_t stream_seq) {
  pb::Command out;
  out.set_shard(0);
  out.set_stream_ms(1'700'000'000'000);
  out.set_stream_seq(stream_seq);
  switch (command.type) {
    case CommandType::New: {
      const NewOrder& o = command.new_order;
      pb::NewOrder& order = *out.mutable_new_order();
      order.set_order_id(o.order_id);
      order.set_client_order_id("c" + std::to_string(o.order_id));
      order.set_account_id(o.account_id);
      order.set_instrument_id(o.instrument_id);
      order.set_side(static_cast<pb::Side>(o.side));
      order.set_type(static_cast<pb::OrderType>(o.type));
      order.set_time_in_force(static_cast<pb::TimeInForce>(o.time_in_force));
      order.set_price(o.price);
      order.set_quantity(o.quantity);
      break;
    }
    case CommandType::Cancel:
      out.mutable_cancel()->set_order_id(command.cancel.order_id);
      out.mutable_cancel()->set_account_id(command.cancel.account_id);
      out.mutable_cancel()->set_instrument_id(command.cancel.instrument_id);
      break;
    case CommandType::Replace:
      out.mutable_replace()->set_order_id(command.replace.order_id);
      out.mutable_replace()->set_account_id(command.replace.account_id);
      out.mutable_replace()->set_instrument_id(command.replace.instrument_id);
      out.mutable_replace()->set_price(command.replace.price);
      out.mutable_replace()->set_quantity(command.replace.quantity);
      break;
    default:
      break;
  }
  return out;
}

void* tag(long n) { return reinterpret_cast<void*>(n); }

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (flag == "--json") {
      continue;
    } else if (flag == "--workload") {
      flags.workload = value();
    } else if (flag == "--ops") {
      flags.ops = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--batch") {
      flags.batch = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--window") {
      flags.window = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--fsync") {
      flags.fsync = value();
    } else if (flag == "--engine") {
      flags.engine = value();
    } else if (flag == "--target") {
      flags.target = value();
    } else if (flag == "--cpus") {
      flags.cpus = value();
    } else if (flag == "--parse") {
      flags.parse = true;
    } else {
      return usage("unknown flag " + flag);
    }
  }
  if (flags.workload != "mixed" && flags.workload != "insert") return usage("--workload must be mixed or insert");
  if (flags.batch == 0 || flags.window == 0 || flags.ops == 0) return usage("--ops, --batch and --window must be positive");

  // Encode every batch before anything is timed.
  const bench::Workload workload = flags.workload == "mixed" ? bench::mixed_workload(flags.ops, 0, 7)
                                                             : bench::insert_workload(flags.ops, 0, 7);
  std::vector<grpc::ByteBuffer> batches;
  std::vector<std::size_t> batch_sizes;
  {
    pb::CommandBatch batch;
    std::uint64_t stream_seq = 0;
    for (std::size_t at = 0; at < workload.commands.size(); at += flags.batch) {
      batch.Clear();
      batch.set_batch_id(batches.size() + 1);
      const std::size_t end = std::min(workload.commands.size(), at + flags.batch);
      for (std::size_t i = at; i < end; ++i) *batch.add_commands() = to_proto(workload.commands[i], ++stream_seq);
      const std::string bytes = batch.SerializeAsString();
      grpc::Slice slice(bytes);
      batches.emplace_back(&slice, 1);
      batch_sizes.push_back(end - at);
    }
  }

  std::unique_ptr<EngineChild> child;
  std::string address = flags.target;
  if (address.empty()) {
    const std::string dir =
        (std::filesystem::temp_directory_path() / ("venue-grpc-bench-" + std::to_string(getpid()))).string();
    child = std::make_unique<EngineChild>(flags, dir);
    address = child->address();
    if (address.empty()) {
      std::cerr << "venue-engine-grpc-bench: the engine did not start:\n" << child->log();
      return 1;
    }
  }

  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(256 << 20);
  arguments.SetMaxSendMessageSize(256 << 20);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments);
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  auto call = stub.PrepareCall(&context, "/tradingvenue.engine.v1.MatchingEngine/Submit", &queue);

  // One completion queue, one thread: at most one write and one read outstanding (the
  // gRPC rule), and at most --window batches sent but not answered.
  enum : long { kStart = 1, kWrite = 2, kRead = 3, kWritesDone = 4, kFinish = 5 };
  void* got = nullptr;
  bool ok = false;
  call->StartCall(tag(kStart));
  if (!queue.Next(&got, &ok) || !ok) {
    std::cerr << "venue-engine-grpc-bench: cannot start the Submit stream to " << address << "\n";
    return 1;
  }

  std::size_t sent = 0;
  std::size_t answered = 0;
  std::uint64_t events = 0;
  std::uint64_t reply_bytes = 0;
  bool writing = false;
  bool reading = false;
  grpc::ByteBuffer reply;
  pb::ReportBatch parsed;
  std::vector<std::uint64_t> round_trips;
  std::vector<std::uint64_t> sent_at(batches.size());
  const double per_ns = bench::ticks_per_ns(std::chrono::milliseconds(50));
  const auto start = std::chrono::steady_clock::now();
  while (answered < batches.size()) {
    if (!writing && sent < batches.size() && sent - answered < flags.window) {
      sent_at[sent] = bench::ticks();
      call->Write(batches[sent], tag(kWrite));
      writing = true;
    }
    if (!reading && answered < sent) {
      call->Read(&reply, tag(kRead));
      reading = true;
    }
    if (!queue.Next(&got, &ok) || !ok) {
      std::cerr << "venue-engine-grpc-bench: the stream broke after " << answered << " batches\n";
      if (child) std::cerr << child->log();
      return 1;
    }
    if (got == tag(kWrite)) {
      writing = false;
      ++sent;
    } else if (got == tag(kRead)) {
      reading = false;
      round_trips.push_back(bench::ticks() - sent_at[answered]);
      reply_bytes += reply.Length();
      if (flags.parse) {
        std::vector<grpc::Slice> slices;
        (void)reply.Dump(&slices);
        std::string bytes;
        for (const grpc::Slice& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
        parsed.ParseFromString(bytes);
        events += static_cast<std::uint64_t>(parsed.events_size());
      }
      ++answered;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  call->WritesDone(tag(kWritesDone));
  queue.Next(&got, &ok);
  grpc::Status status;
  call->Finish(&status, tag(kFinish));
  queue.Next(&got, &ok);
  queue.Shutdown();
  while (queue.Next(&got, &ok)) {
  }

  const bench::Percentiles batch_latency = bench::percentiles(round_trips, per_ns);
  std::printf(
      "{\"benchmark\": \"engine-grpc\", \"workload\": \"%s\", \"orders\": %zu, \"batch\": %zu, \"window\": %zu, "
      "\"fsync\": \"%s\", \"seconds\": %.3f, \"orders_per_sec\": %.0f, \"batches\": %zu, "
      "\"batch_round_trip_p50_us\": %.0f, \"batch_round_trip_p99_us\": %.0f, \"reply_bytes\": %llu, "
      "\"events\": %llu}\n",
      flags.workload.c_str(), workload.commands.size(), flags.batch, flags.window, flags.fsync.c_str(), seconds,
      static_cast<double>(workload.commands.size()) / seconds, batches.size(), batch_latency.p50_ns / 1000,
      batch_latency.p99_ns / 1000, static_cast<unsigned long long>(reply_bytes),
      static_cast<unsigned long long>(events));
  return 0;
}
