#include "journal/journal.h"
#include "journal/file_io.h"
#include "journal/numbered_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

namespace venue {

namespace {

constexpr char kMagic[8] = {'V', 'N', 'J', 'R', 'N', 'L', '0', '1'};
constexpr std::size_t kFrame = 8;  // u32 length + u32 crc
// A record larger than this is garbage from a torn length field, not a batch.
constexpr std::uint32_t kMaxRecord = 1u << 30;

void put_frame(std::string& out, std::size_t frame_at) {
  const std::size_t payload = out.size() - frame_at - kFrame;
  const auto length = static_cast<std::uint32_t>(payload);
  const std::uint32_t crc = crc32c(out.data() + frame_at + kFrame, payload);
  std::memcpy(out.data() + frame_at, &length, 4);
  std::memcpy(out.data() + frame_at + 4, &crc, 4);
}

void encode_header(const JournalHeader& header, std::string& out) {
  out.append(kMagic, sizeof kMagic);
  const std::size_t frame_at = out.size();
  out.append(kFrame, '\0');
  ByteWriter writer(out);
  writer.u32(header.partition);
  writer.u8(static_cast<std::uint8_t>(header.stp_mode));
  writer.u64(header.first_command);
  writer.u32(static_cast<std::uint32_t>(header.instruments.size()));
  for (const Instrument& instrument : header.instruments) {
    writer.u32(instrument.id);
    writer.i64(instrument.min_price);
    writer.i64(instrument.max_price);
  }
  put_frame(out, frame_at);
}

// The payload of the framed record at `at`, or false when it is torn or corrupt.
bool read_frame(const std::string& bytes, std::size_t at, std::string_view& payload) {
  if (bytes.size() - at < kFrame) return false;
  std::uint32_t length = 0;
  std::uint32_t crc = 0;
  std::memcpy(&length, bytes.data() + at, 4);
  std::memcpy(&crc, bytes.data() + at + 4, 4);
  if (length > kMaxRecord || bytes.size() - at - kFrame < length) return false;
  if (!checksum_ok(crc32c(bytes.data() + at + kFrame, length), crc)) return false;
  payload = std::string_view(bytes.data() + at + kFrame, length);
  return true;
}

bool decode_header(std::string_view payload, JournalHeader& header) {
  ByteReader in(payload);
  header.partition = in.u32();
  const std::uint8_t stp = in.u8();
  header.first_command = in.u64();
  const std::uint32_t count = in.u32();
  if (in.failed() || stp > static_cast<std::uint8_t>(StpMode::CancelBoth) || count > 1'000'000) return false;
  header.stp_mode = static_cast<StpMode>(stp);
  header.instruments.clear();
  for (std::uint32_t i = 0; i < count; ++i) {
    Instrument instrument;
    instrument.id = in.u32();
    instrument.min_price = in.i64();
    instrument.max_price = in.i64();
    header.instruments.push_back(instrument);
  }
  return !in.failed() && in.at_end();
}

}  // namespace

std::string journal_file_name(std::uint64_t first_command) {
  return numbered_file_name("journal-", first_command, ".log");
}

bool parse_journal_file_name(std::string_view name, std::uint64_t& first_command) {
  return parse_numbered_file_name(name, "journal-", ".log", first_command);
}

bool same_instruments(const std::vector<Instrument>& a, const std::vector<Instrument>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].min_price != b[i].min_price || a[i].max_price != b[i].max_price) return false;
  }
  return true;
}

// ---- commands ----

void encode_command(const Command& command, ByteWriter& out) {
  out.u8(static_cast<std::uint8_t>(command.type));
  out.u32(command.origin.shard);
  out.u64(command.origin.stream_ms);
  out.u64(command.origin.stream_seq);
  out.u32(command.origin.entry_index);
  switch (command.type) {
    case CommandType::New: {
      const NewOrder& o = command.new_order;
      out.u64(o.order_id);
      out.text(o.client_order_id);
      out.u64(o.account_id);
      out.u32(o.instrument_id);
      out.u8(static_cast<std::uint8_t>(o.side));
      out.u8(static_cast<std::uint8_t>(o.type));
      out.u8(static_cast<std::uint8_t>(o.time_in_force));
      out.i64(o.price);
      out.i64(o.quantity);
      out.u8(o.post_only ? 1 : 0);
      break;
    }
    case CommandType::Cancel:
      out.u64(command.cancel.order_id);
      out.u64(command.cancel.account_id);
      out.u32(command.cancel.instrument_id);
      break;
    case CommandType::Replace:
      out.u64(command.replace.order_id);
      out.u64(command.replace.account_id);
      out.u32(command.replace.instrument_id);
      out.i64(command.replace.price);
      out.i64(command.replace.quantity);
      break;
    case CommandType::ExpireDay:
      out.u32(command.expire_day.instrument_id);
      break;
    case CommandType::Unknown:
      break;
  }
}

