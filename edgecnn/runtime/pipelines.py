"""Pipelines driven by the metadata inside the .tflite file (TensorFlow-free).

``Classifier``: preprocessing (colour, size, normalization) from the metadata, inference on the
CPU (XNNPACK) or on LiteRT's GPU accelerator, softmax and top-k with labels. ``Detector``:
letterbox, inference, decoding of the anchor-free outputs, class-aware NMS, boxes in the
original image's pixels.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from edgecnn.data.images import to_model_input, to_model_pixels
from edgecnn.data.transforms import (Letterbox, byte_shift, letterbox, letterbox_mapped, letterbox_normalized,
                                     resize)
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.engine import Engine, dequantize, load_engine, pixel_table, quantize, read_model_bytes
from edgecnn.runtime.metadata import read_metadata

log = logging.getLogger("edgecnn.runtime")
T = TypeVar("T")

ACCELERATORS = ("auto", "cpu", "gpu")


class Runner:
    """Float arrays in, float arrays out, on the chosen accelerator. ``backend``,
    ``accelerator`` and ``fully_accelerated`` say what actually ran. With ``probe`` (the default)
    the model is first loaded and run once in a child process (about 0.1 s on the CPU, more when
    the GPU compiles it), so that a file the native runtime aborts on raises an EdgeCNNError."""

    def __init__(self, data: bytes, accelerator: str = "auto", threads: int | None = None,
                 delegate: str | os.PathLike | None = None, probe: bool = True) -> None:
        if accelerator not in ACCELERATORS:
            raise EdgeCNNError(f"Unknown accelerator '{accelerator}'.", f"Choose one of: {', '.join(ACCELERATORS)}.")
        if accelerator == "gpu":
            from edgecnn.runtime.gpu import use_software_gpu

            use_software_gpu()  # before the probe, whose child inherits the Vulkan driver choice
        if probe:  # a file the native runtime aborts on ends as an error, not a dead process
            from edgecnn.runtime.probe import require_loads

            # with an external delegate the GPU accelerator is not used, so the child skips it too
            require_loads(read_model_bytes(data), "The model", threads=threads,
                          gpu=accelerator != "cpu" and not delegate, delegate=str(delegate) if delegate else None)
        # an external delegate library (old Pi images: tflite_runtime + a GPU delegate .so) takes
        # the place of LiteRT's own GPU accelerator; whether it took every op is not reported
        self.engine: Engine = load_engine(data, threads=threads, delegate=delegate)
        self.inputs, self.outputs = self.engine.inputs, self.engine.outputs
        self.gpu = None
        self._gpu_input: np.ndarray | None = None
        self.backend, self.accelerator, self.fully_accelerated = self.engine.backend, "cpu", None
        if delegate:
            self.accelerator = f"delegate:{Path(delegate).name}"
        elif accelerator in ("gpu", "auto"):
            self._try_gpu(data, required=accelerator == "gpu")

    def _try_gpu(self, data: bytes, required: bool) -> None:
        from edgecnn.runtime.gpu import GpuRunner

        try:
            runner = GpuRunner(data)
        except (ImportError, RuntimeError) as error:
            if required:
                raise EdgeCNNError(f"LiteRT's GPU accelerator is not available here ({str(error).splitlines()[-1]}).",
                                   "Use --accelerator cpu, or install a Vulkan driver (deploy/software-gpu.sh "
                                   "gives a software one for testing).") from error
            return
        if not runner.fully_accelerated and not required:
            log.info("not every op runs on the GPU: using the CPU")
            return
        self.gpu = runner
        self.backend, self.accelerator, self.fully_accelerated = "litert-compiled-model", "gpu", runner.fully_accelerated

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if self.gpu is None:
            return self.engine(*arrays)
        raw = self.gpu([quantize(np.asarray(a), info) for a, info in zip(arrays, self.inputs)])
        return [dequantize(o, info) for o, info in zip(raw, self.outputs)]

    def write_input(self, fill: Callable[[np.ndarray], T], raw: bool = False) -> T:
        """``fill`` writes the first input in place (into the interpreter's own tensor on the
        CPU): float values, or with ``raw`` the tensor's own dtype (see ``pixel_table``);
        ``invoke`` then runs the model. Returns what ``fill`` returns."""
        if self.gpu is None:
            return self.engine.write_input(fill, raw)
        if self._gpu_input is None:
            self._gpu_input = np.empty(self.inputs[0].shape, np.float32)
        return fill(self._gpu_input)

    def pixel_table(self, scale: float, offset: float) -> np.ndarray | None:
        """The pixel -> stored value table of an 8-bit quantized input (None on the GPU, which
        takes float input here, and for float models)."""
        return pixel_table(self.inputs[0], scale, offset) if self.gpu is None else None

    def invoke(self, dequantized: bool = True) -> list[np.ndarray]:
        """Run the model on the input ``write_input`` wrote; ``dequantized=False``: the outputs
        as stored (see ``Engine.invoke``)."""
        if self.gpu is None:
            return self.engine.invoke(dequantized)
        raw = self.gpu([quantize(self._gpu_input, self.inputs[0])])
        return [dequantize(o, info) for o, info in zip(raw, self.outputs)] if dequantized else raw


@dataclass
class Prediction:
    index: int
    label: str
    score: float


@dataclass
class ClassificationResult:
    top_k: list[Prediction]
    invoke_ms: float
    pipeline_ms: float
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


class Classifier:
    """Image (H, W, C) uint8/uint16, gray, RGB or RGBA, any size -> top-k classes."""

    def __init__(self, model: str | os.PathLike | bytes, accelerator: str = "auto", threads: int | None = None,
                 top_k: int = 5, labels: list[str] | None = None, runner: Runner | None = None) -> None:
        data = read_model_bytes(model)
        self.metadata = read_metadata(data) or {}
        if self.metadata and self.metadata.get("task") not in (None, "classification"):
            raise EdgeCNNError(f"This model's task is '{self.metadata['task']}', not classification.")
        self.runner = runner or Runner(data, accelerator, threads)
        shape = self.runner.inputs[0].shape
        if len(shape) != 4:
            raise EdgeCNNError(f"The model's input has shape {shape}; a classifier needs (1, H, W, C).")
        self.size = tuple(int(d) for d in shape[1:])
        normalization = self.metadata.get("input", {}).get("normalization")
        if normalization is None:
            log.warning("the model carries no edgecnn metadata: assuming RGB input scaled to [0, 1]")
            normalization = {"scale": 1 / 255, "offset": 0.0}
        self.scale, self.offset = float(normalization["scale"]), float(normalization["offset"])
        self._write_frame = _FrameInput(self.runner, self.scale, self.offset, stretch=True)
        self.labels = labels or self.metadata.get("labels")
        self.top_k = top_k
        self.logits = (self.metadata.get("outputs") or [{}])[0].get("kind", "logits") == "logits"

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """The normalized (1, H, W, C) float batch for ``image`` (what ``__call__`` writes into
        the model's input directly)."""
        unit = to_model_input(image, self.size)  # pixel / 255
        return (unit * (255.0 * self.scale) + self.offset)[None].astype(np.float32)

    def __call__(self, image: np.ndarray) -> ClassificationResult:
        start = time.perf_counter()
        self._write_frame(image)
        invoke_start = time.perf_counter()
        scores = self.runner.invoke()[0].reshape(-1)
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        if self.logits:
            shifted = np.exp(scores - scores.max())
            scores = shifted / shifted.sum()
        order = np.argsort(-scores)[: self.top_k]
        top = [Prediction(int(i), self._label(int(i)), float(scores[i])) for i in order]
        return ClassificationResult(top, invoke_ms, (time.perf_counter() - start) * 1000)

    def _label(self, index: int) -> str:
        return self.labels[index] if self.labels and index < len(self.labels) else str(index)


def draw_classification(image: np.ndarray, result: ClassificationResult) -> np.ndarray:
    """A copy of ``image`` (RGB) with the top prediction written on it."""
    import cv2

    canvas = np.ascontiguousarray(image.copy())
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)
    best = result.top_k[0]
    scale = max(0.4, canvas.shape[1] / 640)
    text = f"{best.label} {best.score:.2f}"
    cv2.putText(canvas, text, (5, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, (5, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return canvas


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """Gray, RGB or RGBA, 8 or 16 bit -> (H, W, 3) uint8 RGB."""
    if image.dtype == np.uint16:
        image = (image / 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def _normalization(metadata: dict) -> tuple[float, float]:
    normalization = metadata.get("input", {}).get("normalization")
    if normalization is None:
        log.warning("the model carries no edgecnn metadata: assuming RGB input scaled to [0, 1]")
        normalization = {"scale": 1 / 255, "offset": 0.0}
    return float(normalization["scale"]), float(normalization["offset"])


def _write_model_input(rgb: np.ndarray, scale: float, offset: float, table: np.ndarray | None,
                       shift: int | None, target: np.ndarray) -> Letterbox:
    """Letterbox ``rgb`` into the (1, H, W, C) ``target`` as ``pixel * scale + offset`` and say
    where the image went. RGB models take a fused path (one resize and one pass over the pixels,
    straight into the runner's input), as pre-processing is a real share of a small model's
    frame time: a float input is normalized in place; an 8-bit quantized one (``table``, with
    ``target`` in the tensor's own dtype) gets one byte-table look-up per pixel."""
    height, width, channels = target.shape[1:]
    if channels == 3:
        if table is not None:
            return letterbox_mapped(rgb, target[0].view(np.uint8), table, shift)
        return letterbox_normalized(rgb, target[0], scale, offset)
    fitted, fit = letterbox(rgb, height, width)
    np.multiply(fitted.mean(axis=2, keepdims=True), scale, out=target[0], casting="unsafe")
    target += np.float32(offset)
    return fit


def _write_pixels(pixels: np.ndarray, scale: float, offset: float, table: np.ndarray | None, shift: int | None,
                  target: np.ndarray) -> None:
    """Model-sized uint8 ``pixels`` into the (1, H, W, C) ``target`` as ``pixel * scale +
    offset``: through the byte table for an 8-bit quantized input, else normalized in place."""
    if table is not None:
        out = target[0].view(np.uint8)
        if shift is None:
            out[...] = _lookup(pixels, table)
        else:
            np.add(pixels, np.uint8(shift), out=out)  # wraps modulo 256, as the table does
        return
    np.copyto(target[0], pixels)
    target *= np.float32(scale)
    if offset:
        target += np.float32(offset)


def _lookup(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.LUT(pixels, table).reshape(pixels.shape)


class _FrameInput:
    """Writes a frame into a runner's input: the byte-table path when the input is 8-bit
    quantized (and RGB, when letterboxing), the float path otherwise. ``stretch``: resized to
    the input's size and channels, aspect not kept (classification), instead of letterboxed."""

    def __init__(self, runner: Runner, scale: float, offset: float, stretch: bool = False) -> None:
        self.runner, self.scale, self.offset, self.stretch = runner, scale, offset, stretch
        self.size = tuple(int(d) for d in runner.inputs[0].shape[1:])
        self.table = runner.pixel_table(scale, offset) if stretch or self.size[-1] == 3 else None
        self.shift = byte_shift(self.table) if self.table is not None else None

    def __call__(self, image: np.ndarray) -> Letterbox | None:
        if self.stretch:
            pixels = to_model_pixels(image, self.size)
            return self.runner.write_input(
                lambda target: _write_pixels(pixels, self.scale, self.offset, self.table, self.shift, target),
                raw=self.table is not None)
        return self.runner.write_input(
            lambda target: _write_model_input(image, self.scale, self.offset, self.table, self.shift, target),
            raw=self.table is not None)


@dataclass
class Detection:
    box: list[float]  # x1, y1, x2, y2 in the original image's pixels
    score: float
    index: int
    label: str


@dataclass
class DetectionResult:
    detections: list[Detection]
    invoke_ms: float
    pipeline_ms: float
    image_size: list[int]  # height, width of the original image

    def to_json(self) -> dict:
        return asdict(self)


class Detector:
    """Image (any size, gray/RGB/RGBA, 8/16 bit) -> boxes, scores and labels in its own pixels.

    Reads the decoding parameters (strides, box encoding) from the file's metadata; for a file
    without them, pass ``strides`` (anchor-free YOLO layout: outputs (1, N, 4) log-distances and
    (1, N, C) class logits)."""

    def __init__(self, model: str | os.PathLike | bytes, accelerator: str = "auto", threads: int | None = None,
                 score_threshold: float = 0.25, iou_threshold: float = 0.5, max_detections: int = 100,
                 labels: list[str] | None = None, strides: list[int] | None = None,
                 runner: Runner | None = None) -> None:
        data = read_model_bytes(model)
        self.metadata = read_metadata(data) or {}
        if self.metadata and self.metadata.get("task") not in (None, "detection"):
            raise EdgeCNNError(f"This model's task is '{self.metadata['task']}', not detection.")
        decoding = self.metadata.get("decoding") or {}
        self.strides = tuple(int(s) for s in (strides or decoding.get("strides") or ()))
        if not self.strides:
            raise EdgeCNNError("This model carries no detection decoding metadata (the head strides).",
                               "Pass them on the command line (--strides 8 16 32 for an anchor-free YOLO), or "
                               "convert the model with `edgecnn convert --task detection`.")
        self.runner = runner or Runner(data, accelerator, threads)
        shape = self.runner.inputs[0].shape
        if len(shape) != 4 or len(self.runner.outputs) != 2:
            raise EdgeCNNError(f"A detector needs one (1, H, W, C) input and two outputs (boxes, scores); this model "
                               f"has inputs {[i.shape for i in self.runner.inputs]} and "
                               f"{len(self.runner.outputs)} output(s).")
        self.size = tuple(int(d) for d in shape[1:])
        self.box_output = 0 if self.runner.outputs[0].shape[-1] == 4 else 1
        # int8 outputs (int8-io files) are decoded from their stored integers: only candidates
        # get dequantized
        box_info, score_info = self.runner.outputs[self.box_output], self.runner.outputs[1 - self.box_output]
        stored = all(info.quantized and info.scale > 0 and info.dtype.itemsize == 1 for info in (box_info, score_info))
        self._quantization = ((box_info.scale, box_info.zero_point),
                              (score_info.scale, score_info.zero_point)) if stored else None
        self.scale, self.offset = _normalization(self.metadata)
        self._write_frame = _FrameInput(self.runner, self.scale, self.offset)
        self.labels = labels or self.metadata.get("labels")
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self.max_detections = max_detections

    def raw(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model outputs for a preprocessed (1, H, W, C) float batch in [0, 1]: (boxes, scores)."""
        outputs = self.runner((batch * (255.0 * self.scale) + self.offset).astype(np.float32))
        return outputs[self.box_output], outputs[1 - self.box_output]

    def __call__(self, image: np.ndarray) -> DetectionResult:
        from edgecnn.runtime.detection import postprocess

        start = time.perf_counter()
        rgb = as_rgb8(image)
        height, width, _ = self.size
        fit = self._write_frame(rgb)
        invoke_start = time.perf_counter()
        outputs = self.runner.invoke(dequantized=self._quantization is None)
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        found = postprocess(outputs[self.box_output][0], outputs[1 - self.box_output][0], (height, width),
                            self.strides, self.score_threshold, self.iou_threshold, self.max_detections,
                            quantization=self._quantization)
        boxes = fit.to_original(found.boxes, rgb.shape[1], rgb.shape[0])
        detections = [Detection(box, score, cls, self._label(cls)) for box, score, cls in
                      zip(boxes.round(2).tolist(), found.scores.tolist(), found.classes.tolist())]
        return DetectionResult(detections, invoke_ms, (time.perf_counter() - start) * 1000, list(rgb.shape[:2]))

    def _label(self, index: int) -> str:
        return self.labels[index] if self.labels and index < len(self.labels) else str(index)


def class_colour(index: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour per class index (golden-ratio hue steps)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(image: np.ndarray, result: DetectionResult) -> np.ndarray:
    """A copy of ``image`` (RGB) with each detection's box, label and score."""
    import cv2

    canvas = as_rgb8(image).copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 320))
    font = max(0.35, max(canvas.shape[:2]) / 900)
    for detection in result.detections:
        x1, y1, x2, y2 = (int(round(v)) for v in detection.box)
        colour = class_colour(detection.index)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        text = f"{detection.label} {detection.score:.2f}"
        (text_w, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        top = max(0, y1 - text_h - 4)
        cv2.rectangle(canvas, (x1, top), (x1 + text_w + 2, top + text_h + 4), colour, -1)
        cv2.putText(canvas, text, (x1 + 1, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return canvas


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
                    label = self.labels[index] if index < len(self.labels) else str(int(index))
                    found.append(SegmentInstance(int(index), label, (x, y, x + w, y + h), area, regions == region))
        return sorted(found, key=lambda instance: -instance.area)

    def to_json(self) -> dict:  # the class map goes to a PNG, not into the JSON lines
        return {"areas": self.areas, "invoke_ms": self.invoke_ms, "pipeline_ms": self.pipeline_ms,
                "image_size": list(self.class_map.shape),
                "instances": [instance.to_json() for instance in self.instances()]}


class Segmenter:
    """Image (any size) -> per-pixel class map at the original size, per-class areas.
    The model outputs logits (1, H, W, classes); the argmax runs here, not in the graph (ARG_MAX
    does not run on the GPU delegate)."""

    def __init__(self, model: str | os.PathLike | bytes, accelerator: str = "auto", threads: int | None = None,
                 labels: list[str] | None = None, runner: Runner | None = None) -> None:
        data = read_model_bytes(model)
        self.metadata = read_metadata(data) or {}
        if self.metadata and self.metadata.get("task") not in (None, "segmentation"):
            raise EdgeCNNError(f"This model's task is '{self.metadata['task']}', not segmentation.")
        self.runner = runner or Runner(data, accelerator, threads)
        shape, out = self.runner.inputs[0].shape, self.runner.outputs[0].shape
        if len(shape) != 4 or len(out) != 4:
            raise EdgeCNNError(f"A segmenter needs a (1, H, W, C) input and a (1, H, W, classes) output; this model "
                               f"has {shape} -> {out}.")
        self.size = tuple(int(d) for d in shape[1:])
        self.num_classes = int(out[-1])
        self.scale, self.offset = _normalization(self.metadata)
        self._write_frame = _FrameInput(self.runner, self.scale, self.offset)
        self.labels = labels or self.metadata.get("labels") or [str(i) for i in range(self.num_classes)]

    def class_map(self, unit_image: np.ndarray) -> np.ndarray:
        """Class ids (H, W) at the model's input size for an input-sized float image in [0, 1]."""
        logits = self.runner((unit_image[None] * (255.0 * self.scale) + self.offset).astype(np.float32))[0]
        return logits[0].argmax(axis=-1).astype(np.uint8)

    def __call__(self, image: np.ndarray) -> SegmentationResult:
        import cv2

        start = time.perf_counter()
        rgb = as_rgb8(image)
        fit = self._write_frame(rgb)
        invoke_start = time.perf_counter()
        # an int8 output is read as stored: dequantizing is increasing (one scale > 0 per tensor),
        # so the argmax of the stored integers is the argmax of the logits, ties included
        logits = self.runner.invoke(dequantized=False)[0][0]
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        inner_w, inner_h = round(rgb.shape[1] * fit.scale), round(rgb.shape[0] * fit.scale)
        x0, y0 = int(fit.pad_x), int(fit.pad_y)
        classes = logits[y0:y0 + inner_h, x0:x0 + inner_w].argmax(axis=-1).astype(np.uint8)
        class_map = cv2.resize(classes, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
        counts = np.bincount(class_map.reshape(-1), minlength=self.num_classes) / class_map.size
        areas = {self._label(i): round(float(c), 5) for i, c in enumerate(counts) if c > 0}
        return SegmentationResult(class_map, areas, invoke_ms, (time.perf_counter() - start) * 1000, self.labels)

    def _label(self, index: int) -> str:
        return self.labels[index] if index < len(self.labels) else str(index)


def draw_segmentation(image: np.ndarray, result: SegmentationResult, alpha: float = 0.5,
                      outlines: bool = True) -> np.ndarray:
    """``image`` (RGB) with every non-background class (id > 0) blended in its colour and each
    instance outlined."""
    canvas = as_rgb8(image).astype(np.float32)
    palette = np.array([class_colour(i) for i in range(max(len(result.labels), int(result.class_map.max()) + 1))],
                       np.float32)
    foreground = result.class_map > 0
    canvas[foreground] = (1 - alpha) * canvas[foreground] + alpha * palette[result.class_map[foreground]]
    canvas = canvas.astype(np.uint8)
    if outlines:  # each instance's outline in its class colour, so touching regions stay apart
        import cv2

        for instance in result.instances():
            contours, _ = cv2.findContours(instance.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, contours, -1, class_colour(instance.index), 1)
    return canvas


@dataclass
class TranslationResult:
    image: np.ndarray  # (H, W, 3) uint8 at the original image's size
    invoke_ms: float
    pipeline_ms: float

    def to_json(self) -> dict:  # the image goes to a PNG, not into the JSON lines
        return {"invoke_ms": self.invoke_ms, "pipeline_ms": self.pipeline_ms, "image_size": list(self.image.shape)}


class Translator:
    """Image (any size) -> translated image at the original size (Pix2Pix, CycleGAN). The
    input is resized (not letterboxed) to the model's size, as generators are trained, and
    normalized as the metadata says ([-1, 1] for edgecnn's generators); the output's value
    range (tanh: [-1, 1]) is mapped to 0..255 and resized back."""

    def __init__(self, model: str | os.PathLike | bytes, accelerator: str = "auto", threads: int | None = None,
                 runner: Runner | None = None) -> None:
        data = read_model_bytes(model)
        self.metadata = read_metadata(data) or {}
        if self.metadata and self.metadata.get("task") not in (None, "generation"):
            raise EdgeCNNError(f"This model's task is '{self.metadata['task']}', not image generation.")
        self.runner = runner or Runner(data, accelerator, threads)
        shape, out = self.runner.inputs[0].shape, self.runner.outputs[0].shape
        if len(shape) != 4 or len(out) != 4 or out[-1] not in (1, 3):
            raise EdgeCNNError(f"A translator needs a (1, H, W, C) input and a (1, H, W, 1 or 3) image output; this "
                               f"model has {shape} -> {out}.")
        self.size = tuple(int(d) for d in shape[1:])
        if self.metadata.get("input", {}).get("normalization") is None:
            log.warning("the model carries no edgecnn metadata: assuming a generator with inputs and outputs in "
                        "[-1, 1] (tanh), as Pix2Pix and CycleGAN use")
            self.scale, self.offset = 2 / 255, -1.0
        else:
            self.scale, self.offset = _normalization(self.metadata)
        outputs = self.metadata.get("outputs") or [{}]
        self.low, self.high = (float(v) for v in outputs[0].get("range", (-1.0, 1.0)))

    def __call__(self, image: np.ndarray) -> TranslationResult:
        import cv2

        start = time.perf_counter()
        rgb = as_rgb8(image)
        height, width, channels = self.size
        resized = resize(rgb, width, height)
        if channels == 1:
            resized = resized.mean(axis=2, keepdims=True)
        batch = (resized[None].astype(np.float32) * self.scale + self.offset).astype(np.float32)
        invoke_start = time.perf_counter()
        output = self.runner(batch)[0][0]
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        pixels = np.clip(np.round((output - self.low) / (self.high - self.low) * 255.0), 0, 255).astype(np.uint8)
        if pixels.shape[-1] == 1:
            pixels = np.repeat(pixels, 3, axis=-1)
        result = cv2.resize(pixels, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        return TranslationResult(result, invoke_ms, (time.perf_counter() - start) * 1000)


def draw_translation(image: np.ndarray, result: TranslationResult) -> np.ndarray:
    """The translated image itself (what `edgecnn predict` writes for a generator)."""
    return result.image
