"""Reading the standard TFLite Model Metadata (the "TFLITE_METADATA" entry that MediaPipe Tasks and
Android tooling read) and its associated files, with no TensorFlow, mediapipe or schema module:
field numbers from ``metadata_schema.fbs`` 1.5 and mediapipe's detector and segmenter option
schemas, read through ``flatbuffer_fields``. Used by `edgecnn inspect` and the tests; edgecnn's
pipelines read edgecnn's own entry.
"""

from __future__ import annotations

import io
import struct
import zipfile
from typing import Any

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.detection import anchor_points
from edgecnn.runtime.flatbuffer_fields import (field_reference, field_scalar, field_string, field_tables,
                                               metadata_buffer, reference, vector_bytes, vector_scalars)

STANDARD_METADATA_NAME = "TFLITE_METADATA"
DETECTOR_METADATA = "DETECTOR_METADATA"
SEGMENTER_METADATA = "SEGMENTER_METADATA"
# the model names MediaPipe's writers give each task (edgecnn's writer too); a file without
# edgecnn's metadata is known by them
TASK_NAMES = {"classification": "ImageClassifier", "detection": "ObjectDetector", "segmentation": "ImageSegmenter",
              "instance_segmentation": "InstanceSegmenter", "generation": "ImageToImage"}

FILE_TYPES = {0: "UNKNOWN", 1: "DESCRIPTIONS", 2: "TENSOR_AXIS_LABELS", 3: "TENSOR_VALUE_LABELS",
              4: "TENSOR_AXIS_SCORE_CALIBRATION", 5: "VOCABULARY", 6: "SCANN_INDEX_FILE"}
COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}
CONTENT_KINDS = {1: "FeatureProperties", 2: "ImageProperties", 3: "BoundingBoxProperties", 4: "AudioProperties"}
PROCESS_UNITS = {1: "NormalizationOptions", 2: "ScoreCalibrationOptions", 3: "ScoreThresholdingOptions",
                 4: "BertTokenizerOptions", 5: "SentencePieceTokenizerOptions", 6: "RegexTokenizerOptions"}
BOX_TYPES = {0: "UNKNOWN", 1: "BOUNDARIES", 2: "UPPER_LEFT", 3: "CENTER"}
COORDINATE_TYPES = {0: "RATIO", 1: "PIXEL"}
ACTIVATIONS = {0: "NONE", 1: "SIGMOID", 2: "SOFTMAX"}


def box_anchors(input_size: tuple[int, int], strides: tuple[int, ...]) -> np.ndarray:
    """(N, 4) x centre, y centre, width, height of each output row's anchor, relative to the
    input (0..1): the cell centre and the stride, in the order of the model's flattened outputs.
    With these, MediaPipe's fixed-anchor decoder turns the ``boxes_yxhw_stride`` output into
    boxes exactly as edgecnn's runtime does."""
    centres, point_strides = anchor_points(tuple(input_size), tuple(strides))
    height, width = input_size
    return np.stack([centres[:, 0] / width, centres[:, 1] / height, point_strides / width,
                     point_strides / height], 1).astype(np.float32)


def read_standard_metadata(data: bytes) -> dict[str, Any] | None:
    """The file's standard metadata as plain JSON types (None: the file has none); custom
    metadata edgecnn knows (DETECTOR_METADATA, SEGMENTER_METADATA) is decoded too."""
    try:
        raw = metadata_buffer(data, STANDARD_METADATA_NAME)
        return None if raw is None else _model_metadata(raw)
    except (struct.error, ValueError, RecursionError) as error:
        raise EdgeCNNError(f"The file's TFLite Model Metadata could not be read ({type(error).__name__}: {error}).",
                           "Write it again (edgecnn convert writes it for every target).") from error


