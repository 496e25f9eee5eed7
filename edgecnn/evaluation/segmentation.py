"""mIoU and pixel accuracy of a segmenter, Keras model or .tflite file (through the runtime Segmenter)."""

from __future__ import annotations

import numpy as np

from edgecnn.evaluation.metrics import segmentation_metrics
from edgecnn.runtime.tasks import open as open_pipeline


def evaluate_keras_segmenter(model, spec, split: str = "val", limit: int | None = None) -> dict:
    from edgecnn.data.segmentation import load_segmentation_samples

    size = tuple(int(d) for d in model.input_shape[1:])
    dataset = load_segmentation_samples(spec, size, split, limit)
    logits = np.asarray(model.predict(dataset.images, batch_size=16, verbose=0))
    return segmentation_metrics(logits.argmax(axis=-1), dataset.masks, int(logits.shape[-1]))

def evaluate_tflite_segmenter(model_bytes: bytes, spec, split: str = "val", limit: int | None = None,
                              accelerator: str = "cpu", threads: int | None = None) -> dict:
    """Through the runtime Segmenter on the letterboxed inputs (class maps at input size)."""
    from edgecnn.data.segmentation import load_segmentation_samples

    segmenter = open_pipeline(model_bytes, accelerator, threads, task="segmentation")
    dataset = load_segmentation_samples(spec, segmenter.size, split, limit)
    predicted = np.stack([segmenter.class_map(image) for image in dataset.images])
    metrics = segmentation_metrics(predicted, dataset.masks, segmenter.num_classes)
    return {**metrics, "backend": segmenter.runner.backend, "accelerator": segmenter.runner.accelerator,
            "fully_accelerated": segmenter.runner.fully_accelerated}
