"""Bounds-checked reads of FlatBuffers fields by number, with nothing but ``struct``.

The binary layout (little-endian): a table starts with the signed offset back to its vtable,
whose 16-bit entries give each field's position in the table (0: absent); a reference is a
uint32 offset from where it is stored; a vector (and a string) is a uint32 length and its
elements. Every read goes through ``struct`` with an explicit position, so a corrupt file raises
``struct.error``/``ValueError`` and never reads outside the bytes or loops long. The TFLite model
(edgecnn's own metadata entry) and the standard TFLite Model Metadata are read this way, without
TensorFlow, mediapipe or a runtime's schema module: an old Pi image with only tflite_runtime
reads them too.
"""

from __future__ import annotations

import struct

# TFLite schema (schema.fbs) field numbers: Model.buffers = 4, Model.metadata = 6;
# Metadata.name = 0, Metadata.buffer = 1; Buffer.data = 0, Buffer.offset = 1, Buffer.size = 2
# (offset/size: data kept after the flatbuffer, in files over 2 GB)
MODEL_BUFFERS, MODEL_METADATA = 4, 6


def unpack(layout: str, data: bytes, position: int) -> tuple:
    if position < 0:  # struct would count a negative position from the end
        raise ValueError("reference before the start of the file")
    return struct.unpack_from(layout, data, position)


def reference(data: bytes, position: int) -> int:
    return position + unpack("<I", data, position)[0]


def field_position(data: bytes, table: int, field: int) -> int | None:
    vtable = table - unpack("<i", data, table)[0]
    vtable_size = unpack("<H", data, vtable)[0]
    entry = 4 + 2 * field
    if entry + 2 > vtable_size:
        return None  # a field added after this file was written: absent
    offset = unpack("<H", data, vtable + entry)[0]
    return table + offset if offset else None


def field_reference(data: bytes, table: int, field: int) -> int | None:
    position = field_position(data, table, field)
    return None if position is None else reference(data, position)


def field_scalar(data: bytes, table: int, field: int, layout: str, default):
    position = field_position(data, table, field)
    return default if position is None else unpack(layout, data, position)[0]


def vector_of_tables(data: bytes, vector: int) -> list[int]:
    length = unpack("<I", data, vector)[0]
    if vector + 4 + 4 * length > len(data):
        raise ValueError("vector runs past the end of the file")
    return [reference(data, vector + 4 + 4 * index) for index in range(length)]


def vector_bytes(data: bytes, vector: int) -> bytes:
    length = unpack("<I", data, vector)[0]
    if vector + 4 + length > len(data):
        raise ValueError("vector runs past the end of the file")
    return bytes(data[vector + 4:vector + 4 + length])


def vector_scalars(data: bytes, vector: int, layout: str) -> list:
    """A vector of scalars of ``layout`` (one struct code, e.g. ``<f``)."""
    length = unpack("<I", data, vector)[0]
    size = struct.calcsize(layout)
    if vector + 4 + size * length > len(data):
        raise ValueError("vector runs past the end of the file")
    return list(struct.unpack_from(f"<{length}{layout[-1]}", data, vector + 4))


def field_string(data: bytes, table: int, field: int) -> str | None:
    position = field_reference(data, table, field)
    return None if position is None else vector_bytes(data, position).decode("utf-8", errors="replace")


def field_tables(data: bytes, table: int, field: int) -> list[int]:
    position = field_reference(data, table, field)
    return [] if position is None else vector_of_tables(data, position)


def metadata_buffer(data: bytes, name: str) -> bytes | None:
    """The bytes of the buffer of the TFLite model's metadata entry ``name`` (None: no such entry)."""
    root = reference(data, 0)
    entries = field_reference(data, root, MODEL_METADATA)
    if entries is None:
        return None
    for entry in vector_of_tables(data, entries):
        label = field_reference(data, entry, 0)
        if label is None or vector_bytes(data, label) != name.encode():
            continue
        index = field_scalar(data, entry, 1, "<I", 0)
        buffers = field_reference(data, root, MODEL_BUFFERS)
        tables = vector_of_tables(data, buffers) if buffers is not None else []
        if index >= len(tables):
            raise ValueError(f"metadata buffer {index} of {len(tables)}")
        contents = field_reference(data, tables[index], 0)
        if contents is not None:
            return vector_bytes(data, contents)
        offset, size = field_scalar(data, tables[index], 1, "<Q", 0), field_scalar(data, tables[index], 2, "<Q", 0)
        if offset + size > len(data):
            raise ValueError("metadata buffer outside the file")
        return data[offset:offset + size]
    return None
