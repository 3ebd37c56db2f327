"""CPU seconds and memory of processes and process trees, from /proc: where a
benchmark's time and memory went."""

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


def _processes() -> tuple[dict[int, list[str]], dict[int, list[int]]]:
    """stat(5) fields of every process, and the children of each."""
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
    return stats, children


def _tree(root: int, children: dict[int, list[int]]) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


def tree_cpu_seconds(root: int) -> float:
    """CPU of `root` and every process under it. What exited counts too: a parent's
    cutime and cstime hold the children it waited for (the postmaster waits for each)."""
    stats, children = _processes()
    return sum(sum(int(f) for f in stats[pid][11:15])
               for pid in _tree(root, children) if pid in stats) / CLOCK_TICKS


def tree_pss_bytes(root: int) -> int:
    """Memory of `root` and every process under it: the sum of their proportional set
    sizes (Pss, smaps_rollup), so a page they share (Postgres's shared buffers, a
    forked worker's copy-on-write pages) counts once, not once per process."""
    _, children = _processes()
    total = 0
    for pid in _tree(root, children):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def parts_cpu_seconds(parts: dict[str, int]) -> dict[str, float]:
    """tree_cpu_seconds of each named process tree (0 for one that is gone)."""
    seconds = {}
    for name, pid in parts.items():
        try:
            seconds[name] = tree_cpu_seconds(pid)
        except OSError:
            seconds[name] = 0.0
    return seconds
