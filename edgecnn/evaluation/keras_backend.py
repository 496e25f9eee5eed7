"""A Keras model as a backend of the runtime's pipelines: the model a device file would hold
(``models.detector_families.deployed_model``) behind the Runner's interface, described by the
metadata conversion would write. A .keras model and its .tflite then reach a metric through the
same pipeline objects (pre-processing, decoding, NMS); only the backend differs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from edgecnn.runtime.engine import TensorInfo
from edgecnn.runtime.tasks import PIPELINES, Pipeline

T = TypeVar("T")


def _float_tensor(name: str, shape, index: int) -> TensorInfo:
    return TensorInfo(name=name, shape=(1, *(int(d) for d in shape[1:])), dtype=np.dtype(np.float32), scale=0.0,
                      zero_point=0, index=index)


class KerasRunner:
    """The Runner's interface on a Keras model: float32 arrays in and out, batch 1 as a file
    (``batched``: any batch, which R-CNN's per-region classification uses)."""

    backend, accelerator, fully_accelerated, note, batched = "keras", "tensorflow", None, None, True

    def __init__(self, model) -> None:
        from edgecnn._keras import tf

        self.model = model
        # traced once per input shape, then with a relaxed batch (R-CNN's region counts vary)
        self._forward = tf.function(lambda *arrays: model(list(arrays) if len(arrays) > 1 else arrays[0],
                                                          training=False), reduce_retracing=True)
        self.inputs = [_float_tensor(t.name, t.shape, i) for i, t in enumerate(model.inputs)]
        self.outputs = [_float_tensor(name, t.shape, i) for i, (name, t) in enumerate(zip(model.output_names,
                                                                                          model.outputs))]
        self._input = np.zeros(self.inputs[0].shape, np.float32)

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        outputs = self._forward(*(np.asarray(a, np.float32) for a in arrays))
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [np.asarray(o, np.float32) for o in outputs]

    def write_input(self, fill: Callable[[np.ndarray], T], raw: bool = False) -> T:
        return fill(self._input)

    def invoke(self, dequantized: bool = True) -> list[np.ndarray]:
        return self(self._input)

    def pixel_table(self, scale: float, offset: float) -> None:
        return None  # float input: no byte table


def keras_pipeline(model, task: str | None = None, labels: list[str] | None = None, recipe: dict | None = None,
                   **options: Any) -> Pipeline:
    """The runtime pipeline of ``task`` (read from the model when not given) on the Keras
    ``model``, with the metadata its converted file would carry; ``options`` as for
    ``edgecnn.runtime.open`` (e.g. ``score_threshold``, ``top_k``)."""
    from edgecnn.export.metadata import infer_task, metadata_for
    from edgecnn.models.detector_families import deployed_model

    task = infer_task(model, task)
    deployed = deployed_model(model)
    metadata = metadata_for(deployed, task, labels, recipe=recipe, label_source="argument" if labels else "none")
    return PIPELINES[task](None, runner=KerasRunner(deployed), metadata=metadata, **options)


def evaluation_pipeline(model, task: str | None = None, **options: Any) -> Pipeline:
    """``keras_pipeline`` opened with the evaluation's options (``metrics.EVALUATION_OPTIONS``), as
    `edgecnn eval` opens a file: what training-time validation scores with."""
    from edgecnn.evaluation.metrics import EVALUATION_OPTIONS
    from edgecnn.export.metadata import infer_task

    task = infer_task(model, task)
    return keras_pipeline(model, task, **{**EVALUATION_OPTIONS.get(task, {}), **options})
