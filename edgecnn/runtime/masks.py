"""Instance masks on the device (NumPy and the base cv2, no TensorFlow, no pycocotools): a
Mask R-CNN's low-resolution per-box mask pasted into the image, and COCO's run-length encoding
(RLE) of a full-size mask, in the compressed string form COCO result files and pycocotools use.
"""

from __future__ import annotations

import numpy as np

MASK_THRESHOLD = 0.5  # Mask R-CNN's binarization of the pasted per-pixel probabilities


def paste_mask(mask: np.ndarray, box, image_size: tuple[int, int], threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """A (m, m) probability mask predicted for ``box`` (x1 y1 x2 y2, continuous pixel edges, in
    the image) -> the (H, W) bool mask of the whole image: bilinear resampling of the mask over
    the box (mask cell i covers the box's i-th m-th), threshold, nothing outside the box."""
    import cv2

    height, width = image_size
    x1, y1, x2, y2 = (float(v) for v in box)
    out = np.zeros((height, width), bool)
    left, top = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
    right, bottom = min(int(np.ceil(x2)), width), min(int(np.ceil(y2)), height)
    if right <= left or bottom <= top:
        return out
    rows, cols = mask.shape
    sx, sy = max(x2 - x1, 1e-3) / cols, max(y2 - y1, 1e-3) / rows
    # output pixel centre u + .5 (window coordinates) <- mask cell centre (c + .5) * sx + x1 - left
    matrix = np.array([[sx, 0, (0.5 * sx + x1 - left) - 0.5], [0, sy, (0.5 * sy + y1 - top) - 0.5]], np.float32)
    window = cv2.warpAffine(np.asarray(mask, np.float32), matrix, (right - left, bottom - top), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    # inside the box only: the replicated border fills the part of a pixel row beyond the box edge
    us, vs = np.arange(left, right) + 0.5, np.arange(top, bottom) + 0.5
    inside = ((vs >= y1) & (vs < y2))[:, None] & ((us >= x1) & (us < x2))[None, :]
    out[top:bottom, left:right] = (window >= threshold) & inside
    return out


def run_lengths(mask: np.ndarray) -> list[int]:
    """COCO's run lengths of a (H, W) bool mask: column-major, alternating 0-runs and 1-runs,
    starting with a (possibly empty) run of 0s."""
    flat = np.asarray(mask, bool).ravel(order="F")
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(edges).tolist()
    return ([0] + counts) if flat[0] else counts


def encode_rle(mask: np.ndarray) -> dict:
    """{"size": [H, W], "counts": str}: COCO's compressed RLE (as pycocotools writes it: each
    count after the second as the difference to the one two before, in 5-bit groups with a
    continuation bit, offset into printable ASCII from '0')."""
    counts = run_lengths(mask)
    chars = []
    for index, count in enumerate(counts):
        value = count - counts[index - 2] if index > 2 else count
        more = True
        while more:
            group = value & 0x1F
            value >>= 5  # arithmetic shift: a negative difference ends in all-ones groups
            more = value != -1 if group & 0x10 else value != 0
            chars.append(chr((group | 0x20 if more else group) + 48))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": "".join(chars)}


def decode_rle(rle: dict) -> np.ndarray:
    """The (H, W) bool mask of a compressed (string) or uncompressed (list) COCO RLE."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = _string_counts(counts)
    if sum(counts) != height * width:
        raise ValueError(f"RLE counts cover {sum(counts)} pixels, not the {height}x{width} of its size")
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    return np.repeat(values, counts).reshape((height, width), order="F")


def _string_counts(text: str) -> list[int]:
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            group = ord(text[position]) - 48
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position += 1
            shift += 5
            if not more and group & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts
