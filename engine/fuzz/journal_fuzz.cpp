// libFuzzer: a journal segment as recovery reads it when the engine starts (a file on a
// volume that may be damaged): PartitionStore::recover over a data directory holding it,
// which applies every batch it reads. It may refuse (std::runtime_error, naming the
// file); anything else is a finding.
#include <cstdint>
#include <stdexcept>

#include "fuzz_support.h"
#include "journal/journal.h"
#include "journal/partition_store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& dir = venue::fuzz::scratch_dir();
  venue::fuzz::write_file(dir + "/" + venue::journal_file_name(0), data, size);
  venue::StoreOptions options;
  options.dir = dir;
  options.fsync = venue::FsyncPolicy::None;
  options.snapshot_every = 0;
  venue::fuzz::Venue venue;
  venue::PartitionStore store(options, 0, venue::fuzz::kInstruments, venue::fuzz::small_exchange());
  try {
    store.recover(venue.exchange);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
