#include "journal/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <utility>
#include <system_error>

#include "journal/byte_codec.h"
#include "journal/file_io.h"
#include "journal/journal.h"
#include "journal/numbered_file.h"

namespace venue {

namespace {

// 02 adds the done orders after the resting ones; a 01 file (none) still loads.
constexpr char kMagic[8] = {'V', 'N', 'S', 'N', 'A', 'P', '0', '2'};
constexpr char kMagic01[8] = {'V', 'N', 'S', 'N', 'A', 'P', '0', '1'};
constexpr std::size_t kHeader = sizeof kMagic + 8;  // magic, u32 length, u32 crc

void encode_order(const Order& order, ByteWriter& out) {
  out.u64(order.id);
  out.text(order.client_order_id.view());
  out.u64(order.account_id);
  out.u32(order.instrument_id);
  out.u8(static_cast<std::uint8_t>(order.side));
  out.u8(static_cast<std::uint8_t>(order.type));
  out.u8(static_cast<std::uint8_t>(order.time_in_force));
  out.u8(order.post_only ? 1 : 0);
  out.i64(order.price);
  out.i64(order.quantity);
  out.i64(order.cum_qty);
  out.i64(order.leaves_qty);
  out.i64(order.cum_notional);
}

Order decode_order(ByteReader& in) {
  Order order;
  order.id = in.u64();
  order.client_order_id.assign(in.text());
  order.account_id = in.u64();
  order.instrument_id = in.u32();
  order.side = static_cast<Side>(in.u8());
  order.type = static_cast<OrderType>(in.u8());
  order.time_in_force = static_cast<TimeInForce>(in.u8());
  order.post_only = in.u8() != 0;
  order.price = in.i64();
  order.quantity = in.i64();
  order.cum_qty = in.i64();
  order.leaves_qty = in.i64();
  order.cum_notional = in.i64();
  return order;
}

void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string snapshot_file_name(std::uint64_t commands_applied) {
  return numbered_file_name("snapshot-", commands_applied, ".snap");
}

bool parse_snapshot_file_name(std::string_view name, std::uint64_t& commands_applied) {
  return parse_numbered_file_name(name, "snapshot-", ".snap", commands_applied);
}

namespace {

// A snapshot file written while it is encoded, a chunk at a time through one buffer the
// store keeps. Each chunk is sent to the disk as soon as it is written, and the one
// before it, once on the disk, is dropped from the page cache: the file's next chunks
// are written into pages just freed. Built whole in memory and then written, a snapshot
// of two million resting orders (170MB) took that much fresh memory twice, for the
// encoding and for the page cache; on a VM whose host takes back free guest memory a
// page first written costs about 5 µs, and the two were 4% of all the CPU of a 60 s
// `venue bench e2e` while the engine wrote one.
class SnapshotWriter {
 public:
  static constexpr std::size_t kChunk = 4 << 20;

  SnapshotWriter(std::string temp, std::string& buffer) : temp_(std::move(temp)), buffer_(buffer), out_(buffer) {
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw io_error("create " + temp_);
    buffer_.clear();
    buffer_.reserve(kChunk + 4096);
  }
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;
  ~SnapshotWriter() {
    if (fd_ >= 0) {  // not finished: an exception is on its way; no half file stays
      ::close(fd_);
      ::unlink(temp_.c_str());
    }
  }

  ByteWriter& out() { return out_; }
  // Called between records: the chunk goes out once it is full.
  void maybe_flush() {
    if (buffer_.size() >= kChunk) flush();
  }

  // The rest, then the header's length and CRC; synced and closed.
  void finish() {
    flush();
    const auto length = static_cast<std::uint32_t>(offset_ - kHeader);
    char header[8];
    std::memcpy(header, &length, 4);
    std::memcpy(header + 4, &crc_, 4);
    if (::pwrite(fd_, header, sizeof header, sizeof kMagic) != static_cast<ssize_t>(sizeof header)) fail("write");
    if (::fdatasync(fd_) != 0) fail("sync");
    (void)::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);  // recovery reads it, if ever
    ::close(fd_);
    fd_ = -1;
  }

