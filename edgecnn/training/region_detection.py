"""Training Faster R-CNN end to end: the RPN and the detection head in one step, with the
multi-task loss of both (approximate joint training, Ren et al. 2015).

RPN targets (per image, NumPy, in the input pipeline, since the anchors are fixed): an anchor is
positive at IoU >= 0.7 with a ground-truth box, or when it is a box's best anchor; negative below
0.3; up to ``RPN_BATCH`` anchors are sampled per image, at most half positive. Loss: binary
cross-entropy on the sampled anchors, smooth L1 on the positives' deltas.

Head targets depend on the proposals the network makes in the same step, so they are assigned
inside the training graph (``edgecnn.training.trainer``): a proposal takes the class of the box it
overlaps most at IoU >= 0.5, else background. Instead of Fast R-CNN's random minibatch of 128
RoIs with 25% positives, every proposal counts and the negatives' weights are scaled so they
make up at most 3/4 of each image's weight (the same balance, without sampling noise). Loss:
cross-entropy over K + 1 classes, smooth L1 on the positives' deltas of their class.
"""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.detection import iou_matrix
from edgecnn.runtime.regions import encode_deltas
from edgecnn.training.detection import DetectionTask, augment, padded_boxes, to_input
from edgecnn.training.task_aligned import box_iou

RPN_POSITIVE_IOU, RPN_NEGATIVE_IOU = 0.7, 0.3
RPN_BATCH = 256
HEAD_POSITIVE_IOU = 0.5
HEAD_NEGATIVE_SHARE = 0.75


