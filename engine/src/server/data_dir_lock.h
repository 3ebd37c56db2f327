// One engine per data directory. A second engine on the same journal (a pod replaced
// while the old one still stops, a force-deleted StatefulSet pod, a slip of the hand)
// would interleave two journals into one. The engine holds an exclusive flock on
// <data-dir>/LOCK for its whole life; the kernel drops it when the process dies, however
// it dies.
#pragma once

#include <signal.h>

#include <string>

namespace venue {

class DataDirLock {
 public:
  // Takes the lock, waiting while another process holds it (saying so once on stderr).
  // Returns false when a signal in `stop` arrived first (the caller exits), or when the
  // lock file cannot be opened (`error` says why).
  bool acquire(const std::string& dir, const sigset_t& stop, std::string& error);
  ~DataDirLock();

  DataDirLock() = default;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  bool waited() const { return waited_; }

 private:
  int fd_ = -1;
  bool waited_ = false;
};

}  // namespace venue
