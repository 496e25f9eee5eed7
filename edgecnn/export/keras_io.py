"""Saving and loading Keras models with edgecnn's custom layers registered."""

from __future__ import annotations

from pathlib import Path

from edgecnn.errors import EdgeCNNError


def load_model(path: str | Path):
    path = Path(path)
    if not path.exists():
        raise EdgeCNNError(f"Model file '{path}' does not exist.", "Check the path, or train one with `edgecnn train`.")
    import edgecnn.layers  # noqa: F401  registers the custom layers with Keras
    from edgecnn._keras import keras

    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as error:
        raise EdgeCNNError(
            f"Could not load '{path}' as a Keras model ({type(error).__name__}: {str(error).splitlines()[0]}).",
            "Pass a .keras or .h5 file written by `edgecnn train` or keras.Model.save.",
        ) from error
