// A pool of preallocated objects: acquiring and releasing is a pointer pop and push.
// Objects never move, so pointers into the pool stay valid. Chunks come from map_pages
// (hugepages when the policy and the machine allow): the first, of the warm-up size,
// prefaulted; when it is used up the pool adds a chunk as big as all before it, mapped
// but not prefaulted, and hands its objects out in order (a pointer bump), each page
// faulted in as first used. Growing is one mmap, whatever the pool's size: it never
// holds the matching thread for longer than that.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "book/page_memory.h"

namespace venue {

template <typename T>
class ObjectPool {
  static_assert(std::is_trivially_destructible_v<T>, "chunks are unmapped without running destructors");

 public:
  explicit ObjectPool(std::size_t initial_capacity, HugePages hugepages = HugePages::Try) : hugepages_(hugepages) {
    add_chunk(initial_capacity == 0 ? 1 : initial_capacity, Prefault::Yes);
  }
  ~ObjectPool() {
    for (const PageRegion& chunk : chunks_) unmap_pages(chunk);
  }
  ObjectPool(const ObjectPool&) = delete;
  ObjectPool& operator=(const ObjectPool&) = delete;

  // A default-constructed object; the previous user's state never leaks through.
  T* acquire() {
    T* object;
    if (!free_.empty()) {
      object = free_.back();
      free_.pop_back();
    } else {
      if (fresh_ == fresh_end_) add_chunk(capacity_, Prefault::No);  // doubles
      object = fresh_++;
    }
    return ::new (object) T{};
  }

  void release(T* object) { free_.push_back(object); }

  std::size_t capacity() const { return capacity_; }
  std::size_t in_use() const { return capacity_ - free_.size() - static_cast<std::size_t>(fresh_end_ - fresh_); }
  std::size_t bytes() const {
    std::size_t total = 0;
    for (const PageRegion& chunk : chunks_) total += chunk.bytes;
    return total;
  }
  // True when any chunk sits on reserved hugepages.
  bool any_on_hugepages() const {
    for (const PageRegion& chunk : chunks_) {
      if (chunk.huge) return true;
    }
    return false;
  }
  // True when every chunk sits on hugepages.
  bool on_hugepages() const {
    for (const PageRegion& chunk : chunks_) {
      if (!chunk.huge) return false;
    }
    return true;
  }

 private:
  // Only when every object is in use: free_ is empty, so reserving copies nothing, and
  // the allocator's fresh block is not touched until released objects fill it.
  void add_chunk(std::size_t count, Prefault prefault) {
    PageRegion chunk = map_pages(count * sizeof(T), hugepages_, prefault);
    count = chunk.bytes / sizeof(T);  // a hugepage rounding up holds more objects: use them
    chunks_.push_back(chunk);
    fresh_ = static_cast<T*>(chunk.data);
    fresh_end_ = fresh_ + count;
    capacity_ += count;
    free_.reserve(capacity_);  // release() must never allocate
  }

  HugePages hugepages_;
  std::vector<PageRegion> chunks_;
  std::vector<T*> free_;  // released objects, reused first
  T* fresh_ = nullptr;    // the newest chunk's objects never handed out: [fresh_, fresh_end_)
  T* fresh_end_ = nullptr;
  std::size_t capacity_ = 0;
};

}  // namespace venue
