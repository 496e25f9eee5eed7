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

from edgecnn.runtime.engine import dequantize_values


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


# box encodings of a detector's box output (the file's metadata names its own):
# log-distances (left, top, right, bottom) in stride units, the model's own (and int8-io files');
# (dy, dx, h, w) in stride units, the files' device head (export/device_heads.py)
LOG_DISTANCES, YXHW_STRIDE = "ltrb_log_stride", "yxhw_stride"
BOX_ENCODINGS = (LOG_DISTANCES, YXHW_STRIDE)


def decode_boxes(raw: np.ndarray, input_size: tuple[int, int], strides: tuple[int, ...],
                 points: np.ndarray | None = None, encoding: str = LOG_DISTANCES) -> np.ndarray:
    """(K, 4) raw boxes of the points ``points`` (default: all N) in ``encoding`` -> (K, 4)
    x1, y1, x2, y2 in input pixels."""
    if encoding == YXHW_STRIDE:
        centres, point_strides = anchor_points(tuple(input_size), tuple(strides))
        if points is not None:
            centres, point_strides = centres[points], point_strides[points]
        scaled = raw * point_strides[:, None]
        centre_x, centre_y = centres[:, 0] + scaled[:, 1], centres[:, 1] + scaled[:, 0]
        half_w, half_h = scaled[:, 3] / 2, scaled[:, 2] / 2
        return np.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], 1)
    centres, signed = _decode_table(tuple(input_size), tuple(strides))
    if points is not None:
        centres, signed = centres[points], signed[points]
    return centres + np.exp(np.clip(raw, -MAX_LOG_DISTANCE, MAX_LOG_DISTANCE)) * signed


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) boxes -> (N, M) IoU, one coordinate plane at a time (NMS calls this per
    block of candidates: no (N, M, 2) temporaries, no reductions over a short axis)."""
    ax1, ay1, ax2, ay2 = (a[:, k, None] for k in range(4))
    bx1, by1, bx2, by2 = (b[None, :, k] for k in range(4))
    width = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    height = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.maximum(width, 0, out=width) * np.maximum(height, 0, out=height)
    area_a = np.maximum(ax2 - ax1, 0) * np.maximum(ay2 - ay1, 0)
    area_b = np.maximum(bx2 - bx1, 0) * np.maximum(by2 - by1, 0)
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


SMALL_NMS = 16  # candidates up to which plain Python beats NumPy's per-call overhead
NMS_BLOCK = 128  # candidates per IoU matrix above that: bounds memory at up to 1,000 candidates


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float,
                max_keep: int | None = None) -> np.ndarray:
    """Class-aware greedy NMS (boxes of different classes never suppress each other); indices of
    the kept boxes, best first, at most ``max_keep`` (exactly the first ``max_keep`` of the full
    result). Two equivalent implementations, by candidate count, because on a small detector this
    runs every frame and its fixed costs show: a trained model leaves a handful of candidates
    (plain Python on floats, comparing classes directly); more, up to the 1,000-candidate cap, go
    through IoU matrices block by block, with each class shifted into its own region of the
    plane, so one matrix serves all classes."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    max_keep = len(order) if max_keep is None else max_keep
    if len(order) <= SMALL_NMS:
        return order[_nms_python(boxes[order].tolist(), iou_threshold, max_keep, classes[order].tolist())]
    boxes = boxes + classes.astype(np.float32)[:, None] * (boxes.max() + 1.0)
    return _nms_blocked(boxes, order, iou_threshold, max_keep)


def _nms_python(ordered: list[list[float]], iou_threshold: float, max_keep: int,
                classes: list[int] | None = None) -> list[int]:
    """Positions in ``ordered`` (best first) of the kept boxes. ``classes`` (in ``ordered``'s
    order): boxes of different classes never suppress each other."""
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
    return keep


