#include "book/open_hash_map.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>
#include <vector>

namespace venue {
namespace {

TEST(OpenHashMap, FindsWhatWasInsertedAndNothingElse) {
  int a = 1, b = 2;
  OpenHashMap<std::uint64_t, int*> map;
  EXPECT_TRUE(map.insert(10, &a));
  EXPECT_TRUE(map.insert(0, &b));  // key 0 is an ordinary key
  EXPECT_EQ(map.find(10), &a);
  EXPECT_EQ(map.find(0), &b);
  EXPECT_EQ(map.find(11), nullptr);
  EXPECT_EQ(map.size(), 2u);
}

TEST(OpenHashMap, InsertOfPresentKeyChangesNothing) {
  int a = 1, b = 2;
  OpenHashMap<std::uint64_t, int*> map;
  EXPECT_TRUE(map.insert(5, &a));
  EXPECT_FALSE(map.insert(5, &b));
  EXPECT_EQ(map.find(5), &a);
}

TEST(OpenHashMap, EraseKeepsCollidingKeysFindable) {
  // Dense keys in a small table collide; erasing from the middle of a probe run must
  // not hide the keys after it.
  std::vector<int> values(200);
  OpenHashMap<std::uint64_t, int*> map;
  for (std::uint64_t k = 0; k < 200; ++k) map.insert(k, &values[k]);
  for (std::uint64_t k = 0; k < 200; k += 3) EXPECT_TRUE(map.erase(k));
  for (std::uint64_t k = 0; k < 200; ++k) EXPECT_EQ(map.find(k), k % 3 == 0 ? nullptr : &values[k]) << k;
  EXPECT_FALSE(map.erase(0));
}

TEST(OpenHashMap, AgreesWithStdUnorderedMapUnderRandomChurn) {
  std::mt19937_64 random(12345);
  std::vector<int> values(1 << 12);
  OpenHashMap<std::int64_t, int*> map;
  std::unordered_map<std::int64_t, int*> reference;
  for (int step = 0; step < 200000; ++step) {
    const std::int64_t key = static_cast<std::int64_t>(random() % 4096) - 2048;
    int* value = &values[static_cast<std::size_t>(random() % values.size())];
    switch (random() % 3) {
      case 0:
        EXPECT_EQ(map.insert(key, value), reference.emplace(key, value).second);
        break;
      case 1:
        EXPECT_EQ(map.erase(key), reference.erase(key) == 1);
        break;
      default: {
        auto it = reference.find(key);
        EXPECT_EQ(map.find(key), it == reference.end() ? nullptr : it->second);
      }
    }
  }
  EXPECT_EQ(map.size(), reference.size());
  std::size_t visited = 0;
  map.for_each([&](std::int64_t key, int* value) {
    ++visited;
    EXPECT_EQ(reference.at(key), value);
  });
  EXPECT_EQ(visited, reference.size());
}

TEST(OpenHashMap, EveryKeyStaysFindableAfterEachStepOfAGrowth) {
  // After every single insert and erase (each moves a few entries to the bigger table),
  // every key in the map is found, and every key taken out is not. Random keys: at half
  // full, many share probe runs, whose order the moving must keep.
  std::mt19937_64 random(4242);
  std::vector<std::uint64_t> keys(3000);
  for (std::uint64_t& key : keys) key = random();
  std::vector<int> values(keys.size());
  OpenHashMap<std::uint64_t, int*> map;
  auto all_found = [&](std::size_t inserted, std::size_t erased_below) {
    for (std::size_t i = 0; i < inserted; ++i) {
      const bool gone = i < erased_below && i % 3 == 0;
      if (map.find(keys[i]) != (gone ? nullptr : &values[i])) return false;
    }
    return true;
  };
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(map.insert(keys[i], &values[i]));
    ASSERT_TRUE(all_found(i + 1, 0)) << "after inserting key " << i;
  }
  for (std::size_t i = 0; i < keys.size(); i += 3) {
    ASSERT_TRUE(map.erase(keys[i]));
    ASSERT_TRUE(all_found(keys.size(), i + 1)) << "after erasing key " << i;
  }
  EXPECT_EQ(map.size(), 2000u);
}

TEST(OpenHashMap, AgreesWithStdUnorderedMapWhileItGrowsStepByStep) {
  // Mostly inserts over a wide key space: the map grows from 16 slots through a dozen
  // doublings, and every insert, erase and find meets one half-moved (erases and finds
  // of keys still in the old table among them). for_each, midway, sees each key once.
  std::mt19937_64 random(777);
  int value = 0;
  OpenHashMap<std::uint64_t, int*> map;
  std::unordered_map<std::uint64_t, int*> reference;
  std::vector<std::uint64_t> keys;
  for (int step = 0; step < 300000; ++step) {
    const auto roll = random() % 100;
    if (roll < 60 || keys.empty()) {
      const std::uint64_t key = random() % 4'000'000;
      int* v = &value;
      EXPECT_EQ(map.insert(key, v), reference.emplace(key, v).second);
      keys.push_back(key);
    } else {
      const std::uint64_t key = keys[static_cast<std::size_t>(random() % keys.size())];
      if (roll < 85) {
        EXPECT_EQ(map.erase(key), reference.erase(key) == 1) << key;
      } else {
        auto it = reference.find(key);
        EXPECT_EQ(map.find(key), it == reference.end() ? nullptr : it->second) << key;
      }
    }
    ASSERT_EQ(map.size(), reference.size()) << "at step " << step;
    if (step == 150001) {
      std::unordered_map<std::uint64_t, int> seen;
      map.for_each([&seen](std::uint64_t key, int*) { ++seen[key]; });
      EXPECT_EQ(seen.size(), reference.size());
      for (const auto& [key, times] : seen) EXPECT_EQ(times, 1) << key;
    }
  }
  for (const auto& [key, v] : reference) EXPECT_EQ(map.find(key), v) << key;
}

}  // namespace
}  // namespace venue
