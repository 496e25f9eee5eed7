"""edgecnn: classic CNN architectures from the textbook to edge devices.

    import edgecnn
    edgecnn.train("digits_vgg", "runs/digits")                          # recipe -> model.keras, model_qat.h5
    report = edgecnn.convert("runs/digits/model_qat.h5", "int8", out="digits_int8.tflite")
    edgecnn.evaluate("digits_int8.tflite", "builtin:digits")            # {"top1": ...}
    classifier = edgecnn.runtime.open("digits_int8.tflite")             # the device side, no TensorFlow

The names below load on first use, so ``import edgecnn.runtime`` on a device loads the runtime
alone, and TensorFlow is imported only when a model is built, trained or converted.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_LAZY = {"__version__": "edgecnn.version", "EdgeCNNError": "edgecnn.errors", "convert": "edgecnn.api",
         "evaluate": "edgecnn.api", "load_model": "edgecnn.api", "train": "edgecnn.api",
         "TASKS": "edgecnn.models.zoo", "create_model": "edgecnn.training.weights",
         "list_models": "edgecnn.models.zoo"}

__all__ = ["TASKS", "EdgeCNNError", "__version__", "convert", "create_model", "evaluate", "list_models",
           "load_model", "train"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'edgecnn' has no attribute '{name}'")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
