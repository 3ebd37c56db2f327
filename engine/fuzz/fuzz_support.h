// What the fuzz targets share: the venue they run against, and a scratch directory for
// the targets that read files.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "book/event.h"
#include "book/instrument.h"
#include "matching/exchange.h"

namespace venue::fuzz {

inline const std::vector<Instrument> kInstruments{Instrument{1, 1, 1000}, Instrument{2, 1, 1000}};

// Small pools, so that their growth paths run too and an input costs microseconds.
inline ExchangeOptions small_exchange() {
  ExchangeOptions out;
  out.order_capacity = 64;
  out.level_capacity = 16;
  out.command_index_per_shard = 128;
  out.done_order_capacity = 32;
  out.hugepages = HugePages::Off;
  return out;
}

class NullSink : public EventSink {
 public:
  void on_event(const Event&) override {}
};

// A fresh exchange holding kInstruments, as a partition has before recovery.
struct Venue {
  Venue() {
    for (const Instrument& instrument : kInstruments) exchange.add_instrument(instrument);
  }
  NullSink sink;
  Exchange exchange{sink, small_exchange()};
};

// An empty directory of this process's own (in /dev/shm when there is one: the targets
// write a file per input), removed at exit.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string name = (base / "venue-fuzz-XXXXXX").string();
    if (::mkdtemp(name.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    static const std::string removed_at_exit = name;
    std::atexit([] { std::filesystem::remove_all(removed_at_exit); });
    return name;
  }();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) std::filesystem::remove_all(entry);
  return dir;
}

inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                static_cast<std::streamsize>(size));
}

}  // namespace venue::fuzz
