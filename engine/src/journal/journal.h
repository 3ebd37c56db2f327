// The partition's input journal: every applied command, in order, in segment files
// `journal-<first command>.log` (the number is how many commands were applied before
// the segment's first record). A segment starts with a header saying what it was
// written under, then one record per applied batch:
//
//   u32 payload length | u32 CRC32C of the payload | payload
//   payload = u64 first command | i64 batch clock (unix ns) | u32 count | commands
//
// A crash mid-write leaves a torn last record: its length runs past the end of the
// file or its checksum fails. Recovery truncates the segment there; that batch was
// never answered (the answer waits for the write), so its submitter sends it again.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "book/command.h"
#include "book/instrument.h"
#include "book/types.h"
#include "journal/byte_codec.h"

namespace venue {

// When appended bytes reach the disk: `Batch`, one fdatasync per applied batch (group
// commit: per matching-loop pass) before any of its answers is sent; `Interval`, every
// few milliseconds from a background thread; `None`, whenever the OS writes back.
// Every policy survives a crash of the process (the bytes are in the page cache before
// the answer is sent); only `Batch` survives a crash of the machine.
enum class FsyncPolicy : std::uint8_t { Batch, Interval, None };

struct JournalHeader {
  std::uint32_t partition = 0;
  StpMode stp_mode = StpMode::CancelNewest;  // self-trade mode the records were applied under
  std::vector<Instrument> instruments;       // ascending id
  std::uint64_t first_command = 0;
};

// One record as read back. Commands view the bytes of the segment being read.
struct JournalBatch {
  std::uint64_t first_command = 0;
  std::int64_t timestamp_ns = 0;
  std::vector<Command> commands;
};

std::string journal_file_name(std::uint64_t first_command);
// The first command of a segment named `name`, or false when it is not a segment.
bool parse_journal_file_name(std::string_view name, std::uint64_t& first_command);

bool same_instruments(const std::vector<Instrument>& a, const std::vector<Instrument>& b);

struct SegmentScan {
  bool header_ok = false;  // false: empty or torn header (a crash as the segment began)
  JournalHeader header;
  std::size_t valid_bytes = 0;  // the length of the readable prefix
  std::size_t file_bytes = 0;
  bool torn() const { return valid_bytes < file_bytes; }
};

// Reads a segment's records in order, calling `visit` with the segment's header and
// each whole record, until the end, the first bad record, or `visit` returns false.
// Throws std::runtime_error only when the file cannot be read at all.
SegmentScan scan_segment(const std::string& path,
                         const std::function<bool(const JournalHeader&, const JournalBatch&)>& visit);

// Cuts a segment back to its readable prefix (after scan_segment found it torn).
void truncate_segment(const std::string& path, std::size_t valid_bytes);

// Appends batches to the open segment. One thread writes (the matching thread); with
// FsyncPolicy::Interval a background thread also syncs.
class JournalWriter {
 public:
  JournalWriter(FsyncPolicy policy, int interval_ms);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Closes the current segment (synced) and starts `dir`/journal-<first_command>.log,
  // replacing any file of that name (it can only be an empty leftover).
  void open_segment(const std::string& dir, const JournalHeader& header);

  // Builds one batch record in memory; nothing reaches the file before commit().
  void begin_batch(std::uint64_t first_command, std::int64_t timestamp_ns);
  void add(const Command& command);
  void end_batch();  // a batch of duplicates only leaves no record

  // Writes every record built since the last commit, then syncs per the policy. Throws
  // std::system_error when the disk refuses: the caller must stop, not answer.
  void commit();

  std::uint64_t bytes_written() const { return bytes_written_; }
  std::uint64_t syncs() const { return syncs_; }

 private:
  void write_all(const char* data, std::size_t size);
  void close_segment();
  void sync_loop();

  FsyncPolicy policy_;
  int interval_ms_;
  std::string pending_;  // records built, not yet written; capacity reused
  std::size_t batch_start_ = 0;
  std::uint32_t batch_count_ = 0;
  std::uint64_t bytes_written_ = 0;
  std::uint64_t syncs_ = 0;

  std::mutex fd_mutex_;  // the interval syncer and segment switches
  int fd_ = -1;
  bool stopping_ = false;
  std::condition_variable stop_signal_;
  std::thread syncer_;
};

// One command as the journal holds it; decoding views the reader's bytes.
void encode_command(const Command& command, ByteWriter& out);
bool decode_command(ByteReader& in, Command& out);

}  // namespace venue
