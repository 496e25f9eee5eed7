"""The segmentation pipeline: any image -> per-pixel class map at the image's size, per-class
areas, and per-region instances."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.images import Letterbox, as_rgb8
from edgecnn.runtime.metadata import ModelMetadata, label_of, labels_of
from edgecnn.runtime.model_input import FrameWriter, model_and_metadata, normalization_of
from edgecnn.runtime.runner import Runner


@dataclass
class SegmentInstance:
    """One connected region of one class in a class map, at the original image's size."""

    index: int  # class id
    label: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive), pixels
    area: int  # pixels
    mask: np.ndarray  # (H, W) bool, the whole image

    def to_json(self) -> dict:
        return {"label": self.label, "class": self.index, "box": list(self.box), "area": self.area}


MIN_INSTANCE_AREA = 16  # pixels; smaller regions are speckle, not objects


@dataclass
class SegmentationResult:
    class_map: np.ndarray  # (H, W) uint8 class ids at the original image's size
    areas: dict[str, float]  # label -> fraction of the image
    invoke_ms: float
    pipeline_ms: float
    labels: list[str]

    def instances(self, min_area: int = MIN_INSTANCE_AREA) -> list[SegmentInstance]:
        """Per-instance masks of a semantic model: each 8-connected region of a non-background
        class (id > 0) is one instance, largest first. Touching objects of the same class merge
        into one region (a semantic model cannot tell them apart)."""
        import cv2

        found = []
        for index in np.unique(self.class_map):
            if index == 0:
                continue
            count, regions, stats, _ = cv2.connectedComponentsWithStats((self.class_map == index).astype(np.uint8),
                                                                         connectivity=8)
            for region in range(1, count):
                x, y, w, h, area = (int(v) for v in stats[region])
                if area >= min_area:
                    label = label_of(self.labels, int(index))
                    found.append(SegmentInstance(int(index), label, (x, y, x + w, y + h), area, regions == region))
        return sorted(found, key=lambda instance: -instance.area)

    def to_json(self) -> dict:  # the class map goes to a PNG, not into the JSON lines
        return {"areas": self.areas, "invoke_ms": self.invoke_ms, "pipeline_ms": self.pipeline_ms,
                "image_size": list(self.class_map.shape),
                "instances": [instance.to_json() for instance in self.instances()]}


def original_class_map(logits: np.ndarray, fit: Letterbox, width: int, height: int) -> np.ndarray:
    """(H, W) class ids at the original ``width`` x ``height`` from (h, w, classes) logits (or
    stored int8 outputs) of a letterboxed input: the padding cropped, argmax, nearest resize."""
    import cv2

    inner_w, inner_h = round(width * fit.scale), round(height * fit.scale)
    x0, y0 = int(fit.pad_x), int(fit.pad_y)
    classes = logits[y0:y0 + inner_h, x0:x0 + inner_w].argmax(axis=-1).astype(np.uint8)
    return cv2.resize(classes, (width, height), interpolation=cv2.INTER_NEAREST)


class Segmenter:
    """Image (any size) -> per-pixel class map at the original size, per-class areas.
    The model outputs logits (1, H, W, classes); the argmax runs here, not in the graph (ARG_MAX
    does not run on the GPU delegate)."""

    def __init__(self, model: str | os.PathLike | bytes | None, accelerator: str = "auto", threads: int | None = None,
                 labels: list[str] | None = None, runner: Runner | None = None, metadata: ModelMetadata | None = None) -> None:
        data, self.metadata = model_and_metadata(model, metadata, runner, "segmentation")
        self.runner = runner or Runner(data, accelerator, threads)
        shape, out = self.runner.inputs[0].shape, self.runner.outputs[0].shape
        if len(shape) != 4 or len(out) != 4:
            raise EdgeCNNError(f"A segmenter needs a (1, H, W, C) input and a (1, H, W, classes) output; this model "
                               f"has {shape} -> {out}.")
        self.size = tuple(int(d) for d in shape[1:])
        self.num_classes = int(out[-1])
        normalization = normalization_of(self.metadata)
        self.scale, self.offset = normalization.scale, normalization.offset
        self._write_frame = FrameWriter(self.runner, self.scale, self.offset)
        self.labels = labels_of(self.metadata, labels) or [str(i) for i in range(self.num_classes)]

    def class_map(self, unit_image: np.ndarray) -> np.ndarray:
        """Class ids (H, W) at the model's input size for an input-sized float image in [0, 1]."""
        logits = self.runner((unit_image[None] * (255.0 * self.scale) + self.offset).astype(np.float32))[0]
        return logits[0].argmax(axis=-1).astype(np.uint8)

    def __call__(self, image: np.ndarray) -> SegmentationResult:
        start = time.perf_counter()
        rgb = as_rgb8(image)
        fit = self._write_frame(rgb)
        invoke_start = time.perf_counter()
        # an int8 output is read as stored: dequantizing is increasing (one scale > 0 per tensor),
        # so the argmax of the stored integers is the argmax of the logits, ties included
        logits = self.runner.invoke(dequantized=False)[0][0]
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        class_map = original_class_map(logits, fit, rgb.shape[1], rgb.shape[0])
        counts = np.bincount(class_map.reshape(-1), minlength=self.num_classes) / class_map.size
        areas = {label_of(self.labels, i): round(float(c), 5) for i, c in enumerate(counts) if c > 0}
        return SegmentationResult(class_map, areas, invoke_ms, (time.perf_counter() - start) * 1000, self.labels)
