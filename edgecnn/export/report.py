"""Verification of a converted file: size, ops, builtin-only, GPU compatibility (measured on
LiteRT's GPU accelerator, with TFLite's static analysis beside it), parity with the Keras
model, CPU latency. The result is the JSON report of `edgecnn convert`."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
from collections.abc import Callable

import numpy as np

from edgecnn.export.device_heads import reference_outputs
from edgecnn.runtime import load_engine
from edgecnn.runtime.cpu_kernels import kernel_coverage
from edgecnn.runtime.tensor_arena import tensor_arena_mb
from edgecnn.runtime.engine import dequantize, quantize
from edgecnn.runtime.gpu import run_on_gpu, use_software_gpu
from edgecnn.runtime.modelfile import is_builtin_only, op_histogram
from edgecnn.runtime.stats import percentiles, timed_ms
from edgecnn.runtime.surgery import single_operator_models


def static_gpu_analysis(flatbuffer: bytes) -> dict:
    """TFLite's own GPU-compatibility analyzer. It misses runtime rejections (it passes
    LOCAL_RESPONSE_NORMALIZATION, which the delegate does not run), hence the measured check."""
    from edgecnn._keras import tf

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer, gpu_compatibility=True)
    output = text.getvalue()
    warnings = sorted({line.strip() for line in output.splitlines() if "GPU COMPATIBILITY WARNING" in line})
    ops = sorted(set(re.findall(r"Not supported op (\w+)", output)))
    return {"compatible": "looks compatible with GPU delegate" in output, "unsupported_ops": ops,
            "warnings": warnings}


def engine_arrays(engine, batch) -> list[np.ndarray]:
    """A batch (one array, or a tuple in the Keras model's input order) as the file's inputs,
    in the file's order (matched by shape: the converter may reorder inputs)."""
    if not isinstance(batch, tuple):
        return [batch]
    by_shape = {tuple(array.shape): array for array in batch}
    return [by_shape[tuple(info.shape)] for info in engine.inputs]


def keras_input(batch):
    return list(batch) if isinstance(batch, tuple) else batch


def gpu_check(flatbuffer: bytes, engine, batch, expected: list[np.ndarray] | None) -> dict:
    """Compile for LiteRT's GPU accelerator and run once. When not everything ran there, each op
    kind is compiled alone to find which ones the GPU rejects."""
    software = use_software_gpu() and "swiftshader" in os.environ.get("VK_ICD_FILENAMES", "")
    arrays = [quantize(a, info) for a, info in zip(engine_arrays(engine, batch), engine.inputs)]  # file dtypes
    run = run_on_gpu(flatbuffer, arrays)
    result: dict = {"compatible": None, "fully_accelerated": None, "unsupported_ops": [],
                    "device": None, "error": run.error}
    if not run.available:
        return result
    result["device"] = "software Vulkan (SwiftShader): compatibility is real, timings are not" if software else "gpu"
    result["fully_accelerated"] = run.fully_accelerated
    result["compatible"] = run.fully_accelerated
    if expected is not None and run.outputs:
        outputs = [dequantize(o, info) for o, info in zip(run.outputs, engine.outputs)]
        result["max_abs_diff"] = float(max(np.abs(o - e).max() for o, e in zip(outputs, expected)))
    if not run.fully_accelerated:
        rejected = []
        for name, single in single_operator_models(flatbuffer).items():
            engine = load_engine(single)
            probe = run_on_gpu(single, [np.zeros(t.shape, t.dtype) for t in engine.inputs])
            if not probe.fully_accelerated:
                rejected.append(name)
        result["unsupported_ops"] = rejected
    return result


def cpu_latency(engine, batch, threads: int, runs: int = 20) -> dict:
    arrays = engine_arrays(engine, batch)
    timings = timed_ms(lambda: engine(*arrays), runs, warmup=3)
    return {**percentiles(timings), "runs": runs, "threads": threads, "backend": engine.backend}


def keras_outputs(model, batch, task: str, device_head: bool) -> list[np.ndarray]:
    """The Keras model's outputs as the converted file gives them (through its device head, if
    it has one)."""
    expected = model(keras_input(batch), training=False)
    expected = [np.asarray(e) for e in (expected if isinstance(expected, (list, tuple)) else [expected])]
    return reference_outputs(expected, task) if device_head else expected


def parity(engine, model, samples, task: str, device_head: bool = False, decode: Callable | None = None) -> dict:
    """``samples``: model inputs, an (N, ...) array, or for a model of several inputs a list of
    tuples of batch-1 arrays in the Keras model's input order. ``decode`` (outputs -> the
    runtime's RawDetections) adds ``detection_agreement``: where a file's outputs can come out
    in another order (a Faster R-CNN's proposals when two scores swap places), the raw
    difference measures the order, and only the decoded detections say whether they agree."""
    diffs, agree, matched, found = [], [], 0, 0
    for sample in samples:
        batch = sample if isinstance(sample, tuple) else sample[None]
        got = engine(*engine_arrays(engine, batch))
        expected = keras_outputs(model, batch, task, device_head)
        diffs.append(max(float(np.abs(g - e).max()) for g, e in zip(got, expected)))
        if task == "classification":
            agree.append(int(np.argmax(got[0]) == np.argmax(expected[0])))
        if decode is not None:
            reference, converted = decode(expected), decode(got)
            found += len(reference.boxes)
            matched += matched_detections(reference, converted)
    result = {"samples": int(len(samples)), "max_abs_diff": max(diffs), "mean_max_abs_diff": float(np.mean(diffs))}
    if agree:
        result["top1_agreement"] = float(np.mean(agree))
    if decode is not None:
        result["keras_detections"] = found
        result["detection_agreement"] = matched / found if found else None
    return result


def matched_detections(reference, converted, iou: float = 0.5) -> int:
    """How many of ``reference``'s detections ``converted`` repeats (same class, IoU >= ``iou``,
    each converted detection matched once, best-scoring reference first)."""
    from edgecnn.runtime.detection import iou_matrix

    if len(reference.boxes) == 0 or len(converted.boxes) == 0:
        return 0
    overlaps = iou_matrix(reference.boxes, converted.boxes)
    overlaps[reference.classes[:, None] != converted.classes[None, :]] = 0.0
    taken = np.zeros(len(converted.boxes), bool)
    count = 0
    for row in np.argsort(-reference.scores):
        candidates = np.where(~taken & (overlaps[row] >= iou))[0]
        if len(candidates):
            taken[candidates[np.argmax(overlaps[row, candidates])]] = True
            count += 1
    return count


def build_report(
    flatbuffer: bytes,
    model,
    target: str,
    samples: np.ndarray,
    task: str,
    sample_source: str,
    latency_runs: int = 20,
    threads: int | None = None,
    device_head: bool = False,
    decode: Callable | None = None,
) -> dict:
    ops = op_histogram(flatbuffer)
    first = samples[0] if isinstance(samples[0], tuple) else samples[:1]
    expected = keras_outputs(model, first, task, device_head)
    threads = threads or os.cpu_count() or 1
    engine = load_engine(flatbuffer, threads=threads)  # one interpreter for latency, parity and I/O details
    latency = cpu_latency(engine, first, threads, latency_runs)
    coverage = kernel_coverage(engine)
    return {
        "target": target,
        "size_bytes": len(flatbuffer),
        "gzip_bytes": len(gzip.compress(flatbuffer, compresslevel=9)),
        "ops": ops,
        "builtin_only": is_builtin_only(ops),
        "gpu": {**gpu_check(flatbuffer, engine, first, expected), "static": static_gpu_analysis(flatbuffer)},
        "parity": {"against": f"the Keras model on {sample_source}",
                   **parity(engine, model, samples, task, device_head, decode)},
        "latency_ms": latency["p50"],
        "latency": latency,
        "xnnpack": coverage.to_json() if coverage is not None else None,
        "arena_mb": tensor_arena_mb(engine, flatbuffer),
    }
