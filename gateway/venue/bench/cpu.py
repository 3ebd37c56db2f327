"""CPU seconds of processes and process trees, from /proc: where a benchmark's time went."""

from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()  # [0] is field 3 of stat(5)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU of `root` and every process under it. What exited counts too: a parent's
    cutime and cstime hold the children it waited for (the postmaster waits for each)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = _stat(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
            stats[int(entry)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields is not None:
            total += sum(int(f) for f in fields[11:15])
        todo.extend(children.get(pid, ()))
    return total / CLOCK_TICKS


def parts_cpu_seconds(parts: dict[str, int]) -> dict[str, float]:
    """tree_cpu_seconds of each named process tree (0 for one that is gone)."""
    seconds = {}
    for name, pid in parts.items():
        try:
            seconds[name] = tree_cpu_seconds(pid)
        except OSError:
            seconds[name] = 0.0
    return seconds
