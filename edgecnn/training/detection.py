"""Training the anchor-free YOLO detector: label assignment, loss, data pipeline, mAP.

Label assignment (per image, NumPy, in the input pipeline): each ground-truth box goes to the
head level whose size range holds its longer side (up to 4 strides for the finest level,
between 4 and 8 times the stride for the next, and so on; the coarsest takes everything
larger); at that level the points inside the box and within ``CENTER_RADIUS`` strides of its
centre are positives (the nearest point when none is, so that no box goes unlearned); a point
claimed by two boxes takes the smaller.

Class targets are soft: a positive's target is its *centerness* (FCOS: sqrt of min(l, r) /
max(l, r) times min(t, b) / max(t, b)), so a point near the box edge, which predicts a poorer
box, learns a lower score than the centre and ranks below it (one score carries class and
localization quality, as in GFL, with no extra output for the runtime to combine). Measured on
builtin:shapes: with hard 0/1 targets 98% of the objects were found at IoU 0.5 with the right
class, yet mAP@.5 was 0.32 because edge points scored as high as centres.

Loss: GIoU on the decoded boxes of the positives, plus binary cross-entropy over every point and
class, both normalised by the number of positives. On background points the cross-entropy is
weighted by |target - score|^2 (quality focal loss, GFL), which keeps the thousands of easy
negatives from swamping the few positives; on positive points it is not, for every class: with
the modulating factor there too, a class channel at 0.25 where the target is 0 costs almost
nothing, and on builtin:shapes the model learnt to find objects (99.9% of its detections above
0.3 overlapped an object at IoU 0.5) but gave all four classes nearly the same score.
"""

from __future__ import annotations

import math

import numpy as np

from edgecnn.data.detection import DetectionSample, DetectionSet, load_detection_samples
from edgecnn.data.transforms import color_jitter, hflip, scale_translate, transform_boxes
from edgecnn.runtime.detection import MAX_LOG_DISTANCE, anchor_points
from edgecnn.runtime.images import letterbox
from edgecnn.training.task import TrainingTask

CENTER_RADIUS = 2.5
BOX_WEIGHT = 5.0
QUALITY_FOCAL_BETA = 2.0
MIN_QUALITY = 0.05  # a positive's class target never drops to zero


def level_ranges(strides: tuple[int, ...]) -> list[tuple[float, float]]:
    """(lower, upper] bounds of the longer box side handled by each level."""
    bounds = [0.0] + [4.0 * s for s in strides[:-1]] + [math.inf]
    return list(zip(bounds[:-1], bounds[1:]))


