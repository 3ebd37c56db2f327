#include "server/engine_options.h"

#include <charconv>
#include <limits>
#include <string_view>

#include <sched.h>

#include "server/cpu_affinity.h"

namespace venue {

namespace {

// The whole of `text` as an integer in [low, high], or false.
template <typename T>
bool parse_integer(std::string_view text, T low, T high, T& out) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value < low || value > high) {
    return false;
  }
  out = value;
  return true;
}

bool parse_listen(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::uint32_t port = 0;
  return parse_integer<std::uint32_t>(text.substr(colon + 1), 0, 65535, port);
}

// ID:MIN_PRICE_TICKS:MAX_PRICE_TICKS
bool parse_instrument(std::string_view text, Instrument& out, std::string& why) {
  const auto first = text.find(':');
  const auto second = first == std::string_view::npos ? first : text.find(':', first + 1);
  if (second == std::string_view::npos) {
    why = "expected ID:MIN_PRICE_TICKS:MAX_PRICE_TICKS";
    return false;
  }
  Instrument instrument;
  if (!parse_integer<InstrumentId>(text.substr(0, first), 1, std::numeric_limits<InstrumentId>::max(),
                                   instrument.id)) {
    why = "ID must be an integer from 1 to 4294967295";
    return false;
  }
  constexpr Price kPriceMax = std::numeric_limits<Price>::max();
  if (!parse_integer<Price>(text.substr(first + 1, second - first - 1), 1, kPriceMax, instrument.min_price) ||
      !parse_integer<Price>(text.substr(second + 1), 1, kPriceMax, instrument.max_price)) {
    why = "prices must be positive integer ticks";
    return false;
  }
  if (!instrument.valid()) {
    why = "MIN_PRICE_TICKS must not exceed MAX_PRICE_TICKS, and the band must be under 2^32 ticks";
    return false;
  }
  out = instrument;
  return true;
}

}  // namespace

const char* fsync_policy_name(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::Batch:
      return "batch";
    case FsyncPolicy::Interval:
      return "interval";
    case FsyncPolicy::None:
      return "none";
  }
  return "?";
}

const char* hugepages_name(HugePages policy) {
  switch (policy) {
    case HugePages::Try:
      return "try";
    case HugePages::Require:
      return "require";
    case HugePages::Off:
      return "off";
  }
  return "?";
}

const char* stp_mode_name(StpMode mode) {
  switch (mode) {
    case StpMode::CancelNewest:
      return "cancel-newest";
    case StpMode::CancelOldest:
      return "cancel-oldest";
    case StpMode::CancelBoth:
      return "cancel-both";
  }
  return "?";
}

std::string engine_usage() {
  return "usage: venue-engine [flags]\n"
         "\n"
         "One matching-engine partition: its order books, served over gRPC\n"
         "(tradingvenue.engine.v1.MatchingEngine).\n"
         "\n"
         "  --listen HOST:PORT        address to serve on (default 127.0.0.1:50051; port 0 picks one)\n"
         "  --partition N             this engine's partition number (default 0)\n"
         "  --instrument ID:MIN:MAX   an instrument and its price band in ticks, inclusive;\n"
         "                            repeatable; orders for other ids are rejected UNKNOWN_INSTRUMENT\n"
         "  --data-dir DIR            the partition's journal and snapshots; created at start, and\n"
         "                            recovered from when it holds them (without it nothing is kept)\n"
         "  --fsync batch|interval|none\n"
         "                            when the journal reaches the disk: batch = one fdatasync per\n"
         "                            batch before it is answered (default); interval = every\n"
         "                            --fsync-interval-ms; none = when the OS writes back. Every\n"
         "                            policy survives an engine crash; only batch survives a power loss\n"
         "  --fsync-interval-ms N     for --fsync interval (default 5)\n"
         "  --commit-part-us N        a pass of the matching thread running this long commits the\n"
         "                            journal for what it has applied so far, so the market feed\n"
         "                            gets it without waiting for the rest (default 5000; 0: only\n"
         "                            whole passes)\n"
         "  --snapshot-every N        commands between snapshots (default 1000000; 0: never), and\n"
         "                            at least as many as the last snapshot held resting orders\n"
         "  --keep-snapshots N        of the snapshots the writer has persisted past, the newest N\n"
         "                            stay, with the journal from the oldest of them; older\n"
         "                            snapshots and segments are deleted (default 2; 0: keep all)\n"
         "  --stp cancel-newest|cancel-oldest|cancel-both\n"
         "                            self-trade prevention, per account (default cancel-newest)\n"
         "  --cpus auto|none|LIST     pin the matching thread: auto = the last CPU this process may\n"
         "                            use, when it may use only some of the machine's (default);\n"
         "                            LIST (2,4-5) = its first allowed CPU\n"
         "  --hugepages try|require|off\n"
         "                            order and level pools on 2 MiB hugepages: try = when reserved\n"
         "                            (default), require = or fail to start, off = normal pages\n"
         "  --command-index N         recent commands per shard whose events a resend gets again\n"
         "                            (default 65536)\n"
         "  --event-log-events N      events kept in memory for Replay (default 1048576, about\n"
         "                            200 bytes each); older ones answer OUT_OF_RANGE\n"
         "  --done-orders N           done orders remembered, so a cancel that comes after the\n"
         "                            fill is answered too late to cancel with the order's real\n"
         "                            state, not unknown (default 262144, about 200 bytes each)\n"
         "  --help                    this text\n"
         "\n"
         "Stops cleanly on SIGTERM or SIGINT. Exits 2 on a bad flag.\n";
}

