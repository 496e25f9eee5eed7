"""Training R-CNN on warped regions (Girshick et al. 2014).

Per image and epoch, ``REGIONS_PER_IMAGE`` regions are drawn from its ground-truth boxes and
selective-search proposals (a quarter foreground at IoU >= 0.5, as in the paper's fine-tuning
batches of 32 positives and 96 background), cropped with context and warped to the network's
input. Three losses, summed: cross-entropy of the softmax head (fine-tuning the CNN), the
multiclass SVM (hinge) loss of the SVM head, where regions overlapping a box at IoU in [0.3, 0.5)
are left out as in the paper's SVM training, and smooth L1 of the box regressor on regions at
IoU >= 0.6. The SVM and box heads sit behind a stop-gradient (see ``edgecnn.models.rcnn``).
"""

from __future__ import annotations

import numpy as np

from edgecnn.data.transforms import color_jitter
from edgecnn.models.rcnn import CONTEXT_FRACTION
from edgecnn.runtime.detection import iou_matrix
from edgecnn.training.detection import DetectionTask
from edgecnn.training.fast_rcnn import sample_regions

REGIONS_PER_IMAGE = 8
SVM_IGNORED_IOU = (0.3, 0.5)
BOX_REGRESSION_IOU = 0.6


def region_examples(image, proposals, boxes, classes, size, rng, count=REGIONS_PER_IMAGE):
    """(crops uint8 (n, h, w, 3), labels (n,), svm targets (n, 2): label and weight, box targets
    (n, 5): deltas and label, zero weight below BOX_REGRESSION_IOU)."""
    from edgecnn.runtime.search_pixels import warp_region

    regions, targets = sample_regions(proposals, boxes, classes, count, rng)
    overlap = iou_matrix(regions, np.asarray(boxes, np.float32).reshape(-1, 4)).max(axis=1) if len(boxes) \
        else np.zeros(len(regions), np.float32)
    crops = np.stack([warp_region(image, box, size, CONTEXT_FRACTION) for box in regions])
    labels = targets[:, 4].copy()
    svm_weight = ~((overlap >= SVM_IGNORED_IOU[0]) & (overlap < SVM_IGNORED_IOU[1]))
    box_targets = targets.copy()
    box_targets[overlap < BOX_REGRESSION_IOU, 4] = 0  # label 0: no regression
    return crops, labels, np.stack([labels, svm_weight.astype(np.float32)], 1), box_targets


class RCNNTask(DetectionTask):
    """The R-CNN side of `edgecnn train`: regions from selective search, warped one by one."""

    def __init__(self, recipe) -> None:
        super().__init__(recipe)
        self.train_proposals: list[np.ndarray] = []
        self.val_proposals: list[np.ndarray] = []

    def load(self) -> list[str]:
        from edgecnn.data.proposals import dataset_proposals

        classes = super().load()
        self.train_proposals = dataset_proposals(self.train_set.samples)
        self.val_proposals = dataset_proposals(self.val_set.samples)
        return classes

    def _examples(self, samples, proposals, rng, augment: bool):
        size = self.size[:2]
        color = self.recipe.data.augment.color if augment else 0.0
        for sample, found in zip(samples, proposals):
            keep = ~sample.crowd if len(sample.crowd) == len(sample.boxes) else np.ones(len(sample.boxes), bool)
            crops, labels, svm, boxes = region_examples(sample.image, found, sample.boxes[keep],
                                                        sample.classes[keep], size, rng)
            for crop, label, svm_target, box_target in zip(crops, labels, svm, boxes):
                if augment and self.recipe.data.augment.flip and rng.random() < 0.5:
                    crop, box_target = crop[:, ::-1], box_target * np.array([-1, 1, 1, 1, 1], np.float32)
                if color:
                    crop = color_jitter(crop, rng, color)
                yield crop.astype(np.float32) / 255.0, (label, svm_target, box_target)

    def datasets(self):
        from edgecnn._keras import tf

        recipe = self.recipe
        seed = recipe.training.seed
        samples, proposals = self.train_set.samples, self.train_proposals

        def generate():
            rng = np.random.default_rng([seed, generate.epoch])
            generate.epoch += 1
            order = rng.permutation(len(samples))
            yield from self._examples([samples[i] for i in order], [proposals[i] for i in order], rng, True)

        generate.epoch = 0
        signature = (tf.TensorSpec(self.size, tf.float32),
                     (tf.TensorSpec((), tf.float32), tf.TensorSpec((2,), tf.float32), tf.TensorSpec((5,), tf.float32)))
        batch = recipe.training.batch_size
        steps = max(1, len(samples) * REGIONS_PER_IMAGE // batch)
        train = (tf.data.Dataset.from_generator(generate, output_signature=signature)
                 .shuffle(4 * batch, seed=seed).batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
                 .apply(tf.data.experimental.assert_cardinality(steps)))
        rng = np.random.default_rng([seed, 1 << 20])
        examples = list(self._examples(self.val_set.samples, self.val_proposals, rng, False))
        val = tf.data.Dataset.from_tensor_slices((
            np.stack([e[0] for e in examples]),
            tuple(np.stack([e[1][k] for e in examples]) for k in range(3)))).batch(batch)
        return train, val, steps

    def compile(self, model, optimizer):
        from edgecnn._keras import keras

        # by position: QAT renames the outputs
        model.compile(optimizer, loss=[keras.losses.SparseCategoricalCrossentropy(), svm_loss, box_loss])
        return model

    def evaluate(self, model) -> dict:
        from edgecnn.evaluation.detection import evaluate_detector
        from edgecnn.evaluation.keras_backend import evaluation_pipeline

        return evaluate_detector(evaluation_pipeline(model, "detection"), self.val_set, self.val_proposals)


def svm_loss(y_true, y_pred):
    from edgecnn.training.losses import multiclass_hinge

    return multiclass_hinge(y_true[:, 0], y_pred, y_true[:, 1])


def box_loss(y_true, y_pred):
    """Smooth L1 on the regressed regions' deltas of their class (label 0: none), averaged."""
    from edgecnn._keras import tf
    from edgecnn.training.region_detection import smooth_l1

    labels = tf.cast(y_true[:, 4], tf.int32)
    per_class = tf.reshape(y_pred, (-1, y_pred.shape[-1] // 4, 4))
    predicted = tf.gather(per_class, tf.maximum(labels - 1, 0), batch_dims=1)
    regressed = tf.cast(labels > 0, tf.float32)
    return tf.reduce_mean(regressed * tf.reduce_sum(smooth_l1(predicted - y_true[:, :4]), -1))
