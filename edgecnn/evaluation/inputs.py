"""What every task's evaluation shares: the data of a spec and split as the pictures a pipeline
takes, what ran the model, and a progress bar for long runs."""

from __future__ import annotations

import logging

import numpy as np

from edgecnn.data.detection import DetectionSet

log = logging.getLogger("edgecnn.evaluation")


def with_progress(iterable, enabled: bool, description: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=description, unit="batch", leave=False)

def backend_of(pipeline) -> dict:
    """What ran a pipeline's model: {backend, accelerator, fully_accelerated}."""
    runner = pipeline.runner
    return {"backend": runner.backend, "accelerator": runner.accelerator, "fully_accelerated": runner.fully_accelerated}


def as_pixels(unit_images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] (what the data loaders give) as the 8-bit pictures a pipeline takes."""
    return np.clip(np.round(np.asarray(unit_images) * 255.0), 0, 255).astype(np.uint8)


def classification_data(spec, size, split: str, limit: int | None):
    from edgecnn.data.images import load_classification_samples

    return load_classification_samples(spec, size, limit, split)

def detection_set(spec, split: str, limit: int | None, with_masks: bool = False) -> DetectionSet:
    from edgecnn.data.detection import load_detection_samples

    dataset = load_detection_samples(spec, split, limit, with_masks)
    log.info(f"evaluating on {len(dataset.samples)} images")
    return dataset
