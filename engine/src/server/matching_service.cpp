#include "server/matching_service.h"

#include <algorithm>
#include <chrono>
#include <array>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "server/proto_convert.h"

namespace venue {

namespace {

grpc::Status stopped() { return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the partition is stopping"); }

}  // namespace

namespace {

// Protobuf arenas for a stream's messages: one block reused batch after batch, so
// decoding commands and building reports stop allocating once the stream is warm.
class ArenaBlock {
 public:
  explicit ArenaBlock(std::size_t bytes) : block_(new char[bytes]), arena_(options(block_.get(), bytes)) {}
  google::protobuf::Arena& arena() { return arena_; }

 private:
  static google::protobuf::ArenaOptions options(char* block, std::size_t bytes) {
    google::protobuf::ArenaOptions out;
    out.initial_block = block;
    out.initial_block_size = bytes;
    out.max_block_size = 8 << 20;
    return out;
  }
  std::unique_ptr<char[]> block_;
  google::protobuf::Arena arena_;
};

// One batch on its way through a stream: decoded, applied, answered.
struct InFlight {
  ArenaBlock input{1 << 20};
  std::uint64_t batch_id = 0;
  std::int64_t received_ns = 0;
  std::vector<Command> commands;  // view `input`'s strings
  std::vector<Event> events;
  PartitionWorker::Batch batch;
};

}  // namespace

grpc::Status MatchingService::Submit(grpc::ServerContext* context,
                                     grpc::ServerReaderWriter<pb::ReportBatch, pb::CommandBatch>* stream) {
  // Pipelined: this thread reads and decodes batch k+1 while the matching thread
  // applies and journals batch k and the writer thread answers batch k-1, in order.
  // The matching thread commits every batch queued during one fsync with the next,
  // so a stream with batches in flight pays one fsync per group, not per batch.
  std::array<InFlight, kStreamInFlight> slots;
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<InFlight*> free_slots;
  std::deque<InFlight*> posted;
  for (InFlight& slot : slots) {
    slot.batch.commands = &slot.commands;
    slot.batch.out = &slot.events;
    free_slots.push_back(&slot);
  }
  bool reading_done = false;
  bool write_failed = false;

  std::thread writer([&] {
    ArenaBlock output(8 << 20);
    for (;;) {
      InFlight* slot = nullptr;
      {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return !posted.empty() || reading_done; });
        if (posted.empty()) return;
        slot = posted.front();
        posted.pop_front();
      }
      worker_.finish(slot->batch);
      if (!write_failed) {
        auto* out = google::protobuf::Arena::CreateMessage<pb::ReportBatch>(&output.arena());
        out->set_batch_id(slot->batch_id);
        out->set_partition(worker_.partition());
        out->set_next_sequence(slot->batch.next_sequence);
        out->mutable_events()->Reserve(static_cast<int>(slot->events.size()));
        for (const Event& event : slot->events) event_to_proto(event, *out->add_events());
        pb::BatchTiming* timing = out->mutable_timing();
        timing->set_received_ns(slot->received_ns);
        timing->set_match_start_ns(slot->batch.match_start_ns);
        timing->set_matched_ns(slot->batch.matched_ns);
        timing->set_journaled_ns(slot->batch.journaled_ns);
        timing->set_answered_ns(unix_now_ns());
        // The client went away: what was applied stays applied; reading stops too.
        if (!stream->Write(*out)) write_failed = true;
        output.arena().Reset();
      }
      std::lock_guard lock(mutex);
      free_slots.push_back(slot);
      changed.notify_all();
    }
  });

  bool stopping = false;
  for (;;) {
    InFlight* slot = nullptr;
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return !free_slots.empty(); });
      if (write_failed) break;
      slot = free_slots.front();
      free_slots.pop_front();
    }
    slot->input.arena().Reset();
    auto* in = google::protobuf::Arena::CreateMessage<pb::CommandBatch>(&slot->input.arena());
    if (!stream->Read(in)) {
      std::lock_guard lock(mutex);
      free_slots.push_back(slot);
      break;
    }
    slot->received_ns = unix_now_ns();
    slot->batch_id = in->batch_id();
    slot->commands.clear();
    for (const pb::Command& command : in->commands()) slot->commands.push_back(command_from_proto(command));
    slot->events.clear();
    if (!worker_.post(slot->batch)) {
      stopping = true;
      std::lock_guard lock(mutex);
      free_slots.push_back(slot);
      break;
    }
    std::lock_guard lock(mutex);
    posted.push_back(slot);
    changed.notify_all();
  }
  {
    std::lock_guard lock(mutex);
    reading_done = true;
    changed.notify_all();
  }
  writer.join();
  if (write_failed) context->TryCancel();
  return stopping ? stopped() : grpc::Status::OK;
}

