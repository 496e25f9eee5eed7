"""``evaluate`` (``edgecnn.evaluate``, `edgecnn eval`): the task metrics of a .keras/.h5 model or a
.tflite file, each task through its module; a Keras model and its .tflite go through the same
runtime pipeline (pre-processing, decoding, NMS), only the backend differs, so their figures are
comparable."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edgecnn.errors import EdgeCNNError
from edgecnn.evaluation.classification import evaluate_classifier
from edgecnn.evaluation.detection import evaluate_detector
from edgecnn.evaluation.generation import evaluate_generator
from edgecnn.evaluation.inputs import backend_of, detection_set
from edgecnn.evaluation.instances import evaluate_instance_segmenter
from edgecnn.evaluation.metrics import EVALUATION_OPTIONS
from edgecnn.evaluation.segmentation import evaluate_segmenter

log = logging.getLogger("edgecnn.evaluation")
TASK_METRICS = ("classification", "detection", "segmentation", "instance_segmentation", "generation")


def evaluate(model_or_path, data: str, *, split: str | None = None, limit: int | None = None,
             accelerator: str = "cpu", threads: int | None = None, task: str | None = None,
             trust: bool = False, judge=None, edges: bool | None = None) -> dict:
    """Task metrics of a Keras model, a .keras/.h5 file or a .tflite file (through the device
    runtime's pipeline, on ``accelerator``) on the DATA spec ``data``: classification {top1},
    detection {map, map50}, segmentation {miou, pixel_acc}, instance segmentation {map, map50,
    mask_map, mask_map50}, generation {l1, and with a segmenter ``judge`` fcn_miou, fcn_pixel_acc,
    real_fcn_miou, real_fcn_pixel_acc: see ``edgecnn.evaluation.generation``}; plus ``model``,
    ``data``, ``split`` and ``images``. ``split`` defaults to val for builtin sets and all for your
    own files. For a generator, ``judge`` and ``edges`` (the input is the pictures' Canny edges)
    default to the settings of the recipe it was trained from (recipe.yaml beside the file);
    a .tflite file's own metadata says whether it takes edges where there is no recipe.

    >>> edgecnn.evaluate("runs/digits/model_int8.tflite", "builtin:digits")["top1"]   # doctest: +SKIP
    """
    from edgecnn.data.specs import parse_spec

    spec = parse_spec(data)
    split = split or ("val" if spec.kind == "builtin" else "all")
    generation = {"judge": judge, "edges": edges, "trust": trust}
    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path)
        if not path.is_file():
            raise EdgeCNNError(f"Model file '{path}' does not exist.", "Check the path.")
        name = str(path)
        from edgecnn.evaluation.generation import run_settings

        recipe_judge, recipe_edges = run_settings(path)
        generation = {"judge": judge or recipe_judge, "edges": recipe_edges if edges is None else edges,
                      "trust": trust}
        if path.suffix == ".tflite":
            metrics = _evaluate_tflite(path.read_bytes(), spec, split, limit, accelerator, threads, task, generation)
        else:
            from edgecnn.export.keras_io import load_model

            log.info(f"loading {path}")
            metrics = _evaluate_keras(load_model(path, trust=trust), spec, split, limit, task, generation)
    else:
        name = getattr(model_or_path, "name", "model")
        metrics = _evaluate_keras(model_or_path, spec, split, limit, task, generation)
    return {"model": name, "data": str(spec), "split": split, **metrics}

def _evaluate_tflite(data: bytes, spec, split: str, limit: int | None, accelerator: str, threads: int | None,
                     task: str | None, generation: dict) -> dict:
    from edgecnn.runtime.metadata import read_metadata
    from edgecnn.runtime.tasks import open as open_pipeline

    task = task or getattr(read_metadata(data), "task", None)
    if not task:
        raise EdgeCNNError("This .tflite file carries no edgecnn metadata, so its task is unknown.",
                           "Pass the task (CLI: --task classification|detection|segmentation).")
    _require_metric(task)
    pipeline = open_pipeline(data, accelerator, threads, task=task, **EVALUATION_OPTIONS.get(task, {}))
    return evaluate_pipeline(pipeline, task, spec, split, limit, generation)


def _evaluate_keras(model, spec, split: str, limit: int | None, task: str | None, generation: dict) -> dict:
    from edgecnn.evaluation.keras_backend import keras_pipeline
    from edgecnn.export.metadata import infer_task

    task = infer_task(model, task)
    _require_metric(task)
    recipe = {"data": {"edges": True}} if task == "generation" and generation["edges"] else None
    pipeline = keras_pipeline(model, task, recipe=recipe, **EVALUATION_OPTIONS.get(task, {}))
    return evaluate_pipeline(pipeline, task, spec, split, limit, generation)


def _require_metric(task: str) -> None:
    if task not in TASK_METRICS:
        raise EdgeCNNError(f"There is no evaluation metric for task '{task}' yet.")


def evaluate_pipeline(pipeline, task: str, spec, split: str, limit: int | None, generation: dict | None = None
                      ) -> dict:
    """The metrics of ``task`` for a runtime pipeline on any backend (a .tflite file, or a Keras
    model behind ``keras_backend.keras_pipeline``), opened with ``EVALUATION_OPTIONS``."""
    generation = generation or {}
    if task == "detection":
        metrics = evaluate_detector(pipeline, detection_set(spec, split, limit))
    elif task == "instance_segmentation":
        metrics = evaluate_instance_segmenter(pipeline, detection_set(spec, split, limit, True))
    elif task == "segmentation":
        metrics = evaluate_segmenter(pipeline, spec, split, limit)
    elif task == "classification":
        metrics = evaluate_classifier(pipeline, spec, split, limit)
    else:
        metrics = evaluate_generator(pipeline, spec, split, limit, generation.get("edges"), generation.get("judge"),
                                     generation.get("trust", False))
    return {**metrics, **backend_of(pipeline)}
