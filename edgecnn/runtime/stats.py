"""Latency statistics shared by the convert report and `edgecnn benchmark`."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99 of timings in milliseconds."""
    return {f"p{p}": round(float(np.percentile(samples, p)), 4) for p in (50, 90, 99)}


def timed_ms(function: Callable[[], object], runs: int, warmup: int = 0) -> list[float]:
    """Milliseconds of each of ``runs`` calls of ``function``, after ``warmup`` untimed calls:
    the one latency loop of the convert report, `edgecnn benchmark` and benchmarks/."""
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def resident_mb() -> dict[str, float | None]:
    """This process's resident memory now and at its peak, in MB: Linux's /proc (VmRSS, VmHWM:
    this program's own peak; getrusage's would include a parent's memory at fork), getrusage's
    peak elsewhere, the current figure then None."""
    import resource
    import sys

    fields = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    fields[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = fields.get("VmHWM")
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1 << 10)
    now = fields.get("VmRSS")
    return {"rss_mb": None if now is None else round(now, 1), "peak_rss_mb": round(peak, 1)}
