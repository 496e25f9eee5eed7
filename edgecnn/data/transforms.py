"""Training augmentations (NumPy and OpenCV only). The geometry the device shares (resize,
letterbox) lives in ``edgecnn.runtime.images``.

Every transform takes the image together with its boxes (x1, y1, x2, y2 in pixels) and,
optionally, its masks ((N, H, W) instance masks or an (H, W) class map), so that augmentation
keeps the labels consistent with the pixels.
"""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.images import PAD_VALUE


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
                    shift_x: float, shift_y: float, min_visible: float = 0.3, size: tuple[int, int] | None = None):
    """Zoom by ``scale`` about the top-left corner, then shift; the output keeps the input size,
    or is ``size`` (width, height). Boxes are moved and clipped like the pixels; boxes that keep
    less than ``min_visible`` of their area are dropped. Returns (image, boxes, masks, kept indices)."""
    import cv2

    width, height = size or (image.shape[1], image.shape[0])
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


def mosaic(tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]], rng: np.random.Generator, scale: float,
           min_visible: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YOLOv4's mosaic: four (image, boxes, classes) samples of one size S x S laid out 2 x 2, and
    an S x S view of that canvas centred at a random point of its middle half, zoomed by a
    factor in [1 - scale, 1 + scale]; so the four images meet at a random point of the output,
    each contributing a part. Boxes keeping less than ``min_visible`` of their area are dropped.
    Returns (image, boxes, classes)."""

    height, width = tiles[0][0].shape[:2]
    canvas = np.concatenate([np.concatenate([tiles[0][0], tiles[1][0]], axis=1),
                             np.concatenate([tiles[2][0], tiles[3][0]], axis=1)], axis=0)
    offsets = ((0, 0), (width, 0), (0, height), (width, height))
    boxes = np.concatenate([transform_boxes(b, 1.0, dx, dy) for (_, b, _), (dx, dy) in zip(tiles, offsets)])
    classes = np.concatenate([np.asarray(c) for _, _, c in tiles]).astype(np.int64)
    zoom = rng.uniform(1 - scale, 1 + scale) if scale else 1.0
    centre_x, centre_y = rng.uniform(0.5, 1.5) * width, rng.uniform(0.5, 1.5) * height
    image, kept_boxes, _, kept = scale_translate(canvas, boxes, None, zoom, width / 2 - zoom * centre_x,
                                                 height / 2 - zoom * centre_y, min_visible, size=(width, height))
    return image, kept_boxes, classes[kept]
