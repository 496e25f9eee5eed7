"""Latency statistics shared by the convert report and `edgecnn benchmark`."""

from __future__ import annotations

import numpy as np


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99 of timings in milliseconds."""
    return {f"p{p}": round(float(np.percentile(samples, p)), 4) for p in (50, 90, 99)}
