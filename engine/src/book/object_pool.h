// A pool of preallocated objects: acquiring and releasing is a pointer pop and push.
// It grows by whole chunks when exhausted (allocation only past the warm-up size);
// objects never move, so pointers into the pool stay valid. Hugepages come later.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace venue {

template <typename T>
class ObjectPool {
 public:
  explicit ObjectPool(std::size_t initial_capacity) { grow(initial_capacity == 0 ? 1 : initial_capacity); }
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

 private:
  void grow(std::size_t count) {
    chunks_.push_back(std::make_unique<T[]>(count));
    capacity_ += count;
    free_.reserve(capacity_);  // release() must never allocate
    T* chunk = chunks_.back().get();
    for (std::size_t i = count; i > 0; --i) free_.push_back(&chunk[i - 1]);
  }

  std::vector<std::unique_ptr<T[]>> chunks_;
  std::vector<T*> free_;
  std::size_t capacity_ = 0;
};

}  // namespace venue
