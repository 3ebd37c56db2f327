// Timing for the benchmarks: the TSC (constant and invariant on the machines we run on),
// calibrated against the steady clock, and exact percentiles from every sample.
#pragma once

#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace venue::bench {

inline std::uint64_t ticks() { return __rdtsc(); }

// TSC ticks per nanosecond, measured over `window`.
inline double ticks_per_ns(std::chrono::milliseconds window = std::chrono::milliseconds(200)) {
  const auto wall_start = std::chrono::steady_clock::now();
  const std::uint64_t start = ticks();
  std::this_thread::sleep_for(window);
  const std::uint64_t end = ticks();
  const auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - wall_start);
  return static_cast<double>(end - start) / static_cast<double>(wall.count());
}

struct Percentiles {
  double p50_ns = 0;
  double p99_ns = 0;
  double p999_ns = 0;
  double max_ns = 0;
};

// `samples` in ticks; sorted in place.
inline Percentiles percentiles(std::vector<std::uint64_t>& samples, double per_ns) {
  Percentiles out;
  if (samples.empty()) return out;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    const auto index = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1));
    return static_cast<double>(samples[index]) / per_ns;
  };
  out.p50_ns = at(0.50);
  out.p99_ns = at(0.99);
  out.p999_ns = at(0.999);
  out.max_ns = static_cast<double>(samples.back()) / per_ns;
  return out;
}

}  // namespace venue::bench
