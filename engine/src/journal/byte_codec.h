// Little-endian fixed-width encoding for the journal and snapshots, and CRC32C over
// what is written. Plain bytes on purpose: the files outlive any wire format and are
// read back by the same engine only.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace venue {

// CRC32C (Castagnoli), the checksum of iSCSI, ext4 and LevelDB's log: it detects a torn
// or partly written record. With SSE4.2's crc32 instruction where the CPU has it, else
// slicing-by-8 tables. `crc` continues a checksum: crc32c(b, crc32c(a)) is that of a + b.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);
// The same from tables alone, whatever the CPU (crc32c uses the CPU's instruction when
// it has one).
std::uint32_t crc32c_portable(const void* data, std::size_t size, std::uint32_t crc = 0);

// Whether a record's stored checksum is the one computed over its bytes. A fuzzing build
// (engine/fuzz, VENUE_FUZZ) takes every checksum, so the fuzzer's inputs reach the
// decoders behind it; nothing else ever defines FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION.
inline bool checksum_ok(std::uint32_t computed, std::uint32_t stored) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  (void)computed;
  (void)stored;
  return true;
#else
  return computed == stored;
#endif
}

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  void u8(std::uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void u32(std::uint32_t value) { raw(&value, sizeof value); }
  void u64(std::uint64_t value) { raw(&value, sizeof value); }
  void i64(std::int64_t value) { raw(&value, sizeof value); }
  // A short string: length byte, then the bytes (at most 255).
  void text(std::string_view value) {
    const std::size_t length = value.size() > 255 ? 255 : value.size();
    u8(static_cast<std::uint8_t>(length));
    out_.append(value.data(), length);
  }
  std::size_t size() const { return out_.size(); }
  std::string& buffer() { return out_; }

 private:
  static_assert(std::endian::native == std::endian::little, "the files are little-endian");
  void raw(const void* data, std::size_t size) { out_.append(static_cast<const char*>(data), size); }
  std::string& out_;
};

// Reads what ByteWriter wrote. Past the end it returns zeros and sets failed(): callers
// check once at the end instead of after every field.
class ByteReader {
 public:
  ByteReader(const char* data, std::size_t size) : data_(data), size_(size) {}
  explicit ByteReader(std::string_view bytes) : ByteReader(bytes.data(), bytes.size()) {}

  std::uint8_t u8() {
    std::uint8_t value = 0;
    raw(&value, sizeof value);
    return value;
  }
  std::uint32_t u32() {
    std::uint32_t value = 0;
    raw(&value, sizeof value);
    return value;
  }
  std::uint64_t u64() {
    std::uint64_t value = 0;
    raw(&value, sizeof value);
    return value;
  }
  std::int64_t i64() {
    std::int64_t value = 0;
    raw(&value, sizeof value);
    return value;
  }
  // A view into the reader's bytes: valid while they are.
  std::string_view text() {
    const std::size_t length = u8();
    if (!take(length)) return {};
    return {data_ + position_ - length, length};
  }

  bool failed() const { return failed_; }
  bool at_end() const { return position_ == size_; }
  std::size_t position() const { return position_; }

 private:
  bool take(std::size_t size) {
    if (failed_ || size > size_ - position_) {
      failed_ = true;
      return false;
    }
    position_ += size;
    return true;
  }
  void raw(void* out, std::size_t size) {
    if (take(size)) std::memcpy(out, data_ + position_ - size, size);
  }

  const char* data_;
  std::size_t size_;
  std::size_t position_ = 0;
  bool failed_ = false;
};

}  // namespace venue
