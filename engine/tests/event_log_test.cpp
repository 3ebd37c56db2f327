#include "server/event_log.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
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

// Bytes of this process's memory that fork() leaves out of the child (MADV_DONTFORK:
// "dc" among a mapping's VmFlags in /proc/self/smaps).
std::size_t bytes_not_forked() {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  std::size_t total = 0;
  std::size_t size = 0;
  while (std::getline(smaps, line)) {
    unsigned long start = 0;
    unsigned long end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2) {
      size = end - start;
    } else if (line.rfind("VmFlags:", 0) == 0 && (line + " ").find(" dc ") != std::string::npos) {
      total += size;
    }
  }
  return total;
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

TEST(EventLog, ItsMemoryIsLeftOutOfAForkedChild) {
  // A snapshot's child is forked from the matching thread: the log's pages are neither
  // copied into it (page tables) nor copied again as matching writes them.
  const std::size_t before = bytes_not_forked();
  constexpr std::size_t kCapacity = 1 << 16;
  EventLog log(kCapacity);
  for (std::uint64_t s = 1; s <= 1000; ++s) log.append(numbered(s));
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_GE(bytes_not_forked() - before, kCapacity * sizeof(Event) - 2 * page);
  std::vector<Event> out;
  ASSERT_TRUE(log.read(990, 20, out));  // and the log works as before
  EXPECT_EQ(out.size(), 11u);
}

TEST(EventLog, GivesItsMemoryBackToForkedChildrenWhenFreed) {
  // Freed, the ring's pages may go back to the heap (a small log's do), and what is
  // allocated there next must reach a child again: a snapshot's child reads the books.
  // glibc puts it in the heap (not a mapping of its own) and keeps the heap's top. A
  // sanitizer's allocator refuses these (mallopt answers 0); it keeps freed memory in
  // quarantine, mapped, which tests the same.
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  const std::size_t before = bytes_not_forked();
  {
    EventLog log(1 << 12);
    EXPECT_GT(bytes_not_forked(), before);
  }
  EXPECT_EQ(bytes_not_forked(), before);
  ::mallopt(M_MMAP_THRESHOLD, 128 << 10);  // glibc's defaults
  ::mallopt(M_TRIM_THRESHOLD, 128 << 10);
}

}  // namespace
}  // namespace venue
