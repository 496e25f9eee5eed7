"""Saving and loading Keras models with edgecnn's custom layers registered."""

from __future__ import annotations

from pathlib import Path

from edgecnn.errors import EdgeCNNError


def load_model(path: str | Path, trust: bool = False):
    """A .keras or .h5 model with edgecnn's custom layers known. A file whose layers carry Python
    code (a ``Lambda`` layer: marshalled bytecode in .h5, and run while the model is rebuilt) is
    refused unless ``trust`` is True: opening a model must not run code from it."""
    path = Path(path)
    if not path.exists():
        raise EdgeCNNError(f"Model file '{path}' does not exist.", "Check the path, or train one with `edgecnn train`.")
    if not trust:
        code_layers = layers_with_code(path)
        if code_layers:
            raise EdgeCNNError(
                f"'{path}' holds Python code in layer(s) {', '.join(code_layers)} (Lambda), which would run on load.",
                "Load it only if you trust its author: pass --trust-model (Python: trust=True); or rebuild the "
                "model without Lambda layers.",
            )
    import edgecnn.layers  # noqa: F401  registers the custom layers with Keras
    from edgecnn._keras import keras

    # .keras files: Keras' own safe mode refuses Lambda bytecode too (a second guard)
    options = {"safe_mode": not trust} if path.suffix == ".keras" else {}
    try:
        if _needs_quantize_scope(path):
            from tensorflow_model_optimization.quantization.keras import quantize_scope

            from edgecnn.optimize.qat import custom_objects

            with quantize_scope(custom_objects()):
                return keras.models.load_model(path, compile=False, **options)
        return keras.models.load_model(path, compile=False, **options)
    except (OSError, ValueError) as error:
        raise EdgeCNNError(
            f"Could not load '{path}' as a Keras model ({type(error).__name__}: {str(error).splitlines()[0]}).",
            "Pass a .keras or .h5 file written by `edgecnn train` or keras.Model.save.",
        ) from error


def layers_with_code(path: Path) -> list[str]:
    """Names of the layers whose saved config carries a Python function (Keras' ``Lambda``), read
    from the file's JSON config without building anything."""
    found: list[str] = []

    def visit(node) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                config = node.get("config") or {}
                found.append(str(config.get("name") or node.get("name") or "?"))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    config = _saved_config(path)
    if config is not None:
        visit(config)
    return found


def _saved_config(path: Path):
    """The model config stored in a .keras archive (config.json) or an .h5 file (the
    ``model_config`` attribute); None when the file has neither."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        pass
    try:
        import h5py

        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except (OSError, ImportError, ValueError):
        return None
    if raw is None:
        return None
    return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)


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
