#include "server/engine_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace venue {
namespace {

using Outcome = ParsedOptions::Outcome;

TEST(EngineOptions, DefaultsListenOnLocalhost50051AsPartitionZero) {
  const ParsedOptions parsed = parse_engine_options({});
  ASSERT_EQ(parsed.outcome, Outcome::Run);
  EXPECT_EQ(parsed.options.listen, "127.0.0.1:50051");
  EXPECT_EQ(parsed.options.partition, 0u);
  EXPECT_TRUE(parsed.options.instruments.empty());
}

TEST(EngineOptions, ReadsEveryFlagInBothSpellings) {
  const ParsedOptions parsed =
      parse_engine_options({"--listen", "0.0.0.0:6000", "--partition=3", "--instrument", "1:1:100000000",
                            "--instrument=2:5:10", "--data-dir", "/tmp/x", "--event-log-events", "64"});
  ASSERT_EQ(parsed.outcome, Outcome::Run) << parsed.error;
  EXPECT_EQ(parsed.options.listen, "0.0.0.0:6000");
  EXPECT_EQ(parsed.options.partition, 3u);
  ASSERT_EQ(parsed.options.instruments.size(), 2u);
  EXPECT_EQ(parsed.options.instruments[0].id, 1u);
  EXPECT_EQ(parsed.options.instruments[0].max_price, 100000000);
  EXPECT_EQ(parsed.options.instruments[1].min_price, 5);
  EXPECT_EQ(parsed.options.data_dir, "/tmp/x");
  EXPECT_EQ(parsed.options.event_log_events, 64u);
}

TEST(EngineOptions, HelpIsAskedFor) {
  EXPECT_EQ(parse_engine_options({"--help"}).outcome, Outcome::Help);
  EXPECT_NE(engine_usage().find("--data-dir"), std::string::npos);
  EXPECT_NE(engine_usage().find("journal"), std::string::npos);
}

TEST(EngineOptions, BadFlagsAreErrorsThatNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--bogus"}, "--bogus"},
      {{"--listen"}, "--listen"},
      {{"--listen", "localhost"}, "--listen"},
      {{"--listen", "localhost:99999"}, "--listen"},
      {{"--partition", "-1"}, "--partition"},
      {{"--partition", "x"}, "--partition"},
      {{"--instrument", "1:2"}, "--instrument"},
      {{"--instrument", "0:1:2"}, "--instrument"},
      {{"--instrument", "1:0:2"}, "--instrument"},
      {{"--instrument", "1:5:2"}, "--instrument"},
      {{"--instrument", "1:1:2x"}, "--instrument"},
      {{"--instrument", "1:1:2", "--instrument", "1:1:3"}, "--instrument"},
      {{"--data-dir="}, "--data-dir"},
      {{"--event-log-events", "0"}, "--event-log-events"},
  };
  for (const auto& [args, flag] : cases) {
    const ParsedOptions parsed = parse_engine_options(args);
    EXPECT_EQ(parsed.outcome, Outcome::Error) << args[0];
    EXPECT_NE(parsed.error.find(flag), std::string::npos) << parsed.error;
  }
}

TEST(EngineOptions, JournalMatchingAndMachineFlagsHaveSafeDefaults) {
  const EngineOptions options = parse_engine_options({}).options;
  EXPECT_EQ(options.fsync, FsyncPolicy::Batch);
  EXPECT_EQ(options.snapshot_every, 1'000'000u);
  EXPECT_EQ(options.keep_snapshots, 2u);
  EXPECT_EQ(options.commit_part_us, 5000);
  EXPECT_EQ(options.stp, StpMode::CancelNewest);
  EXPECT_EQ(options.cpus, "auto");
  EXPECT_EQ(options.hugepages, HugePages::Try);
}

TEST(EngineOptions, ReadsJournalMatchingAndMachineFlags) {
  const ParsedOptions parsed =
      parse_engine_options({"--fsync", "interval", "--fsync-interval-ms=20", "--snapshot-every", "5000", "--stp",
                            "cancel-both", "--keep-snapshots", "5", "--cpus", "1,3-4", "--hugepages", "require", "--command-index", "99",
                            "--commit-part-us", "0"});
  ASSERT_EQ(parsed.outcome, Outcome::Run) << parsed.error;
  EXPECT_EQ(parsed.options.fsync, FsyncPolicy::Interval);
  EXPECT_EQ(parsed.options.fsync_interval_ms, 20);
  EXPECT_EQ(parsed.options.snapshot_every, 5000u);
  EXPECT_EQ(parsed.options.keep_snapshots, 5u);
  EXPECT_EQ(parsed.options.stp, StpMode::CancelBoth);
  EXPECT_EQ(parsed.options.cpus, "1,3-4");
  EXPECT_EQ(parsed.options.hugepages, HugePages::Require);
  EXPECT_EQ(parsed.options.command_index, 99u);
  EXPECT_EQ(parsed.options.commit_part_us, 0);
}

TEST(EngineOptions, BadJournalMatchingAndMachineValuesNameTheFlag) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--fsync", "sometimes"}, {"--stp", "cancel-all"}, {"--cpus", "2-1"}, {"--cpus", "x"},
           {"--hugepages", "yes"}, {"--snapshot-every", "-1"}, {"--fsync-interval-ms", "0"},
           {"--keep-snapshots", "-2"}, {"--commit-part-us", "-1"}, {"--commit-part-us", "5ms"}}) {
    const ParsedOptions parsed = parse_engine_options({flag, value});
    EXPECT_EQ(parsed.outcome, Outcome::Error) << flag << " " << value;
    EXPECT_NE(parsed.error.find(flag), std::string::npos) << parsed.error;
  }
}

}  // namespace
}  // namespace venue
