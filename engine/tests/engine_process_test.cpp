// Starts the real venue-engine binary on a free port and drives it over gRPC, as the
// submitter will: Submit batches, then GetBook, Health, Replay, and SIGTERM.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "engine.grpc.pb.h"

namespace {

namespace pb = ::tradingvenue::engine::v1;

// One child process with its stderr captured.
class EngineProcess {
 public:
  explicit EngineProcess(std::vector<std::string> args) {
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(pipe_fds[1], STDERR_FILENO);
      close(pipe_fds[0]);
      close(pipe_fds[1]);
      std::vector<char*> argv;
      std::string program = VENUE_ENGINE_BINARY;
      argv.push_back(program.data());
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(program.c_str(), argv.data());
      _exit(127);
    }
    close(pipe_fds[1]);
    stderr_fd_ = pipe_fds[0];
  }

  ~EngineProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stderr_fd_ >= 0) close(stderr_fd_);
  }

  // Reads stderr until a line containing `needle` (or EOF/timeout); returns that line.
  std::string wait_for_line(const std::string& needle, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (auto newline = buffer_.find('\n'); newline != std::string::npos; newline = buffer_.find('\n')) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        output_ += line + "\n";
        if (line.find(needle) != std::string::npos) return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd fd{stderr_fd_, POLLIN, 0};
      if (poll(&fd, 1, static_cast<int>(left.count())) <= 0) return "";
      char chunk[4096];
      const ssize_t n = read(stderr_fd_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Sends `signal_number` and returns the exit status (or -1 if it did not exit normally).
  int stop(int signal_number) {
    kill(pid_, signal_number);
    return wait_exit();
  }

  int wait_exit() {
    // Keep draining stderr so the child never blocks writing to it.
    for (;;) {
      char chunk[4096];
      const ssize_t n = read(stderr_fd_, chunk, sizeof chunk);
      if (n <= 0) break;
      output_.append(chunk, static_cast<std::size_t>(n));
    }
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  std::string buffer_;
  std::string output_;
};

pb::Command new_order(std::uint64_t stream_seq, std::uint64_t order_id, pb::Side side, std::int64_t price,
                      std::int64_t quantity, std::uint64_t account) {
  pb::Command command;
  command.set_shard(1);
  command.set_stream_ms(1700000000000);
  command.set_stream_seq(stream_seq);
  pb::NewOrder& order = *command.mutable_new_order();
  order.set_order_id(order_id);
  order.set_client_order_id("client-" + std::to_string(order_id));
  order.set_account_id(account);
  order.set_instrument_id(1);
  order.set_side(side);
  order.set_type(pb::ORDER_TYPE_LIMIT);
  order.set_time_in_force(pb::TIME_IN_FORCE_GTC);
  order.set_price(price);
  order.set_quantity(quantity);
  return command;
}

std::vector<std::string> kinds(const pb::ReportBatch& batch) {
  std::vector<std::string> out;
  for (const pb::Event& event : batch.events()) {
    if (event.has_trade()) {
      out.push_back("trade");
    } else if (event.has_level()) {
      out.push_back("level " + pb::LevelUpdate::Action_Name(event.level().action()));
    } else {
      out.push_back(pb::ExecType_Name(event.report().exec_type()) + " " + std::to_string(event.report().order_id()));
    }
  }
  return out;
}

using S = std::vector<std::string>;

TEST(EngineProcess, ServesSubmitBookHealthAndReplayThenStopsOnSigterm) {
  const std::string data_dir = ::testing::TempDir() + "venue-engine-test-" + std::to_string(getpid());
  EngineProcess engine({"--listen", "127.0.0.1:0", "--partition", "0", "--instrument", "1:1:1000000",
                        "--instrument", "2:1:1000", "--instrument", "3:100:200", "--data-dir", data_dir});
  const std::string started = engine.wait_for_line("listening on");
  ASSERT_NE(started, "") << engine.output();
  EXPECT_NE(started.find("venue-engine partition 0 listening on 127.0.0.1:"), std::string::npos) << started;
  EXPECT_NE(started.find("with 3 instruments"), std::string::npos) << started;
  const auto port_at = started.find("127.0.0.1:") + 10;
  const std::string port = started.substr(port_at, started.find(' ', port_at) - port_at);
  EXPECT_EQ(access(data_dir.c_str(), F_OK), 0) << "--data-dir is created";

  auto channel = grpc::CreateChannel("127.0.0.1:" + port, grpc::InsecureChannelCredentials());
  auto stub = pb::MatchingEngine::NewStub(channel);
  ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)));

  {
    grpc::ClientContext context;
    auto stream = stub->Submit(&context);

    pb::CommandBatch first;
    first.set_batch_id(101);
    *first.add_commands() = new_order(1, 1, pb::SIDE_SELL, 500, 10, /*account=*/1);
    ASSERT_TRUE(stream->Write(first));
    pb::ReportBatch reply;
    ASSERT_TRUE(stream->Read(&reply));
    EXPECT_EQ(reply.batch_id(), 101u);
    EXPECT_EQ(reply.partition(), 0u);
    EXPECT_EQ(kinds(reply), (S{"EXEC_TYPE_NEW 1", "level ACTION_ADD"}));
    EXPECT_EQ(reply.events(0).sequence(), 1u);
    EXPECT_EQ(reply.next_sequence(), 3u);

    pb::CommandBatch second;
    second.set_batch_id(102);
    *second.add_commands() = new_order(2, 2, pb::SIDE_BUY, 500, 4, /*account=*/2);
    ASSERT_TRUE(stream->Write(second));
    ASSERT_TRUE(stream->Read(&reply));
    EXPECT_EQ(reply.batch_id(), 102u);
    EXPECT_EQ(kinds(reply), (S{"EXEC_TYPE_NEW 2", "trade", "EXEC_TYPE_TRADE 1", "EXEC_TYPE_TRADE 2",
                               "level ACTION_CHANGE"}));
    for (int i = 0; i < reply.events_size(); ++i) {
      EXPECT_EQ(reply.events(i).sequence(), 3u + static_cast<std::uint64_t>(i));
      EXPECT_GT(reply.events(i).timestamp_ns(), 0);
    }
    const pb::Trade& trade = reply.events(1).trade();
    EXPECT_EQ(trade.trade_id(), 1u);
    EXPECT_EQ(trade.price(), 500);
    EXPECT_EQ(trade.quantity(), 4);
    EXPECT_EQ(trade.buy_order_id(), 2u);
    EXPECT_EQ(trade.sell_order_id(), 1u);
    const pb::ExecutionReport& taker = reply.events(3).report();
    EXPECT_EQ(taker.order_status(), pb::ORDER_STATUS_FILLED);
    EXPECT_EQ(taker.client_order_id(), "client-2");
    EXPECT_EQ(taker.cum_notional(), 2000);
    EXPECT_EQ(taker.stream_seq(), 2u);
    EXPECT_EQ(reply.events(4).level().quantity(), 6);
    EXPECT_EQ(reply.next_sequence(), 8u);

    // A submitter that took the shard over resends what it cannot know was applied.
    pb::CommandBatch resent;
    resent.set_batch_id(103);
    *resent.add_commands() = new_order(2, 2, pb::SIDE_BUY, 500, 4, 2);
    *resent.add_commands() = new_order(3, 3, pb::SIDE_BUY, 499, 7, 2);
    ASSERT_TRUE(stream->Write(resent));
    ASSERT_TRUE(stream->Read(&reply));
    EXPECT_EQ(reply.batch_id(), 103u);
    // Order 2 is not applied again, but its original events are sent again, as they were.
    ASSERT_EQ(reply.events_size(), 7);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(reply.events(i).sequence(), 3u + static_cast<std::uint64_t>(i));
    EXPECT_EQ(reply.events(0).report().order_id(), 2u);
    EXPECT_EQ(reply.events(1).trade().trade_id(), 1u);
    EXPECT_EQ(reply.events(6).sequence(), 9u);
    EXPECT_EQ(reply.events(5).report().order_id(), 3u);
    EXPECT_EQ(reply.events(5).report().exec_type(), pb::EXEC_TYPE_NEW);

    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }

  {
    grpc::ClientContext context;
    pb::BookRequest request;
    request.set_instrument_id(1);
    pb::BookSnapshot book;
    ASSERT_TRUE(stub->GetBook(&context, request, &book).ok());
    ASSERT_EQ(book.asks_size(), 1);
    EXPECT_EQ(book.asks(0).price(), 500);
    EXPECT_EQ(book.asks(0).quantity(), 6);
    EXPECT_EQ(book.asks(0).orders(), 1u);
    ASSERT_EQ(book.bids_size(), 1);
    EXPECT_EQ(book.bids(0).price(), 499);
    EXPECT_EQ(book.sequence(), 9u);
  }
  {
    grpc::ClientContext context;
    pb::BookRequest request;
    request.set_instrument_id(42);
    pb::BookSnapshot book;
    EXPECT_EQ(stub->GetBook(&context, request, &book).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    pb::HealthResponse health;
    ASSERT_TRUE(stub->Health(&context, pb::HealthRequest{}, &health).ok());
    EXPECT_TRUE(health.serving());
    EXPECT_EQ(health.partition(), 0u);
    EXPECT_EQ(health.next_sequence(), 10u);
    EXPECT_EQ(health.commands_applied(), 3u);
    ASSERT_EQ(health.shard_marks_size(), 1);
    EXPECT_EQ(health.shard_marks(0).shard(), 1u);
    EXPECT_EQ(health.shard_marks(0).stream_ms(), 1700000000000u);
    EXPECT_EQ(health.shard_marks(0).stream_seq(), 3u);
  }
  {
    grpc::ClientContext context;
    pb::ReplayRequest request;
    request.set_from_sequence(3);
    auto reader = stub->Replay(&context, request);
    pb::ReportBatch batch;
    std::vector<std::uint64_t> sequences;
    while (reader->Read(&batch)) {
      EXPECT_EQ(batch.batch_id(), 0u);
      for (const pb::Event& event : batch.events()) sequences.push_back(event.sequence());
    }
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(sequences, (std::vector<std::uint64_t>{3, 4, 5, 6, 7, 8, 9}));
  }

  EXPECT_EQ(engine.stop(SIGTERM), 0) << engine.output();
}

