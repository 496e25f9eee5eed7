"""Classification samples as NumPy arrays, for calibration, parity checks and evaluation.

Images are RGB, resized to the model's input, float32 in [0, 1] (edgecnn's input convention:
pixel / 255; the metadata records it). Needs only NumPy and OpenCV, plus scikit-learn for
builtin:digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.data.specs import DataSpec, parse_spec
from edgecnn.data.transforms import resize
from edgecnn.errors import EdgeCNNError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def to_model_input(image: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """uint8/uint16 gray, RGB or RGBA image -> float32 (H, W, C) in [0, 1] at the model's size."""
    return to_model_pixels(image, size).astype(np.float32) / 255.0


def to_model_pixels(image: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """uint8/uint16 gray, RGB or RGBA image -> uint8 (H, W, C) at the model's size and channels
    (RGB, or gray by luminance)."""
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


def _digits(size, limit, split):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(images))  # fixed split: 80% train, 20% val
    cut = int(0.8 * len(order))
    chosen = order[:cut] if split == "train" else order[cut:]
    chosen = chosen[:limit] if limit else chosen
    x = np.stack([to_model_input(images[i], size) for i in chosen])
    return x, labels[chosen], [str(d) for d in range(10)]


def _folder(path: Path, size, limit, split):
    import cv2

    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    if not classes:
        raise EdgeCNNError(f"'{path}' has no class subfolders.", "Lay it out as DIR/<class>/<image files>.")
    files = [(f, index) for index, name in enumerate(classes) for f in sorted((path / name).iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES]
    order = np.random.default_rng(0).permutation(len(files))  # fixed split: 80% train, 20% val
    cut = int(0.8 * len(order)) if len(order) >= 5 else len(order)
    chosen = order[:cut] if split == "train" else (order[cut:] if cut < len(order) else order)
    files = [files[i] for i in chosen][: limit or None]
    images, labels = [], []
    for file, label in files:
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if image is None:
            continue  # unreadable files are skipped, not fatal
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        images.append(to_model_input(image, size))
        labels.append(label)
    if not images:
        raise EdgeCNNError(f"No readable images under '{path}'.", f"Supported: {', '.join(sorted(IMAGE_SUFFIXES))}.")
    return np.stack(images), np.array(labels), classes


def load_classification_samples(
    spec: str | DataSpec, size: tuple[int, int, int], limit: int | None = None, split: str = "val"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images (N, H, W, C) float32 in [0, 1], labels (N,), class names)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.kind == "builtin" and spec.location == "digits":
        return _digits(size, limit, split)
    if spec.kind == "folder":
        return _folder(Path(spec.location), size, limit, split)
    raise EdgeCNNError(
        f"'{spec}' does not provide classification images.",
        "Use builtin:digits or folder:DIR (one subfolder per class).",
    )
