// Which CPU the matching thread is pinned to (--cpus), chosen from the CPUs this
// process may run on (sched_getaffinity: a container's cpuset, a Guaranteed pod's
// exclusive CPUs under the static CPU manager policy).
#pragma once

#include <string>
#include <vector>

namespace venue {

// The CPUs this process may run on, ascending.
std::vector<int> allowed_cpus();

// "0-1,3" for the log.
std::string cpu_list(const std::vector<int>& cpus);

// `spec`: "auto" (the last allowed CPU: the kubelet and the OS favour the first ones),
// "none" (-1: not pinned), or a list such as "3" or "2,4-5" (its first allowed CPU).
// False, with `why`, for a malformed list or one naming no allowed CPU.
bool choose_cpu(const std::string& spec, const std::vector<int>& allowed, int& cpu, std::string& why);

}  // namespace venue
