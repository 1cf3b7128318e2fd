"""How many CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota.

``os.cpu_count()`` reports the host's cores; in a container limited to 2 CPUs on a 64-core host,
starting 64 workers would only add contention.  ``--workers auto`` uses :func:`usable_cpus`.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def affinity_cpus() -> list[int]:
    """CPU ids this process may run on (sorted)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def cgroup_cpu_limit(root: Path = _CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 CFS quota); None when unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def usable_cpus(root: Path = _CGROUP_ROOT) -> int:
    """Affinity count, capped by the cgroup quota rounded up (a 1.5-CPU quota still runs 2 workers)."""
    count = len(affinity_cpus())
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return max(1, count)


def worker_count(value: object) -> int:
    """``auto`` or a positive integer (as int or text); ValueError otherwise."""
    if value in ("auto", None):
        return usable_cpus()
    if isinstance(value, bool):
        raise ValueError("workers must be a number or 'auto'")
    if isinstance(value, int):
        count = value
    elif isinstance(value, str) and value.isdigit():
        count = int(value)
    else:
        raise ValueError("workers must be a number or 'auto'")
    if count < 1:
        raise ValueError("workers must be at least 1")
    return count
