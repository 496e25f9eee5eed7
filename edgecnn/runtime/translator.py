"""The image-translation pipeline (Pix2Pix, CycleGAN generators): any image -> translated
image at the image's size. A file whose metadata says its input is an edge drawing (an edges ->
photo generator, recipe ``data.edges``) gets the Canny edges of a photo drawn here, as training
drew them; a picture that already is a black-on-white drawing is fed as it is."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.edges import canny_edges, is_line_drawing
from edgecnn.runtime.images import as_rgb8, resize
from edgecnn.runtime.metadata import GENERATOR_NORMALIZATION, ModelMetadata
from edgecnn.runtime.model_input import model_and_metadata, normalization_of
from edgecnn.runtime.runner import Runner

EDGE_MODES = ("auto", "draw", "given")


@dataclass
class TranslationResult:
    image: np.ndarray  # (H, W, 3) uint8 at the original image's size
    invoke_ms: float
    pipeline_ms: float
    edges: np.ndarray | None = None  # (h, w, C) uint8 at the model's size: the edges drawn from the picture

    def to_json(self) -> dict:  # the image goes to a PNG, not into the JSON lines
        return {"invoke_ms": self.invoke_ms, "pipeline_ms": self.pipeline_ms, "image_size": list(self.image.shape),
                "drew_edges": self.edges is not None}


class Translator:
    """Image (any size) -> translated image at the original size (Pix2Pix, CycleGAN). The
    input is resized (not letterboxed) to the model's size, as generators are trained, and
    normalized as the metadata says ([-1, 1] for edgecnn's generators); the output's value
    range (tanh: [-1, 1]) is mapped to 0..255 and resized back.

    ``edges`` (files whose input is an edge drawing, ``takes_edges``): "auto" draws the edges of
    a photo and feeds a black-on-white drawing as it is; "draw" always draws them; "given" never
    does (the caller passes edge drawings). Files that take pictures ignore it."""

    def __init__(self, model: str | os.PathLike | bytes | None, accelerator: str = "auto", threads: int | None = None,
                 runner: Runner | None = None, metadata: ModelMetadata | None = None, edges: str = "auto") -> None:
        if edges not in EDGE_MODES:
            raise EdgeCNNError(f"Unknown edges mode '{edges}'.", f"Choose one of: {', '.join(EDGE_MODES)}.")
        data, self.metadata = model_and_metadata(model, metadata, runner, "generation")
        self.takes_edges = self.metadata is not None and self.metadata.input.content == "edges"
        self.edges = edges
        self.runner = runner or Runner(data, accelerator, threads)
        shape, out = self.runner.inputs[0].shape, self.runner.outputs[0].shape
        if len(shape) != 4 or len(out) != 4 or out[-1] not in (1, 3):
            raise EdgeCNNError(f"A translator needs a (1, H, W, C) input and a (1, H, W, 1 or 3) image output; this "
                               f"model has {shape} -> {out}.")
        self.size = tuple(int(d) for d in shape[1:])
        normalization = normalization_of(self.metadata, GENERATOR_NORMALIZATION,
                                         "a generator with inputs and outputs in [-1, 1] (tanh), as Pix2Pix and "
                                         "CycleGAN use")
        self.scale, self.offset = normalization.scale, normalization.offset
        outputs = self.metadata.outputs if self.metadata else ()
        self.low, self.high = outputs[0].range if outputs and outputs[0].range else (-1.0, 1.0)

    def __call__(self, image: np.ndarray) -> TranslationResult:
        import cv2

        start = time.perf_counter()
        rgb = as_rgb8(image)
        height, width, channels = self.size
        resized = resize(rgb, width, height)
        if channels == 1:
            resized = resized.mean(axis=2, keepdims=True)
        drawn = None
        if self.takes_edges and self.edges != "given" and (self.edges == "draw" or not is_line_drawing(resized)):
            # at the model's size and channel count, as the training pairs were made
            resized = drawn = canny_edges(resized.astype(np.uint8))
        batch = (resized[None].astype(np.float32) * self.scale + self.offset).astype(np.float32)
        invoke_start = time.perf_counter()
        output = self.runner(batch)[0][0]
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        pixels = np.clip(np.round((output - self.low) / (self.high - self.low) * 255.0), 0, 255).astype(np.uint8)
        if pixels.shape[-1] == 1:
            pixels = np.repeat(pixels, 3, axis=-1)
        result = cv2.resize(pixels, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        return TranslationResult(result, invoke_ms, (time.perf_counter() - start) * 1000, drawn)
