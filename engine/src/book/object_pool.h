// A pool of preallocated objects: acquiring and releasing is a pointer pop and push.
// It grows by whole chunks when exhausted (allocation only past the warm-up size);
// objects never move, so pointers into the pool stay valid. Chunks come from
// map_pages: hugepages when the policy and the machine allow.
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
    grow(initial_capacity == 0 ? 1 : initial_capacity);
  }
  ~ObjectPool() {
    for (const PageRegion& chunk : chunks_) unmap_pages(chunk);
  }
  ObjectPool(const ObjectPool&) = delete;
  ObjectPool& operator=(const ObjectPool&) = delete;

  // A default-constructed object; the previous user's state never leaks through.
  T* acquire() {
    if (free_.empty()) grow(capacity_);  // doubles: amortised, and rare after warm-up
    T* object = free_.back();
    free_.pop_back();
    *object = T{};
    return object;
  }

  void release(T* object) { free_.push_back(object); }

  std::size_t capacity() const { return capacity_; }
  std::size_t in_use() const { return capacity_ - free_.size(); }
  std::size_t bytes() const {
    std::size_t total = 0;
    for (const PageRegion& chunk : chunks_) total += chunk.bytes;
    return total;
  }
  // True when every chunk sits on hugepages.
  bool on_hugepages() const {
    for (const PageRegion& chunk : chunks_) {
      if (!chunk.huge) return false;
    }
    return true;
  }

 private:
  void grow(std::size_t count) {
    PageRegion chunk = map_pages(count * sizeof(T), hugepages_);
    count = chunk.bytes / sizeof(T);  // a hugepage rounding up holds more objects: use them
    chunks_.push_back(chunk);
    T* objects = new (chunk.data) T[count];
    capacity_ += count;
    free_.reserve(capacity_);  // release() must never allocate
    for (std::size_t i = count; i > 0; --i) free_.push_back(&objects[i - 1]);
  }

  HugePages hugepages_;
  std::vector<PageRegion> chunks_;
  std::vector<T*> free_;
  std::size_t capacity_ = 0;
};

}  // namespace venue
