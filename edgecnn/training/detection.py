"""Training the anchor-free YOLO detector: data pipeline (letterbox, flip, zoom, colour, mosaic),
targets, trainer and mAP. The label assignment and the loss look at the predictions, so they run
in the training graph (``edgecnn.training.task_aligned``); the pipeline only pads each image's
boxes into a fixed-size (MAX_BOXES, 5) array. The region detectors (Faster R-CNN, Mask R-CNN)
share this pipeline and trainer with their own targets and loss.
"""

from __future__ import annotations

import numpy as np

from edgecnn.data.detection import DetectionSample, DetectionSet, load_detection_samples
from edgecnn.data.transforms import color_jitter, hflip, mosaic, scale_translate, transform_boxes
from edgecnn.runtime.images import letterbox
from edgecnn.training.task import TrainingTask

MAX_BOXES = 100  # ground-truth boxes kept per image (COCO has up to ~90)
STAGES = ("train", "prune", "qat")  # edgecnn.training.train's stages, in order


def padded_boxes(boxes: np.ndarray, classes: np.ndarray, count: int) -> np.ndarray:
    """(count, 5) x1 y1 x2 y2 class; unused rows have class -1."""
    padded = np.zeros((count, 5), np.float32)
    padded[:, 4] = -1
    keep = min(len(boxes), count)
    padded[:keep, :4] = np.asarray(boxes, np.float32)[:keep]
    padded[:keep, 4] = np.asarray(classes)[:keep]
    return padded


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
    """The detection side of `edgecnn train` (see ``edgecnn.training.train``): YOLO here, the
    region detectors in subclasses that change the targets and the loss."""

    with_masks = False  # load instance masks too (Mask R-CNN)

    def __init__(self, recipe) -> None:
        super().__init__(recipe)
        self.train_set: DetectionSet | None = None
        self.val_set: DetectionSet | None = None
        self.strides: tuple[int, ...] = tuple(recipe.model.overrides.get("strides", (8, 16, 32)))
        self.max_boxes = 1
        self.prepared: list[tuple] = []
        self.stage, self.epoch = "train", 0  # where training is: mosaic follows it

    def start_stage(self, stage: str, epochs_done: int) -> None:
        self.stage, self.epoch = stage, epochs_done

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
        counts = [len(s.boxes) for dataset in (self.train_set, self.val_set) for s in dataset.samples]
        self.max_boxes = max(1, min(MAX_BOXES, max(counts, default=1) * (4 if data.augment.mosaic else 1)))
        return self.train_set.classes

    def _prepare(self, sample) -> tuple:
        """A sample letterboxed to the input: (image, boxes, classes), and masks for Mask R-CNN."""
        return prepare(sample, *self.size[:2])

    def _augment(self, prepared: tuple, rng: np.random.Generator, epoch: int) -> tuple:
        """A training view of a prepared sample: with the recipe's ``mosaic`` probability (until
        the last ``close_mosaic`` epochs) a mosaic of it and three random others, then flip,
        zoom (when no mosaic zoomed) and colour."""
        section = self.recipe.data.augment
        last_mosaic_epoch = self.recipe.training.epochs - section.close_mosaic
        use_mosaic = (section.mosaic and self.stage == "train" and epoch < last_mosaic_epoch
                      and rng.random() < section.mosaic)
        if use_mosaic:
            others = rng.integers(0, len(self.prepared), 3)
            image, boxes, classes = mosaic([prepared, *(self.prepared[i] for i in others)], rng, section.scale)
            return augment(image, boxes, classes, rng, section.flip, 0.0, section.color)
        return augment(*prepared, rng, section.flip, section.scale, section.color)

    def _example(self, prepared: tuple, rng: np.random.Generator):
        image, boxes, classes = prepared[:3]
        return to_input(image, self.size[2]), padded_boxes(boxes, classes, self.max_boxes)

    def _target_signature(self):
        from edgecnn._keras import tf

        return tf.TensorSpec((self.max_boxes, 5), tf.float32)

    def datasets(self):
        from edgecnn._keras import tf

        recipe = self.recipe
        self.prepared = [self._prepare(s) for s in self.train_set.samples]
        seed = recipe.training.seed

        # the generator serves every stage (float, pruning, QAT) in turn, one call per epoch:
        # start_stage sets the stage and its first epoch, so mosaic runs in the float stage
        # only, up to its last close_mosaic epochs, a resumed run included
        def generate():
            epoch = self.epoch
            self.epoch += 1
            rng = np.random.default_rng([seed, STAGES.index(self.stage), epoch])
            for index in rng.permutation(len(self.prepared)):
                yield self._example(self._augment(self.prepared[index], rng, epoch), rng)

        signature = (tf.TensorSpec(self.size, tf.float32), self._target_signature())
        batch = recipe.training.batch_size
        steps = max(1, len(self.prepared) // batch)
        train = (tf.data.Dataset.from_generator(generate, output_signature=signature)
                 .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
                 .apply(tf.data.experimental.assert_cardinality(steps)))
        rng = np.random.default_rng([seed, 1 << 20])  # fixed validation samples (the RPN's anchors)
        examples = [self._example(self._prepare(s), rng) for s in self.val_set.samples]
        stacked = [np.stack(column) for column in zip(*(e[1] if isinstance(e[1], tuple) else (e[1],)
                                                       for e in examples))]
        targets = tuple(stacked) if len(stacked) > 1 else stacked[0]
        val = tf.data.Dataset.from_tensor_slices((np.stack([e[0] for e in examples]), targets)).batch(batch)
        return train, val, steps

    def model_overrides(self, classes: list[str]) -> dict:
        return {"input_shape": self.size, "num_classes": len(classes)}

    def _losses(self) -> tuple:
        """(losses(outputs, *targets) -> named losses, their names) for the trainer."""
        from edgecnn.training.task_aligned import YoloLoss

        return YoloLoss(self.size[:2], self.strides), ("box", "cls")

    def compile(self, model, optimizer):
        from edgecnn.training.trainer import loss_trainer

        trainer = loss_trainer(self.deliverable(model), *self._losses())
        trainer.compile(optimizer)
        trainer.build((None, *self.size))  # BackupAndRestore (resume) needs it built
        return trainer

    def deliverable(self, model):
        return getattr(model, "detector", model)

    def evaluate(self, model) -> dict:
        from edgecnn.evaluation.detection import evaluate_detector
        from edgecnn.evaluation.keras_backend import evaluation_pipeline

        return evaluate_detector(evaluation_pipeline(self.deliverable(model), "detection"), self.val_set)
