"""edgecnn metadata inside a .tflite file: a named entry of the flatbuffer's standard
``metadata`` table ("edgecnn") pointing at a buffer of UTF-8 JSON.

What a device needs (task, labels, input size/layout/normalization, output layout, decoding
parameters, the source recipe) travels in the file itself; stock LiteRT ignores unknown
metadata entries, so the file still loads anywhere. Reading needs no TensorFlow.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from edgecnn.errors import EdgeCNNError

METADATA_NAME = "edgecnn"
SCHEMA_VERSION = 1


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_metadata(data: bytes) -> dict[str, Any] | None:
    """The edgecnn metadata of a model, or None for files that carry none (third-party models).
    Read straight from the flatbuffer (see ``_metadata_buffer``), so it needs neither TensorFlow
    nor ai-edge-litert's schema module: an old Pi image with only tflite_runtime reads it too."""
    try:
        raw = _metadata_buffer(data, METADATA_NAME)
        return None if raw is None else json.loads(raw.decode("utf-8"))
    except (struct.error, ValueError, UnicodeDecodeError, RecursionError) as error:  # JSON nested too deep
        raise EdgeCNNError(
            f"The model's edgecnn metadata could not be read ({type(error).__name__}).",
            "Convert the model again with `edgecnn convert`.",
        ) from error


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


def write_metadata(data: bytes, metadata: dict[str, Any]) -> bytes:
    """A copy of the flatbuffer ``data`` with ``metadata`` stored as its edgecnn entry
    (replacing any earlier one)."""
    import flatbuffers
    import numpy as np

    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    document = {"schema_version": SCHEMA_VERSION, **metadata}
    payload = np.frombuffer(json.dumps(document, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    buffer = schema.BufferT()
    buffer.data = payload
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != METADATA_NAME] + [entry]
    builder = flatbuffers.Builder(len(data) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _name(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")
