"""The image-translation pipeline (Pix2Pix, CycleGAN generators): any image -> translated
image at the image's size."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.engine import read_model_bytes
from edgecnn.runtime.images import as_rgb8, resize
from edgecnn.runtime.metadata import GENERATOR_NORMALIZATION, read_metadata, require_task
from edgecnn.runtime.model_input import normalization_of
from edgecnn.runtime.runner import Runner


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
        self.metadata = read_metadata(data)
        require_task(self.metadata, "generation")
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
        batch = (resized[None].astype(np.float32) * self.scale + self.offset).astype(np.float32)
        invoke_start = time.perf_counter()
        output = self.runner(batch)[0][0]
        invoke_ms = (time.perf_counter() - invoke_start) * 1000
        pixels = np.clip(np.round((output - self.low) / (self.high - self.low) * 255.0), 0, 255).astype(np.uint8)
        if pixels.shape[-1] == 1:
            pixels = np.repeat(pixels, 3, axis=-1)
        result = cv2.resize(pixels, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        return TranslationResult(result, invoke_ms, (time.perf_counter() - start) * 1000)