// The port of a started engine's "listening on 127.0.0.1:PORT" line, and a stub to it.
std::unique_ptr<pb::MatchingEngine::Stub> connect(const std::string& started) {
  const auto port_at = started.find("127.0.0.1:") + 10;
  const std::string port = started.substr(port_at, started.find(' ', port_at) - port_at);
  auto channel = grpc::CreateChannel("127.0.0.1:" + port, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) return nullptr;
  return pb::MatchingEngine::NewStub(channel);
}

std::string replay_from_one(pb::MatchingEngine::Stub& stub) {
  grpc::ClientContext context;
  pb::ReplayRequest request;
  request.set_from_sequence(1);
  auto reader = stub.Replay(&context, request);
  pb::ReportBatch batch;
  std::string all;
  while (reader->Read(&batch)) {
    for (const pb::Event& event : batch.events()) all += event.SerializeAsString();
  }
  return reader->Finish().ok() ? all : "failed";
}

std::string book_of(pb::MatchingEngine::Stub& stub) {
  grpc::ClientContext context;
  pb::BookRequest request;
  request.set_instrument_id(1);
  pb::BookSnapshot book;
  return stub.GetBook(&context, request, &book).ok() ? book.SerializeAsString() : "failed";
}

TEST(EngineProcess, SigkilledEngineRestartsOnItsDataDirWithTheSameBookSequencesAndReports) {
  const std::string data_dir = ::testing::TempDir() + "venue-engine-restart-" + std::to_string(getpid());
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--instrument", "1:1:1000", "--data-dir",
                                         data_dir, "--snapshot-every", "3", "--cpus", "none"};
  pb::CommandBatch last;
  pb::ReportBatch last_answer;
  std::string replay_before;
  std::string book_before;
  {
    EngineProcess engine(args);
    auto stub = connect(engine.wait_for_line("listening on"));
    ASSERT_NE(stub, nullptr) << engine.output();
    grpc::ClientContext context;
    auto stream = stub->Submit(&context);
    std::uint64_t seq = 0;
    for (int b = 0; b < 3; ++b) {
      pb::CommandBatch batch;
      batch.set_batch_id(static_cast<std::uint64_t>(b) + 1);
      ++seq;  // (not in the call: its arguments are evaluated in no set order)
      *batch.add_commands() = new_order(seq, seq, pb::SIDE_SELL, 500 + b, 10, 1);
      ++seq;
      *batch.add_commands() = new_order(seq, seq, pb::SIDE_BUY, 500 + b, 4, 2);
      ASSERT_TRUE(stream->Write(batch));
      ASSERT_TRUE(stream->Read(&last_answer));
      last = batch;
    }
    replay_before = replay_from_one(*stub);
    book_before = book_of(*stub);
    // The snapshot at command 4 is written by a child in the background: the restart
    // below is to start from it.
    const std::string snapshot = data_dir + "/snapshot-00000000000000000004.snap";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (::access(snapshot.c_str(), F_OK) != 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    engine.stop(SIGKILL);  // no clean shutdown: what is on disk is all there is
  }
  EngineProcess engine(args);
  const std::string started = engine.wait_for_line("listening on");
  EXPECT_NE(engine.output().find("recovered in"), std::string::npos) << engine.output();
  EXPECT_NE(engine.output().find("snapshot at command 4 + 2 commands"), std::string::npos) << engine.output();
  auto stub = connect(started);
  ASSERT_NE(stub, nullptr) << engine.output();
  EXPECT_EQ(book_of(*stub), book_before);
  EXPECT_EQ(replay_from_one(*stub), replay_before);  // rebuilt from the journal, clocks and all

  // The last batch again, as from a submitter that died before XACK: not applied
  // twice, answered as it was.
  grpc::ClientContext context;
  auto stream = stub->Submit(&context);
  ASSERT_TRUE(stream->Write(last));
  pb::ReportBatch again;
  ASSERT_TRUE(stream->Read(&again));
  // The same events and sequences; only the batch's timing (this answer's own) differs.
  EXPECT_TRUE(again.has_timing());
  EXPECT_GE(again.timing().answered_ns(), again.timing().journaled_ns());
  EXPECT_GE(again.timing().journaled_ns(), again.timing().matched_ns());
  EXPECT_GE(again.timing().matched_ns(), again.timing().match_start_ns());
  EXPECT_GE(again.timing().match_start_ns(), again.timing().received_ns());
  EXPECT_GT(again.timing().received_ns(), 0);
  again.clear_timing();
  last_answer.clear_timing();
  EXPECT_EQ(again.SerializeAsString(), last_answer.SerializeAsString());
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(book_of(*stub), book_before);
  EXPECT_EQ(engine.stop(SIGTERM), 0) << engine.output();
}

