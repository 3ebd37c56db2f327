// What the journal and the snapshots share to write their files.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>

namespace venue {

// An error of the last system call (errno), saying what was being done.
inline std::system_error io_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

// Writes all of `data` to `fd`, again after a short write or EINTR. False, with errno
// set, when the system refuses.
inline bool write_fully(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(fd, data, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += written;
    size -= static_cast<std::size_t>(written);
  }
  return true;
}

}  // namespace venue
