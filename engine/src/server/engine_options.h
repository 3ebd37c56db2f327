// The engine's command line: what a partition serves and where.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "book/instrument.h"
#include "book/types.h"
#include "book/page_memory.h"
#include "journal/journal.h"
#include "matching/exchange.h"
#include "server/partition_worker.h"

namespace venue {

struct EngineOptions {
  std::string listen = "127.0.0.1:50051";  // HOST:PORT; port 0 picks a free one
  std::uint32_t partition = 0;
  std::vector<Instrument> instruments;
  std::string data_dir;  // journal and snapshots; empty: nothing is kept (memory only)
  std::size_t event_log_events = 1 << 20;  // events kept in memory for Replay
  FsyncPolicy fsync = FsyncPolicy::Batch;
  int fsync_interval_ms = 5;
  std::int64_t commit_part_us = WorkerOptions{}.commit_part.count();  // 0: whole passes only
  std::uint64_t snapshot_every = 1'000'000;  // commands; 0: never
  std::size_t keep_snapshots = 2;  // persisted-past snapshots kept when pruning; 0: keep all
  StpMode stp = StpMode::CancelNewest;
  std::string cpus = "auto";  // auto | none | a list such as 2,4-5
  HugePages hugepages = HugePages::Try;
  std::size_t command_index = 1 << 16;  // per shard: recent commands a resend is answered from
  std::size_t done_orders = ExchangeOptions{}.done_order_capacity;  // done orders remembered
};

struct ParsedOptions {
  enum class Outcome { Run, Help, Error };
  Outcome outcome = Outcome::Run;
  EngineOptions options;
  std::string error;  // names the flag, when outcome is Error
};

// `args` are the arguments after the program name; "--flag value" and "--flag=value".
ParsedOptions parse_engine_options(const std::vector<std::string>& args);

std::string engine_usage();

const char* fsync_policy_name(FsyncPolicy policy);
const char* hugepages_name(HugePages policy);
const char* stp_mode_name(StpMode mode);

}  // namespace venue
