// The venue's vocabulary inside the engine. Enum values equal the proto's, so the
// server converts by a checked cast and the core never includes generated code.
#pragma once

#include <cstdint>

namespace venue {

using Price = std::int64_t;     // ticks of the instrument
using Quantity = std::int64_t;  // lots of the instrument
using OrderId = std::uint64_t;
using AccountId = std::uint64_t;
using InstrumentId = std::uint32_t;

enum class Side : std::uint8_t { Unspecified = 0, Buy = 1, Sell = 2 };

enum class OrderType : std::uint8_t { Unspecified = 0, Limit = 1, Market = 2 };

enum class TimeInForce : std::uint8_t { Unspecified = 0, Gtc = 1, Ioc = 2, Fok = 3, Day = 4 };

enum class ExecType : std::uint8_t {
  Unspecified = 0,
  New = 1,
  Trade = 2,
  Canceled = 3,
  Replaced = 4,
  Rejected = 5,
  Expired = 6,
  CancelRejected = 7,   // a cancel refused; the order as it is (FIX OrderCancelReject)
  ReplaceRejected = 8,  // a replace refused; the order as it is, unchanged
};

enum class OrderStatus : std::uint8_t {
  Unspecified = 0,
  New = 1,
  PartiallyFilled = 2,
  Filled = 3,
  Canceled = 4,
  Rejected = 5,
  Expired = 6,
};

enum class RejectReason : std::uint8_t {
  None = 0,
  UnknownInstrument = 1,
  InvalidPrice = 2,
  InvalidQuantity = 3,
  PriceOutOfBand = 4,
  DuplicateOrderId = 5,
  UnknownOrder = 6,
  Unsupported = 7,
  WouldTakeLiquidity = 8,
  FokNotFillable = 9,
  ReplaceBelowFilled = 10,
  SelfTrade = 11,
  NoLiquidity = 12,
  TooLateToCancel = 13,  // a cancel or replace of an order already done
};

// Largest order quantity the engine accepts, whatever the gateway says: with it, a
// level's total (many orders) and any notional (checked per instrument) fit in int64.
inline constexpr Quantity kMaxOrderQuantity = 1'000'000'000'000;

// What happens when an order would trade with a resting order of its own account
// (self-trade prevention). The venue picks one mode for all its instruments.
enum class StpMode : std::uint8_t {
  CancelNewest = 0,  // the incoming order's remainder is canceled; the resting one stays
  CancelOldest = 1,  // the resting order is canceled; the incoming one matches on
  CancelBoth = 2,    // both are canceled
};

constexpr Side opposite(Side side) { return side == Side::Buy ? Side::Sell : Side::Buy; }

}  // namespace venue