def associated_files(data: bytes) -> dict[str, bytes]:
    """The files packed after the flatbuffer (a ZIP archive, as the standard tooling appends
    them); empty when there are none."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise EdgeCNNError(f"The files packed in the model could not be read ({error}).",
                           "Write the model's metadata again.") from error


def _model_metadata(raw: bytes) -> dict[str, Any]:
    if raw[4:8] != b"M001":
        raise ValueError(f"identifier {raw[4:8]!r}, expected b'M001'")
    root = reference(raw, 0)
    return {
        "name": field_string(raw, root, 0),
        "description": field_string(raw, root, 1),
        "version": field_string(raw, root, 2),
        "author": field_string(raw, root, 4),
        "license": field_string(raw, root, 5),
        "min_parser_version": field_string(raw, root, 7),
        "associated_files": [_file(raw, f) for f in field_tables(raw, root, 6)],
        "subgraphs": [_subgraph(raw, s) for s in field_tables(raw, root, 3)],
    }


def _subgraph(raw: bytes, table: int) -> dict[str, Any]:
    custom = {}
    for entry in field_tables(raw, table, 9):
        name = field_string(raw, entry, 0) or ""
        payload = field_reference(raw, entry, 1)
        data = vector_bytes(raw, payload) if payload is not None else b""
        custom[name] = _custom(name, data)
    return {
        "name": field_string(raw, table, 0),
        "description": field_string(raw, table, 1),
        "inputs": [_tensor(raw, t) for t in field_tables(raw, table, 2)],
        "outputs": [_tensor(raw, t) for t in field_tables(raw, table, 3)],
        "associated_files": [_file(raw, f) for f in field_tables(raw, table, 4)],
        "custom_metadata": custom,
    }


def _tensor(raw: bytes, table: int) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": field_string(raw, table, 0), "description": field_string(raw, table, 1)}
    content = field_reference(raw, table, 3)
    if content is not None:
        kind = field_scalar(raw, content, 0, "<B", 0)
        properties = field_reference(raw, content, 1)
        described: dict[str, Any] = {"type": CONTENT_KINDS.get(kind, f"UNKNOWN_{kind}")}
        if kind == 2 and properties is not None:
            described["color_space"] = COLOR_SPACES.get(field_scalar(raw, properties, 0, "<b", 0), "UNKNOWN")
        elif kind == 3 and properties is not None:
            index = field_reference(raw, properties, 0)
            described["index"] = vector_scalars(raw, index, "<I") if index is not None else None
            described["box_type"] = BOX_TYPES.get(field_scalar(raw, properties, 1, "<b", 0), "UNKNOWN")
            described["coordinate_type"] = COORDINATE_TYPES.get(field_scalar(raw, properties, 2, "<b", 0), "UNKNOWN")
        value_range = field_reference(raw, content, 2)
        if value_range is not None:
            described["range"] = [field_scalar(raw, value_range, k, "<i", 0) for k in (0, 1)]
        tensor["content"] = described
    units = []
    for unit in field_tables(raw, table, 4):
        kind = field_scalar(raw, unit, 0, "<B", 0)
        options = field_reference(raw, unit, 1)
        described = {"type": PROCESS_UNITS.get(kind, f"UNKNOWN_{kind}")}
        if kind == 1 and options is not None:
            mean, std = field_reference(raw, options, 0), field_reference(raw, options, 1)
            described["mean"] = vector_scalars(raw, mean, "<f") if mean is not None else []
            described["std"] = vector_scalars(raw, std, "<f") if std is not None else []
        elif kind == 3 and options is not None:
            described["global_score_threshold"] = field_scalar(raw, options, 0, "<f", 0.0)
        units.append(described)
    tensor["process_units"] = units
    stats = field_reference(raw, table, 5)
    if stats is not None:
        high, low = field_reference(raw, stats, 0), field_reference(raw, stats, 1)
        tensor["stats"] = {"max": vector_scalars(raw, high, "<f") if high is not None else [],
                           "min": vector_scalars(raw, low, "<f") if low is not None else []}
    tensor["associated_files"] = [_file(raw, f) for f in field_tables(raw, table, 6)]
    return tensor


def _file(raw: bytes, table: int) -> dict[str, Any]:
    return {"name": field_string(raw, table, 0), "description": field_string(raw, table, 1),
            "type": FILE_TYPES.get(field_scalar(raw, table, 2, "<b", 0), "UNKNOWN")}


def _custom(name: str, data: bytes) -> dict[str, Any]:
    if name == DETECTOR_METADATA and len(data) >= 8:
        return _detector_options(data)
    if name == SEGMENTER_METADATA and len(data) >= 8:
        root = reference(data, 0)
        return {"activation": ACTIVATIONS.get(field_scalar(data, root, 0, "<b", 0), "UNKNOWN"),
                "min_parser_version": field_string(data, root, 1)}
    return {"bytes": len(data)}


def _detector_options(data: bytes) -> dict[str, Any]:
    root = reference(data, 0)
    anchors = []
    ssd = field_reference(data, root, 1)
    fixed = field_reference(data, ssd, 0) if ssd is not None else None
    for anchor in field_tables(data, fixed, 0) if fixed is not None else []:
        anchors.append([field_scalar(data, anchor, k, "<f", 0.0) for k in range(4)])  # x, y, w, h
    decoding = field_reference(data, root, 2)
    options: dict[str, Any] = {"min_parser_version": field_string(data, root, 0), "anchors": anchors}
    if decoding is not None:
        names = ("num_classes", "num_boxes", "num_coords", "keypoint_coord_offset", "num_keypoints",
                 "num_values_per_keypoint")
        options.update({key: field_scalar(data, decoding, k, "<i", 0) for k, key in enumerate(names)})
        options.update({key: field_scalar(data, decoding, 6 + k, "<f", 0.0)
                        for k, key in enumerate(("x_scale", "y_scale", "w_scale", "h_scale"))})
        options["apply_exponential_on_box_size"] = bool(field_scalar(data, decoding, 10, "<B", 0))
        options["sigmoid_score"] = bool(field_scalar(data, decoding, 11, "<B", 0))
    return options