ParsedOptions parse_engine_options(const std::vector<std::string>& args) {
  ParsedOptions parsed;
  EngineOptions& options = parsed.options;
  auto fail = [&parsed](std::string message) {
    parsed.outcome = ParsedOptions::Outcome::Error;
    parsed.error = std::move(message);
    return parsed;
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_value = false;
    if (const auto equals = flag.find('='); flag.rfind("--", 0) == 0 && equals != std::string::npos) {
      value = flag.substr(equals + 1);
      flag.resize(equals);
      has_value = true;
    }
    if (flag == "--help" || flag == "-h") {
      parsed.outcome = ParsedOptions::Outcome::Help;
      return parsed;
    }
    const bool known = flag == "--listen" || flag == "--partition" || flag == "--instrument" ||
                       flag == "--data-dir" || flag == "--event-log-events" || flag == "--fsync" ||
                       flag == "--fsync-interval-ms" || flag == "--commit-part-us" || flag == "--snapshot-every" ||
                       flag == "--keep-snapshots" ||
                       flag == "--stp" ||
                       flag == "--cpus" || flag == "--hugepages" || flag == "--command-index" ||
                       flag == "--done-orders";
    if (!known) return fail("unknown flag " + flag);
    if (!has_value) {
      if (i + 1 >= args.size()) return fail(flag + " needs a value");
      value = args[++i];
    }

    if (flag == "--listen") {
      if (!parse_listen(value)) return fail("--listen " + value + ": expected HOST:PORT with PORT 0-65535");
      options.listen = value;
    } else if (flag == "--partition") {
      if (!parse_integer<std::uint32_t>(value, 0, std::numeric_limits<std::uint32_t>::max(), options.partition)) {
        return fail("--partition " + value + ": expected a non-negative integer");
      }
    } else if (flag == "--instrument") {
      Instrument instrument;
      std::string why;
      if (!parse_instrument(value, instrument, why)) return fail("--instrument " + value + ": " + why);
      for (const Instrument& seen : options.instruments) {
        if (seen.id == instrument.id) return fail("--instrument " + value + ": id given twice");
      }
      options.instruments.push_back(instrument);
    } else if (flag == "--data-dir") {
      if (value.empty()) return fail("--data-dir needs a directory");
      options.data_dir = value;
    } else if (flag == "--event-log-events") {
      if (!parse_integer<std::size_t>(value, 1, std::size_t{1} << 30, options.event_log_events)) {
        return fail("--event-log-events " + value + ": expected an integer from 1 to 1073741824");
      }
    } else if (flag == "--fsync") {
      if (value == "batch") {
        options.fsync = FsyncPolicy::Batch;
      } else if (value == "interval") {
        options.fsync = FsyncPolicy::Interval;
      } else if (value == "none") {
        options.fsync = FsyncPolicy::None;
      } else {
        return fail("--fsync " + value + ": expected batch, interval or none");
      }
    } else if (flag == "--fsync-interval-ms") {
      if (!parse_integer<int>(value, 1, 60'000, options.fsync_interval_ms)) {
        return fail("--fsync-interval-ms " + value + ": expected an integer from 1 to 60000");
      }
    } else if (flag == "--commit-part-us") {
      if (!parse_integer<std::int64_t>(value, 0, 60'000'000, options.commit_part_us)) {
        return fail("--commit-part-us " + value + ": expected an integer from 0 to 60000000");
      }
    } else if (flag == "--keep-snapshots") {
      if (!parse_integer<std::size_t>(value, 0, 1'000'000, options.keep_snapshots)) {
        return fail("--keep-snapshots " + value + ": expected an integer from 0 to 1000000");
      }
    } else if (flag == "--snapshot-every") {
      if (!parse_integer<std::uint64_t>(value, 0, std::numeric_limits<std::uint64_t>::max(), options.snapshot_every)) {
        return fail("--snapshot-every " + value + ": expected a non-negative integer");
      }
    } else if (flag == "--stp") {
      if (value == "cancel-newest") {
        options.stp = StpMode::CancelNewest;
      } else if (value == "cancel-oldest") {
        options.stp = StpMode::CancelOldest;
      } else if (value == "cancel-both") {
        options.stp = StpMode::CancelBoth;
      } else {
        return fail("--stp " + value + ": expected cancel-newest, cancel-oldest or cancel-both");
      }
    } else if (flag == "--cpus") {
      int cpu = 0;
      std::string why;
      // Checked against every CPU here; against the allowed set when the engine starts.
      std::vector<int> any(CPU_SETSIZE);
      for (int c = 0; c < CPU_SETSIZE; ++c) any[static_cast<std::size_t>(c)] = c;
      if (!choose_cpu(value, any, CPU_SETSIZE, cpu, why)) return fail("--cpus " + value + ": " + why);
      options.cpus = value;
    } else if (flag == "--hugepages") {
      if (value == "try") {
        options.hugepages = HugePages::Try;
      } else if (value == "require") {
        options.hugepages = HugePages::Require;
      } else if (value == "off") {
        options.hugepages = HugePages::Off;
      } else {
        return fail("--hugepages " + value + ": expected try, require or off");
      }
    } else if (flag == "--command-index") {
      if (!parse_integer<std::size_t>(value, 1, std::size_t{1} << 24, options.command_index)) {
        return fail("--command-index " + value + ": expected an integer from 1 to 16777216");
      }
    } else if (flag == "--done-orders") {
      if (!parse_integer<std::size_t>(value, 0, std::size_t{1} << 24, options.done_orders)) {
        return fail("--done-orders " + value + ": expected an integer from 0 to 16777216");
      }
    }
  }
  return parsed;
}

}  // namespace venue
