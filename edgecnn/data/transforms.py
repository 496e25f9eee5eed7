"""Geometry shared by training and the device runtime (NumPy and OpenCV only).

Every transform takes the image together with its boxes (x1, y1, x2, y2 in pixels) and,
optionally, its masks ((N, H, W) instance masks or an (H, W) class map), so that augmentation
keeps the labels consistent with the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD_VALUE = 114  # letterbox padding grey, as YOLO implementations use


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the model's input: ``model = original * scale + pad``."""

    scale: float
    pad_x: float
    pad_y: float

    def to_original(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Boxes in model-input pixels -> boxes in original-image pixels, clipped to the image."""
        shift = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        out = (np.asarray(boxes, np.float32).reshape(-1, 4) - shift) / np.float32(self.scale)
        return np.clip(out, 0, np.array([width, height, width, height], np.float32), out=out)


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


def transform_boxes(boxes: np.ndarray, scale: float, shift_x: float, shift_y: float) -> np.ndarray:
    out = np.asarray(boxes, np.float32).reshape(-1, 4) * scale
    out[:, [0, 2]] += shift_x
    out[:, [1, 3]] += shift_y
    return out


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    out = boxes.copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


def box_area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def hflip(image: np.ndarray, boxes: np.ndarray, masks: np.ndarray | None = None):
    width = image.shape[1]
    flipped = boxes.copy()
    flipped[:, 0], flipped[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return image[:, ::-1].copy(), flipped, None if masks is None else masks[..., ::-1].copy()


def scale_translate(image: np.ndarray, boxes: np.ndarray, masks: np.ndarray | None, scale: float,
                    shift_x: float, shift_y: float, min_visible: float = 0.3):
    """Zoom by ``scale`` about the top-left corner, then shift; the output keeps the input size.
    Boxes are moved and clipped like the pixels; boxes that keep less than ``min_visible`` of
    their area are dropped. Returns (image, boxes, masks, kept indices)."""
    import cv2

    height, width = image.shape[:2]
    matrix = np.array([[scale, 0, shift_x], [0, scale, shift_y]], np.float32)
    warped = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3)
    moved = transform_boxes(boxes, scale, shift_x, shift_y)
    clipped = clip_boxes(moved, width, height)
    area = box_area(moved)
    kept = np.nonzero((box_area(clipped) >= min_visible * np.maximum(area, 1e-6)) & (box_area(clipped) > 1))[0]
    warped_masks = None
    if masks is not None:
        def warp(mask):
            return cv2.warpAffine(mask.astype(np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)

        if masks.ndim == 2:  # a semantic class map
            warped_masks = warp(masks)
        elif len(kept):
            warped_masks = np.stack([warp(m) for m in masks[kept]]).astype(bool)
            # a clipped shape's tight box can shrink along the other axis too (a triangle cut at
            # its base): with instance masks at hand, the boxes are re-derived from them
            return warped, masks_to_boxes(warped_masks), warped_masks, kept
        else:
            warped_masks = np.zeros((0, height, width), bool)
    return warped, clipped[kept], warped_masks, kept


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Random brightness, contrast and saturation, each by up to ``strength`` (a fraction)."""
    out = image.astype(np.float32)
    out = out * rng.uniform(1 - strength, 1 + strength)  # brightness
    mean = out.mean()
    out = (out - mean) * rng.uniform(1 - strength, 1 + strength) + mean  # contrast
    if out.ndim == 3 and out.shape[2] == 3:
        gray = out.mean(axis=2, keepdims=True)
        out = (out - gray) * rng.uniform(1 - strength, 1 + strength) + gray  # saturation
    return np.clip(out, 0, 255).astype(np.uint8)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight (x1, y1, x2, y2) boxes of (N, H, W) masks (x2, y2 exclusive)."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for index, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        if len(xs):
            boxes[index] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return boxes
