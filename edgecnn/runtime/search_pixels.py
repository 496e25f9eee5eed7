"""The pixel operations of selective search and R-CNN's region warp, written here rather than
taken from OpenCV so that another runtime repeats them bit for bit (the browser page's
deploy/web/edgecnn/proposals.js gives the same proposals and crops as this module).

Only IEEE-754 double +, -, *, / and sqrt, in a fixed order, reach a value that decides a
proposal. Where a transcendental function is needed (Lab's gamma and cube root, the Gaussian's
exp) its result is rounded (to a byte, to float32), so a last-bit difference between two maths
libraries does not change it. Rounding is floor(x + 0.5) everywhere; borders reflect without
repeating the edge (OpenCV's BORDER_REFLECT_101).
"""

from __future__ import annotations

import math

import numpy as np

LAB_WHITE = (0.950456, 1.0, 1.088754)  # D65, as OpenCV's Lab conversion
RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
ORIENTATIONS = 8  # gradient orientation octants


def round_half_up(values: np.ndarray) -> np.ndarray:
    return np.floor(values + 0.5)


def to_bytes(values: np.ndarray) -> np.ndarray:
    return np.clip(round_half_up(values), 0, 255).astype(np.uint8)


def area_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, C) uint8 shrunk to ``width`` x ``height`` by area averaging (each output pixel the
    mean of the input area it covers, fractional pixels weighted), columns first."""
    rows = _area_pass(image.astype(np.float64), width, axis=1)
    return to_bytes(_area_pass(rows, height, axis=0))


def _area_pass(values: np.ndarray, target: int, axis: int) -> np.ndarray:
    source = values.shape[axis]
    ratio = source / target
    starts = np.arange(target) * ratio
    ends = np.minimum((np.arange(target) + 1) * ratio, source)
    first = np.floor(starts).astype(np.int64)
    taps = int((np.ceil(ends).astype(np.int64) - first).max())
    total = np.zeros(values.shape[:axis] + (target,) + values.shape[axis + 1:], np.float64)
    shape = [1] * values.ndim
    shape[axis] = target
    for tap in range(taps):
        index = first + tap
        weight = np.maximum(np.minimum(ends, index + 1) - np.maximum(starts, index), 0.0) / ratio
        taken = np.take(values, np.minimum(index, source - 1), axis=axis)
        total = total + weight.reshape(shape) * taken
    return total


def to_hsv(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> uint8 hue 0..179 (degrees / 2), saturation, value 0..255."""
    r, g, b = (rgb[..., c].astype(np.int64) for c in range(3))
    value = np.maximum(np.maximum(r, g), b)
    spread = value - np.minimum(np.minimum(r, g), b)
    divisor = np.maximum(spread, 1)
    hue = np.where(value == r, 60 * (g - b) / divisor,
                   np.where(value == g, 120 + 60 * (b - r) / divisor, 240 + 60 * (r - g) / divisor))
    hue = np.where(spread == 0, 0.0, hue)
    hue = np.where(hue < 0, hue + 360, hue)
    saturation = np.where(value > 0, 255 * spread / np.maximum(value, 1), 0.0)
    hue_bytes = round_half_up(hue / 2) % 180
    return np.stack([hue_bytes, round_half_up(saturation), value], axis=-1).astype(np.uint8)


def srgb_to_linear() -> np.ndarray:
    """(256,) the linear intensity of each sRGB byte."""
    values = np.arange(256) / 255
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 sRGB -> uint8 CIE Lab as OpenCV stores it: L * 255 / 100, a + 128, b + 128."""
    linear = srgb_to_linear()[rgb]
    r, g, b = linear[..., 0], linear[..., 1], linear[..., 2]
    xyz = [(m[0] * r + m[1] * g + m[2] * b) / white for m, white in zip(RGB_TO_XYZ, LAB_WHITE)]
    fx, fy, fz = (np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116) for t in xyz)
    lightness = np.where(xyz[1] > 0.008856, 116 * fy - 16, 903.3 * xyz[1])
    return np.stack([to_bytes(lightness * 255 / 100), to_bytes(500 * (fx - fy) + 128),
                     to_bytes(200 * (fy - fz) + 128)], axis=-1)


def reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    """Indices beyond 0..size-1 mirrored about the edge pixels (which are not repeated)."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.abs(index) % period
    return np.where(index >= size, period - index, index)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """(2r + 1,) weights, r = ceil(3 sigma), summing to 1; exp's results rounded to float32."""
    radius = math.ceil(3 * sigma)
    raw = np.exp(-(np.arange(-radius, radius + 1, dtype=np.float64) ** 2) / (2 * sigma * sigma))
    raw = raw.astype(np.float32).astype(np.float64)
    total = 0.0
    for value in raw.tolist():  # in order: Python's sum() compensates, another runtime would not
        total += value
    return raw / total


