// Which prices of a band hold a level: a bitmap with a summary word per 64 words,
// level upon level, so the next occupied price above or below any price is found in
// a handful of word scans (one per level, at most 6 for a 2^32-tick band) whatever
// the gap. The words are calloc'ed: a wide band costs address space, not memory,
// until prices are used.
#pragma once

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

namespace venue {

class PriceBitmap {
 public:
  static constexpr std::uint64_t npos = ~std::uint64_t{0};

  explicit PriceBitmap(std::uint64_t positions) : positions_(positions == 0 ? 1 : positions) {
    std::uint64_t count = positions_;
    do {
      const std::uint64_t words = (count + 63) / 64;
      auto* memory = static_cast<std::uint64_t*>(std::calloc(words, sizeof(std::uint64_t)));
      if (memory == nullptr) throw std::bad_alloc();
      levels_.push_back(Words{memory, words});
      count = words;
    } while (count > 1);
  }

  std::uint64_t positions() const { return positions_; }

  bool test(std::uint64_t pos) const { return (levels_[0].data[pos >> 6] >> (pos & 63)) & 1; }

  void set(std::uint64_t pos) {
    for (auto& level : levels_) {
      std::uint64_t& word = level.data[pos >> 6];
      const bool was_empty = word == 0;
      word |= std::uint64_t{1} << (pos & 63);
      if (!was_empty) return;  // the summaries above already say "occupied"
      pos >>= 6;
    }
  }

  void clear(std::uint64_t pos) {
    for (auto& level : levels_) {
      std::uint64_t& word = level.data[pos >> 6];
      word &= ~(std::uint64_t{1} << (pos & 63));
      if (word != 0) return;  // still occupied: the summaries stay
      pos >>= 6;
    }
  }

  // The lowest set position >= pos, or npos.
  std::uint64_t next_at_or_above(std::uint64_t pos) const {
    if (pos >= positions_) return npos;
    std::size_t level = 0;
    for (;;) {
      const std::uint64_t w = pos >> 6;
      const std::uint64_t bits = levels_[level].data[w] & (~std::uint64_t{0} << (pos & 63));
      if (bits != 0) {
        pos = (w << 6) | static_cast<std::uint64_t>(std::countr_zero(bits));
        break;
      }
      if (level + 1 == levels_.size() || w + 1 >= levels_[level].count) return npos;
      pos = w + 1;
      ++level;
    }
    while (level > 0) {
      --level;
      pos = (pos << 6) | static_cast<std::uint64_t>(std::countr_zero(levels_[level].data[pos]));
    }
    return pos;
  }

  // The highest set position <= pos, or npos.
  std::uint64_t next_at_or_below(std::uint64_t pos) const {
    if (pos >= positions_) pos = positions_ - 1;
    std::size_t level = 0;
    for (;;) {
      const std::uint64_t w = pos >> 6;
      const std::uint64_t bits = levels_[level].data[w] & ((std::uint64_t{2} << (pos & 63)) - 1);
      if (bits != 0) {
        pos = (w << 6) | static_cast<std::uint64_t>(63 - std::countl_zero(bits));
        break;
      }
      if (level + 1 == levels_.size() || w == 0) return npos;
      pos = w - 1;
      ++level;
    }
    while (level > 0) {
      --level;
      pos = (pos << 6) | static_cast<std::uint64_t>(63 - std::countl_zero(levels_[level].data[pos]));
    }
    return pos;
  }

 private:
  struct Free {
    void operator()(std::uint64_t* p) const { std::free(p); }
  };
  struct Words {
    Words(std::uint64_t* memory, std::uint64_t n) : data(memory), count(n) {}
    std::unique_ptr<std::uint64_t[], Free> data;
    std::uint64_t count;
  };

  std::uint64_t positions_;
  std::vector<Words> levels_;  // [0] one bit per price; [k] one bit per word of [k-1]
};

}  // namespace venue
