// A partition's state at a point of its journal, in `snapshot-<commands applied>.snap`:
// counters (next sequence, next trade id, commands applied), the shard marks, the
// command index, every resting order in priority order (book by book, bids then asks,
// best level first, FIFO), then the done orders the engine remembers, oldest first. Written to a temporary file, synced, then renamed: a
// snapshot file is whole or absent. One CRC32C covers the payload.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "book/instrument.h"
#include "matching/exchange.h"

namespace venue {

std::string snapshot_file_name(std::uint64_t commands_applied);
bool parse_snapshot_file_name(std::string_view name, std::uint64_t& commands_applied);

// Writes the exchange's state as `dir`/snapshot-<commands applied>.snap, durably,
// encoding it a chunk at a time into `buffer` (kept by the caller, so its memory is
// reused snapshot after snapshot). Throws std::system_error on failure, leaving no file
// (the previous snapshot and the journal still hold).
void write_snapshot(const std::string& dir, std::uint32_t partition, const std::vector<Instrument>& instruments,
                    const Exchange& exchange, std::string& buffer);

// The counters of a snapshot file without loading it; false when unreadable.
bool peek_snapshot(const std::string& path, ExchangeCounters& counters);

// Restores a snapshot into `exchange`, which must be fresh and hold exactly
// `instruments`. False, with `why`, when the file is corrupt or of another partition or
// instrument set.
bool load_snapshot(const std::string& path, std::uint32_t partition, const std::vector<Instrument>& instruments,
                   Exchange& exchange, std::string& why);

}  // namespace venue
