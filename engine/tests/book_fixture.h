// Test support: one book (instrument 1, band 1..10000) over small pools, so growth
// paths run too, with the events it emits recorded.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <vector>

#include "book/order_book.h"
#include "recording_sink.h"

namespace venue::testing {

struct LevelView {
  Price price;
  Quantity quantity;
  std::uint32_t orders;
  bool operator==(const LevelView&) const = default;
};

inline void PrintTo(const LevelView& level, std::ostream* os) {
  *os << "{" << level.price << ", " << level.quantity << ", " << level.orders << "}";
}

class BookTest : public ::testing::Test {
 protected:
  static constexpr Instrument kInstrument{1, 1, 10'000};

  // `done_capacity`: done orders the memory remembers (none unless a test asks).
  explicit BookTest(std::size_t done_capacity = 0) : memory{4, 2, HugePages::Try, done_capacity} {}

  RecordingSink sink;
  BookMemory memory;
  EventStream events{sink};
  OrderBook book{kInstrument, memory, events};

  // Applies a command and returns just the events it produced.
  std::vector<Event> submit(const NewOrder& order) {
    sink.take();
    book.new_order(order);
    return sink.take();
  }
  std::vector<Event> cancel(const CancelOrder& command) {
    sink.take();
    book.cancel(command);
    return sink.take();
  }
  std::vector<Event> replace(const ReplaceOrder& command) {
    sink.take();
    book.replace(command);
    return sink.take();
  }

  using LevelView = venue::testing::LevelView;

  // (price, quantity, orders) of one side, best first.
  std::vector<LevelView> side(Side which) const {
    std::vector<LevelView> out;
    book.for_each_level(which, 0, [&](const PriceLevel& level) {
      out.push_back(LevelView{level.price, level.quantity, level.order_count});
    });
    return out;
  }
  // Order ids resting at one price, in time priority.
  std::vector<OrderId> queue_at(Side which, Price price) const {
    std::vector<OrderId> out;
    if (const PriceLevel* level = book.levels(which).find(price)) {
      for (const Order* order = level->orders.front(); order != nullptr; order = order->next) out.push_back(order->id);
    }
    return out;
  }
};

}  // namespace venue::testing
