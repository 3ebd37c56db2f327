#include "server/event_log.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

namespace venue {

EventLog::EventLog(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
  ring_.reserve(capacity_);
  // Not in a snapshot's child (PartitionStore forks one from the matching thread, and it
  // reads the exchange, never this): about 200 MB at the default capacity whose page
  // tables fork would copy while matching waits, and whose every page the matching
  // thread then writes would be copied for the child until it exits. The pages wholly
  // inside the ring; advice refused (a kernel without it) changes nothing but that.
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<std::uintptr_t>(ring_.data()) + page - 1) / page * page;
  const auto end = reinterpret_cast<std::uintptr_t>(ring_.data() + capacity_) / page * page;
  if (end > begin && ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTFORK) == 0) {
    unforked_ = reinterpret_cast<void*>(begin);
    unforked_bytes_ = end - begin;
  }
}

// The advice stays with the pages, not with the ring: freed into the heap, they would
// leave whatever is allocated there next out of every child (a snapshot's child then
// dies on a SIGSEGV reading it).
EventLog::~EventLog() {
  if (unforked_ != nullptr) (void)::madvise(unforked_, unforked_bytes_, MADV_DOFORK);
}

void EventLog::append(const Event& event) {
  if (ring_.empty()) start_ = next_ = event.sequence;  // a partition may start past 1 (recovery)
  // Slot of sequence s is (s - start_) % capacity: filling appends, full overwrites the oldest.
  if (ring_.size() < capacity_) {
    ring_.push_back(event);
  } else {
    ring_[slot(event.sequence)] = event;
  }
  next_ = event.sequence + 1;
}

bool EventLog::read(std::uint64_t from, std::size_t max, std::vector<Event>& out, std::uint64_t limit) const {
  if (from < first_sequence()) return false;
  const std::uint64_t end = std::min<std::uint64_t>(std::min(next_, limit), from + max);
  for (std::uint64_t sequence = from; sequence < end; ++sequence) out.push_back(ring_[slot(sequence)]);
  return true;
}

}  // namespace venue
