"""The detection pipeline: any image -> boxes, scores and labels in the image's own pixels
(letterbox, invoke, decoding of the anchor-free YOLO outputs or of a Faster R-CNN's proposals,
class-aware NMS)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.detection import BOX_ENCODINGS, LOG_DISTANCES, postprocess
from edgecnn.runtime.images import as_rgb8
from edgecnn.runtime.metadata import ModelMetadata, label_of, labels_of
from edgecnn.runtime.model_input import FrameWriter, model_and_metadata, normalization_of
from edgecnn.runtime.regions import (
    DEFAULT_DELTA_WEIGHTS,
    MAX_WARPED_REGIONS,
    NMS_IOU,
    PROPOSAL_KIND,
    REGION_KIND,
    WARP_KIND,
    no_detections,
    padded_proposals,
    region_postprocess,
    svm_postprocess,
)
from edgecnn.runtime.runner import Runner
from edgecnn.runtime.search_pixels import warp_region


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
    classes, as MediaPipe's ObjectDetector does with the same file. ``iou_threshold``: NMS
    overlap, by default the family's (``runtime.regions.NMS_IOU``: 0.3 for R-CNN, as its paper;
    else 0.5)."""

    def __init__(self, model: str | os.PathLike | bytes | None, accelerator: str = "auto", threads: int | None = None,
                 score_threshold: float = 0.25, iou_threshold: float | None = None, max_detections: int = 100,
                 labels: list[str] | None = None, strides: list[int] | None = None,
                 runner: Runner | None = None, metadata: ModelMetadata | None = None, agnostic: bool = False) -> None:
        data, self.metadata = model_and_metadata(model, metadata, runner, "detection")
        decoding = (self.metadata.decoding if self.metadata else None) or {}
        self.two_stage = decoding.get("kind") == REGION_KIND
        self.takes_proposals = decoding.get("kind") == PROPOSAL_KIND  # Fast R-CNN: selective search here
        self.warps_regions = decoding.get("kind") == WARP_KIND  # R-CNN: search, then one invoke per region
        region_based = self.two_stage or self.takes_proposals or self.warps_regions  # no YOLO decoding
        self.decoding = decoding
        self.delta_weights = tuple(decoding.get("delta_weights") or DEFAULT_DELTA_WEIGHTS)
        self.strides = tuple(int(s) for s in (strides or decoding.get("strides") or ()))
        if not self.strides and not region_based:
            raise EdgeCNNError("This model carries no detection decoding metadata (a YOLO file's head strides; an "
                               "R-CNN, Fast R-CNN or Faster R-CNN file's proposal layout and box decoding).",
                               "Convert the model with `edgecnn convert`, which writes it; for an anchor-free YOLO "
                               "you may instead pass its strides (--strides 8 16 32).")
        self.box_encoding = decoding.get("box_encoding") or LOG_DISTANCES
        if self.box_encoding not in BOX_ENCODINGS and not region_based:
            raise EdgeCNNError(f"This model's boxes are encoded as '{self.box_encoding}', which this version of "
                               f"edgecnn does not decode (it knows {', '.join(BOX_ENCODINGS)}).",
                               "Upgrade edgecnn on the device, or convert the model with this version.")
        self.runner = runner or Runner(data, accelerator, threads)
        self.labels = labels_of(self.metadata, labels)
        self.score_threshold = score_threshold
        self.iou_threshold = NMS_IOU.get(decoding.get("kind"), 0.5) if iou_threshold is None else iou_threshold
        self.max_detections = max_detections
        self.agnostic = agnostic
        normalization = normalization_of(self.metadata)
        self.scale, self.offset = normalization.scale, normalization.offset
        if self.takes_proposals:
            self._init_fast_rcnn(decoding)
            return
        if self.warps_regions:
            self._init_rcnn(decoding)
            return
        shape = self.runner.inputs[0].shape
        self.size = tuple(int(d) for d in shape[1:])
        self._write_frame = FrameWriter(self.runner, self.scale, self.offset)
        if self.two_stage:  # outputs come in the Keras model's order: proposals, class scores, box deltas
            shapes = [tuple(o.shape) for o in self.runner.outputs]
            count = int(decoding.get("proposals") or 0)
            classes = int(decoding.get("num_classes") or 0)
            if len(shape) != 4 or shapes != [(1, count, 4), (1, count, classes + 1), (1, count, 4 * classes)]:
                raise EdgeCNNError(f"This Faster R-CNN file's outputs {shapes} are not the (1, P, 4), (1, P, K + 1) "
                                   f"and (1, P, 4K) that its metadata describes (P = {count} proposals, K = "
                                   f"{classes} classes).", "Convert the model again with `edgecnn convert`.")
            self._quantization = None
            return
        if len(shape) != 4 or len(self.runner.outputs) != 2:
            raise EdgeCNNError(f"A detector needs one (1, H, W, C) input and two outputs (boxes, scores); this model "
                               f"has inputs {[i.shape for i in self.runner.inputs]} and "
                               f"{len(self.runner.outputs)} output(s).")
        self.box_output = 0 if self.runner.outputs[0].shape[-1] == 4 else 1
        # int8 outputs (int8-io files) are decoded from their stored integers: only candidates
        # get dequantized
        box_info, score_info = self.runner.outputs[self.box_output], self.runner.outputs[1 - self.box_output]
        stored = all(info.quantized and info.scale > 0 and info.dtype.itemsize == 1 for info in (box_info, score_info))
        self._quantization = ((box_info.scale, box_info.zero_point),
                              (score_info.scale, score_info.zero_point)) if stored else None

    def _init_fast_rcnn(self, decoding: dict) -> None:
        inputs = self.runner.inputs
        self.count = int(decoding.get("proposals") or 0)
        classes = int(decoding.get("num_classes") or 0)
        images = [i for i, info in enumerate(inputs) if len(info.shape) == 4]
        boxes = [i for i, info in enumerate(inputs) if tuple(info.shape) == (1, self.count, 4)]
        shapes = [tuple(o.shape) for o in self.runner.outputs]
        if len(inputs) != 2 or len(images) != 1 or len(boxes) != 1 or \
                shapes != [(1, self.count, classes + 1), (1, self.count, 4 * classes)]:
            raise EdgeCNNError(f"This Fast R-CNN file's inputs {[i.shape for i in inputs]} and outputs {shapes} are not "
                               f"the image, (1, {self.count}, 4) proposals, (1, P, K + 1) scores and (1, P, 4K) deltas "
                               "its metadata describes.", "Convert the model again with `edgecnn convert`.")
        self._image_input, self._proposal_input = images[0], boxes[0]
        self.size = tuple(int(d) for d in inputs[images[0]].shape[1:])

    def _init_rcnn(self, decoding: dict) -> None:
        classes = int(decoding.get("num_classes") or 0)
        shapes = [tuple(o.shape) for o in self.runner.outputs]
        inputs = self.runner.inputs
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or shapes != [(1, classes + 1), (1, 4 * classes)]:
            raise EdgeCNNError(f"This R-CNN file's input {[i.shape for i in inputs]} and outputs {shapes} are not the "
                               f"(1, h, w, C) region, (1, K + 1) SVM scores and (1, 4K) deltas its metadata describes.",
                               "Convert the model again with `edgecnn convert`.")
        self.size = tuple(int(d) for d in inputs[0].shape[1:])
        self.context = float(decoding.get("context", 0.0))

    def classify_regions(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R-CNN: (R, h, w, C) warped regions in [0, 1] -> (R, K + 1) SVM scores and (R, 4K)
        deltas, one invoke per region (the file has batch 1, as every device file; a backend that
        says it is ``batched``, e.g. a Keras model on the workstation, takes them at once)."""
        if getattr(self.runner, "batched", False):
            svm, box = self.runner((crops * (255.0 * self.scale) + self.offset).astype(np.float32))
            return svm.reshape(len(crops), -1), box.reshape(len(crops), -1)
        scores, deltas = [], []
        for crop in crops:
            svm, box = self.runner((crop[None] * (255.0 * self.scale) + self.offset).astype(np.float32))
            scores.append(svm[0])
            deltas.append(box[0])
        return np.array(scores, np.float32).reshape(len(crops), -1), np.array(deltas, np.float32).reshape(len(crops), -1)

    def raw(self, batch: np.ndarray, proposals: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Model outputs for a preprocessed (1, H, W, C) float batch in [0, 1]: (boxes, scores),
        for a Faster R-CNN file (proposals, class scores, box deltas), and for a Fast R-CNN file
        (class scores, box deltas) of ``proposals`` ((count, 4) in input pixels, padded)."""
        pixels = (batch * (255.0 * self.scale) + self.offset).astype(np.float32)
        if self.takes_proposals:
            arrays = [None, None]
            arrays[self._image_input], arrays[self._proposal_input] = pixels, proposals[None].astype(np.float32)
            return tuple(self.runner(*arrays))
        outputs = self.runner(pixels)
        if self.two_stage:
            return tuple(outputs)
        return outputs[self.box_output], outputs[1 - self.box_output]

    def _decode(self, outputs: list[np.ndarray]):
        height, width, _ = self.size
        if self.two_stage:
            proposals, class_scores, box_deltas = (output[0] for output in outputs)
            return region_postprocess(proposals, class_scores, box_deltas, (height, width),
                                      self.delta_weights,
                                      self.score_threshold, self.iou_threshold, self.max_detections)
        return postprocess(outputs[self.box_output][0], outputs[1 - self.box_output][0], (height, width),
                           self.strides, self.score_threshold, self.iou_threshold, self.max_detections,
                           quantization=self._quantization, box_encoding=self.box_encoding, agnostic=self.agnostic)

    def __call__(self, image: np.ndarray, proposals: np.ndarray | None = None) -> DetectionResult:
        """Detections in ``image``; an R-CNN or Fast R-CNN file takes ``proposals`` ((N, 4) x1, y1,
        x2, y2 in the image's pixels, best first) where given, else runs selective search."""
        start = time.perf_counter()
        rgb = as_rgb8(image)
        if self.takes_proposals or self.warps_regions:
            return self._detect_in_regions(rgb, start, proposals)
        fit = self._write_frame(rgb)
        invoke_start = time.perf_counter()
        outputs = self.runner.invoke(dequantized=self._quantization is None)
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        found = self._decode(outputs)
        return self._result(fit.to_original(found.boxes, rgb.shape[1], rgb.shape[0]), found, invoke_ms, start, rgb)

    def _result(self, boxes: np.ndarray, found, invoke_ms: float, start: float, rgb: np.ndarray) -> DetectionResult:
        """``found``'s detections with ``boxes`` (in the image's own pixels) and their labels."""
        detections = [Detection(box, score, cls, label_of(self.labels, cls)) for box, score, cls in
                      zip(boxes.round(2).tolist(), found.scores.tolist(), found.classes.tolist())]
        return DetectionResult(detections, invoke_ms, (time.perf_counter() - start) * 1000, list(rgb.shape[:2]))

    def _detect_in_regions(self, rgb: np.ndarray, start: float, proposals: np.ndarray | None) -> DetectionResult:
        """Fast R-CNN: the best ``count`` proposals (selective search's, unless given) into the
        model beside the image; R-CNN: see ``_classify_warped``."""
        from edgecnn.runtime.images import letterbox
        from edgecnn.runtime.selective_search import selective_search

        found_regions = selective_search(rgb) if proposals is None else np.asarray(proposals, np.float32).reshape(-1, 4)
        if proposals is not None and len(found_regions) == 0:  # nothing to classify
            return self._result(np.zeros((0, 4), np.float32), no_detections(), 0.0, start, rgb)
        if len(found_regions) == 0:
            raise EdgeCNNError(f"Selective search found no regions in this {rgb.shape[1]}x{rgb.shape[0]} image, so "
                               "the detector has nothing to classify.",
                               "Give it a larger image (regions must be at least 4 pixels wide and high).")
        if self.warps_regions:
            return self._classify_warped(rgb, found_regions, start)
        height, width, channels = self.size
        letterboxed, fit = letterbox(rgb, height, width)
        if channels == 1:
            letterboxed = letterboxed.mean(axis=2, keepdims=True)
        regions, real = padded_proposals(fit.to_input(found_regions), self.count)
        invoke_start = time.perf_counter()
        class_scores, box_deltas = self.raw(letterboxed[None].astype(np.float32) / 255.0, regions)
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        found = region_postprocess(regions[:real], class_scores[0][:real], box_deltas[0][:real], (height, width),
                                   self.delta_weights,
                                   self.score_threshold, self.iou_threshold, self.max_detections)
        return self._result(fit.to_original(found.boxes, rgb.shape[1], rgb.shape[0]), found, invoke_ms, start, rgb)

    def _classify_warped(self, rgb: np.ndarray, found_regions: np.ndarray, start: float) -> DetectionResult:
        """R-CNN: the best proposals warped with context, classified one by one, then decoded."""
        regions = found_regions[:MAX_WARPED_REGIONS]
        height, width, channels = self.size
        crops = np.stack([warp_region(rgb, box, (height, width), self.context) for box in regions])
        if channels == 1:
            crops = crops.mean(axis=3, keepdims=True)
        invoke_start = time.perf_counter()
        svm_scores, box_deltas = self.classify_regions(crops.astype(np.float32) / 255.0)
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        found = svm_postprocess(regions, svm_scores, box_deltas, rgb.shape[:2],
                                self.delta_weights,
                                self.score_threshold, self.iou_threshold, self.max_detections)
        return self._result(found.boxes, found, invoke_ms, start, rgb)  # already in image pixels
