"""What every task's evaluation feeds its model: the data of a spec and split, letterboxed
batches as the runtime prepares them, and a progress bar for long runs."""

from __future__ import annotations

import logging

import numpy as np

from edgecnn.data.detection import DetectionSet
from edgecnn.runtime.images import letterbox

log = logging.getLogger("edgecnn.evaluation")


def with_progress(iterable, enabled: bool, description: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=description, unit="batch", leave=False)

def letterboxed(samples, input_size: tuple[int, int, int]) -> tuple[np.ndarray, list]:
    """The samples' images letterboxed to the model input, float32 in [0, 1], and their fits."""
    return letterboxed_images([sample.image for sample in samples], input_size)

def letterboxed_images(pictures, input_size: tuple[int, int, int]) -> tuple[np.ndarray, list]:
    """RGB uint8 pictures letterboxed to the model input, float32 in [0, 1], and their fits."""
    height, width, channels = input_size
    images, fits = [], []
    for picture in pictures:
        image, fit = letterbox(picture, height, width)
        if channels == 1:
            image = image.mean(axis=2, keepdims=True)
        images.append(image.astype(np.float32) / 255.0)
        fits.append(fit)
    return np.stack(images), fits

def classification_data(spec, size, split: str, limit: int | None):
    from edgecnn.data.images import load_classification_samples

    return load_classification_samples(spec, size, limit, split)

def detection_set(spec, split: str, limit: int | None, with_masks: bool = False) -> DetectionSet:
    from edgecnn.data.detection import load_detection_samples

    dataset = load_detection_samples(spec, split, limit, with_masks)
    log.info(f"evaluating on {len(dataset.samples)} images")
    return dataset
