"""Task-aligned label assignment and the YOLO loss (TOOD, Feng et al. 2021; as in YOLOv8).

The assignment runs inside the training graph on the model's own predictions, per batch: for
every ground-truth box, each point of any level whose cell centre lies inside the box gets the
alignment ``score ** ALPHA * IoU ** BETA`` (the predicted score of the box's class, the IoU of
the point's predicted box with it); the ``TOP_K`` best aligned points are its positives, and a
point claimed by two boxes takes the one its prediction overlaps most. A positive's class
target is its alignment rescaled so that the box's best point gets that point's IoU: the score
learns to rank points by how well they localise, which is what NMS and mAP reward.

Loss (weights as YOLOv8's): binary cross-entropy against those soft targets over every point and
class, plus ``1 - CIoU`` of the positives' boxes weighted by their targets, both divided by the
sum of the targets. All of it under ``tf.stop_gradient`` where it chooses, not where it scores.

Replaced the earlier fixed assignment (points within 2.5 strides of the centre on one level
chosen by box size, targets by FCOS centerness): measured on builtin:shapes in the README's
ablation table.
"""

from __future__ import annotations

import math

import numpy as np

from edgecnn.runtime.detection import MAX_LOG_DISTANCE, anchor_points

TOP_K = 10
ALPHA, BETA = 0.5, 6.0
BOX_GAIN, CLASS_GAIN = 7.5, 0.5
EPSILON = 1e-9


def decoded_boxes(raw, centres, strides):
    """(B, N, 4) log-distances in stride units -> x1, y1, x2, y2 in input pixels (the runtime's
    ``decode_boxes`` in TensorFlow)."""
    from edgecnn._keras import tf

    distances = tf.exp(tf.clip_by_value(raw, -MAX_LOG_DISTANCE, MAX_LOG_DISTANCE)) * strides[:, None]
    return tf.concat([centres - distances[..., :2], centres + distances[..., 2:]], axis=-1)


def box_iou(a, b, complete: bool = False):
    """IoU of boxes ``a`` and ``b`` (x1, y1, x2, y2, broadcast); ``complete``: CIoU (Zheng et
    al. 2020: IoU less the centre distance over the enclosing diagonal and an aspect term)."""
    from edgecnn._keras import tf

    width_a, height_a = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1]
    width_b, height_b = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    overlap_w = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
    overlap_h = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = overlap_w * overlap_h
    union = width_a * height_a + width_b * height_b - inter
    iou = inter / (union + EPSILON)
    if not complete:
        return iou
    hull_w = tf.maximum(a[..., 2], b[..., 2]) - tf.minimum(a[..., 0], b[..., 0])
    hull_h = tf.maximum(a[..., 3], b[..., 3]) - tf.minimum(a[..., 1], b[..., 1])
    diagonal = hull_w ** 2 + hull_h ** 2 + EPSILON
    centre_distance = ((a[..., 0] + a[..., 2] - b[..., 0] - b[..., 2]) ** 2
                       + (a[..., 1] + a[..., 3] - b[..., 1] - b[..., 3]) ** 2) / 4.0
    aspect = (4.0 / math.pi ** 2) * (tf.atan(width_b / (height_b + EPSILON))
                                     - tf.atan(width_a / (height_a + EPSILON))) ** 2
    trade_off = tf.stop_gradient(aspect / (aspect - iou + 1.0 + EPSILON))
    return iou - centre_distance / diagonal - trade_off * aspect


def assign(scores, boxes, truth, centres):
    """Task-aligned assignment of a batch. ``scores`` (B, N, C) probabilities, ``boxes`` (B, N,
    4) predicted, ``truth`` (B, G, 5) x1 y1 x2 y2 class (class -1: padding), ``centres`` (N, 2).
    Returns (B, N, 4) target boxes, (B, N, C) soft class targets, (B, N) positive mask."""
    from edgecnn._keras import tf

    gt_boxes, gt_class = truth[..., :4], tf.cast(truth[..., 4], tf.int32)
    valid = tf.cast(gt_class >= 0, tf.float32)  # (B, G)
    x, y = centres[None, None, :, 0], centres[None, None, :, 1]
    inside = tf.cast((x > gt_boxes[..., 0, None]) & (x < gt_boxes[..., 2, None])
                     & (y > gt_boxes[..., 1, None]) & (y < gt_boxes[..., 3, None]), tf.float32)
    inside *= valid[..., None]  # (B, G, N)
    overlaps = tf.maximum(box_iou(gt_boxes[:, :, None, :], boxes[:, None, :, :]), 0.0) * inside
    class_scores = tf.gather(tf.transpose(scores, [0, 2, 1]), tf.maximum(gt_class, 0), batch_dims=1)  # (B, G, N)
    alignment = tf.pow(class_scores, ALPHA) * tf.pow(overlaps, BETA) * inside
    points = tf.shape(alignment)[-1]
    top = tf.math.top_k(alignment, k=tf.minimum(TOP_K, points)).indices  # (B, G, K)
    chosen = tf.reduce_sum(tf.one_hot(top, points), axis=2) * inside  # (B, G, N)
    # a point chosen by several boxes keeps the one its prediction overlaps most
    several = tf.reduce_sum(chosen, axis=1, keepdims=True) > 1
    best = tf.one_hot(tf.argmax(overlaps, axis=1), tf.shape(overlaps)[1], axis=1)
    chosen = tf.where(several, best * inside, chosen)
    positive = tf.reduce_max(chosen, axis=1)  # (B, N)
    owner = tf.argmax(chosen, axis=1)  # (B, N)
    target_boxes = tf.gather(gt_boxes, owner, batch_dims=1)
    target_class = tf.gather(gt_class, owner, batch_dims=1)
    alignment *= chosen
    scale = tf.reduce_max(overlaps * chosen, axis=2, keepdims=True) / (
        tf.reduce_max(alignment, axis=2, keepdims=True) + EPSILON)
    quality = tf.reduce_max(alignment * scale, axis=1)  # (B, N)
    class_targets = tf.one_hot(target_class, tf.shape(scores)[-1]) * (quality * positive)[..., None]
    return target_boxes, class_targets, positive


class YoloLoss:
    """losses(outputs, truth) -> {"box": ..., "cls": ...} for the shared trainer."""

    def __init__(self, input_size: tuple[int, int], strides: tuple[int, ...]) -> None:
        centres, point_strides = anchor_points(tuple(input_size), tuple(strides))
        self.centres = centres.astype(np.float32)
        self.strides = point_strides.astype(np.float32)

    def __call__(self, outputs, truth) -> dict:
        from edgecnn._keras import tf

        raw_boxes, logits = outputs[0], outputs[1]
        boxes = decoded_boxes(raw_boxes, self.centres, self.strides)
        assigned = assign(tf.sigmoid(logits), boxes, truth, self.centres)
        target_boxes, class_targets, positive = (tf.stop_gradient(t) for t in assigned)
        normaliser = tf.maximum(tf.reduce_sum(class_targets), 1.0)
        class_loss = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=class_targets, logits=logits))
        weight = tf.reduce_sum(class_targets, axis=-1) * positive
        box_loss = tf.reduce_sum((1.0 - box_iou(boxes, target_boxes, complete=True)) * weight)
        return {"box": BOX_GAIN * box_loss / normaliser, "cls": CLASS_GAIN * class_loss / normaliser}
