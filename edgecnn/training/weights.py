"""``edgecnn.create_model(name, weights=...)``: a zoo model with its starting weights, from
ImageNet (Keras Applications), a Keras Applications weights file, or an edgecnn model file (a
run's ``model.keras``, ``model_qat.h5`` or a checkpoint: every layer whose name and weight
shapes match is loaded, the rest stays new, and the log names both)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edgecnn.errors import EdgeCNNError

log = logging.getLogger("edgecnn.training")


def create_model(name: str, weights: str | os.PathLike | None = None, **overrides):
    """The zoo model ``name`` with ``overrides``, starting from ``weights`` (None: random)."""
    return starting_model(name, weights, overrides)[0]


def starting_model(name: str, weights: str | os.PathLike | None, overrides: dict) -> tuple[object, list[str]]:
    """``create_model``'s model and the names of the layers the starting weights filled (what
    ``training.freeze_epochs`` freezes)."""
    from edgecnn.models import zoo
    from edgecnn.models.pretrained import is_edgecnn_model_file, load_matching_layers

    if weights is None:
        return zoo.create_model(name, **overrides), []
    path = Path(weights)
    if str(weights) == "imagenet" or not path.is_file() or not is_edgecnn_model_file(path):
        return zoo.create_pretrained(name, str(weights), **overrides)
    from edgecnn.export.keras_io import load_model

    source = load_model(path)  # refuses a file whose layers hold Python code
    model = zoo.create_model(name, **overrides)
    loaded, skipped = load_matching_layers(model, source)
    if not loaded:
        raise EdgeCNNError(f"No layer of {path} matches {name} by name and weight shapes: it holds another "
                           "architecture.", f"Start from a run of the same model ({name}), or from imagenet.")
    log.info("weights from %s: %d layers loaded, %d new%s", path, len(loaded), len(skipped),
             f": {'; '.join(skipped)}" if skipped else "")
    return model, loaded