def _convolve(values: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """``values`` (H, W, C) correlated with ``kernel`` along ``axis``, taps added in order."""
    size, radius = values.shape[axis], len(kernel) // 2
    positions = np.arange(size)
    total = np.zeros_like(values, dtype=np.float64)
    for tap, weight in enumerate(kernel.tolist()):
        total = total + weight * np.take(values, reflect_index(positions + tap - radius, size), axis=axis)
    return total


def gaussian_blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W, C) float64 blurred along the rows, then the columns."""
    kernel = gaussian_kernel(sigma)
    return _convolve(_convolve(values.astype(np.float64), kernel, axis=1), kernel, axis=0)


def sobel(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) -> the 3x3 Sobel derivatives along x and y: difference across, [1, 2, 1] along."""
    height, width = values.shape[:2]
    cols, rows = np.arange(width), np.arange(height)
    left, right = (np.take(values, reflect_index(cols + d, width), axis=1) for d in (-1, 1))
    across, along = right - left, left + 2 * values + right

    def vertical(part: np.ndarray, offset: int) -> np.ndarray:
        return np.take(part, reflect_index(rows + offset, height), axis=0)

    gx = vertical(across, -1) + 2 * across + vertical(across, 1)
    gy = vertical(along, 1) - vertical(along, -1)
    return gx, gy


def octant(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """The 45-degree sector 0..7 of each gradient's angle, counted from -180 degrees, found by
    comparisons (an arctangent would round differently in another runtime)."""
    ax, ay = np.abs(gx), np.abs(gy)
    upper = np.where(gx > 0, np.where(gy < gx, 4, 5), np.where(gy > -gx, 6, 7))
    lower = np.where(gx < 0, np.where(ay < ax, 0, 1), np.where(ay > gx, 2, 3))
    return np.where(gy >= 0, upper, lower)


def texture_values(colour: np.ndarray) -> np.ndarray:
    """(H, W, C * ORIENTATIONS) gradient magnitudes of the blurred (sigma 1) image, each in the
    slot of its orientation octant, scaled so the largest is 1."""
    gx, gy = sobel(gaussian_blur(colour, 1.0))
    magnitude = np.sqrt(gx * gx + gy * gy)
    result = np.zeros((*magnitude.shape, ORIENTATIONS), np.float64)
    np.put_along_axis(result, octant(gx, gy)[..., None], magnitude[..., None], axis=-1)
    result = result.reshape(*colour.shape[:2], -1)
    return result / max(float(result.max()), 1e-6)


def warp_region(image: np.ndarray, box, size: tuple[int, int], context: float, fill: int = 114) -> np.ndarray:
    """R-CNN's region warp: ``box`` (x1 y1 x2 y2 in ``image`` pixels) grown so that ``context``
    of the output on each side is surrounding image, then stretched to ``size`` (height, width)
    by bilinear sampling; outside the image is ``fill`` grey."""
    height, width = size
    x1, y1, x2, y2 = (float(v) for v in box)
    grow = 1.0 / max(1.0 - 2.0 * context, 1e-3)
    box_w, box_h = max(x2 - x1, 1.0) * grow, max(y2 - y1, 1.0) * grow
    left, top = (x1 + x2 - box_w) / 2, (y1 + y2 - box_h) / 2
    # pixel centres: output u + 0.5 lies at image x + 0.5 = left + (u + 0.5) * box_w / width
    xs = left + (np.arange(width) + 0.5) * (box_w / width) - 0.5
    ys = top + (np.arange(height) + 0.5) * (box_h / height) - 0.5
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = (xs - x0)[None, :, None], (ys - y0)[:, None, None]
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), constant_values=fill).astype(np.float64)
    # taps beyond the image read the fill border (index 0 or the last of the padded image)
    cols = [np.clip(x0 + d + 1, 0, image.shape[1] + 1).astype(np.int64) for d in (0, 1)]
    rows = [np.clip(y0 + d + 1, 0, image.shape[0] + 1).astype(np.int64) for d in (0, 1)]
    top_row = padded[rows[0][:, None], cols[0][None, :]] * (1 - fx) + padded[rows[0][:, None], cols[1][None, :]] * fx
    bottom = padded[rows[1][:, None], cols[0][None, :]] * (1 - fx) + padded[rows[1][:, None], cols[1][None, :]] * fx
    return to_bytes(top_row * (1 - fy) + bottom * fy)
