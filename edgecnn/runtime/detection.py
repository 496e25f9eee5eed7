"""Detection post-processing (TensorFlow-free): decoding of the anchor-free YOLO outputs,
class-aware NMS, and the mapping back through the letterbox to original-image pixels.

Used by the runtime ``Detector`` and by training-side evaluation, so a .keras model and its
.tflite files are scored by exactly the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def anchor_points(input_size: tuple[int, int], strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (N, 2) in input pixels and their strides (N,), levels finest first,
    row-major within a level: the order of the model's flattened outputs."""
    centres, point_strides = [], []
    for stride in strides:
        rows, cols = input_size[0] // stride, input_size[1] // stride
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres.append(np.stack([(xs.reshape(-1) + 0.5) * stride, (ys.reshape(-1) + 0.5) * stride], 1))
        point_strides.append(np.full(rows * cols, stride, np.float32))
    return np.concatenate(centres).astype(np.float32), np.concatenate(point_strides)


MAX_LOG_DISTANCE = 8.0  # exp(8) * stride is far beyond any input: clipping only stops overflow


def decode_boxes(raw: np.ndarray, input_size: tuple[int, int], strides: tuple[int, ...],
                 points: np.ndarray | None = None) -> np.ndarray:
    """(K, 4) log-distances (left, top, right, bottom) of the points ``points`` (default: all N)
    -> (K, 4) x1, y1, x2, y2 in input pixels."""
    centres, point_strides = anchor_points(tuple(input_size), tuple(strides))
    if points is not None:
        centres, point_strides = centres[points], point_strides[points]
    distances = np.exp(np.clip(raw, -MAX_LOG_DISTANCE, MAX_LOG_DISTANCE)) * point_strides[:, None]
    return np.concatenate([centres - distances[:, :2], centres + distances[:, 2:]], axis=1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS; indices of the kept boxes, best first. Greedy NMS keeps boxes in score
    order, so stopping at ``max_keep`` gives exactly the first ``max_keep`` of the full result
    (and bounds the loop: with 1,000 scattered candidates it would otherwise run 1,000 times).
    Coordinates and areas are split out once; each step is a handful of vector operations."""
    order = np.argsort(-scores)
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, k], dtype=np.float32) for k in range(4))
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])
        height = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])
        inter = np.maximum(width, 0) * np.maximum(height, 0)
        overlaps = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[overlaps <= iou_threshold]
    return np.array(keep, np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float,
                max_keep: int | None = None) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other (each class is
    shifted into its own region of the plane, one NMS pass for all)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    offset = classes.astype(np.float32)[:, None] * (boxes.max() + 1.0)
    return nms(boxes + offset, scores, iou_threshold, max_keep)


@dataclass
class RawDetections:
    boxes: np.ndarray  # (K, 4) x1, y1, x2, y2 in model-input pixels
    scores: np.ndarray  # (K,)
    classes: np.ndarray  # (K,)


def postprocess(raw_boxes: np.ndarray, raw_scores: np.ndarray, input_size: tuple[int, int],
                strides: tuple[int, ...], score_threshold: float = 0.25, iou_threshold: float = 0.5,
                max_detections: int = 100, max_candidates: int = 1000) -> RawDetections:
    """Decode one image's outputs ((N, 4), (N, C) raw logits) into final detections."""
    raw_boxes = np.asarray(raw_boxes, np.float32).reshape(-1, 4)
    raw_scores = np.asarray(raw_scores, np.float32).reshape(len(raw_boxes), -1)
    # threshold on logits first: the sigmoid is only computed for the few candidates
    logit_threshold = np.log(score_threshold / (1 - score_threshold)) if 0 < score_threshold < 1 else -np.inf
    points, classes = np.nonzero(raw_scores > logit_threshold)
    logits = raw_scores[points, classes]
    if len(logits) > max_candidates:
        best = np.argpartition(-logits, max_candidates)[:max_candidates]
        points, classes, logits = points[best], classes[best], logits[best]
    boxes = decode_boxes(raw_boxes[points], input_size, strides, points)
    scores = sigmoid(logits)
    keep = batched_nms(boxes, scores, classes, iou_threshold, max_detections)
    return RawDetections(boxes[keep], scores[keep].astype(np.float32), classes[keep].astype(np.int64))
