"""What the benchmarks share besides timing: a packaged recipe's run, trained once into a runs
folder and reused (resumed when interrupted), and its files converted once."""

from __future__ import annotations

from pathlib import Path


def trained_run(recipe_name: str, runs: Path, overrides: tuple[str, ...] = (), name: str | None = None) -> Path:
    """``runs``/<name> (default: the recipe's name), the packaged recipe ``recipe_name`` (e.g.
    shapes_faster_rcnn.yaml) with ``overrides`` trained into it once: reused when its
    metrics.json is there, resumed when it was interrupted."""
    import sys

    import edgecnn
    from edgecnn.training.recipe import PACKAGED_RECIPES, load_recipe

    directory = runs / (name or recipe_name.removesuffix(".yaml"))
    if not (directory / "metrics.json").exists():
        print(f"training {recipe_name} into {directory} (once)", file=sys.stderr, flush=True)
        edgecnn.train(load_recipe(PACKAGED_RECIPES / recipe_name, list(overrides)), directory,
                      resume=directory.exists())
    return directory


def trained_model(recipe_name: str, runs: Path, target: str = "fp32") -> Path:
    """The trained model a ``target`` file converts from: the float model.keras, or for int8
    the PQAT model_qat.h5, of ``trained_run``."""
    return trained_run(recipe_name, runs) / ("model_qat.h5" if target == "int8" else "model.keras")


def model_file(recipe_name: str, runs: Path, target: str) -> Path:
    """The recipe's ``target`` .tflite file, converted once beside its trained model."""
    import edgecnn

    source = trained_model(recipe_name, runs, target)
    out = source.parent / f"model_{target}.tflite"
    if not out.exists():
        edgecnn.convert(str(source), target, out=out)
    return out
