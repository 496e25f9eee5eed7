"""The device's image code (NumPy and OpenCV only): reading files, 8-bit RGB conversion, the one
resize that training, evaluation and every pipeline share, letterboxing (into float or
quantized model inputs) and stretching to a model's input.

The workstation's ``edgecnn.data`` imports these, never the reverse, so training and the device
prepare pixels the same way by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def read_image(path: str | Path) -> np.ndarray | None:
    """An image file as stored (gray, RGB or RGBA; 8 or 16 bit), colour channels in RGB order;
    None when it cannot be decoded. Read through NumPy so that non-ASCII paths work too."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        return None
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    if image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def read_rgb8(path: str | Path) -> np.ndarray | None:
    """An image file as (H, W, 3) uint8 RGB (see ``as_rgb8``); None when it cannot be decoded."""
    image = read_image(path)
    return None if image is None else as_rgb8(image)


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """Gray, RGB or RGBA, 8 or 16 bit -> (H, W, 3) uint8 RGB (16 bit: value / 257, alpha dropped)."""
    if image.dtype == np.uint16:
        image = (image / 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def to_model_input(image: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """uint8/uint16 gray, RGB or RGBA image -> float32 (H, W, C) in [0, 1] at the model's size."""
    return to_model_pixels(image, size).astype(np.float32) / 255.0


def to_model_pixels(image: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """uint8/uint16 gray, RGB or RGBA image -> uint8 (H, W, C) at the model's size and channels
    (RGB, or gray by luminance), stretched (aspect not kept), as classifiers are trained."""
    import cv2

    height, width, channels = size
    if image.dtype == np.uint16:
        image = (image / 257.0).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if channels == 3 and image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    resized = resize(image, width, height)
    return resized[:, :, None] if resized.ndim == 2 else resized


PAD_VALUE = 114  # letterbox padding grey, as YOLO implementations use


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the model's input: ``model = original * scale + pad``."""

    scale: float
    pad_x: float
    pad_y: float

    def to_original(self, boxes: np.ndarray, width: int | None = None, height: int | None = None) -> np.ndarray:
        """Boxes in model-input pixels -> boxes in original-image pixels, clipped to the image
        of ``width`` x ``height`` (unclipped without them: a box that keeps its geometry)."""
        shift = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        out = (np.asarray(boxes, np.float32).reshape(-1, 4) - shift) / np.float32(self.scale)
        if width is None or height is None:
            return out
        return np.clip(out, 0, np.array([width, height, width, height], np.float32), out=out)

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes in original-image pixels -> boxes in model-input pixels."""
        shift = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        return np.asarray(boxes, np.float32).reshape(-1, 4) * np.float32(self.scale) + shift


def resize(image: np.ndarray, width: int, height: int, out: np.ndarray | None = None) -> np.ndarray:
    """``image`` at ``width`` x ``height``, shrunk with area averaging, enlarged bilinearly;
    written into ``out`` (a view of the same dtype, e.g. the model's input tensor) when given.

    OpenCV's INTER_AREA is fast only for an exact halving (SIMD 2x2 mean); at other ratios it
    costs 1.6 ms for 640x480 -> 224x224 and 8.5 ms from 1080p here, more than a small model's
    invoke. So: exact 2x area halvings while the image stays at least the target size, then one
    bilinear step for the rest (less than 2x; INTER_AREA when odd sizes stopped the halving early).
    The same pixels as INTER_AREA for a halving (within one level, rounded once per halving, at
    4x, 8x ...); elsewhere 30-54 dB PSNR against it on scikit-learn's sample photos, and 3.7-15x
    faster from 640x480, 1280x720 and 1080p frames (benchmarks/resize.py)."""
    import cv2

    source_h, source_w = image.shape[:2]
    # the last step (a halving or not) is left to the final resize, which can write into ``out``
    while (source_w % 2 == 0 and source_h % 2 == 0 and source_w // 2 >= width and source_h // 2 >= height
           and (source_w // 2, source_h // 2) != (width, height)):
        source_w, source_h = source_w // 2, source_h // 2
        image = cv2.resize(image, (source_w, source_h), interpolation=cv2.INTER_AREA)
    if (source_w, source_h) == (width, height):
        if out is None:
            return image
        np.copyto(out, image)
        return out
    shrink = min(source_w / width, source_h / height)
    resized = cv2.resize(image, (width, height), dst=out,
                         interpolation=cv2.INTER_AREA if shrink >= 2 else cv2.INTER_LINEAR)
    if out is not None and resized is not out:  # an OpenCV that would not write into this view
        np.copyto(out, resized)
        return out
    return resized


def _fit(source_h: int, source_w: int, height: int, width: int) -> tuple[int, int, Letterbox]:
    """Where an image goes when fitted into ``height`` x ``width`` with its aspect ratio: its
    new width and height and the letterbox."""
    scale = min(height / source_h, width / source_w)
    new_w, new_h = max(1, round(source_w * scale)), max(1, round(source_h * scale))
    return new_w, new_h, Letterbox(scale, float((width - new_w) // 2), float((height - new_h) // 2))


def _fitted(image: np.ndarray, height: int, width: int, interpolation: int | None):
    """The image resized to fit ``height`` x ``width`` with its aspect ratio, and where it goes."""
    import cv2

    new_w, new_h, fit = _fit(*image.shape[:2], height, width)
    if (new_w, new_h) == image.shape[1::-1]:
        resized = image
    elif interpolation is None:
        resized = resize(image, new_w, new_h)
    else:
        resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return resized, fit


def _padded_region(out: np.ndarray, new_w: int, new_h: int, fit: Letterbox, fill) -> np.ndarray:
    """Fill the padding of ``out`` (H, W, ...) around the centred ``new_h`` x ``new_w`` image
    with ``fill`` and return the view the image belongs in (not yet written)."""
    top, left = int(fit.pad_y), int(fit.pad_x)
    bottom, right = top + new_h, left + new_w
    out[:top] = fill
    out[bottom:] = fill
    out[top:bottom, :left] = fill
    out[top:bottom, right:] = fill
    return out[top:bottom, left:right]


def _letterbox_into(image: np.ndarray, out: np.ndarray, fill, interpolation: int | None = None):
    """Resize ``image`` to fit ``out`` (H, W, ...), fill the padding of ``out`` with ``fill`` and
    return the resized image, the view of ``out`` it belongs in (not yet written) and the fit."""
    resized, fit = _fitted(image, *out.shape[:2], interpolation)
    return resized, _padded_region(out, resized.shape[1], resized.shape[0], fit, fill), fit


def letterbox(image: np.ndarray, height: int, width: int, pad_value: int = PAD_VALUE,
              interpolation: int | None = None) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad (centred) to ``height`` x ``width``."""
    canvas = np.empty((height, width, *image.shape[2:]), image.dtype)
    resized, region, fit = _letterbox_into(image, canvas, pad_value, interpolation)
    region[...] = resized
    return canvas, fit


def letterbox_normalized(image: np.ndarray, out: np.ndarray, scale: float, offset: float,
                         pad_value: int = PAD_VALUE) -> Letterbox:
    """``letterbox`` written straight into the float (H, W, C) buffer ``out`` as
    ``pixel * scale + offset`` (same pixels as letterboxing and then normalizing). The runtime's
    per-frame path: one resize and one pass over the pixels, no padded uint8 canvas and no float
    copies."""
    resized, region, fit = _letterbox_into(image, out, np.float32(pad_value * scale + offset))
    np.copyto(region, resized)  # a plain cast, then an in-place float multiply: faster than one mixed-type ufunc
    region *= np.float32(scale)
    if offset:
        region += np.float32(offset)
    return fit


def byte_shift(table: np.ndarray) -> int | None:
    """``c`` when the byte table is ``pixel + c`` (mod 256), else None. The common int8 input
    (range [0, 1], scale 1/255, zero point -128) is exactly ``pixel - 128``: an 8-bit add, about
    eight times faster than a table look-up."""
    shift = int(table[0])
    return shift if np.array_equal(table, ((np.arange(256) + shift) % 256).astype(np.uint8)) else None


def letterbox_mapped(image: np.ndarray, out: np.ndarray, table: np.ndarray, shift: int | None = None,
                     pad_value: int = PAD_VALUE) -> Letterbox:
    """``letterbox`` written into the uint8 (H, W, C) buffer ``out`` through a 256-entry byte
    table (pixel -> stored value, e.g. a quantized input's): one resize and one table look-up
    (or, with ``shift`` from ``byte_shift``, one 8-bit add), a quarter of a float input's bytes."""
    import cv2

    new_w, new_h, fit = _fit(*image.shape[:2], *out.shape[:2])
    region = _padded_region(out, new_w, new_h, fit, table[pad_value])
    # resized straight into the tensor, then mapped in place: no frame-sized temporary
    resize(image, new_w, new_h, out=region)
    if shift is None:
        mapped = cv2.LUT(region, table, dst=region)
        if mapped is not region:  # an OpenCV that would not write into this view
            region[...] = mapped
    else:
        np.add(region, np.uint8(shift), out=region)  # wraps modulo 256, as the table does
    return fit