 private:
  void flush() {
    if (buffer_.empty()) return;
    // The CRC covers what follows the header: the first chunk starts with it.
    const std::size_t skip = offset_ == 0 ? kHeader : 0;
    crc_ = crc32c(buffer_.data() + skip, buffer_.size() - skip, crc_);
    if (!write_fully(fd_, buffer_.data(), buffer_.size())) fail("write");
    const auto start = static_cast<off_t>(offset_);
    const auto length = static_cast<off_t>(buffer_.size());
    ::sync_file_range(fd_, start, length, SYNC_FILE_RANGE_WRITE);
    if (previous_length_ > 0) {
      // The chunk before: wait for its writeback (begun a chunk ago), then drop it.
      ::sync_file_range(fd_, previous_start_, previous_length_,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      (void)::posix_fadvise(fd_, previous_start_, previous_length_, POSIX_FADV_DONTNEED);
    }
    previous_start_ = start;
    previous_length_ = length;
    offset_ += buffer_.size();
    buffer_.clear();
  }

  [[noreturn]] void fail(const char* what) {
    const int saved = errno;
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_.c_str());
    errno = saved;
    throw io_error(std::string(what) + " " + temp_);
  }

  std::string temp_;
  std::string& buffer_;
  ByteWriter out_;
  int fd_ = -1;
  std::size_t offset_ = 0;  // bytes written to the file
  std::uint32_t crc_ = 0;
  off_t previous_start_ = 0;  // the chunk written last
  off_t previous_length_ = 0;
};

}  // namespace

void write_snapshot(const std::string& dir, std::uint32_t partition, const std::vector<Instrument>& instruments,
                    const Exchange& exchange, std::string& buffer) {
  const std::string path = dir + "/" + snapshot_file_name(exchange.commands_applied());
  SnapshotWriter file(path + ".tmp", buffer);
  ByteWriter& out = file.out();
  out.buffer().assign(kMagic, sizeof kMagic);
  out.buffer().append(8, '\0');  // length and CRC, written last
  // Counters first, at fixed offsets: peek_snapshot reads just these.
  out.u64(exchange.commands_applied());
  out.u64(exchange.next_sequence());
  out.u64(exchange.next_trade_id());
  out.u32(partition);
  out.u32(static_cast<std::uint32_t>(instruments.size()));
  for (const Instrument& instrument : instruments) {
    out.u32(instrument.id);
    out.i64(instrument.min_price);
    out.i64(instrument.max_price);
  }
  out.u32(static_cast<std::uint32_t>(exchange.shard_marks().size()));
  exchange.shard_marks().for_each([&out](std::uint32_t shard, const StreamId& mark) {
    out.u32(shard);
    out.u64(mark.ms);
    out.u64(mark.seq);
    out.u32(mark.index);
  });
  // The command index is bounded (a ring per shard): it is counted in the buffer,
  // before the first chunk goes out.
  const std::size_t index_count_at = out.size();
  out.u64(0);
  std::uint64_t index_count = 0;
  exchange.command_index().for_each([&](std::uint32_t shard, const StreamId& id, const EventRange& events) {
    out.u32(shard);
    out.u64(id.ms);
    out.u64(id.seq);
    out.u32(id.index);
    out.u64(events.first);
    out.u64(events.count);
    ++index_count;
  });
  std::memcpy(out.buffer().data() + index_count_at, &index_count, 8);
  // The orders are counted by their books, as they will be written.
  std::uint64_t order_count = 0;
  exchange.for_each_book([&](const OrderBook& book) { order_count += book.order_count(); });
  out.u64(order_count);
  std::uint64_t written = 0;
  exchange.for_each_book([&](const OrderBook& book) {
    for (Side side : {Side::Buy, Side::Sell}) {
      book.for_each_order(side, [&](const Order& order) {
        encode_order(order, out);
        ++written;
        file.maybe_flush();
      });
    }
  });
  if (written != order_count) {
    throw std::logic_error("snapshot: the books hold " + std::to_string(written) + " resting orders, their counts " +
                           std::to_string(order_count));
  }
  // The done orders the partition remembers, each with its final status.
  out.u64(exchange.memory().done.size());
  exchange.memory().done.for_each([&](const DoneOrder& done) {
    encode_order(done.order(), out);
    out.u8(static_cast<std::uint8_t>(done.status));
    file.maybe_flush();
  });
  file.finish();
  if (::rename((path + ".tmp").c_str(), path.c_str()) != 0) throw io_error("rename " + path + ".tmp");
  sync_directory(dir);
}

bool peek_snapshot(const std::string& path, ExchangeCounters& counters) {
  std::ifstream file(path, std::ios::binary);
  char head[kHeader + 24];
  if (!file.read(head, sizeof head) ||
      (std::memcmp(head, kMagic, sizeof kMagic) != 0 && std::memcmp(head, kMagic01, sizeof kMagic01) != 0)) {
    return false;
  }
  std::memcpy(&counters.commands_applied, head + kHeader, 8);
  std::memcpy(&counters.next_sequence, head + kHeader + 8, 8);
  std::memcpy(&counters.next_trade_id, head + kHeader + 16, 8);
  return true;
}

bool load_snapshot(const std::string& path, std::uint32_t partition, const std::vector<Instrument>& instruments,
                   Exchange& exchange, std::string& why) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    why = "cannot read";
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::uint32_t length = 0;
  std::uint32_t crc = 0;
  const bool with_done = bytes.size() >= kHeader && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0;
  if (bytes.size() < kHeader || (!with_done && std::memcmp(bytes.data(), kMagic01, sizeof kMagic01) != 0)) {
    why = "not a snapshot";
    return false;
  }
  std::memcpy(&length, bytes.data() + sizeof kMagic, 4);
  std::memcpy(&crc, bytes.data() + sizeof kMagic + 4, 4);
  if (bytes.size() - kHeader != length || !checksum_ok(crc32c(bytes.data() + kHeader, length), crc)) {
    why = "checksum mismatch";
    return false;
  }
  ByteReader in(bytes.data() + kHeader, length);
  ExchangeCounters counters;
  counters.commands_applied = in.u64();
  counters.next_sequence = in.u64();
  counters.next_trade_id = in.u64();
  if (in.u32() != partition) {
    why = "written by another partition";
    return false;
  }
  // The count is checked before anything is allocated for it (a damaged count once asked
  // for 100 GB: engine/fuzz/snapshot_fuzz.cpp).
  const std::uint32_t instrument_count = in.u32();
  if (instrument_count != instruments.size()) {
    why = "written for other instruments than --instrument gives";
    return false;
  }
  std::vector<Instrument> saved(instrument_count);
  for (Instrument& instrument : saved) {
    instrument.id = in.u32();
    instrument.min_price = in.i64();
    instrument.max_price = in.i64();
  }
  if (in.failed() || !same_instruments(saved, instruments)) {
    why = "written for other instruments than --instrument gives";
    return false;
  }
  exchange.restore_counters(counters);
  for (std::uint32_t marks = in.u32(); marks > 0 && !in.failed(); --marks) {
    const std::uint32_t shard = in.u32();
    StreamId mark;
    mark.ms = in.u64();
    mark.seq = in.u64();
    mark.index = in.u32();
    exchange.restore_shard_mark(shard, mark);
  }
  for (std::uint64_t entries = in.u64(); entries > 0 && !in.failed(); --entries) {
    const std::uint32_t shard = in.u32();
    StreamId id;
    id.ms = in.u64();
    id.seq = in.u64();
    id.index = in.u32();
    EventRange events;
    events.first = in.u64();
    events.count = in.u64();
    exchange.restore_command(shard, id, events);
  }
  for (std::uint64_t orders = in.u64(); orders > 0 && !in.failed(); --orders) {
    const Order order = decode_order(in);
    if (!in.failed() && !exchange.restore_order(order)) {
      why = "order " + std::to_string(order.id) + " does not fit its book";
      return false;
    }
  }
  for (std::uint64_t orders = with_done ? in.u64() : 0; orders > 0 && !in.failed(); --orders) {
    const Order order = decode_order(in);
    const std::uint8_t status = in.u8();
    if (status < static_cast<std::uint8_t>(OrderStatus::Filled) || status > static_cast<std::uint8_t>(OrderStatus::Expired)) {
      why = "done order " + std::to_string(order.id) + " has no final status";
      return false;
    }
    DoneOrder done;
    done.id = order.id;
    done.account_id = order.account_id;
    done.price = order.price;
    done.quantity = order.quantity;
    done.cum_qty = order.cum_qty;
    done.cum_notional = order.cum_notional;
    done.instrument_id = order.instrument_id;
    done.side = order.side;
    done.type = order.type;
    done.time_in_force = order.time_in_force;
    done.post_only = order.post_only;
    done.status = static_cast<OrderStatus>(status);
    done.client_order_id = order.client_order_id;
    exchange.restore_done_order(done);
  }
  if (in.failed() || !in.at_end()) {
    why = "truncated or malformed";
    return false;
  }
  return true;
}

}  // namespace venue
