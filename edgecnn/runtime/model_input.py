"""Writing a frame into a model's input tensor: letterboxed (detectors, segmenters) or stretched
(classifiers), normalized as the file's metadata says, straight into the interpreter's own
tensor; an 8-bit quantized input through a byte table instead of float arithmetic."""

from __future__ import annotations

import logging

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.engine import read_model_bytes
from edgecnn.runtime.images import Letterbox, byte_shift, letterbox, letterbox_mapped, letterbox_normalized, \
    to_model_pixels
from edgecnn.runtime.metadata import ModelMetadata, Normalization, read_metadata, require_task
from edgecnn.runtime.runner import Runner

log = logging.getLogger("edgecnn.runtime")


def model_and_metadata(model, metadata: ModelMetadata | None, runner, task: str
                       ) -> tuple[bytes | None, ModelMetadata | None]:
    """What a pipeline is built on: a file (path or bytes) and the metadata it carries; or, with
    no file, a ``runner`` (any backend with the Runner's interface: inputs, outputs, write_input,
    invoke, a call on arrays; e.g. a Keras model on the workstation) and the ``metadata`` that
    describes it, as conversion would write it. A file or metadata of another task is refused."""
    if model is not None:
        data = read_model_bytes(model)
        metadata = read_metadata(data)
    elif runner is None or metadata is None:
        raise EdgeCNNError("A pipeline needs a model file (path or bytes), or a runner with the metadata that "
                           "describes it.", "Pass the .tflite file, e.g. edgecnn.runtime.open('model.tflite').")
    else:
        data = None
    require_task(metadata, task)
    return data, metadata


def normalization_of(metadata: ModelMetadata | None, default: Normalization = Normalization(),
                     assumed: str = "RGB input scaled to [0, 1]") -> Normalization:
    """The file's input normalization; for a file without edgecnn metadata, ``default``, said in
    the log."""
    if metadata is None:
        log.warning("the model carries no edgecnn metadata: assuming %s", assumed)
        return default
    return metadata.normalization


def _letterbox_into_input(rgb: np.ndarray, scale: float, offset: float, table: np.ndarray | None,
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


def _pixels_into_input(pixels: np.ndarray, scale: float, offset: float, table: np.ndarray | None, shift: int | None,
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


class FrameWriter:
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
                lambda target: _pixels_into_input(pixels, self.scale, self.offset, self.table, self.shift, target),
                raw=self.table is not None)
        return self.runner.write_input(
            lambda target: _letterbox_into_input(image, self.scale, self.offset, self.table, self.shift, target),
            raw=self.table is not None)
