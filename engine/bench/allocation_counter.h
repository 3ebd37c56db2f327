// Counts heap allocations in a benchmark binary: its operator new is replaced
// (allocation_counter.cpp), so allocations_on_hot_path is a count, not an estimate.
#pragma once

#include <cstdint>

namespace venue::bench {

// Allocations made since the program started (every thread).
std::uint64_t allocations();

}  // namespace venue::bench
