"""`edgecnn inspect`: what any .tflite file holds, read from its flatbuffer alone (no interpreter
is created, so a file that would crash the native runtime is still described, and nothing of
TensorFlow or mediapipe is needed). Whether MediaPipe Tasks opens the file is asked by the CLI
(``edgecnn.export.mediapipe_tasks``), in mediapipe's own environment."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.consistency import check_consistency, problems
from edgecnn.runtime.engine import read_model_bytes
from edgecnn.runtime.metadata import read_metadata
from edgecnn.runtime.modelfile import is_builtin_only, op_histogram, tflite_schema
from edgecnn.runtime.standard_metadata import TASK_NAMES, associated_files, read_standard_metadata


def inspect_model(model: str | os.PathLike | bytes) -> dict[str, Any]:
    """A description of ``model`` (path or bytes): size, inputs and outputs (shape, dtype,
    quantization), signatures, op histogram, builtin-only, the flatbuffer's metadata entries,
    edgecnn's metadata, the standard TFLite Model Metadata (decoded), the files packed with it,
    and whether they agree with the tensors (``consistency``)."""
    data = read_model_bytes(model)
    structure = _structure(data)
    ops = op_histogram(data)
    edgecnn_metadata = read_metadata(data)
    entries = structure.pop("metadata_entries")
    standard = read_standard_metadata(data)
    files = associated_files(data)
    return {
        "source": str(model) if not isinstance(model, (bytes, bytearray)) else "bytes",
        "size_bytes": len(data),
        **structure,
        "ops": ops,
        "builtin_only": is_builtin_only(ops),
        "metadata_entries": entries,
        "edgecnn_metadata": edgecnn_metadata.to_dict() if edgecnn_metadata else None,
        "standard_metadata": standard,
        "associated_files": {name: len(content) for name, content in files.items()},
        "consistency": check_consistency(structure["inputs"], structure["outputs"], edgecnn_metadata, standard, files),
    }


def task_of_file(report: dict[str, Any]) -> str | None:
    """The file's task: edgecnn's metadata, else the standard metadata's model name (MediaPipe's
    writers name models after their task)."""
    if report.get("edgecnn_metadata"):
        return report["edgecnn_metadata"]["task"]
    name = ((report.get("standard_metadata") or {}).get("name") or "").replace(" ", "").lower()
    for task, task_name in TASK_NAMES.items():
        if name.startswith(task_name.lower()):
            return task
    return None


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
             "standard        " + _standard_line(report["standard_metadata"], report["associated_files"]),
             "consistency     " + _consistency_line(report["consistency"])]
    if "mediapipe" in report:
        mediapipe = report["mediapipe"]
        if not mediapipe["checked"]:
            answer = "not checked: " + mediapipe["reason"]
        else:
            answer = ("opens it" if mediapipe["opened"] else "refuses it: " + str(mediapipe["reason"])) \
                + f" (MediaPipe Tasks {mediapipe.get('mediapipe')}, {mediapipe['task']})"
        lines.append("mediapipe       " + answer)
    return "\n".join(lines)


def _standard_line(standard: dict[str, Any] | None, files: dict[str, int]) -> str:
    """One line per part of the TFLite Model Metadata that a device task reads."""
    if standard is None:
        return "no TFLite Model Metadata (MediaPipe Tasks refuses float inputs and detectors without it)"
    subgraph = (standard.get("subgraphs") or [{}])[0]
    parts = [f"{standard['name']!r} (min parser {standard['min_parser_version']})"]
    for tensor in subgraph.get("inputs", []):
        for unit in tensor.get("process_units", []):
            if unit["type"] == "NormalizationOptions":
                parts.append(f"input {tensor['name']}: (pixel - {unit['mean']}) / {unit['std']}")
    parts.append("outputs " + ", ".join(
        t["name"] + "".join(f" [{f['name']} {f['type']}]" for f in t.get("associated_files", []))
        for t in subgraph.get("outputs", [])))
    for name, custom in subgraph.get("custom_metadata", {}).items():
        summary = (f"{len(custom['anchors'])} anchors, {custom.get('num_classes')} classes"
                   if "anchors" in custom else ", ".join(f"{k} {v}" for k, v in custom.items()))
        parts.append(f"{name}: {summary}")
    if files:
        parts.append("files " + ", ".join(f"{name} ({size:,} bytes)" for name, size in files.items()))
    return "\n                ".join(parts)


def _consistency_line(consistency: dict[str, Any]) -> str:
    if consistency["ok"]:
        names = dict.fromkeys(check["check"] for check in consistency["checks"])
        return f"ok ({len(consistency['checks'])} checks: {', '.join(names) or 'nothing to check'})"
    return "\n                ".join(f"PROBLEM {line}" for line in problems(consistency)) \
        + "\n                (MediaPipe Tasks fails on such a file; convert it again with edgecnn convert)"


def _edgecnn_line(metadata: dict[str, Any]) -> str:
    spec = metadata["input"]
    normalization = spec["normalization"]
    source = f" ({metadata['label_source']})" if metadata.get("label_source") else ""
    return (f"task {metadata['task']}, target {metadata['target']}, {len(metadata['labels'] or [])} labels{source}, "
            f"input {'x'.join(str(d) for d in spec['size'])} {spec['color']} = pixel * {normalization['scale']:.6g} "
            f"+ {normalization['offset']:g}, schema version {metadata['schema_version']}")
