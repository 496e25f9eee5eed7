"""Pipelines driven by the metadata inside the .tflite file (TensorFlow-free).

``Classifier`` is the first: preprocessing (colour, size, normalization) from the metadata,
inference on the CPU (XNNPACK) or on LiteRT's GPU accelerator, softmax and top-k with labels.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from edgecnn.data.images import to_model_input
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.engine import Engine, dequantize, load_engine, quantize, read_model_bytes
from edgecnn.runtime.metadata import read_metadata

log = logging.getLogger("edgecnn.runtime")

ACCELERATORS = ("auto", "cpu", "gpu")


class Runner:
    """Float arrays in, float arrays out, on the chosen accelerator. ``backend``,
    ``accelerator`` and ``fully_accelerated`` say what actually ran."""

    def __init__(self, data: bytes, accelerator: str = "auto", threads: int | None = None) -> None:
        if accelerator not in ACCELERATORS:
            raise EdgeCNNError(f"Unknown accelerator '{accelerator}'.", f"Choose one of: {', '.join(ACCELERATORS)}.")
        self.engine: Engine = load_engine(data, threads=threads)  # I/O details, and the CPU path
        self.inputs, self.outputs = self.engine.inputs, self.engine.outputs
        self.gpu = None
        self.backend, self.accelerator, self.fully_accelerated = self.engine.backend, "cpu", None
        if accelerator in ("gpu", "auto"):
            self._try_gpu(data, required=accelerator == "gpu")

    def _try_gpu(self, data: bytes, required: bool) -> None:
        from edgecnn.runtime.gpu import GpuRunner, use_software_gpu

        if required:
            use_software_gpu()
        try:
            runner = GpuRunner(data)
        except (ImportError, RuntimeError) as error:
            if required:
                raise EdgeCNNError(f"LiteRT's GPU accelerator is not available here ({str(error).splitlines()[-1]}).",
                                   "Use --accelerator cpu, or install a Vulkan driver (deploy/software-gpu.sh "
                                   "gives a software one for testing).") from error
            return
        if not runner.fully_accelerated and not required:
            log.info("not every op runs on the GPU: using the CPU")
            return
        self.gpu = runner
        self.backend, self.accelerator, self.fully_accelerated = "litert-compiled-model", "gpu", runner.fully_accelerated

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if self.gpu is None:
            return self.engine(*arrays)
        raw = self.gpu([quantize(np.asarray(a), info) for a, info in zip(arrays, self.inputs)])
        return [dequantize(o, info) for o, info in zip(raw, self.outputs)]


@dataclass
class Prediction:
    index: int
    label: str
    score: float


@dataclass
class ClassificationResult:
    top_k: list[Prediction]
    invoke_ms: float
    pipeline_ms: float
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


class Classifier:
    """Image (H, W, C) uint8/uint16, gray, RGB or RGBA, any size -> top-k classes."""

    def __init__(self, model: str | os.PathLike | bytes, accelerator: str = "auto", threads: int | None = None,
                 top_k: int = 5, labels: list[str] | None = None, runner: Runner | None = None) -> None:
        data = read_model_bytes(model)
        self.metadata = read_metadata(data) or {}
        if self.metadata and self.metadata.get("task") not in (None, "classification"):
            raise EdgeCNNError(f"This model's task is '{self.metadata['task']}', not classification.")
        self.runner = runner or Runner(data, accelerator, threads)
        shape = self.runner.inputs[0].shape
        if len(shape) != 4:
            raise EdgeCNNError(f"The model's input has shape {shape}; a classifier needs (1, H, W, C).")
        self.size = tuple(int(d) for d in shape[1:])
        normalization = self.metadata.get("input", {}).get("normalization")
        if normalization is None:
            log.warning("the model carries no edgecnn metadata: assuming RGB input scaled to [0, 1]")
            normalization = {"scale": 1 / 255, "offset": 0.0}
        self.scale, self.offset = float(normalization["scale"]), float(normalization["offset"])
        self.labels = labels or self.metadata.get("labels")
        self.top_k = top_k
        self.logits = (self.metadata.get("outputs") or [{}])[0].get("kind", "logits") == "logits"

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        unit = to_model_input(image, self.size)  # pixel / 255
        return (unit * (255.0 * self.scale) + self.offset)[None].astype(np.float32)

    def __call__(self, image: np.ndarray) -> ClassificationResult:
        start = time.perf_counter()
        batch = self.preprocess(image)
        invoke_start = time.perf_counter()
        scores = self.runner(batch)[0].reshape(-1)
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        if self.logits:
            shifted = np.exp(scores - scores.max())
            scores = shifted / shifted.sum()
        order = np.argsort(-scores)[: self.top_k]
        top = [Prediction(int(i), self._label(int(i)), float(scores[i])) for i in order]
        return ClassificationResult(top, invoke_ms, (time.perf_counter() - start) * 1000)

    def _label(self, index: int) -> str:
        return self.labels[index] if self.labels and index < len(self.labels) else str(index)


def draw_classification(image: np.ndarray, result: ClassificationResult) -> np.ndarray:
    """A copy of ``image`` (RGB) with the top prediction written on it."""
    import cv2

    canvas = np.ascontiguousarray(image.copy())
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)
    best = result.top_k[0]
    scale = max(0.4, canvas.shape[1] / 640)
    text = f"{best.label} {best.score:.2f}"
    cv2.putText(canvas, text, (5, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, (5, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return canvas
