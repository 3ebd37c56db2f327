// One side of a book: its price levels, the best one cached for O(1) access, a price
// -> level hash for O(1) lookup, and a bitmap over the instrument's band to find the
// next best price when the best empties. Levels come from a shared pool.
#pragma once

#include <cstdint>

#include "book/object_pool.h"
#include "book/open_hash_map.h"
#include "book/order_list.h"
#include "book/price_bitmap.h"
#include "book/types.h"

namespace venue {

struct PriceLevel {
  Price price = 0;
  Quantity quantity = 0;  // sum of leaves_qty of the orders resting here
  std::uint32_t order_count = 0;
  OrderList orders;  // time priority: front is first to fill
};

class PriceLevels {
 public:
  // Prices must lie in [min_price, max_price]; the book validates before it gets here.
  PriceLevels(Side side, Price min_price, Price max_price, ObjectPool<PriceLevel>& pool)
      : side_(side),
        min_price_(min_price),
        occupied_(static_cast<std::uint64_t>(max_price - min_price) + 1),
        by_price_(64),
        pool_(pool) {}

  PriceLevels(const PriceLevels&) = delete;
  PriceLevels& operator=(const PriceLevels&) = delete;

  ~PriceLevels() {
    by_price_.for_each([this](Price, PriceLevel* level) { pool_.release(level); });
  }

  Side side() const { return side_; }
  bool empty() const { return best_ == nullptr; }
  PriceLevel* best() const { return best_; }
  std::size_t level_count() const { return by_price_.size(); }

  PriceLevel* find(Price price) const { return by_price_.find(price); }

  // True when `price` is better for this side than `than` (higher bid, lower ask).
  bool better(Price price, Price than) const { return side_ == Side::Buy ? price > than : price < than; }

  // The level at `price`, created empty if there was none.
  PriceLevel* find_or_insert(Price price) {
    if (PriceLevel* level = by_price_.find(price)) return level;
    PriceLevel* level = pool_.acquire();
    level->price = price;
    by_price_.insert(price, level);
    occupied_.set(position(price));
    if (best_ == nullptr || better(price, best_->price)) best_ = level;
    return level;
  }

  // Removes an empty level and returns it to the pool.
  void erase(PriceLevel* level) {
    occupied_.clear(position(level->price));
    by_price_.erase(level->price);
    if (level == best_) best_ = next_worse_from(level->price);
    pool_.release(level);
  }

  // The level next in priority after `level`, or null: walks the book best first.
  PriceLevel* next_worse(const PriceLevel* level) const { return next_worse_from(level->price); }

 private:
  std::uint64_t position(Price price) const { return static_cast<std::uint64_t>(price - min_price_); }

  PriceLevel* next_worse_from(Price price) const {
    const std::uint64_t pos = position(price);
    std::uint64_t found = PriceBitmap::npos;
    if (side_ == Side::Buy) {
      if (pos > 0) found = occupied_.next_at_or_below(pos - 1);
    } else {
      found = occupied_.next_at_or_above(pos + 1);
    }
    if (found == PriceBitmap::npos) return nullptr;
    return by_price_.find(min_price_ + static_cast<Price>(found));
  }

  Side side_;
  Price min_price_;
  PriceBitmap occupied_;
  OpenHashMap<Price, PriceLevel*> by_price_;
  PriceLevel* best_ = nullptr;
  ObjectPool<PriceLevel>& pool_;
};

}  // namespace venue
