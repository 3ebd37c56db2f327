// libFuzzer: a CommandBatch as the engine's gRPC stream receives it (bytes from any client
// that reaches the port), decoded and applied as MatchingService::Submit does: parsed,
// each command translated (command_from_proto), then applied to the exchange.
#include <google/protobuf/arena.h>

#include <cstdint>

#include "engine.pb.h"
#include "fuzz_support.h"
#include "server/proto_convert.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  google::protobuf::Arena arena;
  auto* batch = google::protobuf::Arena::CreateMessage<venue::pb::CommandBatch>(&arena);
  if (!batch->ParseFromArray(data, static_cast<int>(size))) return -1;  // gRPC refuses it
  venue::fuzz::Venue venue;
  std::int64_t clock = 1'000;
  for (const venue::pb::Command& command : batch->commands()) {
    venue.exchange.apply(venue::command_from_proto(command), clock++);
  }
  return 0;
}
