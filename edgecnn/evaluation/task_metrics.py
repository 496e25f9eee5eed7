"""``evaluate`` (``edgecnn.evaluate``, `edgecnn eval`): the task metrics of a .keras/.h5 model or a
.tflite file, each task through its module; a Keras model and its .tflite go through the same
pre- and post-processing, so their figures are comparable."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edgecnn.errors import EdgeCNNError
from edgecnn.evaluation.classification import evaluate_keras_classifier, evaluate_tflite_classifier
from edgecnn.evaluation.detection import (
    evaluate_keras_detector,
    evaluate_keras_fast_rcnn,
    evaluate_keras_rcnn,
    evaluate_keras_region_detector,
    evaluate_tflite_detector,
)
from edgecnn.evaluation.inputs import detection_set
from edgecnn.evaluation.segmentation import evaluate_keras_segmenter, evaluate_tflite_segmenter

log = logging.getLogger("edgecnn.evaluation")


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

    task = task or getattr(read_metadata(data), "task", None)
    if not task:
        raise EdgeCNNError("This .tflite file carries no edgecnn metadata, so its task is unknown.",
                           "Pass the task (CLI: --task classification|detection|segmentation).")
    if task == "detection":
        return evaluate_tflite_detector(data, detection_set(spec, split, limit), accelerator, threads)
    if task == "segmentation":
        return evaluate_tflite_segmenter(data, spec, split, limit, accelerator, threads)
    if task == "instance_segmentation":
        from edgecnn.evaluation.instances import evaluate_tflite_instance_segmenter

        return evaluate_tflite_instance_segmenter(data, detection_set(spec, split, limit, True), accelerator, threads)
    if task == "classification":
        return evaluate_tflite_classifier(data, spec, split, limit, accelerator, threads)
    if task == "generation":
        from edgecnn.evaluation.generation import evaluate_tflite_generator

        return evaluate_tflite_generator(data, spec, split, limit, generation["edges"], generation["judge"],
                                         accelerator, threads, generation["trust"])
    raise EdgeCNNError(f"There is no evaluation metric for task '{task}' yet.")

def _evaluate_keras(model, spec, split: str, limit: int | None, task: str | None, generation: dict) -> dict:
    from edgecnn.export.metadata import infer_task

    task = infer_task(model, task)
    if task == "detection":
        from edgecnn.models.fast_rcnn import is_fast_rcnn
        from edgecnn.models.faster_rcnn import is_faster_rcnn
        from edgecnn.models.rcnn import is_rcnn
        from edgecnn.models.yolo import detection_layout

        if is_faster_rcnn(model):
            return evaluate_keras_region_detector(model, detection_set(spec, split, limit))
        if is_fast_rcnn(model):
            return evaluate_keras_fast_rcnn(model, detection_set(spec, split, limit))
        if is_rcnn(model):
            return evaluate_keras_rcnn(model, detection_set(spec, split, limit))
        strides = tuple(detection_layout(model)["strides"])
        return evaluate_keras_detector(model, detection_set(spec, split, limit), strides)
    if task == "segmentation":
        return evaluate_keras_segmenter(model, spec, split, limit)
    if task == "instance_segmentation":
        from edgecnn.evaluation.instances import evaluate_keras_instance_segmenter

        return evaluate_keras_instance_segmenter(model, detection_set(spec, split, limit, True))
    if task == "classification":
        return evaluate_keras_classifier(model, spec, split, limit)
    if task == "generation":
        from edgecnn.evaluation.generation import evaluate_keras_generator

        return evaluate_keras_generator(model, spec, split, limit, generation["edges"], generation["judge"],
                                        generation["trust"])
    raise EdgeCNNError(f"There is no evaluation metric for task '{task}' yet.")
