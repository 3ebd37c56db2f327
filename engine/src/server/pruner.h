// The journal's pruning on a thread of its own. A caller asks for a prune through a mark
// and waits for it a bounded time; a prune that takes longer (a file that does not give
// way, a disk that stalls) goes on alone, and what is asked meanwhile is merged into one
// prune after it, through the highest mark asked. However long a prune takes, no caller
// waits past its bound and no thread but this one is held: before, each call of the
// writer's Persisted pruned on its gRPC thread, so one that hung held that thread, and
// every later call another, each for as long.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace venue {

class Pruner {
 public:
  // Deletes what `mark` lets go; returns the files it deleted. Never throws.
  using Prune = std::function<std::size_t(std::uint64_t mark)>;

  explicit Pruner(Prune prune);
  ~Pruner();  // a prune asked for and not begun is dropped; one under way is waited for
  Pruner(const Pruner&) = delete;
  Pruner& operator=(const Pruner&) = delete;

  // Asks for a prune through `mark` (or a higher mark asked before). The files the prune
  // that covered this request deleted, when it finished within `within`; nullopt when
  // it goes on after. (0 when kFinishedKept prunes ended before this caller woke.)
  std::optional<std::size_t> prune(std::uint64_t mark, std::chrono::milliseconds within);

 private:
  void loop();

  const Prune prune_;
  std::mutex mutex_;
  std::condition_variable asked_for_;
  std::condition_variable finished_one_;
  std::uint64_t mark_ = 0;      // the highest asked for
  std::uint64_t asked_ = 0;     // requests made
  std::uint64_t finished_ = 0;  // requests a finished prune covered
  // The last prunes to finish, oldest first: the last request each covered, and the
  // files it deleted; a caller that wakes late still finds its own.
  static constexpr std::size_t kFinishedKept = 16;
  std::deque<std::pair<std::uint64_t, std::size_t>> finished_prunes_;
  std::uint64_t forgotten_ = 0;  // the last request of the prunes no longer kept
  bool stopping_ = false;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace venue