def rpn_targets(anchors: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 6) per anchor: deltas to its box (4), label (1 positive, 0 negative) and sample weight."""
    targets = np.zeros((len(anchors), 6), np.float32)
    if len(boxes) == 0:
        negatives = np.arange(len(anchors))
    else:
        overlaps = iou_matrix(anchors, np.asarray(boxes, np.float32))  # (N, G)
        best_box = overlaps.argmax(axis=1)
        best_iou = overlaps.max(axis=1)
        positive = best_iou >= RPN_POSITIVE_IOU
        # every box's best anchors (all ties) are positives, however low their IoU
        best_for_box = overlaps.max(axis=0)
        positive |= ((overlaps == best_for_box[None, :]) & (best_for_box[None, :] > 0)).any(axis=1)
        positives = np.flatnonzero(positive)
        if len(positives) > RPN_BATCH // 2:
            positives = rng.choice(positives, RPN_BATCH // 2, replace=False)
        targets[positives, :4] = encode_deltas(anchors[positives], np.asarray(boxes, np.float32)[best_box[positives]])
        targets[positives, 4] = 1.0
        targets[positives, 5] = 1.0
        negatives = np.flatnonzero((best_iou < RPN_NEGATIVE_IOU) & ~positive)
    wanted = RPN_BATCH - int(targets[:, 5].sum())
    if len(negatives) > wanted:
        negatives = rng.choice(negatives, wanted, replace=False)
    targets[negatives, 5] = 1.0
    return targets


def smooth_l1(x, beta: float = 1.0 / 9):
    from edgecnn._keras import tf

    absolute = tf.abs(x)
    return tf.where(absolute < beta, 0.5 * x * x / beta, absolute - 0.5 * beta)


def _encode_tf(boxes, targets, weights):
    from edgecnn._keras import tf

    widths = tf.maximum(boxes[..., 2] - boxes[..., 0], 1e-3)
    heights = tf.maximum(boxes[..., 3] - boxes[..., 1], 1e-3)
    target_w = tf.maximum(targets[..., 2] - targets[..., 0], 1e-3)
    target_h = tf.maximum(targets[..., 3] - targets[..., 1], 1e-3)
    dx = ((targets[..., 0] + targets[..., 2]) - (boxes[..., 0] + boxes[..., 2])) / 2 / widths
    dy = ((targets[..., 1] + targets[..., 3]) - (boxes[..., 1] + boxes[..., 3])) / 2 / heights
    deltas = tf.stack([dx, dy, tf.math.log(target_w / widths), tf.math.log(target_h / heights)], -1)
    return deltas * tf.constant(weights, tf.float32)


def head_assignment(proposals, truth) -> dict:
    """Each proposal's ground truth (inside the training graph): ``owner`` (index of the box it
    overlaps most), ``labels`` (that box's class + 1 at IoU >= 0.5, else 0 for background),
    ``positives`` (float 0/1) and ``matched_box``, for (B, P, 4) proposals and (B, G, 5) truth."""
    from edgecnn._keras import tf

    gt_boxes, gt_classes = truth[..., :4], truth[..., 4]
    valid = gt_classes >= 0
    overlaps = tf.where(valid[:, None, :], box_iou(proposals[:, :, None, :], gt_boxes[:, None, :, :]), -1.0)  # (B, P, G)
    best_iou = tf.reduce_max(overlaps, axis=-1)
    owner = tf.argmax(overlaps, axis=-1, output_type=tf.int32)
    matched_class = tf.cast(tf.gather(gt_classes, owner, batch_dims=1), tf.int32)
    is_positive = best_iou >= HEAD_POSITIVE_IOU
    return {"owner": owner, "labels": tf.where(is_positive, matched_class + 1, 0),
            "positives": tf.cast(is_positive, tf.float32), "matched_box": tf.gather(gt_boxes, owner, batch_dims=1)}


def faster_rcnn_losses(outputs, rpn_target, truth, assigned: dict | None = None) -> dict:
    """The four losses of one batch: the model's outputs (Faster R-CNN's five first), (B, N, 6)
    RPN targets and the (B, G, 5) padded ground truth; ``assigned``: ``head_assignment``'s
    result, when the caller needs it too."""
    from edgecnn._keras import tf
    from edgecnn.models.faster_rcnn import HEAD_DELTA_WEIGHTS

    rpn_scores, rpn_deltas, proposals, class_scores, box_deltas = outputs[:5]
    label, weight = rpn_target[..., 4], rpn_target[..., 5]
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=rpn_scores[..., 0])
    rpn_cls = tf.reduce_sum(weight * bce) / tf.maximum(tf.reduce_sum(weight), 1.0)
    positive = label * weight
    rpn_box = tf.reduce_sum(positive * tf.reduce_sum(smooth_l1(rpn_deltas - rpn_target[..., :4]), -1)) \
        / tf.maximum(tf.reduce_sum(positive), 1.0)

    assigned = assigned or head_assignment(proposals, truth)
    labels, positives = assigned["labels"], assigned["positives"]
    negatives = 1.0 - positives
    count_pos = tf.reduce_sum(positives, axis=1, keepdims=True)
    count_neg = tf.reduce_sum(negatives, axis=1, keepdims=True)
    ratio = HEAD_NEGATIVE_SHARE / (1 - HEAD_NEGATIVE_SHARE)
    negative_weight = tf.minimum(1.0, ratio * tf.maximum(count_pos, 1.0) / tf.maximum(count_neg, 1.0))
    weights = positives + negatives * negative_weight
    probability = tf.gather(class_scores, labels, batch_dims=2)
    cross_entropy = -tf.math.log(tf.clip_by_value(probability, 1e-7, 1.0))
    head_cls = tf.reduce_sum(weights * cross_entropy) / tf.maximum(tf.reduce_sum(weights), 1.0)
    num_classes = box_deltas.shape[-1] // 4
    per_class = tf.reshape(box_deltas, (-1, proposals.shape[1], num_classes, 4))
    predicted = tf.gather(per_class, tf.maximum(labels - 1, 0), batch_dims=2)  # (B, P, 4)
    target = tf.stop_gradient(_encode_tf(proposals, assigned["matched_box"], HEAD_DELTA_WEIGHTS))
    head_box = tf.reduce_sum(positives * tf.reduce_sum(smooth_l1(predicted - target), -1)) \
        / tf.maximum(tf.reduce_sum(positives), 1.0)
    return {"rpn_cls": rpn_cls, "rpn_box": rpn_box, "cls": head_cls, "box": head_box}


class RegionDetectionTask(DetectionTask):
    """The Faster R-CNN side of `edgecnn train`: DetectionTask's data and trainer, its own
    targets and loss."""

    def __init__(self, recipe) -> None:
        super().__init__(recipe)
        self.anchors: np.ndarray | None = None

    def _anchors(self) -> np.ndarray:
        if self.anchors is None:
            from edgecnn.models.zoo import create_model
            from edgecnn.layers.regions import pyramid_anchor_boxes
            from edgecnn.models.faster_rcnn import region_layout

            overrides = {**self.model_overrides(self.train_set.classes), **self.recipe.model.overrides}
            layout = region_layout(create_model(self.recipe.model.name, **overrides))
            self.anchors = pyramid_anchor_boxes(tuple(layout["input_size"]), tuple(layout["feature_strides"]),
                                                tuple(layout["anchor_sizes"]), tuple(layout["anchor_ratios"]))
        return self.anchors

    def _augment(self, prepared: tuple, rng: np.random.Generator, epoch: int) -> tuple:
        """``augment`` of a prepared sample, its masks (a fourth item, Mask R-CNN) moved along
        (no mosaic: the region detectors train on whole images)."""
        section = self.recipe.data.augment
        masks = prepared[3] if len(prepared) > 3 else None
        return augment(*prepared[:3], rng, section.flip, section.scale, section.color, masks=masks)

    def _example(self, prepared: tuple, rng: np.random.Generator):
        image, boxes, classes = prepared[:3]
        return to_input(image, self.size[2]), (rpn_targets(self._anchors(), boxes, rng),
                                               padded_boxes(boxes, classes, self.max_boxes))

    def _target_signature(self) -> tuple:
        from edgecnn._keras import tf

        return (tf.TensorSpec((len(self._anchors()), 6), tf.float32),
                tf.TensorSpec((self.max_boxes, 5), tf.float32))

    def _losses(self) -> tuple:
        return faster_rcnn_losses, ("rpn_cls", "rpn_box", "cls", "box")

    def evaluate(self, model) -> dict:
        from edgecnn.evaluation.detection import evaluate_detector
        from edgecnn.evaluation.keras_backend import evaluation_pipeline

        return evaluate_detector(evaluation_pipeline(self.deliverable(model), "detection"), self.val_set)
