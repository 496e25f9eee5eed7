"""Writing edgecnn's metadata into a converted file, and building it from a Keras model.

The schema itself (``ModelMetadata``) lives in the device runtime, which reads it; this module
is the workstation side that fills it in and stores it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.detection import YXHW_STRIDE
from edgecnn.runtime.metadata import (
    GENERATOR_NORMALIZATION,
    METADATA_NAME,
    SCHEMA_VERSION,
    TASKS,
    InputSpec,
    ModelMetadata,
    Normalization,
    OutputSpec,
)
from edgecnn.runtime.standard_metadata import STANDARD_METADATA_NAME

# what each output holds, in the model's output order
OUTPUT_KINDS = {"classification": ("logits",), "segmentation": ("class_logits",), "generation": ("image",)}
OUTPUT_RANGE = {"generation": (-1.0, 1.0)}  # tanh


def infer_task(model, explicit: str | None = None) -> str:
    """The task a Keras model performs, from its outputs (or ``explicit``)."""
    if explicit:
        if explicit not in TASKS:
            raise EdgeCNNError(f"Unknown task '{explicit}'.", f"Choose one of: {', '.join(TASKS)}.")
        return explicit
    if len(model.outputs) == 1 and len(model.outputs[0].shape) == 2:
        return "classification"
    from edgecnn.models.detector_families import detector_family

    family = detector_family(model)
    if family is not None:
        return family.task
    shapes = [tuple(o.shape) for o in model.outputs]
    if len(shapes) == 2 and len(shapes[0]) == 3 and shapes[0][-1] == 4:
        return "detection"
    if any(name.endswith("image_out") for name in model.output_names):  # the zoo's generators
        return "generation"
    if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][1:3] == tuple(model.input_shape[1:3]):
        return "segmentation"
    raise EdgeCNNError(
        f"Cannot tell what task model '{model.name}' performs from its outputs {shapes}.",
        "Pass the task explicitly (CLI: --task classification|detection|segmentation|instance_segmentation|"
        "generation).",
    )


def decoding_of(model, task: str) -> dict[str, Any] | None:
    """Post-processing parameters the runtime needs, read from the model's graph by its
    detector family's description."""
    if task not in ("detection", "instance_segmentation"):
        return None
    from edgecnn.models.detector_families import detector_family

    family = detector_family(model)
    if family is None:
        raise EdgeCNNError(f"Cannot read the detection layout of '{model.name}': it is of no detector family "
                           "edgecnn decodes.", "edgecnn's Detector decodes the zoo's YOLO, R-CNN, Fast R-CNN, "
                           "Faster R-CNN and Mask R-CNN families.")
    return family.layout(model)


def metadata_for(model, task: str, labels: Sequence[str] | None = None, target: str | None = None,
                 source_model: str | None = None, recipe: dict | None = None,
                 device_head: bool = False, label_source: str | None = None) -> ModelMetadata:
    """The metadata of a Keras model's converted file; ``device_head``: the file carries the
    task's device head (export/device_heads.py), which changes what its first output holds;
    ``label_source``: where ``labels`` came from (runtime.metadata.LABEL_SOURCES)."""
    from edgecnn.version import __version__
    from edgecnn.export.device_heads import HEADS

    size = tuple(int(d) for d in model.inputs[0].shape[1:])  # the image (a Fast R-CNN's proposals come second)
    takes_edges = task == "generation" and bool(((recipe or {}).get("data") or {}).get("edges"))
    spec = InputSpec(size=size, name=model.inputs[0].name.split(":")[0], color="RGB" if size[-1] == 3 else "GRAY",
                     normalization=GENERATOR_NORMALIZATION if task == "generation" else Normalization(),
                     content="edges" if takes_edges else "picture")
    kinds = OUTPUT_KINDS.get(task, ("raw",) * len(model.outputs))
    decoding = decoding_of(model, task)
    if decoding is not None:
        from edgecnn.models.detector_families import detector_family

        kinds = detector_family(model).output_kinds
    if device_head:
        kinds = (HEADS[task], *kinds[1:])
        if decoding is not None:
            decoding = {**decoding, "box_encoding": YXHW_STRIDE}
    outputs = tuple(OutputSpec((1, *(int(d) for d in o.shape[1:])), kind, OUTPUT_RANGE.get(task))
                    for o, kind in zip(model.outputs, kinds))
    return ModelMetadata(task=task, input=spec, outputs=outputs, labels=tuple(labels) if labels else None,
                         label_source=label_source, decoding=decoding, target=target, source_model=source_model,
                         recipe=recipe, edgecnn_version=__version__)


def write_metadata(data: bytes, metadata: ModelMetadata) -> bytes:
    """A copy of the flatbuffer ``data`` with ``metadata`` stored twice: as edgecnn's entry (the
    runtime's) and as the standard TFLite Model Metadata with its label file packed after the
    flatbuffer (MediaPipe Tasks' and Android's). Earlier entries of either name, and an earlier
    packed archive, are replaced."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    from edgecnn.export.device_heads import keras_output_order
    from edgecnn.export.standard_metadata import associated_files_archive, describe, serialize

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    input_is_float = model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]].type == schema.TensorType.FLOAT32
    standard = describe(metadata, input_is_float, keras_output_order(data))
    document = {**metadata.to_dict(), "schema_version": SCHEMA_VERSION}
    payloads = {METADATA_NAME: json.dumps(document, sort_keys=True).encode("utf-8"),
                STANDARD_METADATA_NAME: serialize(standard)}
    entries = [m for m in (model.metadata or []) if _name(m.name) not in payloads]
    model.buffers = list(model.buffers or [])
    for name, payload in payloads.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        entries.append(entry)
    model.metadata = entries
    builder = flatbuffers.Builder(len(data) + sum(map(len, payloads.values())) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()) + associated_files_archive(standard.files)


def _name(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")
