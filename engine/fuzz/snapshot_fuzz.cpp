// libFuzzer: a snapshot file as recovery loads it (load_snapshot into a fresh exchange).
// It may refuse, saying why; anything else is a finding.
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "journal/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = venue::fuzz::scratch_dir() + "/" + venue::snapshot_file_name(1);
  venue::fuzz::write_file(path, data, size);
  venue::fuzz::Venue venue;
  std::string why;
  venue::load_snapshot(path, 0, venue::fuzz::kInstruments, venue.exchange, why);
  return 0;
}
