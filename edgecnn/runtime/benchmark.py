"""``benchmark`` (`edgecnn benchmark`): how fast a file runs here, the model alone and the whole
pipeline on a camera-sized frame."""

from __future__ import annotations

import os

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.cpu_kernels import kernel_coverage
from edgecnn.runtime.engine import read_model_bytes
from edgecnn.runtime.metadata import read_metadata
from edgecnn.runtime.runner import Runner
from edgecnn.runtime.stats import percentiles, resident_mb, timed_ms
from edgecnn.runtime.tasks import PIPELINES
from edgecnn.runtime.tasks import open as open_pipeline
from edgecnn.runtime.tensor_arena import tensor_arena_mb

FRAME_SIZE = (480, 640)  # height, width of the frame the whole pipeline is timed on


def benchmark(model: str | os.PathLike | bytes, accelerator: str = "auto", threads: int | None = None,
              runs: int = 50, warmup: int = 5, delegate: str | os.PathLike | None = None, ops: bool = False) -> dict:
    """{model, backend, accelerator, fully_accelerated, note, invoke_ms, pipeline_ms, runs,
    xnnpack, memory}: p50/p90/p99 milliseconds of ``runs`` invokes on random inputs (the model
    alone: inputs set beforehand, outputs read as stored) and, for a file with a pipeline, of the
    whole pipeline (resize, normalize, invoke, decode) on a random 640x480 frame; ``warmup``
    untimed runs first. ``xnnpack``: the nodes the CPU's XNNPACK delegate took
    (``cpu_kernels.kernel_coverage``; None on the GPU); ``memory``: the interpreter's tensor arena
    (``tensor_arena.tensor_arena_mb``; None on the GPU) and this process's resident MB after
    loading, after the first invoke and at its peak after the runs (the Python process included). ``ops``: also
    ``ops``, each op type's share of the nodes' times alone (``op_times.op_time_shares``), on the
    CPU."""
    if runs < 1 or warmup < 0:
        raise EdgeCNNError("runs must be at least 1 and warmup at least 0 (CLI: --runs, --warmup).")
    data = read_model_bytes(model)
    runner = Runner(data, accelerator, threads, delegate=delegate)
    after_load = resident_mb()["rss_mb"]
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0, 1, size=info.shape).astype(np.float32) for info in runner.inputs]
    runner(*inputs)  # on the CPU the inputs stay set: the timed call is the model alone, no input copy
    after_first_invoke = resident_mb()["rss_mb"]
    # outputs read as stored: dequantizing them is the pipeline's work (the Detector does it at
    # its candidates only)
    run_model = (lambda: runner.invoke(dequantized=False)) if runner.gpu is None else lambda: runner(*inputs)
    result = {"model": str(model) if not isinstance(model, (bytes, bytearray)) else "the model buffer",
              "backend": runner.backend, "accelerator": runner.accelerator,
              "fully_accelerated": runner.fully_accelerated, "note": runner.note,
              "invoke_ms": percentiles(timed_ms(run_model, runs, warmup)), "pipeline_ms": None, "runs": runs}
    metadata = read_metadata(data)
    task = metadata.task if metadata else "classification"
    if task in PIPELINES and len(runner.inputs[0].shape) == 4:
        pipeline = open_pipeline(data, task=task, runner=runner)  # the same compiled model as the invoke timings
        frame = rng.integers(0, 256, size=(*FRAME_SIZE, 3), dtype=np.uint8)
        # the pipeline's own account of its time (pipeline_ms), not a stopwatch around the call
        timings = [pipeline(frame).pipeline_ms for _ in range(warmup + runs)][warmup:]
        result["pipeline_ms"] = percentiles(timings)
    on_cpu = runner.gpu is None and not delegate
    coverage = kernel_coverage(runner.engine) if on_cpu else None
    result["xnnpack"] = coverage.to_json() if coverage is not None else None
    result["memory"] = {"arena_mb": tensor_arena_mb(runner.engine, data) if runner.gpu is None else None,
                        "rss_after_load_mb": after_load, "rss_after_first_invoke_mb": after_first_invoke,
                        "peak_rss_mb": resident_mb()["peak_rss_mb"]}
    if ops:
        from edgecnn.runtime.op_times import op_time_shares

        result["ops"] = op_time_shares(data, threads, max(5, min(runs, 20)))
    return result
