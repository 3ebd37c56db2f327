#include "server/event_log.h"

#include <algorithm>

namespace venue {

EventLog::EventLog(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) { ring_.reserve(capacity_); }

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
