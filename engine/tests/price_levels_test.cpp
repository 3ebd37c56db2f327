#include "book/price_levels.h"

#include <gtest/gtest.h>

#include <vector>

namespace venue {
namespace {

std::vector<Price> walk(const PriceLevels& levels) {
  std::vector<Price> prices;
  for (const PriceLevel* level = levels.best(); level != nullptr; level = levels.next_worse(level)) {
    prices.push_back(level->price);
  }
  return prices;
}

TEST(PriceLevels, BestBidIsTheHighestPrice) {
  ObjectPool<PriceLevel> pool(4);
  PriceLevels bids(Side::Buy, 1, 100'000, pool);
  bids.find_or_insert(100);
  bids.find_or_insert(300);
  bids.find_or_insert(200);
  EXPECT_EQ(bids.best()->price, 300);
  EXPECT_EQ(walk(bids), (std::vector<Price>{300, 200, 100}));
}

TEST(PriceLevels, BestAskIsTheLowestPrice) {
  ObjectPool<PriceLevel> pool(4);
  PriceLevels asks(Side::Sell, 1, 100'000, pool);
  asks.find_or_insert(300);
  asks.find_or_insert(100);
  asks.find_or_insert(99'999);
  EXPECT_EQ(asks.best()->price, 100);
  EXPECT_EQ(walk(asks), (std::vector<Price>{100, 300, 99'999}));
}

TEST(PriceLevels, ErasingTheBestMakesTheNextBestBest) {
  ObjectPool<PriceLevel> pool(4);
  PriceLevels asks(Side::Sell, 1, 100'000, pool);
  asks.find_or_insert(100);
  asks.find_or_insert(90'000);
  asks.erase(asks.best());
  EXPECT_EQ(asks.best()->price, 90'000);
  asks.erase(asks.best());
  EXPECT_TRUE(asks.empty());
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(PriceLevels, FindOrInsertReturnsTheExistingLevel) {
  ObjectPool<PriceLevel> pool(4);
  PriceLevels bids(Side::Buy, 1, 1000, pool);
  PriceLevel* level = bids.find_or_insert(500);
  EXPECT_EQ(bids.find_or_insert(500), level);
  EXPECT_EQ(bids.find(500), level);
  EXPECT_EQ(bids.find(501), nullptr);
  EXPECT_EQ(bids.level_count(), 1u);
}

TEST(PriceLevels, BandEdgesAreValidPrices) {
  ObjectPool<PriceLevel> pool(4);
  PriceLevels bids(Side::Buy, 10, 20, pool);
  bids.find_or_insert(10);
  bids.find_or_insert(20);
  EXPECT_EQ(walk(bids), (std::vector<Price>{20, 10}));
}

}  // namespace
}  // namespace venue
