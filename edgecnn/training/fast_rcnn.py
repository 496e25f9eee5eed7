"""Training Fast R-CNN on selective-search proposals (Girshick 2015).

Per image and step, ``proposals`` regions are sampled from the ground-truth boxes and the image's
selective-search proposals: up to a quarter foreground (IoU >= 0.5 with a box, labelled with its
class) and the rest background (IoU in [0.1, 0.5), or below 0.5 where there are too few), as in
the paper's minibatches. The image and all boxes go through the same letterbox, flip, zoom and
colour augmentation. Loss: the multi-task loss, cross-entropy over K + 1 classes plus smooth L1
on the foreground regions' deltas of their class, averaged over the regions.
"""

from __future__ import annotations

import numpy as np

from edgecnn.data.transforms import color_jitter, hflip, scale_translate, transform_boxes
from edgecnn.models.fast_rcnn import fast_rcnn_layout
from edgecnn.runtime.detection import iou_matrix
from edgecnn.runtime.images import letterbox
from edgecnn.runtime.regions import DEFAULT_DELTA_WEIGHTS, encode_deltas
from edgecnn.training.detection import DetectionTask, to_input

FOREGROUND_IOU, BACKGROUND_IOU = 0.5, 0.1
FOREGROUND_FRACTION = 0.25


