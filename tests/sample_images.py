"""Pictures the runtime comparisons share (MediaPipe in Python, the browser page)."""

from __future__ import annotations

import cv2
import numpy as np


def photos(size: int) -> list[np.ndarray]:
    """scikit-learn's two embedded photos, centre-cropped square and resized to the model's input
    (both runtimes then get the same pixels: their resize methods differ, see the README)."""
    from sklearn.datasets import load_sample_image

    pictures = []
    for name in ("china.jpg", "flower.jpg"):
        image = load_sample_image(name)
        side = min(image.shape[:2])
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        pictures.append(cv2.resize(image[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA))
    return pictures


def shapes(size: int, count: int = 6) -> list[np.ndarray]:
    """``count`` builtin:shapes pictures of ``size`` pixels (seeded)."""
    from edgecnn.data.shapes import generate_sample

    rng = np.random.default_rng(123)
    return [generate_sample(rng, size).image for _ in range(count)]
