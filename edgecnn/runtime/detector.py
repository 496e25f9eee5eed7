"""The detection pipeline: any image -> boxes, scores and labels in the image's own pixels
(letterbox, invoke, decoding of the anchor-free outputs, class-aware NMS)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.detection import BOX_ENCODINGS, LOG_DISTANCES, postprocess
from edgecnn.runtime.engine import read_model_bytes
from edgecnn.runtime.images import as_rgb8
from edgecnn.runtime.metadata import label_of, labels_of, read_metadata, require_task
from edgecnn.runtime.model_input import FrameWriter, normalization_of
from edgecnn.runtime.runner import Runner


@dataclass
class Detection:
    box: list[float]  # x1, y1, x2, y2 in the original image's pixels
    score: float
    index: int
    label: str


@dataclass
class DetectionResult:
    detections: list[Detection]
    invoke_ms: float
    pipeline_ms: float
    image_size: list[int]  # height, width of the original image

    def to_json(self) -> dict:
        return asdict(self)


class Detector:
    """Image (any size, gray/RGB/RGBA, 8/16 bit) -> boxes, scores and labels in its own pixels.

    Reads the decoding parameters (strides, box encoding) from the file's metadata; for a file
    without them, pass ``strides`` (anchor-free YOLO layout: outputs (1, N, 4) log-distances and
    (1, N, C) class logits). Every class above ``score_threshold`` at a point is a detection,
    with class-aware NMS; ``agnostic=True`` keeps each point's best class and suppresses across
    classes, as MediaPipe's ObjectDetector does with the same file."""

    def __init__(self, model: str | os.PathLike | bytes, accelerator: str = "auto", threads: int | None = None,
                 score_threshold: float = 0.25, iou_threshold: float = 0.5, max_detections: int = 100,
                 labels: list[str] | None = None, strides: list[int] | None = None,
                 runner: Runner | None = None, agnostic: bool = False) -> None:
        data = read_model_bytes(model)
        self.metadata = read_metadata(data)
        require_task(self.metadata, "detection")
        decoding = (self.metadata.decoding if self.metadata else None) or {}
        self.strides = tuple(int(s) for s in (strides or decoding.get("strides") or ()))
        if not self.strides:
            raise EdgeCNNError("This model carries no detection decoding metadata (the head strides).",
                               "Pass them on the command line (--strides 8 16 32 for an anchor-free YOLO), or "
                               "convert the model with `edgecnn convert --task detection`.")
        self.box_encoding = decoding.get("box_encoding") or LOG_DISTANCES
        if self.box_encoding not in BOX_ENCODINGS:
            raise EdgeCNNError(f"This model's boxes are encoded as '{self.box_encoding}', which this version of "
                               f"edgecnn does not decode (it knows {', '.join(BOX_ENCODINGS)}).",
                               "Upgrade edgecnn on the device, or convert the model with this version.")
        self.runner = runner or Runner(data, accelerator, threads)
        shape = self.runner.inputs[0].shape
        if len(shape) != 4 or len(self.runner.outputs) != 2:
            raise EdgeCNNError(f"A detector needs one (1, H, W, C) input and two outputs (boxes, scores); this model "
                               f"has inputs {[i.shape for i in self.runner.inputs]} and "
                               f"{len(self.runner.outputs)} output(s).")
        self.size = tuple(int(d) for d in shape[1:])
        self.box_output = 0 if self.runner.outputs[0].shape[-1] == 4 else 1
        # int8 outputs (int8-io files) are decoded from their stored integers: only candidates
        # get dequantized
        box_info, score_info = self.runner.outputs[self.box_output], self.runner.outputs[1 - self.box_output]
        stored = all(info.quantized and info.scale > 0 and info.dtype.itemsize == 1 for info in (box_info, score_info))
        self._quantization = ((box_info.scale, box_info.zero_point),
                              (score_info.scale, score_info.zero_point)) if stored else None
        normalization = normalization_of(self.metadata)
        self.scale, self.offset = normalization.scale, normalization.offset
        self._write_frame = FrameWriter(self.runner, self.scale, self.offset)
        self.labels = labels_of(self.metadata, labels)
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self.max_detections = max_detections
        self.agnostic = agnostic

    def raw(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model outputs for a preprocessed (1, H, W, C) float batch in [0, 1]: (boxes, scores)."""
        outputs = self.runner((batch * (255.0 * self.scale) + self.offset).astype(np.float32))
        return outputs[self.box_output], outputs[1 - self.box_output]

    def __call__(self, image: np.ndarray) -> DetectionResult:
        start = time.perf_counter()
        rgb = as_rgb8(image)
        height, width, _ = self.size
        fit = self._write_frame(rgb)
        invoke_start = time.perf_counter()
        outputs = self.runner.invoke(dequantized=self._quantization is None)
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        found = postprocess(outputs[self.box_output][0], outputs[1 - self.box_output][0], (height, width),
                            self.strides, self.score_threshold, self.iou_threshold, self.max_detections,
                            quantization=self._quantization, box_encoding=self.box_encoding, agnostic=self.agnostic)
        boxes = fit.to_original(found.boxes, rgb.shape[1], rgb.shape[0])
        detections = [Detection(box, score, cls, label_of(self.labels, cls)) for box, score, cls in
                      zip(boxes.round(2).tolist(), found.scores.tolist(), found.classes.tolist())]
        return DetectionResult(detections, invoke_ms, (time.perf_counter() - start) * 1000, list(rgb.shape[:2]))
