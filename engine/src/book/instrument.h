// What the engine knows of an instrument: its id and the price band it accepts.
#pragma once

#include "book/types.h"

namespace venue {

struct Instrument {
  InstrumentId id = 0;
  Price min_price = 1;  // ticks, inclusive
  Price max_price = 1;  // ticks, inclusive

  // The level bitmap spans the band (one bit per tick, untouched pages free), hence a
  // bound: 2^32 ticks is 512 MiB of address space per side.
  static constexpr Price kMaxBandWidth = Price{1} << 32;

  bool valid() const { return min_price >= 1 && max_price >= min_price && max_price - min_price < kMaxBandWidth; }
};

}  // namespace venue
