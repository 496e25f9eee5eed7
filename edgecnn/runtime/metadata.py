"""edgecnn metadata inside a .tflite file: the typed, versioned schema and its reader.

The metadata is a named entry ("edgecnn") of the flatbuffer's standard ``metadata`` table,
pointing at a buffer of UTF-8 JSON: what a device needs (task, labels, input size, colour and
normalization, output layout, decoding parameters, the source recipe) travels in the file
itself. Stock LiteRT ignores unknown metadata entries, so the file still loads anywhere.
``ModelMetadata`` is the one definition: ``edgecnn.export`` writes it, every pipeline and the
benchmarks read it. Reading needs neither TensorFlow nor a runtime's schema module.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edgecnn.errors import EdgeCNNError

METADATA_NAME = "edgecnn"
# 2: the typed schema (ModelMetadata); version-1 documents have the same fields and read alike
SCHEMA_VERSION = 2
TASKS = ("classification", "detection", "segmentation", "generation")


@dataclass(frozen=True)
class Normalization:
    """model input = pixel (0..255) * scale + offset."""

    scale: float = 1 / 255
    offset: float = 0.0


# generators work in tanh's [-1, 1]; everything else takes pixel / 255
GENERATOR_NORMALIZATION = Normalization(2 / 255, -1.0)


@dataclass(frozen=True)
class InputSpec:
    size: tuple[int, ...]  # H, W, C
    name: str = "image"
    layout: str = "NHWC"
    color: str = "RGB"  # RGB or GRAY
    normalization: Normalization = field(default_factory=Normalization)


@dataclass(frozen=True)
class OutputSpec:
    shape: tuple[int, ...]
    kind: str  # logits, box_log_distances, class_logits, image, raw
    range: tuple[float, float] | None = None  # value range of an image output


@dataclass(frozen=True)
class ModelMetadata:
    """What a device needs to run the file; ``decoding`` holds a detector's post-processing
    parameters (strides, box encoding), ``recipe`` the resolved training recipe."""

    task: str
    input: InputSpec
    outputs: tuple[OutputSpec, ...] = ()
    labels: tuple[str, ...] | None = None
    decoding: dict[str, Any] | None = None
    target: str | None = None
    source_model: str | None = None
    recipe: dict[str, Any] | None = None
    edgecnn_version: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the document stored in the file)."""
        document = asdict(self)
        document["labels"] = list(self.labels) if self.labels is not None else None
        return json.loads(json.dumps(document))  # tuples -> lists

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ModelMetadata:
        """Tolerant of fields added by newer versions (ignored); a missing or mistyped required
        field is an EdgeCNNError."""
        try:
            raw_input = dict(document["input"])
            normalization = Normalization(**_known(Normalization, raw_input.get("normalization") or {}))
            spec = InputSpec(**{**_known(InputSpec, raw_input), "size": tuple(int(d) for d in raw_input["size"]),
                                "normalization": normalization})
            outputs = tuple(OutputSpec(shape=tuple(int(d) for d in o["shape"]), kind=str(o["kind"]),
                                       range=tuple(float(v) for v in o["range"]) if o.get("range") else None)
                            for o in document.get("outputs") or ())
            labels = document.get("labels")
            return cls(**{**_known(cls, document), "task": str(document["task"]), "input": spec, "outputs": outputs,
                          "labels": tuple(str(label) for label in labels) if labels is not None else None})
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise EdgeCNNError(f"The model's edgecnn metadata is malformed ({type(error).__name__}: {error}).",
                               "Convert the model again with `edgecnn convert`.") from error

    @property
    def normalization(self) -> Normalization:
        return self.input.normalization


def require_task(metadata: ModelMetadata | None, task: str) -> None:
    """A pipeline refuses a file whose metadata names another task (a file without metadata is
    taken on trust)."""
    if metadata is not None and metadata.task != task:
        raise EdgeCNNError(f"This model's task is '{metadata.task}', not {task}.",
                           "Open it with edgecnn.runtime.open(path), which picks the pipeline from the metadata.")


def labels_of(metadata: ModelMetadata | None, given: list[str] | None = None) -> list[str] | None:
    """The class names a pipeline uses: ``given`` by the caller, else the file's, else None."""
    return given or (list(metadata.labels) if metadata is not None and metadata.labels else None)


def label_of(labels: tuple[str, ...] | list[str] | None, index: int) -> str:
    """The class name of ``index``, or the index itself where there is none."""
    return labels[index] if labels and 0 <= index < len(labels) else str(index)