def _nms_blocked(boxes: np.ndarray, order: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    """Greedy NMS in blocks of NMS_BLOCK candidates, best first: a block loses what the boxes kept
    so far suppress (one IoU matrix against them), then is resolved with its own IoU matrix, at
    four small NumPy calls per kept box (a pass over every remaining candidate per kept box took
    about twenty, over up to 1,000 candidates)."""
    ordered = boxes[order]
    keep: list[int] = []
    kept_boxes = ordered[:0]
    for start in range(0, len(ordered), NMS_BLOCK):
        block = ordered[start:start + NMS_BLOCK]
        alive = np.ones(len(block), bool)
        if len(kept_boxes):
            alive &= ~(iou_matrix(block, kept_boxes) > iou_threshold).any(axis=1)
        if not alive.any():
            continue
        overlaps = iou_matrix(block, block) > iou_threshold
        new: list[int] = []
        while alive.any() and len(keep) + len(new) < max_keep:
            best = int(alive.argmax())  # the first alive: the best-scored left
            new.append(best)
            alive &= ~overlaps[best]
            alive[best] = False
        keep.extend(start + position for position in new)
        if len(keep) >= max_keep:
            break
        kept_boxes = np.concatenate([kept_boxes, block[new]])
    return order[keep]


@dataclass
class RawDetections:
    boxes: np.ndarray  # (K, 4) x1, y1, x2, y2 in model-input pixels
    scores: np.ndarray  # (K,)
    classes: np.ndarray  # (K,)
    points: np.ndarray | None = None  # (K,) the output row (anchor point) of each


def postprocess(raw_boxes: np.ndarray, raw_scores: np.ndarray, input_size: tuple[int, int],
                strides: tuple[int, ...], score_threshold: float = 0.25, iou_threshold: float = 0.5,
                max_detections: int = 100, max_candidates: int = 1000,
                quantization: tuple[tuple[float, int], tuple[float, int]] | None = None,
                box_encoding: str = LOG_DISTANCES, agnostic: bool = False) -> RawDetections:
    """Decode one image's outputs ((N, 4) boxes in ``box_encoding``, (N, C) raw logits) into
    final detections: every (point, class) above the threshold, class-aware NMS. ``agnostic``:
    MediaPipe's ObjectDetector semantics instead, one class per point (its best) and NMS across
    classes.

    ``quantization``: the outputs are an int8 model's stored integers, with these (scale,
    zero point) for boxes and scores. The threshold is then applied to the integers and only the
    candidates are dequantized, with the same result as dequantizing everything first (the
    runtime's dequantize formula, compared level by level), for a fraction of the cost."""
    raw_boxes = np.asarray(raw_boxes).reshape(-1, 4)
    raw_scores = np.asarray(raw_scores).reshape(len(raw_boxes), -1)
    if agnostic:  # the same path on one "class", the best of each point; then its label back
        best = raw_scores.argmax(axis=1)
        found = postprocess(raw_boxes, np.take_along_axis(raw_scores, best[:, None], 1), input_size, strides,
                            score_threshold, iou_threshold, max_detections, max_candidates, quantization,
                            box_encoding)
        found.classes = best[found.points].astype(np.int64)
        return found
    if quantization is None:
        raw_boxes, raw_scores = raw_boxes.astype(np.float32, copy=False), raw_scores.astype(np.float32, copy=False)
    # threshold on logits first: the sigmoid is only computed for the few candidates; a flat
    # index is several times cheaper to find than a 2-D one
    logit_threshold = math.log(score_threshold / (1 - score_threshold)) if 0 < score_threshold < 1 else -math.inf
    flat_scores = raw_scores.reshape(-1)
    if quantization is None:
        candidates = np.flatnonzero(flat_scores > logit_threshold)
    else:
        lowest = _lowest_passing_level(flat_scores.dtype.str, *quantization[1], logit_threshold)
        candidates = np.zeros(0, np.int64) if lowest is None else np.flatnonzero(flat_scores >= lowest)
    if len(candidates) == 0:
        return RawDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                             np.zeros(0, np.int64))
    if len(candidates) <= SMALL_NMS:
        return _postprocess_few(candidates, flat_scores, raw_boxes, raw_scores.shape[1], tuple(input_size),
                                tuple(strides), iou_threshold, max_detections, quantization, box_encoding)
    logits = flat_scores[candidates]
    if quantization is not None:
        logits = dequantize_values(logits, *quantization[1])
    if len(candidates) > max_candidates:
        chosen = _top(logits, max_candidates)
        candidates, logits = candidates[chosen], logits[chosen]
    points, classes = np.divmod(candidates, raw_scores.shape[1])
    point_boxes = raw_boxes[points]
    if quantization is not None:
        point_boxes = dequantize_values(point_boxes, *quantization[0])
    boxes = decode_boxes(point_boxes, input_size, strides, points, box_encoding)
    scores = sigmoid(logits)
    keep = batched_nms(boxes, scores, classes, iou_threshold, max_detections)
    return RawDetections(boxes[keep], scores[keep].astype(np.float32), classes[keep].astype(np.int64),
                         points[keep].astype(np.int64))


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` largest values, in index order; ties at the cut go to the
    lowest positions. Not argpartition: on an int8 model's scores, a few distinct levels over
    thousands of candidates, its selection degenerates (0.89 ms for 8,400 values at two levels,
    against 0.03 ms for a partition of the values)."""
    cut = np.partition(values, len(values) - count)[len(values) - count]  # the count-th largest
    chosen = values > cut
    ties = np.flatnonzero(values == cut)[: count - int(np.count_nonzero(chosen))]
    chosen[ties] = True
    return np.flatnonzero(chosen)


@lru_cache(maxsize=64)
def _levels(dtype: str, scale: float, zero_point: int) -> tuple[np.ndarray, int]:
    """Every stored level's dequantized float32 value (as the runtime dequantizes), lowest level
    first, and that lowest level."""
    limits = np.iinfo(np.dtype(dtype))
    return dequantize_values(np.arange(limits.min, limits.max + 1).astype(dtype), scale, zero_point), int(limits.min)


@lru_cache(maxsize=64)
def _lowest_passing_level(dtype: str, scale: float, zero_point: int, logit_threshold: float) -> int | None:
    """The smallest stored integer whose dequantized value passes ``> logit_threshold`` (None
    when none does), compared as the float path compares. The scale must be positive (as
    TFLite's always is), so the levels rise."""
    values, lowest = _levels(dtype, scale, zero_point)
    passing = np.flatnonzero(values > logit_threshold)
    return lowest + int(passing[0]) if len(passing) else None


@lru_cache(maxsize=64)
def _level_values(dtype: str, scale: float, zero_point: int) -> tuple[list[float], int]:
    """``_levels`` as Python floats, for the plain-Python path."""
    values, lowest = _levels(dtype, scale, zero_point)
    return values.tolist(), lowest


def _postprocess_few(candidates: np.ndarray, flat_scores: np.ndarray, raw_boxes: np.ndarray, num_classes: int,
                     input_size: tuple[int, int], strides: tuple[int, ...], iou_threshold: float,
                     max_detections: int, quantization: tuple[tuple[float, int], tuple[float, int]] | None,
                     box_encoding: str = LOG_DISTANCES) -> RawDetections:
    """``postprocess`` for the handful of candidates a trained model leaves on most frames, in
    plain Python on floats: right after an invoke has evicted the caches, each of the ~35 NumPy
    calls of the vector path costs several microseconds. Stored integers are dequantized through
    a table of the runtime's own float32 values, so both paths start from the same numbers."""
    points, classes = zip(*(divmod(index, num_classes) for index in candidates.tolist()))
    logits, rows = flat_scores[candidates].tolist(), raw_boxes[list(points)].tolist()
    if quantization is not None:
        box_levels, box_low = _level_values(raw_boxes.dtype.str, *quantization[0])
        score_levels, score_low = _level_values(flat_scores.dtype.str, *quantization[1])
        logits = [score_levels[value - score_low] for value in logits]
        rows = [[box_levels[value - box_low] for value in row] for row in rows]
    centres_x, centres_y, point_strides = _point_lists(input_size, strides)
    boxes = []
    if box_encoding == YXHW_STRIDE:
        for point, (dy, dx, h, w) in zip(points, rows):
            stride = point_strides[point]
            x, y = centres_x[point] + dx * stride, centres_y[point] + dy * stride
            half_w, half_h = w * stride / 2, h * stride / 2
            boxes.append([x - half_w, y - half_h, x + half_w, y + half_h])
    else:
        for point, (left, top, right, bottom) in zip(points, rows):
            x, y, stride = centres_x[point], centres_y[point], point_strides[point]
            boxes.append([x - _distance(left) * stride, y - _distance(top) * stride,
                          x + _distance(right) * stride, y + _distance(bottom) * stride])
    order = sorted(range(len(logits)), key=logits.__getitem__, reverse=True)  # stable, best first
    keep = [order[k] for k in _nms_python([boxes[k] for k in order], iou_threshold, max_detections,
                                           [classes[k] for k in order])]
    return RawDetections(np.array([boxes[k] for k in keep], np.float32).reshape(-1, 4),
                         np.array([1.0 / (1.0 + math.exp(-max(min(logits[k], 60.0), -60.0))) for k in keep],
                                  np.float32),
                         np.array([classes[k] for k in keep], np.int64), np.array([points[k] for k in keep], np.int64))


def _distance(raw: float) -> float:
    return math.exp(max(min(raw, MAX_LOG_DISTANCE), -MAX_LOG_DISTANCE))


@lru_cache(maxsize=16)
def _point_lists(input_size: tuple[int, int], strides: tuple[int, ...]) -> tuple[list, list, list]:
    centres, point_strides = anchor_points(input_size, strides)
    return centres[:, 0].tolist(), centres[:, 1].tolist(), point_strides.tolist()
