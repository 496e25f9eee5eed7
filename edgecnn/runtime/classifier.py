"""The classification pipeline: any image -> top-k classes with labels."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.metadata import ModelMetadata, label_of, labels_of
from edgecnn.runtime.model_input import FrameWriter, model_and_metadata, normalization_of
from edgecnn.runtime.runner import Runner


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
    """Image (H, W, C) uint8/uint16, gray, RGB or RGBA, any size -> top-k classes. The image is
    resized to the model's input (stretched, as classifiers are trained) and normalized as the
    file's metadata says, straight into the interpreter's input tensor."""

    def __init__(self, model: str | os.PathLike | bytes | None, accelerator: str = "auto", threads: int | None = None,
                 top_k: int = 5, labels: list[str] | None = None, runner: Runner | None = None, metadata: ModelMetadata | None = None) -> None:
        data, self.metadata = model_and_metadata(model, metadata, runner, "classification")
        self.runner = runner or Runner(data, accelerator, threads)
        shape = self.runner.inputs[0].shape
        if len(shape) != 4:
            raise EdgeCNNError(f"The model's input has shape {shape}; a classifier needs (1, H, W, C).")
        self.size = tuple(int(d) for d in shape[1:])
        normalization = normalization_of(self.metadata)
        self.scale, self.offset = normalization.scale, normalization.offset
        self._write_frame = FrameWriter(self.runner, self.scale, self.offset, stretch=True)
        self.labels = labels_of(self.metadata, labels)
        self.top_k = top_k
        outputs = self.metadata.outputs if self.metadata else ()
        self.logits = (outputs[0].kind if outputs else "logits") == "logits"

    def __call__(self, image: np.ndarray) -> ClassificationResult:
        start = time.perf_counter()
        self._write_frame(image)
        invoke_start = time.perf_counter()
        scores = self.runner.invoke()[0].reshape(-1)
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        if self.logits:
            shifted = np.exp(scores - scores.max())
            scores = shifted / shifted.sum()
        order = np.argsort(-scores)[: self.top_k]
        top = [Prediction(int(i), label_of(self.labels, int(i)), float(scores[i])) for i in order]
        return ClassificationResult(top, invoke_ms, (time.perf_counter() - start) * 1000)