// A following Replay does not end when caught up: each journal commit after it began is
// sent as it lands (market_only: level changes and trades, each batch's next_sequence
// covering what it left out), until the caller cancels, also when what it follows is
// older than the in-memory log (two events here) and comes from the journal; one from
// past the journal's end is refused; an engine stopping with such calls open stops within
// its grace.
TEST(EngineProcess, FollowingReplaySendsEachCommitUntilCancelledAndStopsWithTheEngine) {
  const std::string data_dir = ::testing::TempDir() + "venue-engine-follow-" + std::to_string(getpid());
  EngineProcess engine({"--listen", "127.0.0.1:0", "--instrument", "1:1:1000", "--data-dir", data_dir, "--cpus",
                        "none", "--event-log-events", "2"});
  auto stub = connect(engine.wait_for_line("listening on"));
  ASSERT_NE(stub, nullptr) << engine.output();
  grpc::ClientContext submit_context;
  auto submit = stub->Submit(&submit_context);
  pb::ReportBatch answer;
  auto order = [&](std::uint64_t number, pb::Side side, std::int64_t price, std::int64_t quantity) {
    pb::CommandBatch batch;
    batch.set_batch_id(number);
    *batch.add_commands() = new_order(number, number, side, price, quantity, /*account=*/number);
    ASSERT_TRUE(submit->Write(batch));
    ASSERT_TRUE(submit->Read(&answer));
  };
  order(1, pb::SIDE_SELL, 500, 10);  // seq 1, 2: NEW, the level's add

  auto follow = [&](grpc::ClientContext& context, bool market_only) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    pb::ReplayRequest request;
    request.set_from_sequence(1);
    request.set_follow(true);
    request.set_market_only(market_only);
    return stub->Replay(&context, request);
  };
  pb::ReportBatch batch;
  // Every event read up to `next` (the batches of a call may split anywhere), as text.
  auto read_to = [&](auto& reader, std::uint64_t next) {
    S got;
    while (reader->Read(&batch)) {
      for (const pb::Event& event : batch.events()) {
        pb::ReportBatch one;
        *one.add_events() = event;
        got.push_back(std::to_string(event.sequence()) + " " + kinds(one)[0]);
      }
      if (batch.next_sequence() >= next) break;
    }
    EXPECT_EQ(batch.next_sequence(), next);
    return got;
  };
  grpc::ClientContext market_context, all_context, late_context;
  auto market = follow(market_context, true);
  auto all = follow(all_context, false);
  EXPECT_EQ(read_to(market, 3), (S{"2 level ACTION_ADD"}));  // what was there when it began
  EXPECT_EQ(read_to(all, 3), (S{"1 EXEC_TYPE_NEW 1", "2 level ACTION_ADD"}));

  order(2, pb::SIDE_BUY, 500, 4);  // seq 3..7: NEW, the trade, two TRADEs, the level's change
  EXPECT_EQ(read_to(market, 8), (S{"4 trade", "7 level ACTION_CHANGE"})) << "the commit after it began";
  EXPECT_EQ(read_to(all, 8).size(), 5u);

  {  // following from past the journal's end: another history, refused
    grpc::ClientContext context;
    pb::ReplayRequest request;
    request.set_from_sequence(9);
    request.set_follow(true);
    auto ahead = stub->Replay(&context, request);
    EXPECT_FALSE(ahead->Read(&batch));
    EXPECT_EQ(ahead->Finish().error_code(), grpc::StatusCode::OUT_OF_RANGE);
  }
  market_context.TryCancel();
  while (market->Read(&batch)) {
  }
  EXPECT_EQ(market->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // From 1, long out of the in-memory log: the journal's events, then on live.
  auto late = follow(late_context, true);
  EXPECT_EQ(read_to(late, 8), (S{"2 level ACTION_ADD", "4 trade", "7 level ACTION_CHANGE"}));
  order(3, pb::SIDE_SELL, 501, 5);  // seq 8, 9: NEW, the level's add
  EXPECT_EQ(read_to(late, 10), (S{"9 level ACTION_ADD"}));

  // Two calls still following, and a Submit stream: the engine stops within its grace.
  const auto stopping = std::chrono::steady_clock::now();
  EXPECT_EQ(engine.stop(SIGTERM), 0) << engine.output();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(5));
  while (all->Read(&batch)) {
  }
  EXPECT_FALSE(all->Finish().ok());
}

