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

// The CPUs of the machine that are online (sysconf).
int online_cpus();

// `spec`: "auto", "none" (-1: not pinned), or a list such as "3" or "2,4-5" (its first
// allowed CPU). "auto" pins to the last allowed CPU (the kubelet and the OS favour the
// first ones) when the process was given some of the machine's `online` CPUs (a
// cpuset, a Guaranteed pod's exclusive CPUs); a process that may run on every CPU
// shares each with everything else on the machine, and a thread pinned to one would
// wait for it while another is idle: -1. False, with `why`, for a malformed list or one
// naming no allowed CPU.
bool choose_cpu(const std::string& spec, const std::vector<int>& allowed, int online, int& cpu,
                std::string& why);

}  // namespace venue
