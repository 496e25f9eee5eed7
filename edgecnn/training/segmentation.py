"""Training semantic segmentation: pixel-wise cross-entropy or Dice (or both), ignoring padding,
with augmentations that move the class map with the image."""

from __future__ import annotations

import numpy as np

from edgecnn.data.segmentation import IGNORE, load_segmentation_samples
from edgecnn.data.transforms import color_jitter, scale_translate
from edgecnn.training.task import TrainingTask


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, flip: bool, scale: float, color: float):
    """``image`` uint8 (H, W, C), ``mask`` uint8 (H, W): the same flips and zooms for both."""
    if flip and rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if scale:
        factor = rng.uniform(1 - scale, 1 + scale)
        height, width = image.shape[:2]
        shift_x = (1 - factor) * width / 2 + rng.uniform(-scale, scale) * width / 2
        shift_y = (1 - factor) * height / 2 + rng.uniform(-scale, scale) * height / 2
        # the class map is warped with nearest neighbour; outside the image it becomes IGNORE
        shifted = (mask.astype(np.int32) + 1).astype(np.uint16)  # 0 marks "outside" after warping
        image, _, warped, _ = scale_translate(np.ascontiguousarray(image), np.zeros((0, 4), np.float32),
                                              shifted, factor, shift_x, shift_y)
        mask = np.where(warped == 0, IGNORE, warped.astype(np.int32) - 1).astype(np.uint8)
    if color:
        image = color_jitter(np.ascontiguousarray(image), rng, color)
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


class SegmentationTask(TrainingTask):
    """The segmentation side of `edgecnn train` (see ``edgecnn.training.train``)."""

    def load(self) -> list[str]:
        data = self.recipe.data
        self.train_set = load_segmentation_samples(data.train, self.size, "all" if data.val else "train", data.limit)
        self.val_set = load_segmentation_samples(data.val or data.train, self.size, "all" if data.val else "val",
                                                 data.limit)
        self.num_classes = max(len(self.train_set.classes), len(self.val_set.classes))
        return self.train_set.classes if len(self.train_set.classes) >= len(self.val_set.classes) \
            else self.val_set.classes

    def datasets(self):
        from edgecnn._keras import tf

        recipe, size = self.recipe, self.size
        section = recipe.data.augment
        images = np.round(self.train_set.images * 255).astype(np.uint8)
        masks = self.train_set.masks
        seed = recipe.training.seed

        def generate():
            rng = np.random.default_rng([seed, generate.epoch])
            generate.epoch += 1
            for index in rng.permutation(len(images)):
                image, mask = augment(images[index], masks[index], rng, section.flip, section.scale, section.color)
                yield image.astype(np.float32) / 255.0, mask.astype(np.int32)

        generate.epoch = 0
        signature = (tf.TensorSpec(size, tf.float32), tf.TensorSpec(size[:2], tf.int32))
        batch = recipe.training.batch_size
        steps = max(1, len(images) // batch)
        train = (tf.data.Dataset.from_generator(generate, output_signature=signature)
                 .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
                 .apply(tf.data.experimental.assert_cardinality(steps)))
        val = tf.data.Dataset.from_tensor_slices((self.val_set.images, self.val_set.masks.astype(np.int32))).batch(batch)
        return train, val, steps

    def model_overrides(self, classes: list[str]) -> dict:
        return {"input_shape": self.size, "num_classes": len(classes)}

    def compile(self, model, optimizer):
        model.compile(optimizer, loss=SegmentationLoss(self.recipe.training.loss))
        return model

    def evaluate(self, model) -> dict:
        from edgecnn.evaluation.keras_backend import evaluation_pipeline
        from edgecnn.evaluation.segmentation import segmentation_set_metrics

        return segmentation_set_metrics(evaluation_pipeline(model, "segmentation"), self.val_set, self.num_classes)


class SegmentationLoss:
    """'cross_entropy', 'dice' (soft Dice over the classes present, Milletari et al. 2016) or
    'cross_entropy+dice'; pixels labelled IGNORE (letterbox padding) count in neither."""

    def __init__(self, kind: str = "cross_entropy") -> None:
        self.kind = kind
        self.__name__ = kind.replace("+", "_and_")  # Keras uses it as a name scope

    def __call__(self, y_true, y_pred):
        from edgecnn._keras import tf

        labels = tf.cast(y_true, tf.int32)
        valid = tf.cast(labels != IGNORE, tf.float32)
        safe = tf.where(labels == IGNORE, tf.zeros_like(labels), labels)
        total = 0.0
        if "cross_entropy" in self.kind:
            pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=y_pred)
            total += tf.reduce_sum(pixel * valid, axis=[1, 2]) / tf.maximum(tf.reduce_sum(valid, axis=[1, 2]), 1.0)
        if "dice" in self.kind:
            probability = tf.nn.softmax(y_pred) * valid[..., None]
            one_hot = tf.one_hot(safe, tf.shape(y_pred)[-1]) * valid[..., None]
            intersection = tf.reduce_sum(probability * one_hot, axis=[1, 2])
            denominator = tf.reduce_sum(probability, axis=[1, 2]) + tf.reduce_sum(one_hot, axis=[1, 2])
            dice = (2 * intersection + 1.0) / (denominator + 1.0)
            # only the classes in the image's labels: an absent class would score 1 / (its total
            # probability + 1), which even at 1e-4 per pixel is far below 1, so its term would
            # dominate the loss of an otherwise perfect prediction and push every logit of that
            # class down instead of teaching the classes that are there
            present = tf.cast(tf.reduce_sum(one_hot, axis=[1, 2]) > 0, tf.float32)
            total += 1.0 - tf.reduce_sum(dice * present, axis=-1) / tf.maximum(tf.reduce_sum(present, axis=-1), 1.0)
        return total
