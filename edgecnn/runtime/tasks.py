"""One table from a file's task to its pipeline, shared by ``open``, `edgecnn predict`,
`edgecnn benchmark` and `edgecnn eval`: adding a task kind means one pipeline module and one
entry here."""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any, Union

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.detector import Detector
from edgecnn.runtime.engine import read_model_bytes
from edgecnn.runtime.instance_segmenter import InstanceSegmenter
from edgecnn.runtime.metadata import read_metadata
from edgecnn.runtime.runner import Runner
from edgecnn.runtime.segmenter import Segmenter
from edgecnn.runtime.translator import Translator

log = logging.getLogger("edgecnn.runtime")

PIPELINES: dict[str, type] = {
    "classification": Classifier,
    "detection": Detector,
    "segmentation": Segmenter,
    "instance_segmentation": InstanceSegmenter,
    "generation": Translator,
}
Pipeline = Union[Classifier, Detector, Segmenter, InstanceSegmenter, Translator]


def task_of(model: str | os.PathLike | bytes, task: str | None = None) -> str:
    """The task ``task`` names, else the one the file's metadata names; a file without metadata
    is taken for a classifier (what most third-party image models are), said in the log."""
    if task is None:
        metadata = read_metadata(read_model_bytes(model))
        if metadata is None:
            log.warning("the model carries no edgecnn metadata: running it as a classifier (pass task=... / --task)")
            return "classification"
        task = metadata.task
    if task not in PIPELINES:
        raise EdgeCNNError(f"There is no pipeline for task '{task}'.", f"Pipelines: {', '.join(PIPELINES)}.")
    return task


def pipeline_options(task: str) -> set[str]:
    """The keyword options the task's pipeline takes besides the model, accelerator and threads
    (e.g. ``top_k``, ``score_threshold``, ``labels``)."""
    parameters = inspect.signature(PIPELINES[task].__init__).parameters
    return set(parameters) - {"self", "model", "accelerator", "threads", "runner", "metadata"}


def open(model: str | os.PathLike | bytes, accelerator: str = "auto", threads: int | None = None,  # noqa: A001
         task: str | None = None, delegate: str | os.PathLike | None = None, runner: Runner | None = None,
         **options: Any) -> Pipeline:
    """The pipeline the file's metadata names (or ``task``), ready to call on an image:

    >>> detector = edgecnn.runtime.open("model_int8.tflite")   # doctest: +SKIP
    >>> result = detector(image)                                # detections, class map, top-k ...

    ``accelerator``: auto (the GPU accelerator where the whole graph runs on a hardware GPU,
    else the CPU), cpu or gpu; ``delegate``: an external delegate library; ``runner``: an
    existing Runner of the same file to share; ``options`` go to the pipeline (see
    ``pipeline_options``)."""
    data = read_model_bytes(model)
    task = task_of(data, task)
    unknown = set(options) - pipeline_options(task)
    if unknown:
        raise EdgeCNNError(f"The {task} pipeline takes no option {', '.join(sorted(unknown))}.",
                           f"Its options: {', '.join(sorted(pipeline_options(task))) or 'none'}.")
    runner = runner or Runner(data, accelerator, threads, delegate=delegate)
    return PIPELINES[task](data, runner=runner, **options)
