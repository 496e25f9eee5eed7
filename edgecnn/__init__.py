"""edgecnn: classic CNN architectures from the textbook to edge devices.

    import edgecnn
    edgecnn.train("digits_vgg", "runs/digits")                          # recipe -> model.keras, model_qat.h5
    report = edgecnn.convert("runs/digits/model_qat.h5", "int8", out="digits_int8.tflite")
    edgecnn.evaluate("digits_int8.tflite", "builtin:digits")            # {"top1": ...}
    classifier = edgecnn.runtime.open("digits_int8.tflite")             # the device side, no TensorFlow

``import edgecnn`` stays light: TensorFlow is imported only when a model is built, trained or
converted, so the device runtime (``edgecnn.runtime``) works with the base install.
"""

from __future__ import annotations

__version__ = "0.1.0"

from edgecnn.api import convert, evaluate, load_model, train
from edgecnn.errors import EdgeCNNError
from edgecnn.models.registry import TASKS, create_model, list_models

__all__ = ["TASKS", "EdgeCNNError", "__version__", "convert", "create_model", "evaluate", "list_models",
           "load_model", "train"]
