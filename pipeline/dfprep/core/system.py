"""The machine: how many cores this process may use, and worker counts derived from that."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS has one (a container or
    `taskset` limits it), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_workers(processes: int = 1, reserve: int = 0, limit: int | None = None) -> int:
    """Worker processes for each of `processes` processes sharing the cores: their share of the
    cores minus `reserve` (left for the main loop), at most `limit`, at least 1."""
    n = available_cores() // max(1, processes) - reserve
    if limit is not None:
        n = min(n, limit)
    return max(1, n)
