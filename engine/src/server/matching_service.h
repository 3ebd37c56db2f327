// The gRPC face of one partition (service MatchingEngine in engine.proto): decodes
// requests, hands them to the matching thread, encodes what comes back.
#pragma once

#include <grpcpp/grpcpp.h>

#include "engine.grpc.pb.h"
#include "server/partition_worker.h"

namespace venue {

class MatchingService final : public ::tradingvenue::engine::v1::MatchingEngine::Service {
 public:
  // Events per ReportBatch on Replay: read at once on the matching thread (208 bytes
  // each copied, so about a millisecond at most), and about what one pass of the matching
  // thread adds at full rate, so a follower gets each pass in one message. At 1,024 a
  // pass went out as a dozen, each read between the matching thread's passes and each a
  // wake-up of the gateway's follower thread: the engine's change reached it at p50 8-10,
  // p90 30 ms; at 16,384, 6-7 and 12 ms.
  static constexpr std::size_t kReplayChunk = 16384;
  // Batches of one Submit stream decoded, applied or being answered at once.
  static constexpr std::size_t kStreamInFlight = 4;

  explicit MatchingService(PartitionWorker& worker) : worker_(worker) {}

  grpc::Status Submit(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<::tradingvenue::engine::v1::ReportBatch,
                                               ::tradingvenue::engine::v1::CommandBatch>* stream) override;
  grpc::Status Replay(grpc::ServerContext* context, const ::tradingvenue::engine::v1::ReplayRequest* request,
                      grpc::ServerWriter<::tradingvenue::engine::v1::ReportBatch>* writer) override;
  grpc::Status GetBook(grpc::ServerContext* context, const ::tradingvenue::engine::v1::BookRequest* request,
                       ::tradingvenue::engine::v1::BookSnapshot* response) override;
  grpc::Status Health(grpc::ServerContext* context, const ::tradingvenue::engine::v1::HealthRequest* request,
                      ::tradingvenue::engine::v1::HealthResponse* response) override;
  grpc::Status Persisted(grpc::ServerContext* context, const ::tradingvenue::engine::v1::PersistedRequest* request,
                         ::tradingvenue::engine::v1::PersistedResponse* response) override;
  grpc::Status GetOrder(grpc::ServerContext* context, const ::tradingvenue::engine::v1::OrderRequest* request,
                        ::tradingvenue::engine::v1::OrderState* response) override;

 private:
  PartitionWorker& worker_;
};

}  // namespace venue