def sample_regions(proposals: np.ndarray, boxes: np.ndarray, classes: np.ndarray, count: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(count, 4) regions from the boxes and proposals, and their (count, 5) targets: deltas to
    the matched box (zero for background) and label (class + 1, 0 background)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    candidates = np.concatenate([boxes, np.asarray(proposals, np.float32).reshape(-1, 4)])
    if len(candidates) == 0:
        raise ValueError("no regions to sample from: the image has neither boxes nor proposals")
    if len(boxes):
        overlaps = iou_matrix(candidates, boxes)
        best, owner = overlaps.max(axis=1), overlaps.argmax(axis=1)
    else:
        best, owner = np.zeros(len(candidates), np.float32), np.zeros(len(candidates), np.int64)
    foreground = np.flatnonzero(best >= FOREGROUND_IOU)
    background = np.flatnonzero((best < FOREGROUND_IOU) & (best >= BACKGROUND_IOU))
    if len(background) < count - min(len(foreground), round(count * FOREGROUND_FRACTION)):
        background = np.flatnonzero(best < FOREGROUND_IOU)
    take_fg = min(len(foreground), round(count * FOREGROUND_FRACTION)) if len(background) else len(foreground)
    chosen_fg = rng.choice(foreground, take_fg, replace=False) if take_fg else np.zeros(0, np.int64)
    rest = count - len(chosen_fg)
    pool = background if len(background) else foreground
    chosen_bg = rng.choice(pool, rest, replace=len(pool) < rest) if rest > 0 else np.zeros(0, np.int64)
    chosen = np.concatenate([chosen_fg, chosen_bg])[:count]
    regions = candidates[chosen]
    targets = np.zeros((len(chosen), 5), np.float32)
    is_fg = best[chosen] >= FOREGROUND_IOU
    if is_fg.any():
        matched = boxes[owner[chosen][is_fg]]
        targets[is_fg, :4] = encode_deltas(regions[is_fg], matched, DEFAULT_DELTA_WEIGHTS)
        targets[is_fg, 4] = np.asarray(classes)[owner[chosen][is_fg]] + 1
    return regions, targets


class FastRCNNTask(DetectionTask):
    """The Fast R-CNN side of `edgecnn train`: DetectionTask's data plus selective-search
    proposals, its own region sampling and multi-task loss."""

    def __init__(self, recipe) -> None:
        super().__init__(recipe)
        self.count = 0
        self.train_proposals: list[np.ndarray] = []
        self.val_proposals: list[np.ndarray] = []

    def load(self) -> list[str]:
        from edgecnn.models.zoo import create_model
        from edgecnn.data.proposals import dataset_proposals

        classes = super().load()
        overrides = {**self.model_overrides(classes), **self.recipe.model.overrides}
        self.count = fast_rcnn_layout(create_model(self.recipe.model.name, **overrides))["proposals"]
        self.train_proposals = dataset_proposals(self.train_set.samples)
        self.val_proposals = dataset_proposals(self.val_set.samples)
        return classes

    def _letterboxed(self, sample, proposals):
        height, width, _ = self.size
        image, fit = letterbox(sample.image, height, width)
        keep = ~sample.crowd if len(sample.crowd) == len(sample.boxes) else np.ones(len(sample.boxes), bool)
        boxes = transform_boxes(sample.boxes[keep], fit.scale, fit.pad_x, fit.pad_y)
        return image, boxes, sample.classes[keep], fit.to_input(proposals)

    def _augment(self, image, boxes, classes, proposals, rng):
        section = self.recipe.data.augment
        together = np.concatenate([boxes, proposals])
        if section.flip and rng.random() < 0.5:
            image, together, _ = hflip(image, together)
        if section.scale:
            factor = rng.uniform(1 - section.scale, 1 + section.scale)
            height, width = image.shape[:2]
            shift_x = (1 - factor) * width / 2 + rng.uniform(-section.scale, section.scale) * width / 2
            shift_y = (1 - factor) * height / 2 + rng.uniform(-section.scale, section.scale) * height / 2
            image, moved, _, kept = scale_translate(image, together, None, factor, shift_x, shift_y)
            is_box = kept < len(boxes)
            boxes, classes, proposals = moved[is_box], classes[kept[is_box]], moved[~is_box]
        else:
            boxes, proposals = together[:len(boxes)], together[len(boxes):]
        if section.color:
            image = color_jitter(image, rng, section.color)
        return image, boxes, classes, proposals

    def datasets(self):
        from edgecnn._keras import tf

        channels = self.size[2]
        recipe = self.recipe
        prepared = [self._letterboxed(s, p) for s, p in zip(self.train_set.samples, self.train_proposals)]
        seed, count = recipe.training.seed, self.count

        def generate():
            rng = np.random.default_rng([seed, generate.epoch])
            generate.epoch += 1
            for index in rng.permutation(len(prepared)):
                image, boxes, classes, proposals = self._augment(*prepared[index], rng)
                regions, targets = sample_regions(proposals, boxes, classes, count, rng)
                yield (to_input(image, channels), regions), (targets[:, 4], targets)

        generate.epoch = 0
        signature = ((tf.TensorSpec(self.size, tf.float32), tf.TensorSpec((count, 4), tf.float32)),
                     (tf.TensorSpec((count,), tf.float32), tf.TensorSpec((count, 5), tf.float32)))
        batch = recipe.training.batch_size
        steps = max(1, len(prepared) // batch)
        train = (tf.data.Dataset.from_generator(generate, output_signature=signature)
                 .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
                 .apply(tf.data.experimental.assert_cardinality(steps)))
        rng = np.random.default_rng([seed, 1 << 20])  # fixed validation regions
        images, regions, labels, targets = [], [], [], []
        for sample, proposals in zip(self.val_set.samples, self.val_proposals):
            image, boxes, classes, moved = self._letterboxed(sample, proposals)
            sampled, target = sample_regions(moved, boxes, classes, count, rng)
            images.append(to_input(image, channels))
            regions.append(sampled)
            labels.append(target[:, 4])
            targets.append(target)
        val = tf.data.Dataset.from_tensor_slices(
            ((np.stack(images), np.stack(regions)), (np.stack(labels), np.stack(targets)))).batch(batch)
        return train, val, steps

    def compile(self, model, optimizer):
        # by position: QAT renames the outputs
        model.compile(optimizer, loss=[class_loss, box_loss])
        return model

    def evaluate(self, model) -> dict:
        from edgecnn.evaluation.detection import evaluate_detector
        from edgecnn.evaluation.keras_backend import evaluation_pipeline

        return evaluate_detector(evaluation_pipeline(model, "detection"), self.val_set, self.val_proposals)


def class_loss(y_true, y_pred):
    """Cross-entropy of the (B, R, K + 1) softmax scores against (B, R) labels."""
    from edgecnn._keras import tf

    labels = tf.cast(y_true, tf.int32)
    probability = tf.gather(y_pred, labels, batch_dims=2)
    return tf.reduce_mean(-tf.math.log(tf.clip_by_value(probability, 1e-7, 1.0)), axis=-1)


def box_loss(y_true, y_pred):
    """Smooth L1 on the foreground regions' deltas of their class, averaged over all regions."""
    from edgecnn._keras import tf
    from edgecnn.training.region_detection import smooth_l1

    labels = tf.cast(y_true[..., 4], tf.int32)
    per_class = tf.reshape(y_pred, (-1, y_pred.shape[1], y_pred.shape[-1] // 4, 4))
    predicted = tf.gather(per_class, tf.maximum(labels - 1, 0), batch_dims=2)
    foreground = tf.cast(labels > 0, tf.float32)
    return tf.reduce_mean(foreground * tf.reduce_sum(smooth_l1(predicted - y_true[..., :4]), -1), axis=-1)