def _known(cls, document: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in document.items() if key in names}


def read_metadata(data: bytes) -> ModelMetadata | None:
    """The edgecnn metadata of a model, or None for files that carry none (third-party models).
    Read straight from the flatbuffer (see ``_metadata_buffer``), so it needs neither TensorFlow
    nor ai-edge-litert's schema module: an old Pi image with only tflite_runtime reads it too."""
    try:
        raw = _metadata_buffer(data, METADATA_NAME)
        document = None if raw is None else json.loads(raw.decode("utf-8"))
    except (struct.error, ValueError, UnicodeDecodeError, RecursionError) as error:  # JSON nested too deep
        raise EdgeCNNError(
            f"The model's edgecnn metadata could not be read ({type(error).__name__}).",
            "Convert the model again with `edgecnn convert`.",
        ) from error
    if document is None:
        return None
    if not isinstance(document, dict):
        raise EdgeCNNError("The model's edgecnn metadata is not a JSON object.",
                           "Convert the model again with `edgecnn convert`.")
    return ModelMetadata.from_dict(document)


# TFLite schema (schema.fbs) field numbers: Model.buffers = 4, Model.metadata = 6;
# Metadata.name = 0, Metadata.buffer = 1; Buffer.data = 0, Buffer.offset = 1, Buffer.size = 2
# (offset/size: data kept after the flatbuffer, in files over 2 GB)
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6


def _metadata_buffer(data: bytes, name: str) -> bytes | None:
    """The bytes of the buffer of the metadata entry ``name``, read with the FlatBuffers binary
    layout (little-endian; a table starts with the signed offset back to its vtable, whose
    16-bit entries give each field's position in the table; a reference is a uint32 offset from
    where it is stored; a vector is a uint32 length and its elements). Every read is bounds-checked
    by ``struct``, so a corrupt file raises ``struct.error``/``ValueError`` and never loops long."""
    root = _reference(data, 0)
    entries = _field_reference(data, root, _MODEL_METADATA)
    if entries is None:
        return None
    for entry in _vector_of_tables(data, entries):
        label = _field_reference(data, entry, 0)
        if label is None or _vector_bytes(data, label) != name.encode():
            continue
        index = _field_scalar(data, entry, 1, "<I", 0)
        buffers = _field_reference(data, root, _MODEL_BUFFERS)
        tables = _vector_of_tables(data, buffers) if buffers is not None else []
        if index >= len(tables):
            raise ValueError(f"metadata buffer {index} of {len(tables)}")
        contents = _field_reference(data, tables[index], 0)
        if contents is not None:
            return _vector_bytes(data, contents)
        offset, size = _field_scalar(data, tables[index], 1, "<Q", 0), _field_scalar(data, tables[index], 2, "<Q", 0)
        if offset + size > len(data):
            raise ValueError("metadata buffer outside the file")
        return data[offset:offset + size]
    return None


def _unpack(layout: str, data: bytes, position: int) -> tuple:
    if position < 0:  # struct would count a negative position from the end
        raise ValueError("reference before the start of the file")
    return struct.unpack_from(layout, data, position)


def _reference(data: bytes, position: int) -> int:
    return position + _unpack("<I", data, position)[0]


def _field_position(data: bytes, table: int, field: int) -> int | None:
    vtable = table - _unpack("<i", data, table)[0]
    vtable_size = _unpack("<H", data, vtable)[0]
    entry = 4 + 2 * field
    if entry + 2 > vtable_size:
        return None  # a field added after this file was written: absent
    offset = _unpack("<H", data, vtable + entry)[0]
    return table + offset if offset else None


def _field_reference(data: bytes, table: int, field: int) -> int | None:
    position = _field_position(data, table, field)
    return None if position is None else _reference(data, position)


def _field_scalar(data: bytes, table: int, field: int, layout: str, default: int) -> int:
    position = _field_position(data, table, field)
    return default if position is None else _unpack(layout, data, position)[0]


def _vector_of_tables(data: bytes, vector: int) -> list[int]:
    length = _unpack("<I", data, vector)[0]
    if vector + 4 + 4 * length > len(data):
        raise ValueError("vector runs past the end of the file")
    return [_reference(data, vector + 4 + 4 * index) for index in range(length)]


def _vector_bytes(data: bytes, vector: int) -> bytes:
    length = _unpack("<I", data, vector)[0]
    if vector + 4 + length > len(data):
        raise ValueError("vector runs past the end of the file")
    return bytes(data[vector + 4:vector + 4 + length])