bool decode_command(ByteReader& in, Command& out) {
  const std::uint8_t type = in.u8();
  CommandOrigin origin;
  origin.shard = in.u32();
  origin.stream_ms = in.u64();
  origin.stream_seq = in.u64();
  origin.entry_index = in.u32();
  switch (static_cast<CommandType>(type)) {
    case CommandType::New: {
      NewOrder o;
      o.order_id = in.u64();
      o.client_order_id = in.text();
      o.account_id = in.u64();
      o.instrument_id = in.u32();
      o.side = static_cast<Side>(in.u8());
      o.type = static_cast<OrderType>(in.u8());
      o.time_in_force = static_cast<TimeInForce>(in.u8());
      o.price = in.i64();
      o.quantity = in.i64();
      o.post_only = in.u8() != 0;
      out = Command::make(origin, o);
      break;
    }
    case CommandType::Cancel: {
      CancelOrder c;
      c.order_id = in.u64();
      c.account_id = in.u64();
      c.instrument_id = in.u32();
      out = Command::make(origin, c);
      break;
    }
    case CommandType::Replace: {
      ReplaceOrder r;
      r.order_id = in.u64();
      r.account_id = in.u64();
      r.instrument_id = in.u32();
      r.price = in.i64();
      r.quantity = in.i64();
      out = Command::make(origin, r);
      break;
    }
    case CommandType::ExpireDay:
      out = Command::make(origin, ExpireDay{in.u32()});
      break;
    case CommandType::Unknown:
      out = Command{};
      out.origin = origin;
      break;
    default:
      return false;
  }
  return !in.failed();
}

// ---- reading ----

SegmentScan scan_segment(const std::string& path,
                         const std::function<bool(const JournalHeader&, const JournalBatch&)>& visit) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot read journal segment " + path);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  SegmentScan scan;
  scan.file_bytes = bytes.size();
  std::string_view payload;
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0 ||
      !read_frame(bytes, sizeof kMagic, payload) || !decode_header(payload, scan.header)) {
    return scan;
  }
  scan.header_ok = true;
  std::size_t at = sizeof kMagic + kFrame + payload.size();
  scan.valid_bytes = at;
  JournalBatch batch;
  while (at < bytes.size()) {
    if (!read_frame(bytes, at, payload)) break;
    ByteReader in(payload);
    batch.first_command = in.u64();
    batch.timestamp_ns = in.i64();
    const std::uint32_t count = in.u32();
    batch.commands.clear();
    bool ok = !in.failed() && count <= payload.size();
    for (std::uint32_t i = 0; ok && i < count; ++i) {
      Command command;
      ok = decode_command(in, command);
      batch.commands.push_back(command);
    }
    if (!ok || !in.at_end()) break;  // a checksum collision on garbage: treat as torn
    at += kFrame + payload.size();
    scan.valid_bytes = at;
    if (!visit(scan.header, batch)) break;
  }
  return scan;
}

void truncate_segment(const std::string& path, std::size_t valid_bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw io_error("open " + path);
  const bool ok = ::ftruncate(fd, static_cast<off_t>(valid_bytes)) == 0 && ::fdatasync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) throw io_error("truncate " + path);
}

// ---- writing ----

JournalWriter::JournalWriter(FsyncPolicy policy, int interval_ms) : policy_(policy), interval_ms_(interval_ms) {
  pending_.reserve(1 << 20);
  if (policy_ == FsyncPolicy::Interval) syncer_ = std::thread([this] { sync_loop(); });
}

JournalWriter::~JournalWriter() {
  {
    std::lock_guard lock(fd_mutex_);
    stopping_ = true;
  }
  stop_signal_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  close_segment();
}

void JournalWriter::close_segment() {
  std::lock_guard lock(fd_mutex_);
  if (fd_ < 0) return;
  ::fdatasync(fd_);
  ::close(fd_);
  fd_ = -1;
}

void JournalWriter::open_segment(const std::string& dir, const JournalHeader& header) {
  close_segment();
  const std::string path = dir + "/" + journal_file_name(header.first_command);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error("create " + path);
  std::string bytes;
  encode_header(header, bytes);
  {
    std::lock_guard lock(fd_mutex_);
    fd_ = fd;
  }
  write_all(bytes.data(), bytes.size());
  if (::fdatasync(fd_) != 0) throw io_error("sync " + path);
  // The new name must survive a machine crash too: sync the directory entry.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void JournalWriter::begin_batch(std::uint64_t first_command, std::int64_t timestamp_ns) {
  batch_start_ = pending_.size();
  batch_count_ = 0;
  pending_.append(kFrame, '\0');
  ByteWriter out(pending_);
  out.u64(first_command);
  out.i64(timestamp_ns);
  out.u32(0);  // the count, filled in by end_batch
}

void JournalWriter::add(const Command& command) {
  ByteWriter out(pending_);
  encode_command(command, out);
  ++batch_count_;
}

void JournalWriter::end_batch() {
  if (batch_count_ == 0) {
    pending_.resize(batch_start_);
    return;
  }
  std::memcpy(pending_.data() + batch_start_ + kFrame + 16, &batch_count_, 4);
  put_frame(pending_, batch_start_);
}

void JournalWriter::commit() {
  if (pending_.empty()) return;
  write_all(pending_.data(), pending_.size());
  pending_.clear();
  if (policy_ == FsyncPolicy::Batch) {
    if (::fdatasync(fd_) != 0) throw io_error("fdatasync journal");
    ++syncs_;
  }
}

void JournalWriter::write_all(const char* data, std::size_t size) {
  if (!write_fully(fd_, data, size)) throw io_error("write journal");
  bytes_written_ += size;
}

void JournalWriter::sync_loop() {
  std::unique_lock lock(fd_mutex_);
  while (!stopping_) {
    stop_signal_.wait_for(lock, std::chrono::milliseconds(interval_ms_));
    if (fd_ >= 0) ::fdatasync(fd_);
  }
}

}  // namespace venue
