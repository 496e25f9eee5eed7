"""edgecnn metadata inside a .tflite file: a named entry of the flatbuffer's standard
``metadata`` table ("edgecnn") pointing at a buffer of UTF-8 JSON.

What a device needs (task, labels, input size/layout/normalization, output layout, decoding
parameters, the source recipe) travels in the file itself; stock LiteRT ignores unknown
metadata entries, so the file still loads anywhere. Reading needs no TensorFlow.
"""

from __future__ import annotations

import json
from typing import Any

from edgecnn.errors import EdgeCNNError

METADATA_NAME = "edgecnn"
SCHEMA_VERSION = 1


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_metadata(data: bytes) -> dict[str, Any] | None:
    """The edgecnn metadata of a model, or None for files that carry none (third-party models)."""
    schema = _schema()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if (entry.Name() or b"").decode(errors="replace") == METADATA_NAME:
                raw = model.Buffers(entry.Buffer()).DataAsNumpy()
                return json.loads(bytes(raw).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, IndexError, AttributeError) as error:
        raise EdgeCNNError(
            f"The model's edgecnn metadata could not be read ({type(error).__name__}).",
            "Convert the model again with `edgecnn convert`.",
        ) from error
    return None


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
