// Integer key -> pointer, open addressing with linear probing and backward-shift
// deletion (no tombstones), so lookups stay one or two cache lines however many
// orders come and go. A null value marks an empty slot; every key is allowed.
//
// Growing is incremental, as Redis's dictionaries do it: past half full, a table twice
// the size (not prefaulted) takes every insert, and each insert or erase moves a few
// entries over from the old one, until it is empty and let go. Meanwhile a lookup tries
// the new table, then the old. Moving an entry is erasing it from the old table (so it
// stays a valid linear-probing table: every slot before the move's position is empty, so
// no backward shift ever carries an entry behind it) and inserting it in the new. Each
// insert or erase visits kMoveSteps old slots: the old table, half full, is empty before
// the new one is half full in turn. Rehashing a million orders whole held the matching
// thread for 0.28 s on a VM; this spreads the same work over the next half million
// inserts.
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
  explicit OpenHashMap(std::size_t expected = 16) { table_ = Table(slots_for(expected), Prefault::Yes); }
  OpenHashMap(const OpenHashMap&) = delete;
  OpenHashMap& operator=(const OpenHashMap&) = delete;

  std::size_t size() const { return table_.size + old_.size; }
  bool empty() const { return size() == 0; }

  Value find(Key key) const {
    const Value found = table_.find(key);
    return found != nullptr || old_.size == 0 ? found : old_.find(key);
  }

  // Starts loading the cache line `key` would be found in: a caller that knows its next
  // key overlaps that miss with the work in hand.
  void prefetch(Key key) const { __builtin_prefetch(&table_.slots[table_.home(key)]); }

  // False (and nothing changes) when the key is already present.
  bool insert(Key key, Value value) {
    if (old_.size != 0 && old_.find(key) != nullptr) return false;
    if ((size() + 1) * 2 > table_.slots.size()) grow();  // load <= 1/2
    if (!table_.insert(key, value)) return false;
    move_some();
    return true;
  }

  bool erase(Key key) {
    if (!table_.erase(key) && (old_.size == 0 || !old_.erase(key))) return false;
    move_some();
    return true;
  }

  // At the start (not incremental): room for `expected` keys, prefaulted.
  void reserve(std::size_t expected) {
    const std::size_t want = slots_for(expected);
    if (want <= table_.slots.size()) return;
    move_all();
    Table bigger(want, Prefault::Yes);
    table_.move_into(bigger);
    table_ = std::move(bigger);
  }

  template <typename F>
  void for_each(F&& visit) const {
    table_.for_each(visit);
    old_.for_each(visit);
  }

 private:
  static constexpr int kMoveSteps = 4;

  struct Slot {
    Key key{};
    Value value = nullptr;
  };

  // Zero-filled storage: a zero Slot is an empty slot (null value).
  class Slots {
   public:
    Slots() = default;
    Slots(std::size_t count, Prefault prefault) {
      if (count * sizeof(Slot) >= kHugePageBytes) {
        // Small tables from the heap; big ones (the live-order map) on pages that can
        // be hugepages: a lookup there is a random access into many megabytes.
        pages_ = PageArray<Slot>(count, HugePages::Try, prefault);
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

  // One linear-probing table of a power-of-two size.
  struct Table {
    Table() = default;
    Table(std::size_t slot_count, Prefault prefault)
        : slots(slot_count, prefault), mask(slot_count - 1), shift(64 - std::countr_zero(slot_count)) {}

    // Fibonacci hashing: takes the high bits, so dense sequential ids spread evenly.
    std::size_t home(Key key) const {
      return static_cast<std::size_t>((static_cast<std::uint64_t>(key) * 0x9E3779B97F4A7C15ull) >> shift);
    }

    Value find(Key key) const {
      if (slots.size() == 0) return nullptr;
      for (std::size_t i = home(key);; i = (i + 1) & mask) {
        const Slot& slot = slots[i];
        if (slot.value == nullptr) return nullptr;
        if (slot.key == key) return slot.value;
      }
    }

    bool insert(Key key, Value value) {
      std::size_t i = home(key);
      for (; slots[i].value != nullptr; i = (i + 1) & mask) {
        if (slots[i].key == key) return false;
      }
      slots[i] = Slot{key, value};
      ++size;
      return true;
    }

    bool erase(Key key) {
      if (size == 0) return false;
      std::size_t i = home(key);
      for (;; i = (i + 1) & mask) {
        if (slots[i].value == nullptr) return false;
        if (slots[i].key == key) break;
      }
      erase_at(i);
      return true;
    }

    void erase_at(std::size_t i) {
      // Pull later members of the probe run back into the hole, so no search stops early.
      for (std::size_t j = (i + 1) & mask; slots[j].value != nullptr; j = (j + 1) & mask) {
        const std::size_t want = home(slots[j].key);
        const bool stays = (j > i) ? (want > i && want <= j) : (want > i || want <= j);
        if (!stays) {
          slots[i] = slots[j];
          i = j;
        }
      }
      slots[i] = Slot{};
      --size;
    }

    void move_into(Table& other) {
      for (const Slot& slot : slots) {
        if (slot.value != nullptr) other.insert(slot.key, slot.value);
      }
      *this = Table();
    }

    template <typename F>
    void for_each(F& visit) const {
      for (const Slot& slot : slots) {
        if (slot.value != nullptr) visit(slot.key, slot.value);
      }
    }

    Slots slots;
    std::size_t mask = 0;
    int shift = 64;
    std::size_t size = 0;
  };

  static std::size_t slots_for(std::size_t expected) {
    return std::bit_ceil(expected < 8 ? std::size_t{16} : expected * 2);
  }

  void grow() {
    move_all();  // never left over: kMoveSteps empties the old table first
    Table bigger(table_.slots.size() * 2, Prefault::No);
    old_ = std::move(table_);
    table_ = std::move(bigger);
    moving_at_ = 0;
  }

  // Up to kMoveSteps slots of the old table: each entry there moves to the new one.
  void move_some() {
    for (int step = 0; step < kMoveSteps && old_.size != 0; ++step) {
      Slot& slot = old_.slots[moving_at_];
      if (slot.value == nullptr) {
        ++moving_at_;
        continue;
      }
      const Slot moved = slot;
      old_.erase_at(moving_at_);  // may pull a later entry into this slot: looked at next
      table_.insert(moved.key, moved.value);
    }
    if (old_.size == 0 && old_.slots.size() != 0) old_ = Table();
  }

  void move_all() {
    while (old_.size != 0) move_some();
    old_ = Table();
  }

  Table table_;
  Table old_;  // being emptied into table_ after a grow; empty (no slots) otherwise
  std::size_t moving_at_ = 0;  // every old slot before it is empty
};

}  // namespace venue