grpc::Status MatchingService::Replay(grpc::ServerContext* context, const pb::ReplayRequest* request,
                                     grpc::ServerWriter<pb::ReportBatch>* writer) {
  // Streams the events from from_sequence up to the last one applied when the call
  // began (so it ends under load too); the caller resumes after the last event it got.
  // With nothing to send it sends one empty batch, whose next_sequence says where the
  // partition is. With `follow` it does not end there: it waits for each journal commit
  // and sends what it added, until the caller cancels.
  std::uint64_t from = std::max<std::uint64_t>(request->from_sequence(), 1);
  const bool market_only = request->market_only();
  std::uint64_t end = 0;  // set by the first read; moved on by each commit when following
  std::vector<Event> events;
  pb::ReportBatch out;
  bool sent = false;
  auto send = [&](std::uint64_t next_sequence) {
    out.set_batch_id(0);
    out.set_partition(worker_.partition());
    out.set_next_sequence(next_sequence);
    const bool ok = writer->Write(out);
    out.Clear();
    sent = true;
    return ok;
  };
  auto add = [&](const Event& event) {
    if (!market_only || event.type != EventType::Report) event_to_proto(event, *out.add_events());
  };
  // Whether to go on once `from` reaches `end`: only when following, once more is journaled.
  bool worker_stopped = false;
  auto more = [&] {
    if (!request->follow()) return false;
    while (!context->IsCancelled()) {
      if (worker_.wait_journaled(from, std::chrono::milliseconds(200))) {
        end = 0;  // the next read says where the journal is now
        return true;
      }
      if (!worker_.running()) {
        worker_stopped = true;
        return false;
      }
    }
    return false;
  };
  while (!context->IsCancelled()) {
    events.clear();
    std::uint64_t next_sequence = 0;
    std::uint64_t first_retained = 0;
    bool evicted = false;
    if (!worker_.read_events(from, kReplayChunk, events, next_sequence, evicted, first_retained)) return stopped();
    if (end == 0) end = next_sequence;
    if (request->follow() && from > next_sequence) {
      // Past the journal's end: the caller follows another history (this engine lost
      // its data dir), and waiting here would hand it events it cannot place.
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "from_sequence " + std::to_string(from) +
                                                              " is past the journal's end, " +
                                                              std::to_string(next_sequence));
    }
    if (evicted) {
      // Older than memory holds: rebuilt from the journal, then on from memory.
      const std::uint64_t until = std::min(first_retained, end);
      std::size_t covered = 0;  // events read for `out` (market_only leaves some out)
      bool writing = true;
      const bool rebuilt = worker_.history(from, until, [&](const Event& event) {
        add(event);
        if (++covered >= kReplayChunk) {
          writing = send(event.sequence + 1);
          covered = 0;
        }
        return writing && !context->IsCancelled();
      });
      if (!rebuilt) {
        return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                            "from_sequence " + std::to_string(from) +
                                " is neither held in memory nor rebuildable from the journal; the oldest in memory is " +
                                std::to_string(first_retained));
      }
      if (!writing) break;
      if (covered > 0 && !send(until)) break;
      from = until;
      if (from >= end && !more()) break;
      continue;
    }
    while (!events.empty() && events.back().sequence >= end) events.pop_back();
    if (events.empty() && sent) {
      if (more()) continue;
      break;
    }
    for (const Event& event : events) add(event);
    if (!send(events.empty() ? next_sequence : events.back().sequence + 1)) break;
    if (events.empty()) {
      if (more()) continue;
      break;
    }
    from = events.back().sequence + 1;
    if (from >= end && !more()) break;
  }
  return worker_stopped ? stopped() : grpc::Status::OK;
}

grpc::Status MatchingService::GetBook(grpc::ServerContext* /*context*/, const pb::BookRequest* request,
                                      pb::BookSnapshot* response) {
  BookView view;
  bool found = false;
  if (!worker_.book(request->instrument_id(), request->depth(), view, found)) return stopped();
  if (!found) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "instrument " + std::to_string(request->instrument_id()) + " is not traded by this partition");
  }
  response->set_instrument_id(request->instrument_id());
  response->set_sequence(view.sequence);
  for (const BookLevelView& level : view.bids) {
    pb::BookLevel& bid = *response->add_bids();
    bid.set_price(level.price);
    bid.set_quantity(level.quantity);
    bid.set_orders(level.orders);
  }
  for (const BookLevelView& level : view.asks) {
    pb::BookLevel& ask = *response->add_asks();
    ask.set_price(level.price);
    ask.set_quantity(level.quantity);
    ask.set_orders(level.orders);
  }
  return grpc::Status::OK;
}

grpc::Status MatchingService::GetOrder(grpc::ServerContext* /*context*/, const pb::OrderRequest* request,
                                       pb::OrderState* response) {
  OrderView view;
  if (!worker_.order(request->order_id(), view)) return stopped();
  response->set_sequence(view.sequence);
  switch (view.known) {
    case OrderKnown::Unknown:
      response->set_known(pb::OrderState::KNOWN_UNKNOWN);
      return grpc::Status::OK;
    case OrderKnown::Live:
      response->set_known(pb::OrderState::KNOWN_LIVE);
      break;
    case OrderKnown::Done:
      response->set_known(pb::OrderState::KNOWN_DONE);
      break;
  }
  report_to_proto(view.state, *response->mutable_order());
  return grpc::Status::OK;
}

grpc::Status MatchingService::Persisted(grpc::ServerContext* /*context*/, const pb::PersistedRequest* request,
                                        pb::PersistedResponse* response) {
  std::optional<std::size_t> deleted;
  if (!worker_.persisted(request->through_sequence(), deleted)) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the partition has stopped");
  }
  response->set_finished(deleted.has_value());
  response->set_files_deleted(static_cast<std::uint32_t>(deleted.value_or(0)));
  return grpc::Status::OK;
}

grpc::Status MatchingService::Health(grpc::ServerContext* /*context*/, const pb::HealthRequest* /*request*/,
                                     pb::HealthResponse* response) {
  HealthView view;
  const bool serving = worker_.health(view);
  response->set_serving(serving);
  response->set_partition(worker_.partition());
  response->set_next_sequence(view.next_sequence);
  response->set_commands_applied(view.commands_applied);
  for (const auto& [shard, mark] : view.shard_marks) {
    pb::ShardMark& out = *response->add_shard_marks();
    out.set_shard(shard);
    out.set_stream_ms(mark.ms);
    out.set_stream_seq(mark.seq);
  }
  return grpc::Status::OK;
}

}  // namespace venue
