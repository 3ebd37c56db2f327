#include "book/price_bitmap.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace venue {
namespace {

TEST(PriceBitmap, EmptyBitmapFindsNothing) {
  PriceBitmap bitmap(1000);
  EXPECT_EQ(bitmap.next_at_or_above(0), PriceBitmap::npos);
  EXPECT_EQ(bitmap.next_at_or_below(999), PriceBitmap::npos);
}

TEST(PriceBitmap, FindsAcrossWordsAndSummaryLevels) {
  PriceBitmap bitmap(1 << 20);  // four levels of words
  bitmap.set(3);
  bitmap.set(1'000'000);
  EXPECT_EQ(bitmap.next_at_or_above(4), 1'000'000u);
  EXPECT_EQ(bitmap.next_at_or_below(999'999), 3u);
  EXPECT_EQ(bitmap.next_at_or_above(3), 3u);
  EXPECT_EQ(bitmap.next_at_or_below(1'000'000), 1'000'000u);
  EXPECT_EQ(bitmap.next_at_or_above(1'000'001), PriceBitmap::npos);
  EXPECT_EQ(bitmap.next_at_or_below(2), PriceBitmap::npos);
  bitmap.clear(1'000'000);
  EXPECT_EQ(bitmap.next_at_or_above(4), PriceBitmap::npos);
  EXPECT_EQ(bitmap.next_at_or_below((1 << 20) - 1), 3u);
}

TEST(PriceBitmap, BandEdgesAreUsable) {
  PriceBitmap bitmap(64 * 64 + 1);  // a partial last word on two levels
  bitmap.set(0);
  bitmap.set(64 * 64);
  EXPECT_EQ(bitmap.next_at_or_above(1), 64u * 64u);
  EXPECT_EQ(bitmap.next_at_or_below(64 * 64 - 1), 0u);
}

TEST(PriceBitmap, AgreesWithStdSetUnderRandomChurn) {
  constexpr std::uint64_t kPositions = 300'000;
  std::mt19937_64 random(7);
  PriceBitmap bitmap(kPositions);
  std::set<std::uint64_t> reference;
  for (int step = 0; step < 100000; ++step) {
    // Clustered positions, so words fill and empty and the summaries change.
    const std::uint64_t pos = (random() % 2 == 0) ? random() % 5000 : random() % kPositions;
    if (random() % 2 == 0) {
      bitmap.set(pos);
      reference.insert(pos);
    } else {
      bitmap.clear(pos);
      reference.erase(pos);
    }
    const std::uint64_t probe = random() % kPositions;
    auto above = reference.lower_bound(probe);
    EXPECT_EQ(bitmap.next_at_or_above(probe), above == reference.end() ? PriceBitmap::npos : *above);
    auto below = reference.upper_bound(probe);
    EXPECT_EQ(bitmap.next_at_or_below(probe), below == reference.begin() ? PriceBitmap::npos : *std::prev(below));
  }
}

}  // namespace
}  // namespace venue
