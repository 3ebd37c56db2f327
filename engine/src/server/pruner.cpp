#include "server/pruner.h"

#include <algorithm>

namespace venue {

Pruner::Pruner(Prune prune) : prune_(std::move(prune)), thread_([this] { loop(); }) {}

Pruner::~Pruner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  asked_for_.notify_all();
  thread_.join();
}

std::optional<std::size_t> Pruner::prune(std::uint64_t mark, std::chrono::milliseconds within) {
  std::unique_lock lock(mutex_);
  mark_ = std::max(mark_, mark);
  const std::uint64_t ticket = ++asked_;
  asked_for_.notify_one();
  if (!finished_one_.wait_for(lock, within, [&] { return finished_ >= ticket; })) return std::nullopt;
  std::uint64_t after = forgotten_;  // each prune covered the requests after the last one's
  for (const auto& [covered, deleted] : finished_prunes_) {
    if (after < ticket && ticket <= covered) return deleted;
    after = covered;
  }
  return 0;  // forgotten: kFinishedKept prunes ended before this caller woke
}

void Pruner::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    asked_for_.wait(lock, [this] { return stopping_ || asked_ > finished_; });
    if (stopping_) return;
    const std::uint64_t covers = asked_;
    const std::uint64_t mark = mark_;
    lock.unlock();
    const std::size_t deleted = prune_(mark);
    lock.lock();
    finished_ = covers;
    finished_prunes_.emplace_back(covers, deleted);
    if (finished_prunes_.size() > kFinishedKept) {
      forgotten_ = finished_prunes_.front().first;
      finished_prunes_.pop_front();
    }
    finished_one_.notify_all();
  }
}

}  // namespace venue
