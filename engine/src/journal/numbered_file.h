// Names of the files a partition keeps in its data dir: PREFIX + 20 digits + SUFFIX, so
// that sorting names sorts by the number they carry (journal segments, snapshots).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace venue {

inline std::string numbered_file_name(std::string_view prefix, std::uint64_t number,
                                      std::string_view suffix) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(number));
  std::string name(prefix);
  name += digits;
  name += suffix;
  return name;
}

// True, with `number` set, when `name` is PREFIX + 20 digits + SUFFIX.
inline bool parse_numbered_file_name(std::string_view name, std::string_view prefix,
                                     std::string_view suffix, std::uint64_t& number) {
  if (name.size() != prefix.size() + 20 + suffix.size() || name.substr(0, prefix.size()) != prefix ||
      name.substr(name.size() - suffix.size()) != suffix) {
    return false;
  }
  std::uint64_t value = 0;
  for (char c : name.substr(prefix.size(), 20)) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  number = value;
  return true;
}

}  // namespace venue
