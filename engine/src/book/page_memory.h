// Memory for the pools and the big maps, straight from mmap: on 2 MiB hugepages
// (MAP_HUGETLB) when the machine has them reserved, else on normal pages advised to
// become transparent hugepages (MADV_HUGEPAGE) where the kernel allows, so large tables
// cost few TLB entries. What is sized at the start is prefaulted, so the matching loop
// takes no page fault on the memory it was given. What is added while it runs (a pool's
// next chunk, a map's bigger table) is neither prefaulted nor advised: prefaulting a
// doubling on the matching thread stopped matching for 0.6 s at a million resting
// orders on a VM (5 us a 4 KiB page), where a fault as each page is first used costs
// about 0.2 us an order.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace venue {

enum class HugePages : std::uint8_t {
  Try = 0,      // hugepages when reserved, else normal pages (transparent hugepages advised)
  Require = 1,  // reserved hugepages or fail (std::bad_alloc)
  Off = 2,      // normal pages only, no advice
};

struct PageRegion {
  void* data = nullptr;
  std::size_t bytes = 0;
  bool huge = false;  // on reserved (MAP_HUGETLB) hugepages
};

inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

enum class Prefault : std::uint8_t { Yes, No };

// Zero-filled. Reserved hugepages are held for the mapping either way (a private
// MAP_HUGETLB mapping reserves them when made); Prefault::No leaves them, and normal
// pages, to be faulted in as first written.
inline PageRegion map_pages(std::size_t bytes, HugePages policy, Prefault prefault = Prefault::Yes) {
  if (bytes == 0) bytes = 1;
  if (policy != HugePages::Off) {
    const std::size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    void* data = mmap(nullptr, rounded, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (prefault == Prefault::Yes ? MAP_POPULATE : 0), -1, 0);
    if (data != MAP_FAILED) return PageRegion{data, rounded, true};
    if (policy == HugePages::Require) throw std::bad_alloc();
  }
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) throw std::bad_alloc();
  // Not advised when faulted in as used: a transparent hugepage's first touch zeroes
  // (and may compact for) 2 MiB at once, 6-8 ms on a VM, every 13,800 orders.
  if (prefault == Prefault::No) {
    if (policy != HugePages::Off) madvise(data, bytes, MADV_NOHUGEPAGE);  // also where THP is "always"
    return PageRegion{data, bytes, false};
  }
  if (policy != HugePages::Off && bytes >= kHugePageBytes) madvise(data, bytes, MADV_HUGEPAGE);
  // Prefault after the advice, so the kernel can back it with whole hugepages.
#ifdef MADV_POPULATE_WRITE
  if (madvise(data, bytes, MADV_POPULATE_WRITE) != 0)
#endif
  {
    for (std::size_t at = 0; at < bytes; at += 4096) static_cast<volatile char*>(data)[at] = 0;
  }
  return PageRegion{data, bytes, false};
}

inline void unmap_pages(const PageRegion& region) {
  if (region.data != nullptr) munmap(region.data, region.bytes);
}

// A zero-filled array of trivially copyable T on pages from map_pages: for tables too
// big for the allocator's heap pages to serve well.
template <typename T>
class PageArray {
  static_assert(std::is_trivially_copyable_v<T>, "zero-filled pages are its only constructor");

 public:
  PageArray() = default;
  PageArray(std::size_t count, HugePages policy, Prefault prefault = Prefault::Yes)
      : region_(map_pages(count * sizeof(T), policy, prefault)), count_(count) {}
  ~PageArray() { unmap_pages(region_); }
  PageArray(PageArray&& other) noexcept { swap(other); }
  PageArray& operator=(PageArray&& other) noexcept {
    swap(other);
    return *this;
  }
  PageArray(const PageArray&) = delete;
  PageArray& operator=(const PageArray&) = delete;

  T& operator[](std::size_t i) { return static_cast<T*>(region_.data)[i]; }
  const T& operator[](std::size_t i) const { return static_cast<const T*>(region_.data)[i]; }
  std::size_t size() const { return count_; }
  T* begin() { return static_cast<T*>(region_.data); }
  T* end() { return begin() + count_; }
  const T* begin() const { return static_cast<const T*>(region_.data); }
  const T* end() const { return begin() + count_; }

 private:
  void swap(PageArray& other) noexcept {
    std::swap(region_, other.region_);
    std::swap(count_, other.count_);
  }
  PageRegion region_;
  std::size_t count_ = 0;
};

}  // namespace venue
