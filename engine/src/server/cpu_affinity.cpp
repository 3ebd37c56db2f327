#include "server/cpu_affinity.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <string_view>

namespace venue {

std::vector<int> allowed_cpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  }
  return out;
}

int online_cpus() { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

std::string cpu_list(const std::vector<int>& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(cpus[i]);
    if (j > i) {
      out += '-';  // appended apart: `"-" + std::to_string(...)` trips GCC 12's -Wrestrict (its bug 105329)
      out += std::to_string(cpus[j]);
    }
    i = j + 1;
  }
  return out.empty() ? "none" : out;
}

namespace {

bool parse_cpu(std::string_view text, int& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && error == std::errc{} && end == text.data() + text.size() && out >= 0 && out < CPU_SETSIZE;
}

}  // namespace

bool choose_cpu(const std::string& spec, const std::vector<int>& allowed, int online, int& cpu,
                std::string& why) {
  if (spec == "none") {
    cpu = -1;
    return true;
  }
  if (spec == "auto") {
    if (allowed.empty()) {
      why = "no CPU is allowed (sched_getaffinity failed)";
      return false;
    }
    cpu = static_cast<int>(allowed.size()) < online ? allowed.back() : -1;
    return true;
  }
  std::vector<int> listed;
  std::string_view rest = spec;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto dash = item.find('-');
    int low = 0;
    int high = 0;
    if (dash == std::string_view::npos ? !parse_cpu(item, low)
                                       : !parse_cpu(item.substr(0, dash), low) || !parse_cpu(item.substr(dash + 1), high)) {
      why = "expected auto, none or a CPU list such as 2,4-5";
      return false;
    }
    if (dash == std::string_view::npos) high = low;
    if (high < low) {
      why = "a range must go up, as in 4-5";
      return false;
    }
    for (int c = low; c <= high; ++c) listed.push_back(c);
  }
  for (int c : listed) {
    if (std::find(allowed.begin(), allowed.end(), c) != allowed.end()) {
      cpu = c;
      return true;
    }
  }
  why = "none of these CPUs is allowed for this process";
  return false;
}

}  // namespace venue
