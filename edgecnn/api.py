"""The Python API behind every CLI verb (re-exported from ``edgecnn``). Each function is a
thin entry to the library module that does the work, so ``import edgecnn`` stays light: nothing
heavy is imported until a function is called."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations only: importing them here would load TensorFlow
    from edgecnn.export.conversion import ConversionReport
    from edgecnn.training.recipe import Recipe


def train(recipe: str | os.PathLike | Recipe, out: str | os.PathLike, overrides: Sequence[str] = (),
          resume: bool = False, strategy: str = "default") -> dict:
    """Train from a recipe (a YAML file, a packaged recipe's name such as ``"digits_vgg"``, or a
    ``Recipe``), then its pruning and QAT stages, into ``out`` (model.keras, metrics.json,
    checkpoints/, logs/; model_pruned.keras and model_qat.h5 when the recipe asks). ``overrides``
    are ``key=value`` strings as `--set` takes them. Returns the metrics (metrics.json).

    >>> metrics = edgecnn.train("digits_vgg", "runs/digits", overrides=["training.epochs=2"])  # doctest: +SKIP
    """
    from edgecnn.training.recipe import Recipe, load_recipe

    if isinstance(recipe, Recipe):
        if overrides:
            from edgecnn.training.recipe import apply_overrides, recipe_from_dict

            recipe = recipe_from_dict(apply_overrides(recipe.to_dict(), list(overrides)))
    else:
        recipe = load_recipe(recipe, list(overrides))
    from edgecnn.training.train import train as run_training

    return run_training(recipe, Path(out), resume=resume, strategy_name=strategy)


def convert(model_or_path, target: str, out: str | os.PathLike | None = None, calibration: str | None = None,
            **options) -> ConversionReport:
    """Convert a Keras model or a .keras/.h5 file to a verified .tflite (builtin ops only, static
    batch 1, metadata inside); see ``edgecnn.export.conversion.convert`` for the options.

    >>> report = edgecnn.convert("runs/digits/model_qat.h5", "int8", out="model_int8.tflite")  # doctest: +SKIP
    >>> report.to_json()["parity"]                                                             # doctest: +SKIP
    """
    from edgecnn.export.conversion import convert as convert_and_verify

    return convert_and_verify(model_or_path, target, out, calibration, **options)


def evaluate(model_or_path, data: str, **options) -> dict:
    """Task metrics of a Keras model or a .keras/.h5/.tflite file on a DATA spec, the same keys as
    `edgecnn eval --json`; see ``edgecnn.evaluation.evaluate`` for the options.

    >>> edgecnn.evaluate("model_int8.tflite", "builtin:digits")["top1"]   # doctest: +SKIP
    """
    from edgecnn.evaluation import evaluate as evaluate_model

    return evaluate_model(model_or_path, data, **options)


def load_model(path: str | os.PathLike, trust: bool = False):
    """A .keras / .h5 file saved by edgecnn, with edgecnn's custom layers known. A file whose
    layers hold Python code (Lambda) is refused unless ``trust=True``."""
    from edgecnn.export.keras_io import load_model as load_keras_model

    return load_keras_model(path, trust=trust)
