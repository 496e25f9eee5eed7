"""Interleaved timing shared by the benchmarks: pipelines take turns in rounds, so that machine
load affects them alike."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def timed_rounds(pipelines: dict[str, Callable], items: Sequence, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per item for each pipeline. In each round every pipeline runs the whole
    ``items`` in turn (the order rotating from round to round), after one warm-up call: per-item
    turns were tried first and measured fast pipelines right after a slow one's work, with cold
    threads (YOLO 4.1 ms instead of 0.57 ms after R-CNN's selective search)."""
    names = list(pipelines)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            pipeline = pipelines[name]
            pipeline(items[0])
            for item in items:
                start = time.perf_counter()
                pipeline(item)
                timings[name].append((time.perf_counter() - start) * 1000)
    return timings
