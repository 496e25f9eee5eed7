"""Top-1 of a classifier, Keras model or .tflite file."""

from __future__ import annotations

import numpy as np

from edgecnn.evaluation.inputs import classification_data
from edgecnn.runtime.tasks import open as open_pipeline


def evaluate_keras_classifier(model, spec, split: str = "val", limit: int | None = None) -> dict:
    size = tuple(int(d) for d in model.input_shape[1:])
    images, labels, _ = classification_data(spec, size, split, limit)
    logits = np.asarray(model.predict(images, batch_size=32, verbose=0))
    return {"top1": float(np.mean(logits.argmax(axis=1) == labels)), "images": len(labels)}

def evaluate_tflite_classifier(model_bytes: bytes, spec, split: str = "val", limit: int | None = None,
                               accelerator: str = "cpu", threads: int | None = None) -> dict:
    classifier = open_pipeline(model_bytes, accelerator, threads, task="classification", top_k=1)
    images, labels, _ = classification_data(spec, classifier.size, split, limit)
    scale = 255.0 * classifier.scale
    hits = [int(np.argmax(classifier.runner((image * scale + classifier.offset)[None].astype(np.float32))[0]) == label)
            for image, label in zip(images, labels)]
    return {"top1": float(np.mean(hits)), "images": len(labels), "backend": classifier.runner.backend,
            "accelerator": classifier.runner.accelerator, "fully_accelerated": classifier.runner.fully_accelerated}