def assign_targets(boxes: np.ndarray, classes: np.ndarray, input_size: tuple[int, int], strides: tuple[int, ...],
                   num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets for one image: (N, 5) box target (x1, y1, x2, y2, positive) and (N, C) one-hot
    class target; boxes are in input pixels."""
    centres, point_strides = anchor_points(tuple(input_size), tuple(strides))
    count = len(centres)
    box_target = np.zeros((count, 5), np.float32)
    class_target = np.zeros((count, num_classes), np.float32)
    if len(boxes) == 0:
        return box_target, class_target
    boxes = np.asarray(boxes, np.float32)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    level_stride = np.zeros(len(boxes), np.float32)
    for stride, (low, high) in zip(strides, level_ranges(tuple(strides))):
        level_stride[(sides > low) & (sides <= high)] = stride
    box_centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    on_level = point_strides[:, None] == level_stride[None, :]  # (N, G)
    inside = ((centres[:, None, 0] > boxes[None, :, 0]) & (centres[:, None, 0] < boxes[None, :, 2])
              & (centres[:, None, 1] > boxes[None, :, 1]) & (centres[:, None, 1] < boxes[None, :, 3]))
    near = np.abs(centres[:, None, :] - box_centres[None, :, :]).max(axis=2) < CENTER_RADIUS * point_strides[:, None]
    candidate = on_level & inside & near
    for g in np.nonzero(~candidate.any(axis=0))[0]:  # small boxes: the nearest point of their level
        distance = np.where(on_level[:, g], np.abs(centres - box_centres[g]).sum(axis=1), np.inf)
        candidate[int(np.argmin(distance)), g] = True
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cost = np.where(candidate, areas[None, :], np.inf)
    positive = np.isfinite(cost).any(axis=1)
    owner = np.argmin(cost, axis=1)[positive]
    box_target[positive, :4] = boxes[owner]
    box_target[positive, 4] = 1.0
    class_target[np.nonzero(positive)[0], classes[owner]] = centerness(centres[positive], boxes[owner])
    return box_target, class_target


def centerness(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """FCOS centerness of each point in its box, in [MIN_QUALITY, 1]."""
    left, top = points[:, 0] - boxes[:, 0], points[:, 1] - boxes[:, 1]
    right, bottom = boxes[:, 2] - points[:, 0], boxes[:, 3] - points[:, 1]
    horizontal = np.clip(np.minimum(left, right), 0, None) / np.maximum(np.maximum(left, right), 1e-6)
    vertical = np.clip(np.minimum(top, bottom), 0, None) / np.maximum(np.maximum(top, bottom), 1e-6)
    return np.clip(np.sqrt(horizontal * vertical), MIN_QUALITY, 1.0)


def not_crowd(sample: DetectionSample) -> np.ndarray:
    """(N,) bool: the sample's objects that train (crowd regions do not)."""
    return ~sample.crowd if len(sample.crowd) == len(sample.boxes) else np.ones(len(sample.boxes), bool)


def prepare(sample: DetectionSample, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Letterbox a sample to the model input: (image uint8, boxes in input pixels, classes);
    crowd boxes are left out of training."""
    image, fit = letterbox(sample.image, height, width)
    keep = not_crowd(sample)
    boxes = transform_boxes(sample.boxes[keep], fit.scale, fit.pad_x, fit.pad_y)
    return image, boxes, sample.classes[keep]


def augment(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, rng: np.random.Generator,
            flip: bool, scale: float, color: float, masks: np.ndarray | None = None) -> tuple:
    """Random flip, zoom-and-shift and colour jitter of a letterboxed sample: (image, boxes,
    classes), and with ``masks`` (N, H, W) instance masks moved like the pixels, a fourth item."""
    if flip and rng.random() < 0.5:
        image, boxes, masks = hflip(image, boxes, masks)
    if scale:
        factor = rng.uniform(1 - scale, 1 + scale)
        height, width = image.shape[:2]
        # shift so the zoomed image stays roughly centred, with up to +-scale/2 of jitter
        shift_x = (1 - factor) * width / 2 + rng.uniform(-scale, scale) * width / 2
        shift_y = (1 - factor) * height / 2 + rng.uniform(-scale, scale) * height / 2
        image, boxes, masks, kept = scale_translate(image, boxes, masks, factor, shift_x, shift_y)
        classes = classes[kept]
    if color:
        image = color_jitter(image, rng, color)
    return (image, boxes, classes) if masks is None else (image, boxes, classes, masks)


def to_input(image: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        image = image.mean(axis=2, keepdims=True)
    return image.astype(np.float32) / 255.0


class DetectionTask(TrainingTask):
    """The detection side of `edgecnn train` (see ``edgecnn.training.train``)."""

    with_masks = False  # load instance masks too (Mask R-CNN)

    def __init__(self, recipe) -> None:
        super().__init__(recipe)
        self.train_set: DetectionSet | None = None
        self.val_set: DetectionSet | None = None
        self.strides: tuple[int, ...] = tuple(recipe.model.overrides.get("strides", (8, 16, 32)))

    def load(self) -> list[str]:
        data = self.recipe.data
        self.train_set = load_detection_samples(data.train, "all" if data.val else "train", data.limit,
                                                self.with_masks)
        self.val_set = load_detection_samples(data.val or data.train, "all" if data.val else "val", data.limit,
                                              self.with_masks)
        if self.train_set.classes != self.val_set.classes:
            from edgecnn.errors import EdgeCNNError

            raise EdgeCNNError(f"Training classes {self.train_set.classes} differ from validation classes "
                               f"{self.val_set.classes}.", "Use annotation files with the same categories.")
        return self.train_set.classes

    def _targets(self, boxes, classes):
        return assign_targets(boxes, classes, self.size[:2], self.strides, len(self.train_set.classes))

    def datasets(self):
        from edgecnn._keras import tf

        height, width, channels = self.size
        recipe = self.recipe
        augment_section = recipe.data.augment
        num_classes = len(self.train_set.classes)
        prepared = [prepare(s, height, width) for s in self.train_set.samples]
        seed = recipe.training.seed

        def generate():
            rng = np.random.default_rng([seed, generate.epoch])
            generate.epoch += 1
            for index in rng.permutation(len(prepared)):
                image, boxes, classes = prepared[index]
                image, boxes, classes = augment(image, boxes, classes, rng, augment_section.flip,
                                                augment_section.scale, augment_section.color)
                box_target, class_target = self._targets(boxes, classes)
                yield to_input(image, channels), (box_target, class_target)

        generate.epoch = 0
        points = len(anchor_points(self.size[:2], self.strides)[0])
        signature = (tf.TensorSpec(self.size, tf.float32),
                     (tf.TensorSpec((points, 5), tf.float32), tf.TensorSpec((points, num_classes), tf.float32)))
        batch = recipe.training.batch_size
        train = (tf.data.Dataset.from_generator(generate, output_signature=signature)
                 .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
        steps = max(1, len(prepared) // batch)
        train = train.apply(tf.data.experimental.assert_cardinality(steps))
        val_images, val_boxes, val_classes = [], [], []
        for sample in self.val_set.samples:
            image, boxes, classes = prepare(sample, height, width)
            box_target, class_target = self._targets(boxes, classes)
            val_images.append(to_input(image, channels))
            val_boxes.append(box_target)
            val_classes.append(class_target)
        val = tf.data.Dataset.from_tensor_slices(
            (np.stack(val_images), (np.stack(val_boxes), np.stack(val_classes)))).batch(batch)
        return train, val, steps

    def model_overrides(self, classes: list[str]) -> dict:
        return {"input_shape": self.size, "num_classes": len(classes)}

    def compile(self, model, optimizer):
        losses = DetectionLoss(self.size[:2], self.strides)
        # by position, not by name: QAT renames the outputs (quant_boxes, quant_scores)
        model.compile(optimizer, loss=[losses.box_loss, losses.class_loss])
        return model

    def evaluate(self, model) -> dict:
        from edgecnn.evaluation import evaluate_keras_detector

        return evaluate_keras_detector(model, self.val_set, self.strides)


class DetectionLoss:
    def __init__(self, input_size: tuple[int, int], strides: tuple[int, ...]) -> None:
        centres, point_strides = anchor_points(tuple(input_size), tuple(strides))
        self.centres = centres
        self.strides = point_strides

    def box_loss(self, y_true, y_pred):
        """GIoU loss over the positives, per image, normalised by their number."""
        from edgecnn._keras import tf

        distances = tf.exp(tf.clip_by_value(y_pred, -MAX_LOG_DISTANCE, MAX_LOG_DISTANCE)) * self.strides[:, None]
        predicted = tf.concat([self.centres - distances[..., :2], self.centres + distances[..., 2:]], axis=-1)
        target, positive = y_true[..., :4], y_true[..., 4]
        giou = _giou(predicted, target)
        count = tf.maximum(tf.reduce_sum(positive, axis=1), 1.0)
        return BOX_WEIGHT * tf.reduce_sum(positive * (1.0 - giou), axis=1) / count

    def class_loss(self, y_true, y_pred):
        """Cross-entropy, quality-focal (Li et al. 2020) on background points, / positives."""
        from edgecnn._keras import tf

        probability = tf.sigmoid(y_pred)
        cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=y_true, logits=y_pred)
        positive = tf.cast(tf.reduce_max(y_true, axis=-1, keepdims=True) > 0, tf.float32)  # (B, N, 1)
        modulation = tf.pow(tf.abs(y_true - probability), QUALITY_FOCAL_BETA)
        weight = positive + (1.0 - positive) * modulation
        count = tf.maximum(tf.reduce_sum(positive, axis=[1, 2]), 1.0)
        return tf.reduce_sum(weight * cross_entropy, axis=[1, 2]) / count


def _giou(a, b):
    from edgecnn._keras import tf

    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = tf.maximum(b[..., 2] - b[..., 0], 0.0) * tf.maximum(b[..., 3] - b[..., 1], 0.0)
    top_left = tf.maximum(a[..., :2], b[..., :2])
    bottom_right = tf.minimum(a[..., 2:], b[..., 2:])
    wh = tf.maximum(bottom_right - top_left, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a + area_b - inter
    iou = inter / tf.maximum(union, 1e-7)
    hull = tf.maximum(a[..., 2:], b[..., 2:]) - tf.minimum(a[..., :2], b[..., :2])
    hull_area = tf.maximum(hull[..., 0] * hull[..., 1], 1e-7)
    return iou - (hull_area - union) / hull_area
