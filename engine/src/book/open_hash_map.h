// Integer key -> pointer, open addressing with linear probing and backward-shift
// deletion (no tombstones), so lookups stay one or two cache lines however many
// orders come and go. A null value marks an empty slot; every key is allowed.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "book/page_memory.h"

namespace venue {

template <typename Key, typename Value>
class OpenHashMap {
  static_assert(std::is_pointer_v<Value>, "a null value marks an empty slot");

 public:
  explicit OpenHashMap(std::size_t expected = 16) { rehash(slots_for(expected)); }
  OpenHashMap(const OpenHashMap&) = delete;
  OpenHashMap& operator=(const OpenHashMap&) = delete;

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  Value find(Key key) const {
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.value == nullptr) return nullptr;
      if (slot.key == key) return slot.value;
    }
  }

  // Starts loading the cache line `key` would be found in: a caller that knows its next
  // key overlaps that miss with the work in hand.
  void prefetch(Key key) const { __builtin_prefetch(&slots_[home(key)]); }

  // False (and nothing changes) when the key is already present.
  bool insert(Key key, Value value) {
    if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);  // load <= 1/2
    std::size_t i = home(key);
    for (; slots_[i].value != nullptr; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return false;
    }
    slots_[i] = Slot{key, value};
    ++size_;
    return true;
  }

  bool erase(Key key) {
    std::size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].value == nullptr) return false;
      if (slots_[i].key == key) break;
    }
    // Pull later members of the probe run back into the hole, so no search stops early.
    for (std::size_t j = (i + 1) & mask_; slots_[j].value != nullptr; j = (j + 1) & mask_) {
      const std::size_t want = home(slots_[j].key);
      const bool stays = (j > i) ? (want > i && want <= j) : (want > i || want <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
    return true;
  }

  void reserve(std::size_t expected) {
    const std::size_t want = slots_for(expected);
    if (want > slots_.size()) rehash(want);
  }

  template <typename F>
  void for_each(F&& visit) const {
    for (const Slot& slot : slots_) {
      if (slot.value != nullptr) visit(slot.key, slot.value);
    }
  }

 private:
  struct Slot {
    Key key{};
    Value value = nullptr;
  };

  static std::size_t slots_for(std::size_t expected) {
    return std::bit_ceil(expected < 8 ? std::size_t{16} : expected * 2);
  }

  // Fibonacci hashing: takes the high bits, so dense sequential ids spread evenly.
  std::size_t home(Key key) const {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(key) * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  void rehash(std::size_t slot_count) {
    // Small tables from the heap; big ones (the live-order map) on pages that can be
    // hugepages: a lookup there is a random access into many megabytes.
    Slots old = std::move(slots_);
    slots_ = Slots(slot_count);
    mask_ = slot_count - 1;
    shift_ = 64 - std::countr_zero(slot_count);
    size_ = 0;
    for (const Slot& slot : old) {
      if (slot.value != nullptr) insert(slot.key, slot.value);
    }
  }

  // Zero-filled storage: a zero Slot is an empty slot (null value).
  class Slots {
   public:
    Slots() = default;
    explicit Slots(std::size_t count) {
      if (count * sizeof(Slot) >= kHugePageBytes) {
        pages_ = PageArray<Slot>(count, HugePages::Try);
        data_ = pages_.begin();
      } else {
        heap_.assign(count, Slot{});
        data_ = heap_.data();
      }
      size_ = count;
    }
    Slots(Slots&& other) noexcept { *this = std::move(other); }
    Slots& operator=(Slots&& other) noexcept {
      pages_ = std::move(other.pages_);
      heap_ = std::move(other.heap_);
      data_ = other.data_;
      size_ = other.size_;
      other.data_ = nullptr;
      other.size_ = 0;
      return *this;
    }
    Slot& operator[](std::size_t i) { return data_[i]; }
    const Slot& operator[](std::size_t i) const { return data_[i]; }
    std::size_t size() const { return size_; }
    const Slot* begin() const { return data_; }
    const Slot* end() const { return data_ + size_; }

   private:
    PageArray<Slot> pages_;
    std::vector<Slot> heap_;
    Slot* data_ = nullptr;
    std::size_t size_ = 0;
  };

  Slots slots_;
  std::size_t mask_ = 0;
  int shift_ = 64;
  std::size_t size_ = 0;
};

}  // namespace venue
