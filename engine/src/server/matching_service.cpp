#include "server/matching_service.h"

#include <algorithm>
#include <string>
#include <vector>

#include "server/proto_convert.h"

namespace venue {

namespace {

grpc::Status stopped() { return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the partition is stopping"); }

}  // namespace

grpc::Status MatchingService::Submit(grpc::ServerContext* /*context*/,
                                     grpc::ServerReaderWriter<pb::ReportBatch, pb::CommandBatch>* stream) {
  // Reused across the stream's batches, so a steady stream stops allocating.
  pb::CommandBatch in;
  pb::ReportBatch out;
  std::vector<Command> commands;
  std::vector<Event> events;
  while (stream->Read(&in)) {
    commands.clear();
    for (const pb::Command& command : in.commands()) commands.push_back(command_from_proto(command));
    events.clear();
    std::uint64_t next_sequence = 0;
    if (!worker_.apply(commands, events, next_sequence)) return stopped();

    out.Clear();
    out.set_batch_id(in.batch_id());
    out.set_partition(worker_.partition());
    out.set_next_sequence(next_sequence);
    out.mutable_events()->Reserve(static_cast<int>(events.size()));
    for (const Event& event : events) event_to_proto(event, *out.add_events());
    if (!stream->Write(out)) break;  // the client went away; what was applied stays applied
  }
  return grpc::Status::OK;
}

grpc::Status MatchingService::Replay(grpc::ServerContext* context, const pb::ReplayRequest* request,
                                     grpc::ServerWriter<pb::ReportBatch>* writer) {
  // Streams the events from from_sequence up to the last one applied when the call
  // began (so it ends under load too); the caller resumes after the last event it got.
  // With nothing to send it sends one empty batch, whose next_sequence says where the
  // partition is.
  std::uint64_t from = std::max<std::uint64_t>(request->from_sequence(), 1);
  std::uint64_t end = 0;  // set by the first read
  std::vector<Event> events;
  pb::ReportBatch out;
  bool sent = false;
  while (!context->IsCancelled()) {
    events.clear();
    std::uint64_t next_sequence = 0;
    std::uint64_t first_retained = 0;
    bool evicted = false;
    if (!worker_.read_events(from, kReplayChunk, events, next_sequence, evicted, first_retained)) return stopped();
    if (evicted) {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                          "from_sequence " + std::to_string(from) + " is no longer held in memory; the oldest is " +
                              std::to_string(first_retained));
    }
    if (end == 0) end = next_sequence;
    while (!events.empty() && events.back().sequence >= end) events.pop_back();
    if (events.empty() && sent) break;

    out.Clear();
    out.set_batch_id(0);
    out.set_partition(worker_.partition());
    out.set_next_sequence(next_sequence);
    for (const Event& event : events) event_to_proto(event, *out.add_events());
    if (!writer->Write(out)) break;
    sent = true;
    if (events.empty()) break;
    from = events.back().sequence + 1;
    if (from >= end) break;
  }
  return grpc::Status::OK;
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
