"""`edgecnn inspect`: what any .tflite file holds, read from its flatbuffer alone (no interpreter
is created, so a file that would crash the native runtime is still described, and nothing of
TensorFlow or mediapipe is needed)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.engine import read_model_bytes
from edgecnn.runtime.metadata import METADATA_NAME, read_metadata
from edgecnn.runtime.modelfile import is_builtin_only, op_histogram, tflite_schema

# the entry under which TFLite Model Metadata (what MediaPipe Tasks and Android tooling read) is stored
STANDARD_METADATA_NAME = "TFLITE_METADATA"


def inspect_model(model: str | os.PathLike | bytes) -> dict[str, Any]:
    """A description of ``model`` (path or bytes): size, inputs and outputs (shape, dtype,
    quantization), signatures, op histogram, builtin-only, the flatbuffer's metadata entries,
    edgecnn's metadata and whether the standard TFLite Model Metadata is present."""
    data = read_model_bytes(model)
    structure = _structure(data)
    ops = op_histogram(data)
    edgecnn_metadata = read_metadata(data)
    entries = structure.pop("metadata_entries")
    standard = entries.get(STANDARD_METADATA_NAME)
    return {
        "source": str(model) if not isinstance(model, (bytes, bytearray)) else "bytes",
        "size_bytes": len(data),
        **structure,
        "ops": ops,
        "builtin_only": is_builtin_only(ops),
        "metadata_entries": entries,
        "edgecnn_metadata": edgecnn_metadata.to_dict() if edgecnn_metadata else None,
        # decoding its contents is not implemented yet: present or not, and its size
        "standard_metadata": {"present": standard is not None, "size_bytes": standard},
        "mediapipe": _mediapipe_status(),
    }


def _structure(data: bytes) -> dict[str, Any]:
    schema = tflite_schema()
    try:
        model = schema.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        graph = model.Subgraphs(0)
        types = {value: name.lower() for name, value in vars(schema.TensorType).items()
                 if name.isupper() and isinstance(value, int)}

        def tensor(index: int) -> dict[str, Any]:
            item = graph.Tensors(index)
            quantization = item.Quantization()
            scales = quantization.ScaleAsNumpy() if quantization is not None and quantization.ScaleLength() else None
            zeros = (quantization.ZeroPointAsNumpy()
                     if quantization is not None and quantization.ZeroPointLength() else None)
            return {"name": (item.Name() or b"").decode(errors="replace"),
                    "shape": [int(d) for d in (item.ShapeAsNumpy() if item.ShapeLength() else [])],
                    "dtype": types.get(item.Type(), f"type_{item.Type()}"),
                    "quantization": None if scales is None else {
                        "scale": [float(s) for s in np.atleast_1d(scales)],
                        "zero_point": [int(z) for z in np.atleast_1d(zeros)] if zeros is not None else [0]}}

        inputs = [tensor(int(i)) for i in (graph.InputsAsNumpy() if graph.InputsLength() else [])]
        outputs = [tensor(int(i)) for i in (graph.OutputsAsNumpy() if graph.OutputsLength() else [])]
        signatures = [(model.SignatureDefs(i).SignatureKey() or b"").decode(errors="replace")
                      for i in range(model.SignatureDefsLength())]
        entries = {}
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            buffer = entry.Buffer()
            size = model.Buffers(buffer).DataLength() if buffer < model.BuffersLength() else 0
            entries[(entry.Name() or b"").decode(errors="replace")] = int(size)
    except Exception as error:  # a malformed flatbuffer raises from deep inside the reader
        raise EdgeCNNError(f"The file's flatbuffer could not be read ({type(error).__name__}: {error}).",
                           "It is truncated or not a TFLite model: convert it again.") from error
    return {"subgraphs": int(model.SubgraphsLength()), "inputs": inputs, "outputs": outputs,
            "signatures": signatures, "metadata_entries": entries}


def _mediapipe_status() -> dict[str, Any]:
    """Whether MediaPipe Tasks can be asked here. The check that it opens the file is not
    implemented yet; mediapipe lives in its own environment (it needs opencv-contrib-python, a
    second cv2), so here it is normally absent."""
    import importlib.util

    if importlib.util.find_spec("mediapipe") is None:
        return {"checked": False, "reason": "mediapipe is not installed in this environment"}
    return {"checked": False, "reason": "opening files with MediaPipe Tasks is not implemented yet"}


def format_inspection(report: dict[str, Any]) -> str:
    """The human-readable form `edgecnn inspect` prints."""
    def tensor_line(kind: str, item: dict) -> str:
        quantization = item["quantization"]
        quantized = (f"  scale {quantization['scale'][0]:.6g} zero point {quantization['zero_point'][0]}"
                     if quantization else "")
        return f"{kind:8s}{item['name']:28s} {str(item['shape']):18s} {item['dtype']}{quantized}"

    edgecnn_metadata = report["edgecnn_metadata"]
    lines = [f"file            {report['source']}  {report['size_bytes']:,} bytes",
             *[tensor_line("input", item) for item in report["inputs"]],
             *[tensor_line("output", item) for item in report["outputs"]],
             f"builtin only    {report['builtin_only']}  ops: "
             + ", ".join(f"{name} x{count}" for name, count in report["ops"].items()),
             f"metadata        {', '.join(f'{k} ({v:,} bytes)' for k, v in report['metadata_entries'].items()) or 'none'}",
             "edgecnn         " + (_edgecnn_line(edgecnn_metadata) if edgecnn_metadata else "no edgecnn metadata"),
             f"standard        TFLite Model Metadata {'present' if report['standard_metadata']['present'] else 'absent'}",
             f"mediapipe       {report['mediapipe']['reason']}"]
    return "\n".join(lines)


def _edgecnn_line(metadata: dict[str, Any]) -> str:
    spec = metadata["input"]
    normalization = spec["normalization"]
    return (f"task {metadata['task']}, target {metadata['target']}, {len(metadata['labels'] or [])} labels, "
            f"input {'x'.join(str(d) for d in spec['size'])} {spec['color']} = pixel * {normalization['scale']:.6g} "
            f"+ {normalization['offset']:g}, schema version {metadata['schema_version']}")
