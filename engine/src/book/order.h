// The resting order: one pooled object per live order, linked into its level's FIFO.
#pragma once

#include <algorithm>
#include <cstring>
#include <string_view>

#include "book/types.h"

namespace venue {

struct PriceLevel;

// Held inline so that accepting an order never allocates. Longer ids are rejected
// (REJECT_REASON_UNSUPPORTED); 64 bytes covers a UUID and FIX practice.
class ClientOrderId {
 public:
  static constexpr std::size_t kMaxLength = 63;

  ClientOrderId() = default;
  explicit ClientOrderId(std::string_view text) { assign(text); }

  // Truncates beyond kMaxLength; callers validate first where it matters.
  void assign(std::string_view text) {
    length_ = static_cast<std::uint8_t>(std::min(text.size(), kMaxLength));
    // An empty view may hold no pointer at all (a reader that ran out); memcpy must not
    // be given it, even for no bytes (UBSan, found by engine/fuzz/snapshot_fuzz.cpp).
    if (length_ != 0) std::memcpy(data_, text.data(), length_);
  }
  std::string_view view() const { return {data_, length_}; }

 private:
  std::uint8_t length_ = 0;
  char data_[kMaxLength];
};

struct Order {
  // Hot fields first: the matching loop touches these and little else.
  Order* prev = nullptr;  // intrusive FIFO links within the level
  Order* next = nullptr;
  PriceLevel* level = nullptr;  // the level it rests at; null while it is a taker
  OrderId id = 0;
  AccountId account_id = 0;  // where self-trade prevention will look
  Price price = 0;
  Quantity quantity = 0;  // total order quantity (FIX OrderQty)
  Quantity cum_qty = 0;
  Quantity leaves_qty = 0;
  std::int64_t cum_notional = 0;  // sum of last_px * last_qty
  InstrumentId instrument_id = 0;
  Side side = Side::Unspecified;
  OrderType type = OrderType::Unspecified;
  TimeInForce time_in_force = TimeInForce::Unspecified;
  bool post_only = false;
  ClientOrderId client_order_id;  // cold: only copied into reports

  // The order's state as a report states it, for a live or just-filled order.
  OrderStatus status() const {
    if (leaves_qty == 0 && cum_qty > 0) return OrderStatus::Filled;
    return cum_qty > 0 ? OrderStatus::PartiallyFilled : OrderStatus::New;
  }
};

}  // namespace venue
