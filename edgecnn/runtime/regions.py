"""Region-based detector post-processing (TensorFlow-free): the Faster R-CNN file's proposals,
class scores and per-class box deltas -> final boxes, with class-aware NMS.

Used by the runtime ``Detector`` and by training-side evaluation, so a .keras model and its
.tflite files are scored by the same code.
"""

from __future__ import annotations

import math

import numpy as np

from edgecnn.runtime.detection import RawDetections, batched_nms

REGION_KIND = "faster_rcnn"  # decoding.kind of a two-stage detector's file
MASK_KIND = "mask_rcnn"  # decoding.kind of a Faster R-CNN file with a mask per proposal and class
WARP_KIND = "rcnn"  # decoding.kind of a file that classifies one warped region per invoke
NMS_IOU = {WARP_KIND: 0.3}  # a family's NMS overlap where it is not 0.5: R-CNN's paper uses 0.3
MAX_WARPED_REGIONS = 200  # R-CNN classifies at most this many proposals per image, best-ranked first
PROPOSAL_KIND = "fast_rcnn"  # decoding.kind of a file that takes the runtime's proposals as an input
DEFAULT_DELTA_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # Fast R-CNN's head target normalization (dx, dy, dw, dh)
MAX_LOG_SIZE_RATIO = math.log(1000.0 / 16)  # the graph's DecodeAnchors clips the same way


def apply_deltas(boxes: np.ndarray, deltas: np.ndarray, weights=(1.0, 1.0, 1.0, 1.0)) -> np.ndarray:
    """(K, 4) x1 y1 x2 y2 boxes moved by (K, 4) (dx, dy, dw, dh) deltas divided by ``weights``."""
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    centre_x, centre_y = boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights
    scaled = deltas / np.asarray(weights, np.float32)
    centre_x, centre_y = centre_x + scaled[:, 0] * widths, centre_y + scaled[:, 1] * heights
    half_w = 0.5 * widths * np.exp(np.minimum(scaled[:, 2], MAX_LOG_SIZE_RATIO))
    half_h = 0.5 * heights * np.exp(np.minimum(scaled[:, 3], MAX_LOG_SIZE_RATIO))
    return np.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], 1)


def encode_deltas(boxes: np.ndarray, targets: np.ndarray, weights=(1.0, 1.0, 1.0, 1.0)) -> np.ndarray:
    """The deltas that ``apply_deltas`` turns ``boxes`` into ``targets`` with (both (K, 4))."""
    widths = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-3)
    heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-3)
    target_w = np.maximum(targets[:, 2] - targets[:, 0], 1e-3)
    target_h = np.maximum(targets[:, 3] - targets[:, 1], 1e-3)
    dx = ((targets[:, 0] + targets[:, 2]) - (boxes[:, 0] + boxes[:, 2])) / 2 / widths
    dy = ((targets[:, 1] + targets[:, 3]) - (boxes[:, 1] + boxes[:, 3])) / 2 / heights
    deltas = np.stack([dx, dy, np.log(target_w / widths), np.log(target_h / heights)], 1)
    return (deltas * np.asarray(weights, np.float32)).astype(np.float32)


def no_detections() -> RawDetections:
    return RawDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                         np.zeros(0, np.int64))


def region_postprocess(proposals: np.ndarray, class_scores: np.ndarray, box_deltas: np.ndarray,
                       input_size: tuple[int, int], delta_weights=DEFAULT_DELTA_WEIGHTS,
                       score_threshold: float = 0.25, iou_threshold: float = 0.5,
                       max_detections: int = 100) -> RawDetections:
    """One image's (P, 4) proposals, (P, K + 1) softmax scores (column 0: background) and
    (P, 4K) per-class deltas -> detections: every (proposal, class) above the threshold, its box
    refined by that class's deltas and clipped to the input, class-aware NMS."""
    proposals = np.asarray(proposals, np.float32).reshape(-1, 4)
    if len(proposals) == 0:  # (0, -1) cannot be reshaped: nothing to decode
        return no_detections()
    scores = np.asarray(class_scores, np.float32).reshape(len(proposals), -1)[:, 1:]
    deltas = np.asarray(box_deltas, np.float32).reshape(len(proposals), -1, 4)
    rows, classes = np.nonzero(scores > score_threshold)
    if len(rows) == 0:
        return no_detections()
    boxes = apply_deltas(proposals[rows], deltas[rows, classes], delta_weights)
    height, width = input_size
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    found = scores[rows, classes]
    keep = batched_nms(boxes, found, classes, iou_threshold, max_detections)
    return RawDetections(boxes[keep], found[keep], classes[keep].astype(np.int64), rows[keep].astype(np.int64))


def padded_proposals(proposals: np.ndarray, count: int) -> tuple[np.ndarray, int]:
    """The first ``count`` proposals as a (count, 4) input, padded with copies of the first
    (or a whole-pixel box when there is none), and how many are real."""
    real = min(len(proposals), count)
    padded = np.zeros((count, 4), np.float32)
    padded[:, 2:] = 1.0
    padded[:real] = proposals[:real]
    if 0 < real < count:
        padded[real:] = proposals[0]
    return padded, real


def svm_postprocess(regions: np.ndarray, svm_scores: np.ndarray, box_deltas: np.ndarray,
                    image_size: tuple[int, int], delta_weights=DEFAULT_DELTA_WEIGHTS, score_threshold: float = 0.25,
                    iou_threshold: float = 0.3, max_detections: int = 100) -> RawDetections:
    """R-CNN's decoding: (R, K + 1) SVM scores (column 0: background) -> per-class scores
    sigmoid(s_c - s_background), boxes refined by each class's deltas, class-aware NMS (the
    paper's 0.3 overlap). ``image_size``: (height, width) to clip to."""
    if len(regions) == 0:
        return no_detections()
    scores = np.asarray(svm_scores, np.float32).reshape(len(regions), -1)
    margins = scores[:, 1:] - scores[:, :1]
    probabilities = np.concatenate([np.zeros((len(regions), 1), np.float32),
                                    1.0 / (1.0 + np.exp(-np.clip(margins, -60, 60)))], axis=1)
    return region_postprocess(regions, probabilities, box_deltas, image_size, delta_weights, score_threshold,
                              iou_threshold, max_detections)
