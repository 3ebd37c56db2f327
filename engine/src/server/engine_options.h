// The engine's command line: what a partition serves and where.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "book/instrument.h"

namespace venue {

struct EngineOptions {
  std::string listen = "127.0.0.1:50051";  // HOST:PORT; port 0 picks a free one
  std::uint32_t partition = 0;
  std::vector<Instrument> instruments;
  std::string data_dir;  // created at start; the journal that will live there comes later
  std::size_t event_log_events = 1 << 20;  // events kept in memory for Replay
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

}  // namespace venue
