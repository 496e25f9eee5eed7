"""edgecnn: classic CNN architectures from the textbook to edge devices.

``import edgecnn`` stays light: TensorFlow is imported only when a model is built, so the device
runtime (``edgecnn.runtime``) works with the base install.
"""

from __future__ import annotations

__version__ = "0.1.0"

from edgecnn.errors import EdgeCNNError
from edgecnn.models.registry import TASKS, create_model, list_models


def load_model(path: str):
    """Load a .keras / SavedModel file saved by edgecnn, with edgecnn's custom layers known."""
    from edgecnn.export.keras_io import load_model as _load

    return _load(path)


__all__ = ["TASKS", "EdgeCNNError", "__version__", "create_model", "list_models", "load_model"]
