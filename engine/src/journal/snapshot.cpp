#include "journal/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>

#include "journal/byte_codec.h"
#include "journal/journal.h"
#include "journal/numbered_file.h"

namespace venue {

namespace {

constexpr char kMagic[8] = {'V', 'N', 'S', 'N', 'A', 'P', '0', '1'};
constexpr std::size_t kHeader = sizeof kMagic + 8;  // magic, u32 length, u32 crc

std::system_error io_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

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

void encode_snapshot(std::uint32_t partition, const std::vector<Instrument>& instruments, const Exchange& exchange,
                     std::string& bytes) {
  bytes.assign(kMagic, sizeof kMagic);
  bytes.append(8, '\0');
  ByteWriter out(bytes);
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
  const std::size_t index_count_at = bytes.size();
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
  std::memcpy(bytes.data() + index_count_at, &index_count, 8);
  const std::size_t order_count_at = bytes.size();
  out.u64(0);
  std::uint64_t order_count = 0;
  exchange.for_each_book([&](const OrderBook& book) {
    for (Side side : {Side::Buy, Side::Sell}) {
      book.for_each_order(side, [&](const Order& order) {
        encode_order(order, out);
        ++order_count;
      });
    }
  });
  std::memcpy(bytes.data() + order_count_at, &order_count, 8);
  const auto length = static_cast<std::uint32_t>(bytes.size() - kHeader);
  const std::uint32_t crc = crc32c(bytes.data() + kHeader, length);
  std::memcpy(bytes.data() + sizeof kMagic, &length, 4);
  std::memcpy(bytes.data() + sizeof kMagic + 4, &crc, 4);
}

void write_snapshot_file(const std::string& dir, std::uint64_t commands_applied, const std::string& bytes) {
  const std::string path = dir + "/" + snapshot_file_name(commands_applied);
  const std::string temp = path + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error("create " + temp);
  const char* data = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t written = ::write(fd, data, left);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      throw io_error("write " + temp);
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
  if (::fdatasync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    throw io_error("sync " + temp);
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) throw io_error("rename " + temp);
  sync_directory(dir);
}

bool peek_snapshot(const std::string& path, ExchangeCounters& counters) {
  std::ifstream file(path, std::ios::binary);
  char head[kHeader + 24];
  if (!file.read(head, sizeof head) || std::memcmp(head, kMagic, sizeof kMagic) != 0) return false;
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
  if (bytes.size() < kHeader || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    why = "not a snapshot";
    return false;
  }
  std::memcpy(&length, bytes.data() + sizeof kMagic, 4);
  std::memcpy(&crc, bytes.data() + sizeof kMagic + 4, 4);
  if (bytes.size() - kHeader != length || crc32c(bytes.data() + kHeader, length) != crc) {
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
  std::vector<Instrument> saved(in.u32());
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
  if (in.failed() || !in.at_end()) {
    why = "truncated or malformed";
    return false;
  }
  return true;
}

}  // namespace venue
