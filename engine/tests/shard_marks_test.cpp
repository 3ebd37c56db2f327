// The per-shard high-water mark: a command at or below its shard's mark was applied
// before (a submitter died before XACK) and is skipped, not applied again.
#include "matching/shard_marks.h"

#include <gtest/gtest.h>

#include "matching/exchange.h"
#include "recording_sink.h"

namespace venue::testing {
namespace {

TEST(ShardMarks, CommandAtOrBelowTheMarkIsADuplicate) {
  ShardMarks marks;
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 100, 5}));
  EXPECT_FALSE(marks.advance(CommandOrigin{0, 100, 5}));
  EXPECT_FALSE(marks.advance(CommandOrigin{0, 100, 4}));
  EXPECT_FALSE(marks.advance(CommandOrigin{0, 99, 9}));
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 100, 6}));
  EXPECT_EQ(*marks.mark(0), (StreamId{100, 6}));
}

TEST(ShardMarks, StreamIdsCompareByMillisecondsThenSequence) {
  ShardMarks marks;
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 100, 50}));
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 101, 0}));
  EXPECT_EQ(*marks.mark(0), (StreamId{101, 0}));
}

TEST(ShardMarks, CommandsOfOneStreamEntryEachApplyOnceInIndexOrder) {
  ShardMarks marks;
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 100, 5, 0}));
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 100, 5, 1}));
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 100, 5, 2}));
  EXPECT_FALSE(marks.advance(CommandOrigin{0, 100, 5, 1}));  // the entry sent again
  EXPECT_FALSE(marks.advance(CommandOrigin{0, 100, 5, 2}));
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 100, 6, 0}));  // the next entry starts at 0
  EXPECT_EQ(*marks.mark(0), (StreamId{100, 6, 0}));
}

TEST(ShardMarks, EachShardHasItsOwnMark) {
  ShardMarks marks;
  EXPECT_TRUE(marks.advance(CommandOrigin{1, 500, 0}));
  EXPECT_TRUE(marks.advance(CommandOrigin{2, 100, 0}));
  EXPECT_FALSE(marks.advance(CommandOrigin{1, 100, 0}));
  EXPECT_EQ(marks.size(), 2u);
  EXPECT_EQ(marks.mark(3), nullptr);
  int visited = 0;
  marks.for_each([&](std::uint32_t shard, const StreamId& mark) {
    ++visited;
    EXPECT_EQ(mark, shard == 1 ? (StreamId{500, 0}) : (StreamId{100, 0}));
  });
  EXPECT_EQ(visited, 2);
}

TEST(ShardMarks, CommandsFromOutsideAnyStreamAreNeverDeduplicated) {
  ShardMarks marks;
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 0, 0}));
  EXPECT_TRUE(marks.advance(CommandOrigin{0, 0, 0}));
  EXPECT_EQ(marks.size(), 0u);
}

TEST(ShardMarks, ExchangeSkipsARedeliveredCommandWithoutAnyEvent) {
  RecordingSink sink;
  Exchange exchange(sink);
  ASSERT_TRUE(exchange.add_instrument(Instrument{1, 1, 1000}));
  const Command first = Command::make(CommandOrigin{2, 1700, 1}, limit_order(1, Side::Buy, 100, 5));
  const Command second = Command::make(CommandOrigin{2, 1700, 2}, limit_order(2, Side::Buy, 100, 5));
  EXPECT_EQ(exchange.apply(first, 1), ApplyResult::Applied);
  EXPECT_EQ(exchange.apply(second, 2), ApplyResult::Applied);
  sink.take();
  // A new submitter re-reads the shard's tail it cannot know was applied.
  EXPECT_EQ(exchange.apply(first, 3), ApplyResult::Duplicate);
  EXPECT_EQ(exchange.apply(second, 4), ApplyResult::Duplicate);
  EXPECT_TRUE(sink.events.empty());
  EXPECT_EQ(exchange.commands_applied(), 2u);
  EXPECT_EQ(exchange.duplicates(), 2u);
  EXPECT_EQ(exchange.book(1)->levels(Side::Buy).best()->quantity, 10);
  EXPECT_EQ(*exchange.shard_marks().mark(2), (StreamId{1700, 2}));
}

TEST(ShardMarks, RejectedCommandsAdvanceTheMarkToo) {
  RecordingSink sink;
  Exchange exchange(sink);
  const Command rejected = Command::make(CommandOrigin{0, 10, 1}, limit_order(1, Side::Buy, 100, 5));
  EXPECT_EQ(exchange.apply(rejected, 1), ApplyResult::Applied);  // unknown instrument
  EXPECT_EQ(exchange.apply(rejected, 2), ApplyResult::Duplicate);
  EXPECT_EQ(sink.events.size(), 1u);
}

}  // namespace
}  // namespace venue::testing