// A Replay longer than one ReportBatch holds (MatchingService::kReplayChunk events) is
// sent in several, every event once and in order: from memory, and rebuilt from the
// journal when the in-memory log holds only the last few thousand.
TEST(EngineProcess, ReplayOfManyChunksSendsEveryEventOnceInOrder) {
  constexpr std::uint64_t kOrders = 20000;  // each rests on a level of its own: 40,000 events
  for (const char* in_memory : {"1048576", "4096"}) {
    SCOPED_TRACE(std::string("--event-log-events ") + in_memory);
    const std::string data_dir = ::testing::TempDir() + "venue-engine-chunks-" + in_memory + "-" +
                                 std::to_string(getpid());
    EngineProcess engine({"--listen", "127.0.0.1:0", "--instrument", "1:1:1000000", "--data-dir", data_dir,
                          "--cpus", "none", "--event-log-events", in_memory});
    auto stub = connect(engine.wait_for_line("listening on"));
    ASSERT_NE(stub, nullptr) << engine.output();
    {
      grpc::ClientContext context;
      auto submit = stub->Submit(&context);
      pb::CommandBatch batch;
      batch.set_batch_id(1);
      for (std::uint64_t n = 1; n <= kOrders; ++n) {
        *batch.add_commands() = new_order(n, n, pb::SIDE_SELL, 1000 + static_cast<std::int64_t>(n), 1, 1);
      }
      ASSERT_TRUE(submit->Write(batch));
      pb::ReportBatch answer;
      ASSERT_TRUE(submit->Read(&answer));
      ASSERT_EQ(answer.next_sequence(), 2 * kOrders + 1);
      submit->WritesDone();
      ASSERT_TRUE(submit->Finish().ok());
    }
    grpc::ClientContext context;
    pb::ReplayRequest request;
    request.set_from_sequence(1);
    auto reader = stub->Replay(&context, request);
    pb::ReportBatch batch;
    std::uint64_t expected = 1;
    int batches = 0;
    while (reader->Read(&batch)) {
      ++batches;
      for (const pb::Event& event : batch.events()) {
        ASSERT_EQ(event.sequence(), expected);
        ++expected;
      }
      EXPECT_EQ(batch.next_sequence(), expected);
    }
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(expected, 2 * kOrders + 1);
    EXPECT_GE(batches, 3);
    EXPECT_EQ(engine.stop(SIGTERM), 0) << engine.output();
  }
}

TEST(EngineProcess, BadFlagExitsTwoNamingTheFlag) {
  EngineProcess engine({"--instrument", "7:9:1"});
  EXPECT_EQ(engine.wait_exit(), 2);
  EXPECT_NE(engine.output().find("--instrument"), std::string::npos) << engine.output();
  EXPECT_NE(engine.output().find("usage:"), std::string::npos) << engine.output();
}

TEST(EngineProcess, StopsCleanlyOnSigint) {
  EngineProcess engine({"--listen", "127.0.0.1:0"});
  ASSERT_NE(engine.wait_for_line("listening on"), "") << engine.output();
  EXPECT_EQ(engine.stop(SIGINT), 0) << engine.output();
}

}  // namespace
