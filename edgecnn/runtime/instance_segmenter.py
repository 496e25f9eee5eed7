"""The instance segmentation pipeline (Mask R-CNN files): any image -> per instance a label,
score, box and full-size mask, with no TensorFlow.

The file gives, for its P proposals, class probabilities, per-class box deltas and an M x M mask
per class over each proposal's box. The pipeline decodes the detections as the Detector does a
Faster R-CNN's (``region_postprocess``: per-class refinement, class-aware NMS), then pastes each
detection's class channel of its proposal's mask into the image at that proposal's box (the box
the mask was predicted over; bilinear, threshold 0.5).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.detection import RawDetections
from edgecnn.runtime.images import Letterbox, as_rgb8
from edgecnn.runtime.masks import MASK_THRESHOLD, encode_rle, paste_mask
from edgecnn.runtime.metadata import ModelMetadata, label_of, labels_of
from edgecnn.runtime.model_input import FrameWriter, model_and_metadata, normalization_of
from edgecnn.runtime.regions import DEFAULT_DELTA_WEIGHTS, MASK_KIND, region_postprocess
from edgecnn.runtime.runner import Runner


@dataclass
class Instance:
    box: list[float]  # x1, y1, x2, y2 in the original image's pixels
    score: float
    index: int  # class id
    label: str
    mask: np.ndarray  # (H, W) bool, the whole image

    def to_json(self) -> dict:
        """Box, label, score, area and the mask as COCO RLE (compressed string counts)."""
        return {"box": self.box, "score": self.score, "class": self.index, "label": self.label,
                "area": int(self.mask.sum()), "mask": encode_rle(self.mask)}


@dataclass
class InstanceSegmentationResult:
    instances: list[Instance]
    invoke_ms: float
    paste_ms: float  # the masks' pasting (and nothing else)
    pipeline_ms: float
    image_size: list[int]  # height, width of the original image

    def to_json(self) -> dict:
        return {"instances": [instance.to_json() for instance in self.instances], "invoke_ms": self.invoke_ms,
                "paste_ms": self.paste_ms, "pipeline_ms": self.pipeline_ms, "image_size": self.image_size}


def instance_masks(found: RawDetections, masks: np.ndarray, fit: Letterbox, image_size: tuple[int, int],
                   proposals: np.ndarray, mask_size: int, threshold: float = MASK_THRESHOLD) -> list[np.ndarray]:
    """Each detection's full-size mask: the (P * M, M, K) output's rows of its proposal, its
    class's channel, pasted at the proposal's box mapped to the original image (unclipped, so
    that the mask keeps its geometry at the border)."""
    grid = np.asarray(masks).reshape(-1, mask_size, mask_size, masks.shape[-1])
    boxes = fit.to_original(np.asarray(proposals)[found.points])
    return [paste_mask(grid[row, :, :, cls], box, image_size, threshold)
            for row, cls, box in zip(found.points, found.classes, boxes)]


def decode_instances(outputs: list[np.ndarray], fit: Letterbox, image_size: tuple[int, int],
                     input_size: tuple[int, int], mask_size: int, delta_weights=DEFAULT_DELTA_WEIGHTS,
                     score_threshold: float = 0.25, iou_threshold: float = 0.5, max_detections: int = 100,
                     mask_threshold: float = MASK_THRESHOLD) -> tuple[RawDetections, list[np.ndarray], float]:
    """A Mask R-CNN's four outputs for one image (a file's, or a Keras model's deployed ones:
    proposals, class scores, box deltas, masks; batch of 1) -> detections (boxes in input
    pixels), their full-size masks in the original image, and the milliseconds the pasting took."""
    proposals, class_scores, box_deltas, masks = (np.asarray(output)[0] for output in outputs)
    found = region_postprocess(proposals, class_scores, box_deltas, input_size, delta_weights, score_threshold,
                               iou_threshold, max_detections)
    paste_start = time.perf_counter()
    pasted = instance_masks(found, masks, fit, image_size, proposals, mask_size, mask_threshold)
    return found, pasted, (time.perf_counter() - paste_start) * 1000


class InstanceSegmenter:
    """Image (any size, gray/RGB/RGBA, 8/16 bit) -> instances (label, score, box, mask)."""

    def __init__(self, model: str | os.PathLike | bytes | None, accelerator: str = "auto", threads: int | None = None,
                 score_threshold: float = 0.25, iou_threshold: float = 0.5, max_detections: int = 100,
                 mask_threshold: float = MASK_THRESHOLD, labels: list[str] | None = None,
                 runner: Runner | None = None, metadata: ModelMetadata | None = None) -> None:
        data, self.metadata = model_and_metadata(model, metadata, runner, "instance_segmentation")
        decoding = (self.metadata.decoding if self.metadata else None) or {}
        if decoding.get("kind") != MASK_KIND:
            raise EdgeCNNError("This instance segmentation file carries no Mask R-CNN decoding metadata (proposals, "
                               "box deltas, mask size).", "Convert the model with `edgecnn convert`, which writes it.")
        self.decoding = decoding
        self.runner = runner or Runner(data, accelerator, threads)
        self.labels = labels_of(self.metadata, labels)
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self.max_detections, self.mask_threshold = max_detections, mask_threshold
        self.delta_weights = tuple(decoding.get("delta_weights") or DEFAULT_DELTA_WEIGHTS)
        self.mask_size = int(decoding.get("mask_size") or 0)
        count, classes = int(decoding.get("proposals") or 0), int(decoding.get("num_classes") or 0)
        shapes = [tuple(o.shape) for o in self.runner.outputs]
        expected = [(1, count, 4), (1, count, classes + 1), (1, count, 4 * classes),
                    (1, count * self.mask_size, self.mask_size, classes)]
        shape = self.runner.inputs[0].shape
        if len(self.runner.inputs) != 1 or len(shape) != 4 or shapes != expected:
            raise EdgeCNNError(f"This Mask R-CNN file's outputs {shapes} are not the {expected} its metadata "
                               f"describes (P = {count} proposals, K = {classes} classes, {self.mask_size}x"
                               f"{self.mask_size} masks).", "Convert the model again with `edgecnn convert`.")
        self.size = tuple(int(d) for d in shape[1:])
        normalization = normalization_of(self.metadata)
        self.scale, self.offset = normalization.scale, normalization.offset
        self._write_frame = FrameWriter(self.runner, self.scale, self.offset)

    def raw(self, batch: np.ndarray) -> list[np.ndarray]:
        """The file's four outputs for a preprocessed (1, H, W, C) float batch in [0, 1]."""
        return self.runner((batch * (255.0 * self.scale) + self.offset).astype(np.float32))

    def decode(self, outputs: list[np.ndarray], fit: Letterbox,
               image_size: tuple[int, int]) -> tuple[RawDetections, list[np.ndarray], float]:
        """The file's four outputs for one image -> see ``decode_instances``."""
        return decode_instances(outputs, fit, image_size, self.size[:2], self.mask_size, self.delta_weights,
                                self.score_threshold, self.iou_threshold, self.max_detections, self.mask_threshold)

    def __call__(self, image: np.ndarray) -> InstanceSegmentationResult:
        start = time.perf_counter()
        rgb = as_rgb8(image)
        fit = self._write_frame(rgb)
        invoke_start = time.perf_counter()
        outputs = self.runner.invoke()
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        found, masks, paste_ms = self.decode(outputs, fit, rgb.shape[:2])
        boxes = fit.to_original(found.boxes, rgb.shape[1], rgb.shape[0])
        instances = [Instance(box, score, cls, label_of(self.labels, cls), mask) for box, score, cls, mask in
                     zip(boxes.round(2).tolist(), found.scores.tolist(), found.classes.tolist(), masks)]
        return InstanceSegmentationResult(instances, invoke_ms, paste_ms, (time.perf_counter() - start) * 1000,
                                          list(rgb.shape[:2]))
