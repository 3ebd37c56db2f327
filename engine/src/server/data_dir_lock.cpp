#include "server/data_dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

namespace venue {

namespace {
constexpr long kPollNanoseconds = 100'000'000;  // 100 ms between tries
}

bool DataDirLock::acquire(const std::string& dir, const sigset_t& stop, std::string& error) {
  const std::string path = dir + "/LOCK";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  for (;;) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      error = path + ": flock: " + std::strerror(errno);
      return false;
    }
    if (!waited_) {
      std::cerr << "venue-engine: " << dir
                << " is held by another engine (the pod this one replaces is still stopping?); "
                   "waiting for it"
                << std::endl;
      waited_ = true;
    }
    const timespec poll{0, kPollNanoseconds};
    if (sigtimedwait(&stop, nullptr, &poll) > 0) {
      error = "stopped by a signal while waiting for " + path;
      return false;
    }
  }
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace venue
