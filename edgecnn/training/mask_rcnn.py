"""Training Mask R-CNN: Faster R-CNN's training (``region_detection``) plus the mask loss.

Each positive proposal (IoU >= 0.5 with a ground-truth box, as for the box head) learns the mask
of the box it was assigned to, cropped to the proposal and resampled to the branch's M x M grid
(CropAndResize at the bin centres, inside the training graph only), binarized at 0.5. The loss is
the per-pixel sigmoid cross-entropy on the channel of the ground-truth class only (He et al.:
the classes do not compete), averaged over the positives' pixels.

Ground-truth masks travel with the batch at most ``GT_MASK_SIDE`` pixels a side (downscaled
from the input when it is larger), so a COCO image with 100 instances stays a few MB.
"""

from __future__ import annotations

import numpy as np

from edgecnn.training.detection import not_crowd, prepare
from edgecnn.training.region_detection import RegionDetectionTask, faster_rcnn_losses, head_assignment

GT_MASK_SIDE = 128


def prepare_instances(sample, height: int, width: int) -> tuple:
    """(image, boxes, classes, masks) letterboxed to the input like ``prepare``; masks (N, H, W)
    uint8 0/1, crowd instances left out."""
    import cv2

    from edgecnn.errors import EdgeCNNError
    from edgecnn.runtime.images import letterbox

    if sample.masks is None:
        raise EdgeCNNError(f"Image {sample.file_name or sample.image_id} has no instance masks.",
                           "Mask R-CNN trains on masks: COCO annotations with 'segmentation' polygons or RLE, or "
                           "builtin:shapes.")
    image, boxes, classes = prepare(sample, height, width)
    masks = np.zeros((len(boxes), height, width), np.uint8)
    for index, mask in enumerate(sample.masks[not_crowd(sample)]):
        resized, _ = letterbox(mask.astype(np.uint8) * 255, height, width, pad_value=0,
                               interpolation=cv2.INTER_LINEAR)
        masks[index] = resized >= 128
    return image, boxes, classes, masks


def padded_masks(masks: np.ndarray, count: int, side: tuple[int, int]) -> np.ndarray:
    """(count, h, w) uint8: the first ``count`` masks resized to ``side`` (nearest: 0/1 stays 0/1)."""
    import cv2

    out = np.zeros((count, *side), np.uint8)
    for index, mask in enumerate(np.asarray(masks[:count], np.uint8)):
        out[index] = mask if mask.shape == side else cv2.resize(mask, (side[1], side[0]),
                                                                interpolation=cv2.INTER_NEAREST)
    return out


def mask_loss(proposals, masks, assigned: dict, gt_masks, input_size: tuple[int, int]):
    """Per-pixel sigmoid cross-entropy of the ground-truth class's mask on the positives.
    ``masks``: the model's (B, P * M, M, K) output; ``gt_masks``: (B, G, h, w) 0/1."""
    from edgecnn._keras import tf

    count = proposals.shape[1]
    size = masks.shape[2]
    classes = masks.shape[-1]
    per_proposal = tf.reshape(masks, (-1, count, size, size, classes))
    channel = tf.maximum(assigned["labels"] - 1, 0)  # background proposals are masked out below
    predicted = tf.gather(tf.transpose(per_proposal, (0, 1, 4, 2, 3)), channel, batch_dims=2)  # (B, P, M, M)
    gt_count, gt_height, gt_width = gt_masks.shape[1:]
    images = tf.reshape(tf.cast(gt_masks, tf.float32), (-1, gt_height, gt_width, 1))
    batch_index = tf.range(tf.shape(proposals)[0])[:, None] * gt_count
    box_indices = tf.reshape(assigned["owner"] + batch_index, (-1,))
    # sample at the centres of the M x M bins over each proposal, in the mask image's pixel-index
    # space (CropAndResize's normalized box spans pixel centres 0 .. side - 1)
    height, width = input_size
    x1, y1, x2, y2 = tf.unstack(tf.reshape(proposals, (-1, 4)), axis=-1)
    sx, sy = gt_width / width, gt_height / height
    first, last = 0.5 / size, (size - 0.5) / size
    boxes = tf.stack([((y1 + first * (y2 - y1)) * sy - 0.5) / max(gt_height - 1, 1),
                      ((x1 + first * (x2 - x1)) * sx - 0.5) / max(gt_width - 1, 1),
                      ((y1 + last * (y2 - y1)) * sy - 0.5) / max(gt_height - 1, 1),
                      ((x1 + last * (x2 - x1)) * sx - 0.5) / max(gt_width - 1, 1)], axis=-1)
    target = tf.image.crop_and_resize(images, tf.stop_gradient(boxes), box_indices, (size, size))
    target = tf.reshape(tf.cast(target >= 0.5, tf.float32), (-1, count, size, size))
    probability = tf.clip_by_value(predicted, 1e-6, 1 - 1e-6)
    pixels = -(target * tf.math.log(probability) + (1 - target) * tf.math.log(1 - probability))
    positives = assigned["positives"]
    return tf.reduce_sum(positives * tf.reduce_mean(pixels, axis=(2, 3))) / tf.maximum(tf.reduce_sum(positives), 1.0)


class MaskRCNNTask(RegionDetectionTask):
    """The Mask R-CNN side of `edgecnn train`: Faster R-CNN's training with masks in the batch."""

    with_masks = True

    def _mask_side(self) -> tuple[int, int]:
        height, width = self.size[:2]
        factor = min(1.0, GT_MASK_SIDE / max(height, width))
        return max(1, round(height * factor)), max(1, round(width * factor))

    def _prepare(self, sample) -> tuple:
        return prepare_instances(sample, *self.size[:2])

    def _example(self, prepared: tuple, rng: np.random.Generator):
        image, targets = super()._example(prepared, rng)
        return image, (*targets, padded_masks(prepared[3], self.max_boxes, self._mask_side()))

    def _target_signature(self) -> tuple:
        from edgecnn._keras import tf

        return (*super()._target_signature(), tf.TensorSpec((self.max_boxes, *self._mask_side()), tf.uint8))

    def _losses(self) -> tuple:
        size = self.size[:2]

        def losses(outputs, rpn_target, truth, gt_masks):
            assigned = head_assignment(outputs[2], truth)
            found = faster_rcnn_losses(outputs, rpn_target, truth, assigned)
            found["mask"] = mask_loss(outputs[2], outputs[5], assigned, gt_masks, size)
            return found

        return losses, ("rpn_cls", "rpn_box", "cls", "box", "mask")

    def evaluate(self, model) -> dict:
        from edgecnn.evaluation.instances import evaluate_instance_segmenter
        from edgecnn.evaluation.keras_backend import evaluation_pipeline

        return evaluate_instance_segmenter(evaluation_pipeline(self.deliverable(model), "instance_segmentation"),
                                           self.val_set)
