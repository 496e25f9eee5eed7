"""Does a .tflite file agree with itself? What a device task reads from the metadata, checked
against the tensors it will meet: label lists against the class axis of the outputs they name
(MediaPipe aborts at the first frame when they differ), the input normalization in the standard
metadata against edgecnn's and the input tensor, and a detector's anchors against its output rows.
Pure checks over parts already read from the file (``inspection.inspect_model`` reads them);
`edgecnn convert` refuses to write a file that fails one, `edgecnn inspect` flags it.
"""

from __future__ import annotations

from typing import Any

from edgecnn.runtime.metadata import ModelMetadata, class_count, label_mismatch, parse_labels
from edgecnn.runtime.standard_metadata import DETECTOR_METADATA

AXIS_LABELS = "TENSOR_AXIS_LABELS"


def check_consistency(inputs: list[dict], outputs: list[dict], metadata: ModelMetadata | None,
                      standard: dict[str, Any] | None, files: dict[str, bytes]) -> dict[str, Any]:
    """``inputs``/``outputs``: the file's tensors (name, shape, dtype) in file order; ``standard``:
    the decoded standard metadata; ``files``: the packed associated files. Returns ``ok`` and one
    entry per check made (``check``, ``ok``, ``detail``)."""
    subgraph = ((standard or {}).get("subgraphs") or [{}])[0]
    checks = [*_label_checks(outputs, metadata, subgraph, files), *_input_checks(inputs, metadata, subgraph),
              *_anchor_checks(outputs, subgraph)]
    return {"ok": all(check["ok"] for check in checks), "checks": checks}


def problems(consistency: dict[str, Any]) -> list[str]:
    """The failed checks' details."""
    return [f"{check['check']}: {check['detail']}" for check in consistency["checks"] if not check["ok"]]


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "ok": bool(ok), "detail": detail}


def _label_checks(outputs: list[dict], metadata: ModelMetadata | None, subgraph: dict, files: dict[str, bytes]):
    count = class_count(metadata)
    if metadata is not None and metadata.labels:
        problem = label_mismatch(metadata.labels, metadata)
        yield _check("labels", problem is None,
                     problem or f"{len(metadata.labels)} labels in edgecnn's metadata for {count} classes")
    elif metadata is not None and count is not None:
        yield _check("labels", True, f"no labels in edgecnn's metadata: its {count} classes are named by index")
    for tensor, described in zip(outputs, subgraph.get("outputs") or []):
        for associated in described.get("associated_files") or []:
            if associated.get("type") != AXIS_LABELS:
                continue
            name, axis = associated.get("name"), int(tensor["shape"][-1]) if tensor["shape"] else 0
            where = f"output '{described.get('name')}' ({axis} classes on its last axis)"
            if name not in files:
                yield _check("labels", False, f"{where} names label file '{name}', which is not packed in the file")
                continue
            lines = parse_labels(files[name].decode("utf-8", errors="replace"))
            yield _check("labels", len(lines) == axis, f"'{name}' holds {len(lines)} labels for {where}")
            if metadata is not None and metadata.labels and lines != list(metadata.labels):
                yield _check("labels", False, f"'{name}' differs from the labels in edgecnn's metadata")


def _input_checks(inputs: list[dict], metadata: ModelMetadata | None, subgraph: dict):
    if not inputs:
        return
    shape = [int(d) for d in inputs[0]["shape"]]
    if metadata is not None:
        spec = metadata.input
        yield _check("input", list(spec.size) == shape[1:],
                     f"edgecnn's metadata says {list(spec.size)}, the input tensor is {shape}")
        channels = {"RGB": 3, "GRAY": 1}.get(spec.color)
        if channels is not None and shape:
            yield _check("input", shape[-1] == channels, f"colour {spec.color} for an input of {shape[-1]} channels")
    described = (subgraph.get("inputs") or [{}])[0]
    for unit in described.get("process_units") or []:
        if unit.get("type") != "NormalizationOptions":
            continue
        mean, std = list(unit.get("mean") or []), list(unit.get("std") or [])
        if len(mean) != 1 or len(std) != 1 or std[0] == 0:
            yield _check("normalization", False, f"standard metadata mean {mean}, std {std}: MediaPipe needs one "
                                                 "non-zero mean and std for all channels")
            continue
        if metadata is None:
            continue
        scale, offset = metadata.normalization.scale, metadata.normalization.offset
        # (pixel - mean) / std must equal pixel * scale + offset for every pixel
        agrees = abs(1 / std[0] - scale) <= 1e-6 * max(1.0, abs(scale)) + 1e-9 \
            and abs(-mean[0] / std[0] - offset) <= 1e-5 * max(1.0, abs(offset))
        yield _check("normalization", agrees, f"standard metadata (pixel - {mean[0]:g}) / {std[0]:g}, edgecnn's "
                                              f"pixel * {scale:.6g} + {offset:g}")


def _anchor_checks(outputs: list[dict], subgraph: dict):
    options = (subgraph.get("custom_metadata") or {}).get(DETECTOR_METADATA)
    if not options or "anchors" not in options:
        return
    anchors, boxes = len(options["anchors"]), int(options.get("num_boxes") or 0)
    yield _check("anchors", anchors == boxes, f"{anchors} anchors, num_boxes {boxes}")
    described = subgraph.get("outputs") or []
    for tensor, info in zip(outputs, described):
        kind = (info.get("content") or {}).get("type")
        rows = int(tensor["shape"][-2]) if len(tensor["shape"]) >= 2 else 0
        last = int(tensor["shape"][-1]) if tensor["shape"] else 0
        if kind == "BoundingBoxProperties":
            yield _check("anchors", rows == anchors and last == int(options.get("num_coords") or 0),
                         f"{anchors} anchors and {options.get('num_coords')} coordinates for box output "
                         f"'{info.get('name')}' of shape {tensor['shape']}")
        elif kind == "FeatureProperties":
            yield _check("anchors", rows == anchors and last == int(options.get("num_classes") or 0),
                         f"{anchors} anchors and {options.get('num_classes')} classes for score output "
                         f"'{info.get('name')}' of shape {tensor['shape']}")
