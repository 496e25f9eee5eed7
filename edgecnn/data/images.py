"""Classification samples as NumPy arrays, for calibration, parity checks and evaluation.

Images are RGB, resized to the model's input, float32 in [0, 1] (edgecnn's input convention:
pixel / 255; the metadata records it). Needs only NumPy and OpenCV, plus scikit-learn for
builtin:digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.data.specs import DataSpec, parse_spec
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.images import IMAGE_SUFFIXES, read_image, to_model_input


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
        image = read_image(file)
        if image is None:
            continue  # unreadable files are skipped, not fatal
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
