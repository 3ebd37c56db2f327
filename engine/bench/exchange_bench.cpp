// venue-engine-bench: the matching core alone, in process, on one thread: a generated
// command stream into an Exchange, events out to a counting sink. Prints JSON.
//
//   venue-engine-bench --workload mixed|insert [--ops N] [--warmup N] [--rate R]
//                      [--cpus auto|none|LIST] [--hugepages try|require|off] [--seed S] [--fifo] --json
//
// Without --rate, commands go back to back: ops_per_sec is the throughput and the
// percentiles are the service time of each command. With --rate R, command i is due at
// start + i/R; the loop waits for that time (never for a slow command), and latency is
// measured from when the command was due, not from when it could start: a stall delays
// everything behind it and the percentiles show it (no coordinated omission).
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "allocation_counter.h"
#include "latency.h"
#include "matching/exchange.h"
#include "server/cpu_affinity.h"
#include "workloads.h"

namespace {

using namespace venue;

// The cheapest sink that still looks at what it gets, so nothing is optimised away.
class CountingSink final : public EventSink {
 public:
  void on_event(const Event& event) override {
    ++events;
    trades += event.type == EventType::Trade ? 1 : 0;
    checksum += event.sequence;
  }
  std::uint64_t events = 0;
  std::uint64_t trades = 0;
  std::uint64_t checksum = 0;
};

struct Flags {
  std::string workload = "mixed";
  std::size_t ops = 5'000'000;
  std::size_t warmup = 1'000'000;
  double rate = 0;  // commands per second; 0: back to back
  std::string cpus = "auto";
  HugePages hugepages = HugePages::Try;
  std::uint64_t seed = 42;
  bool fifo = false;  // SCHED_FIFO for the timed thread: other processes cannot preempt it
};

int usage(const std::string& error) {
  std::cerr << "venue-engine-bench: " << error << "\n"
            << "usage: venue-engine-bench --workload mixed|insert [--ops N] [--warmup N] [--rate R]\n"
            << "                          [--cpus auto|none|LIST] [--hugepages try|require|off] [--seed S]\n"
            << "                          [--fifo] --json\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (flag == "--json") {
      continue;  // JSON is the only output
    } else if (flag == "--workload") {
      flags.workload = value();
    } else if (flag == "--ops") {
      flags.ops = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--warmup") {
      flags.warmup = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--rate") {
      flags.rate = std::strtod(value().c_str(), nullptr);
    } else if (flag == "--cpus") {
      flags.cpus = value();
    } else if (flag == "--fifo") {
      flags.fifo = true;
    } else if (flag == "--seed") {
      flags.seed = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--hugepages") {
      const std::string v = value();
      flags.hugepages = v == "require" ? HugePages::Require : v == "off" ? HugePages::Off : HugePages::Try;
    } else if (flag == "--help" || flag == "-h") {
      return usage("help") == 2 ? 0 : 0;
    } else {
      return usage("unknown flag " + flag);
    }
  }
  if (flags.workload != "mixed" && flags.workload != "insert") return usage("--workload must be mixed or insert");
  if (flags.ops == 0) return usage("--ops must be positive");

  int cpu = -1;
  std::string why;
  // The matching loop is the only busy thread of a machine left to the benchmark: auto
  // pins it even when the process may run on every CPU (as if given some of more).
  if (!choose_cpu(flags.cpus, allowed_cpus(), CPU_SETSIZE, cpu, why)) {
    return usage("--cpus " + flags.cpus + ": " + why);
  }
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) cpu = -1;
  }

  // On a shared machine the scheduler, not the engine, sets the tail at a fixed rate:
  // one 5 ms preemption at 1,000,000/s delays 5,000 commands. SCHED_FIFO (root or
  // CAP_SYS_NICE) keeps ordinary processes off the thread's CPU; the kernel's RT
  // throttling still takes 5% of every second, so keep a --fifo run under ~0.9 s.
  bool fifo = false;
  if (flags.fifo) {
    sched_param param{};
    param.sched_priority = 1;
    fifo = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) == 0;
    if (!fifo) std::cerr << "venue-engine-bench: --fifo: cannot set SCHED_FIFO (needs CAP_SYS_NICE); running without\n";
  }

  bench::Workload workload = flags.workload == "mixed"
                                       ? bench::mixed_workload(flags.ops, flags.warmup, flags.seed)
                                       : bench::insert_workload(flags.ops, flags.warmup, flags.seed);
  CountingSink sink;
  ExchangeOptions options;
  // The insert test's book only grows (no cancels; about a fifth of its orders rest):
  // size the pools for the whole stream so nothing grows while timed.
  options.order_capacity = std::bit_ceil(std::max<std::size_t>(workload.commands.size() / 4, 1 << 16));
  options.level_capacity = std::size_t{1} << 12;
  options.hugepages = flags.hugepages;
  Exchange exchange(sink, options);
  exchange.add_instrument(bench::kBenchInstrument);

  for (std::size_t i = 0; i < workload.warmup; ++i) exchange.apply(workload.commands[i], 0);
  const std::size_t measured = workload.commands.size() - workload.warmup;
  workload.commands.emplace_back();  // a sentinel, so the last command has a next one to prefetch
  const double per_ns = bench::ticks_per_ns();
  std::vector<std::uint64_t> samples(measured);  // allocated before the clock starts
  const std::uint64_t events_before = sink.events;
  const std::uint64_t trades_before = sink.trades;
  const std::uint64_t allocations_before = bench::allocations();

  const Command* commands = workload.commands.data() + workload.warmup;
  const auto wall_start = std::chrono::steady_clock::now();
  if (flags.rate > 0) {
    const double interval = per_ns * 1e9 / flags.rate;  // ticks between scheduled commands
    const std::uint64_t start = bench::ticks();
    for (std::size_t i = 0; i < measured; ++i) {
      const auto due = start + static_cast<std::uint64_t>(static_cast<double>(i) * interval);
      while (bench::ticks() < due) _mm_pause();
      exchange.prefetch(commands[i + 1]);  // as the worker does within a batch
      exchange.apply(commands[i], 0);
      samples[i] = bench::ticks() - due;
    }
  } else {
    for (std::size_t i = 0; i < measured; ++i) {
      const std::uint64_t before = bench::ticks();
      exchange.prefetch(commands[i + 1]);  // as the worker does within a batch
      exchange.apply(commands[i], 0);
      samples[i] = bench::ticks() - before;
    }
  }
  const auto wall = std::chrono::steady_clock::now() - wall_start;
  const std::uint64_t allocations = bench::allocations() - allocations_before;
  const double seconds = std::chrono::duration<double>(wall).count();
  const bench::Percentiles latency = bench::percentiles(samples, per_ns);

  const ObjectPool<Order>& orders = exchange.memory().orders;
  const OrderBook& book = *exchange.book(bench::kInstrument);
  std::printf(
      "{\"benchmark\": \"engine\", \"workload\": \"%s\", \"ops\": %zu, \"warmup_ops\": %zu, \"seconds\": %.3f, "
      "\"ops_per_sec\": %.0f, \"offered_rate\": %.0f, \"p50_ns\": %.0f, \"p99_ns\": %.0f, \"p999_ns\": %.0f, "
      "\"max_ns\": %.0f, \"allocations_on_hot_path\": %llu, \"events\": %llu, \"trades\": %llu, "
      "\"resting_orders\": %zu, \"bid_levels\": %zu, \"ask_levels\": %zu, \"cpu\": %d, \"sched_fifo\": %s, "
      "\"hugepages\": %s, "
      "\"checksum\": %llu}\n",
      flags.workload.c_str(), measured, workload.warmup, seconds, static_cast<double>(measured) / seconds, flags.rate,
      latency.p50_ns, latency.p99_ns, latency.p999_ns, latency.max_ns, static_cast<unsigned long long>(allocations),
      static_cast<unsigned long long>(sink.events - events_before),
      static_cast<unsigned long long>(sink.trades - trades_before), book.order_count(),
      book.levels(Side::Buy).level_count(), book.levels(Side::Sell).level_count(), cpu,
      fifo ? "true" : "false", orders.on_hugepages() ? "true" : "false", static_cast<unsigned long long>(sink.checksum));
  return 0;
}
