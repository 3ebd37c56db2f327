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

}  // namespace
}  // namespace venue
