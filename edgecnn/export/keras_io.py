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
        if _needs_quantize_scope(path):
            from tensorflow_model_optimization.quantization.keras import quantize_scope

            from edgecnn.optimize.qat import custom_objects

            with quantize_scope(custom_objects()):
                return keras.models.load_model(path, compile=False)
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as error:
        raise EdgeCNNError(
            f"Could not load '{path}' as a Keras model ({type(error).__name__}: {str(error).splitlines()[0]}).",
            "Pass a .keras or .h5 file written by `edgecnn train` or keras.Model.save.",
        ) from error


def _needs_quantize_scope(path: Path) -> bool:
    """QAT models (tfmot wrappers) load only inside tfmot's quantize_scope."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return b"QuantizeWrapper" in archive.read("config.json")
    except (zipfile.BadZipFile, KeyError, OSError):
        return path.suffix == ".h5" and b"QuantizeWrapper" in path.read_bytes()[:10_000_000]


def save_model(model, path: str | Path) -> Path:
    """Save atomically (a temporary file renamed into place). QAT models must use .h5: tfmot's
    QuantizeLayer cannot be restored from the .keras format (it expects 5 variables, gets 3)."""
    import os
    import tempfile

    from edgecnn.export.convert import is_quantization_aware

    path = Path(path)
    if path.suffix not in (".keras", ".h5"):
        raise EdgeCNNError(f"Cannot save a model as '{path.name}'.", "Use a .keras (or .h5) file name.")
    if path.suffix == ".keras" and is_quantization_aware(model):
        raise EdgeCNNError(
            f"Quantization-aware model '{model.name}' cannot be saved as .keras (tfmot's quantize layers do not "
            "restore from that format).",
            f"Save it as '{path.with_suffix('.h5').name}' instead.",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    try:
        model.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
