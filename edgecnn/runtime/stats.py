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
