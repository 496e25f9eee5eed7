"""Top-1 of any classifier pipeline (a .tflite file, or a Keras model behind ``keras_backend``):
each image through the pipeline's own resizing, normalization and backend."""

from __future__ import annotations

import numpy as np

from edgecnn.evaluation.inputs import as_pixels, classification_data
from edgecnn.runtime.classifier import Classifier


def evaluate_classifier(classifier: Classifier, spec, split: str = "val", limit: int | None = None) -> dict:
    """{top1, images} on the spec's ``split``."""
    images, labels, _ = classification_data(spec, classifier.size, split, limit)
    return {"top1": top1(classifier, images, labels), "images": len(labels)}


def top1(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``images`` (N, H, W, C) in [0, 1] whose best class is their label."""
    return float(np.mean([classifier(picture).top_k[0].index == label
                          for picture, label in zip(as_pixels(images), labels)]))
