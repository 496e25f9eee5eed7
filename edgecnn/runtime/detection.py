"""Detection post-processing (TensorFlow-free): decoding of the anchor-free YOLO outputs,
class-aware NMS, and the mapping back through the letterbox to original-image pixels.

Used by the runtime ``Detector`` and by training-side evaluation, so a .keras model and its
.tflite files are scored by exactly the same code.
"""

from __future__ import annotations

import math
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


@lru_cache(maxsize=16)
def _decode_table(input_size: tuple[int, int], strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per point: (cx, cy, cx, cy) and (-s, -s, s, s), so a box is ``centre + exp(raw) * signed``."""
    centres, point_strides = anchor_points(input_size, strides)
    signed = point_strides[:, None] * np.array([-1, -1, 1, 1], np.float32)
    return np.tile(centres, 2), signed.astype(np.float32)


def decode_boxes(raw: np.ndarray, input_size: tuple[int, int], strides: tuple[int, ...],
                 points: np.ndarray | None = None) -> np.ndarray:
    """(K, 4) log-distances (left, top, right, bottom) of the points ``points`` (default: all N)
    -> (K, 4) x1, y1, x2, y2 in input pixels."""
    centres, signed = _decode_table(tuple(input_size), tuple(strides))
    if points is not None:
        centres, signed = centres[points], signed[points]
    return centres + np.exp(np.clip(raw, -MAX_LOG_DISTANCE, MAX_LOG_DISTANCE)) * signed


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


SMALL_NMS = 16  # candidates up to which plain Python beats NumPy's per-call overhead
MATRIX_NMS = 128  # candidates up to which one pairwise IoU matrix beats a NumPy pass per kept box


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS; indices of the kept boxes, best first. A box is dropped when its IoU with a
    kept, better-scored box exceeds ``iou_threshold``. Greedy NMS keeps boxes in score order, so
    stopping at ``max_keep`` gives exactly the first ``max_keep`` of the full result."""
    return _greedy_nms(boxes, scores, None, iou_threshold, max_keep)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float,
                max_keep: int | None = None) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other."""
    return _greedy_nms(boxes, scores, classes, iou_threshold, max_keep)


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None, iou_threshold: float,
                max_keep: int | None) -> np.ndarray:
    """Three equivalent implementations, by candidate count, because on a small detector this runs
    every frame and its fixed costs show: a trained model leaves a handful of candidates (plain
    Python on floats, comparing classes directly), tens (one IoU matrix), or up to the
    1,000-candidate cap (one vector pass per kept box, which bounds memory). The last two see
    each class shifted into its own region of the plane, so one pass serves all classes."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    max_keep = len(order) if max_keep is None else max_keep
    if len(order) <= SMALL_NMS:
        return _nms_python(boxes[order].tolist(), order, iou_threshold, max_keep,
                           None if classes is None else classes[order].tolist())
    if classes is not None:
        boxes = boxes + classes.astype(np.float32)[:, None] * (boxes.max() + 1.0)
    if len(order) <= MATRIX_NMS:
        return _nms_matrix(boxes[order], order, iou_threshold, max_keep)
    return _nms_vector(boxes, order, iou_threshold, max_keep)


def _nms_python(ordered: list[list[float]], order: np.ndarray, iou_threshold: float, max_keep: int,
                classes: list[int] | None = None) -> np.ndarray:
    """``classes`` (in ``ordered``'s order): boxes of different classes never suppress each other."""
    rest = list(range(len(ordered)))
    keep = []
    while rest and len(keep) < max_keep:
        best = rest[0]
        keep.append(best)
        ax1, ay1, ax2, ay2 = ordered[best]
        area = max(ax2 - ax1, 0.0) * max(ay2 - ay1, 0.0)
        survivors = []
        for other in rest[1:]:
            if classes is not None and classes[other] != classes[best]:
                survivors.append(other)
                continue
            bx1, by1, bx2, by2 = ordered[other]
            width, height = min(ax2, bx2) - max(ax1, bx1), min(ay2, by2) - max(ay1, by1)
            if width > 0 and height > 0:
                inter = width * height
                union = area + max(bx2 - bx1, 0.0) * max(by2 - by1, 0.0) - inter
                if inter > iou_threshold * max(union, 1e-9):
                    continue
            survivors.append(other)
        rest = survivors
    return order[keep]


def _nms_matrix(ordered: np.ndarray, order: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    overlapping = (iou_matrix(ordered, ordered) > iou_threshold).tolist()
    keep, removed = [], [False] * len(order)
    for index, row in enumerate(overlapping):
        if removed[index]:
            continue
        keep.append(index)
        if len(keep) >= max_keep:
            break
        for other in range(index + 1, len(row)):
            if row[other]:
                removed[other] = True
    return order[keep]


def _nms_vector(boxes: np.ndarray, order: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, k], dtype=np.float32) for k in range(4))
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep = []
    while order.size and len(keep) < max_keep:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])
        height = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])
        inter = np.maximum(width, 0) * np.maximum(height, 0)
        overlaps = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[overlaps <= iou_threshold]
    return np.array(keep, np.int64)


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
    # threshold on logits first: the sigmoid is only computed for the few candidates; a flat
    # index is several times cheaper to find than a 2-D one
    logit_threshold = math.log(score_threshold / (1 - score_threshold)) if 0 < score_threshold < 1 else -math.inf
    flat_scores = raw_scores.reshape(-1)
    candidates = np.flatnonzero(flat_scores > logit_threshold)
    if len(candidates) == 0:
        return RawDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    if len(candidates) > max_candidates:
        candidates = candidates[np.argpartition(-flat_scores[candidates], max_candidates)[:max_candidates]]
    points, classes = np.divmod(candidates, raw_scores.shape[1])
    boxes = decode_boxes(raw_boxes[points], input_size, strides, points)
    scores = sigmoid(flat_scores[candidates])
    keep = batched_nms(boxes, scores, classes, iou_threshold, max_detections)
    return RawDetections(boxes[keep], scores[keep].astype(np.float32), classes[keep].astype(np.int64))
