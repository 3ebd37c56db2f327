#include "server/event_log.h"

#include <gtest/gtest.h>

#include <vector>

namespace venue {
namespace {

Event numbered(std::uint64_t sequence) {
  Event event;
  event.sequence = sequence;
  event.type = EventType::Level;
  event.level.price = static_cast<Price>(sequence * 10);
  return event;
}

std::vector<std::uint64_t> sequences(const std::vector<Event>& events) {
  std::vector<std::uint64_t> out;
  for (const Event& event : events) {
    out.push_back(event.sequence);
    EXPECT_EQ(event.level.price, static_cast<Price>(event.sequence * 10));
  }
  return out;
}

TEST(EventLog, ReadsFromAnySequenceItHolds) {
  EventLog log(8);
  for (std::uint64_t s = 1; s <= 5; ++s) log.append(numbered(s));
  std::vector<Event> out;
  ASSERT_TRUE(log.read(2, 100, out));
  EXPECT_EQ(sequences(out), (std::vector<std::uint64_t>{2, 3, 4, 5}));
  out.clear();
  ASSERT_TRUE(log.read(1, 2, out));
  EXPECT_EQ(sequences(out), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(log.next_sequence(), 6u);
}

TEST(EventLog, ReadingPastTheEndGivesNothing) {
  EventLog log(8);
  log.append(numbered(1));
  std::vector<Event> out;
  ASSERT_TRUE(log.read(2, 10, out));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(log.read(50, 10, out));
  EXPECT_TRUE(out.empty());
}

TEST(EventLog, KeepsOnlyTheNewestCapacityEvents) {
  EventLog log(4);
  for (std::uint64_t s = 1; s <= 10; ++s) log.append(numbered(s));
  EXPECT_EQ(log.first_sequence(), 7u);
  std::vector<Event> out;
  EXPECT_FALSE(log.read(6, 10, out));
  ASSERT_TRUE(log.read(7, 10, out));
  EXPECT_EQ(sequences(out), (std::vector<std::uint64_t>{7, 8, 9, 10}));
}

TEST(EventLog, StartingPastOneWrapsConsistently) {
  EventLog log(3);
  for (std::uint64_t s = 100; s <= 107; ++s) log.append(numbered(s));
  std::vector<Event> out;
  ASSERT_TRUE(log.read(105, 10, out));
  EXPECT_EQ(sequences(out), (std::vector<std::uint64_t>{105, 106, 107}));
}

}  // namespace
}  // namespace venue
