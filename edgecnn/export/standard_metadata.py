"""The standard TFLite Model Metadata (what MediaPipe Tasks, Android Studio's ML binding and
LiteRT's support library read), written from edgecnn's own ``ModelMetadata``.

Why not mediapipe's ``metadata_writers``: measured on 2026-11-30, mediapipe 1.2.2's writers fail
on import (its wheel lacks ``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version``),
0.10.21's pin protobuf < 5 and NumPy < 2 (TensorFlow 2.21 needs both newer), and every mediapipe
wheel requires ``opencv-contrib-python``, a second ``cv2`` beside the base install's
``opencv-python-headless`` (a 648 MB side environment, 16 s to install from a warm pip cache).
So the workstation writes the flatbuffer itself, field by field from the published schema
(``metadata_schema.fbs`` 1.5, ``object_detector_metadata_schema.fbs``,
``image_segmenter_metadata_schema.fbs``) with the ``flatbuffers`` package that ai-edge-litert
already needs; the suite checks the result with MediaPipe Tasks itself, in its own environment.

Associated files (label lists) are packed the standard way: a ZIP archive (stored, not
compressed) appended after the flatbuffer, which LiteRT ignores and MediaPipe reads.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from edgecnn.export.device_heads import HEADS
from edgecnn.runtime.metadata import ModelMetadata
from edgecnn.runtime.standard_metadata import DETECTOR_METADATA, SEGMENTER_METADATA, TASK_NAMES, box_anchors

METADATA_IDENTIFIER = b"M001"  # metadata_schema.fbs file_identifier
TASK_OPTIONS_IDENTIFIER = b"V001"  # object detector / image segmenter options
# schema enums
# AssociatedFileType TENSOR_AXIS_LABELS: what MediaPipe reads on classifier, segmenter and raw
# detector score outputs (measured: not TENSOR_VALUE_LABELS, which is for in-model NMS outputs)
LABELS_ON_AXIS = 2
COLOR_RGB, COLOR_GRAY = 1, 2  # ColorSpaceType
FEATURE_PROPERTIES, IMAGE_PROPERTIES, BOX_PROPERTIES = 1, 2, 3  # ContentProperties union
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union
BOUNDARIES, RATIO = 1, 0  # BoundingBoxType, CoordinateType
SOFTMAX_ACTIVATION = 2  # image_segmenter_metadata_schema Activation

LABEL_FILE = "labels.txt"
REGION_OUTPUT_DESCRIPTIONS = {
    "proposals": "region proposals: x1, y1, x2, y2 in input pixels, best first",
    "class_probabilities": "softmax over background (column 0) and the labels, per proposal",
    "box_deltas": "per proposal and label: (dx, dy, dw, dh) refinement, scaled by decoding.delta_weights",
    "svm_scores": "linear SVM score per class (column 0: background) of one warped region",
    "mask_probabilities": "per proposal p, rows p*M to (p+1)*M: an M x M mask per label (sigmoid) over the "
                          "proposal's box",
}


@dataclass
class TensorDescription:
    """What one tensor's TensorMetadata says (a small subset of the schema: what edgecnn's files need)."""

    name: str
    description: str
    content: str | None = None  # "feature", "image" or "boxes"
    color: int = 0
    value_range: tuple[int, int] | None = None
    normalization: tuple[float, float] | None = None  # mean, std
    stats: tuple[float, float] | None = None  # min, max
    labels: str | None = None  # associated label file (TENSOR_AXIS_LABELS)


@dataclass
class StandardMetadata:
    name: str
    description: str
    version: str
    inputs: list[TensorDescription]
    outputs: list[TensorDescription]
    custom: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def min_parser_version(self) -> str:
        return "1.5.0" if self.custom else "1.0.0"  # custom_metadata was added in schema 1.5.0


def describe(metadata: ModelMetadata, input_is_float: bool, output_order: Sequence[int] | None = None
             ) -> StandardMetadata:
    """The standard metadata of a converted file with edgecnn metadata ``metadata``.
    ``output_order[k]``: which of edgecnn's outputs (in ``metadata.outputs`` order) the file's
    k-th output tensor is (the converter may reorder them)."""
    from edgecnn.version import __version__

    task, spec = metadata.task, metadata.input
    scale, offset = spec.normalization.scale, spec.normalization.offset
    mean, std = 0.0 - offset / scale, 1.0 / scale  # (pixel - mean) / std == pixel * scale + offset
    image = TensorDescription(
        "image", f"{spec.color} image, {spec.size[1]}x{spec.size[0]}, pixel values normalized as (pixel - mean) / std",
        content="image", color=COLOR_GRAY if spec.color == "GRAY" else COLOR_RGB,
        normalization=(mean, std), stats=((0 - mean) / std, (255 - mean) / std) if input_is_float else None)
    files = {LABEL_FILE: "\n".join(metadata.labels).encode("utf-8")} if metadata.labels else {}
    labels = LABEL_FILE if files else None
    custom: dict[str, bytes] = {}
    kinds = [o.kind for o in metadata.outputs]
    outputs: list[TensorDescription] = []
    for kind in kinds:
        if kind in (HEADS["classification"], "logits"):
            outputs.append(TensorDescription("probability" if kind == HEADS["classification"] else "logits",
                                             f"class {kind}, one per label", content="feature", labels=labels))
        elif kind == HEADS["detection"]:
            outputs.append(TensorDescription(
                "location", "boxes per anchor: (dy, dx, h, w) in units of the anchor's stride, decoded with "
                "the DETECTOR_METADATA anchors", content="boxes"))
        elif kind == "box_log_distances":
            outputs.append(TensorDescription("location", "log-distances (left, top, right, bottom) in stride units"))
        elif kind == "class_logits" and task == "detection":
            outputs.append(TensorDescription("score", "class logits per anchor (sigmoid gives the score)",
                                             content="feature", labels=labels))
        elif kind in REGION_OUTPUT_DESCRIPTIONS:  # a two-stage detector: edgecnn's runtime decodes it
            outputs.append(TensorDescription(kind, REGION_OUTPUT_DESCRIPTIONS[kind]))
        elif kind == "class_logits":  # segmentation
            outputs.append(TensorDescription("segmentation_masks", "class logits per pixel", content="image",
                                             color=COLOR_GRAY, value_range=(1, 2), labels=labels))
        else:  # image (generation) and raw outputs
            low, high = metadata.outputs[len(outputs)].range or (0.0, 1.0)
            outputs.append(TensorDescription("image" if kind == "image" else kind, f"{kind} output", stats=(low, high)))
    if task == "detection" and HEADS["detection"] in kinds and metadata.decoding:
        custom[DETECTOR_METADATA] = _detector_options(metadata)
    if task == "segmentation":
        custom[SEGMENTER_METADATA] = _segmenter_options()
    if output_order is not None:
        outputs = [outputs[index] for index in output_order]
    name = metadata.source_model or f"edgecnn {task} model"
    return StandardMetadata(name=f"{TASK_NAMES[task]} {name}",
                            description=f"edgecnn {task} model ({metadata.target or 'tflite'}); labels and "
                                        "pre/post-processing as below. Made with edgecnn.",
                            version=metadata.edgecnn_version or __version__, inputs=[image], outputs=outputs,
                            custom=custom, files=files)


def serialize(description: StandardMetadata) -> bytes:
    """The metadata flatbuffer (identifier M001)."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    write = _Writer(builder)
    inputs = [write.tensor(t) for t in description.inputs]
    outputs = [write.tensor(t) for t in description.outputs]
    custom = [write.table([(0, "offset", builder.CreateString(name)), (1, "offset", write.aligned_bytes(data))])
              for name, data in description.custom.items()]
    subgraph_fields = [(2, "offset", write.offsets(inputs)), (3, "offset", write.offsets(outputs))]
    if custom:
        subgraph_fields.append((9, "offset", write.offsets(custom)))
    subgraph = write.table(subgraph_fields)
    root = write.table([(0, "offset", builder.CreateString(description.name)),
                        (1, "offset", builder.CreateString(description.description)),
                        (2, "offset", builder.CreateString(description.version)),
                        (3, "offset", write.offsets([subgraph])),
                        (4, "offset", builder.CreateString("edgecnn")),
                        (7, "offset", builder.CreateString(description.min_parser_version))])
    builder.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def associated_files_archive(files: dict[str, bytes]) -> bytes:
    """The ZIP archive appended after the flatbuffer (stored, not compressed, as the standard
    tooling writes it; entry names are what the AssociatedFile fields say)."""
    if not files:
        return b""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zipped:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
            zipped.writestr(info, data)
    return archive.getvalue()


def _detector_options(metadata: ModelMetadata) -> bytes:
    """DETECTOR_METADATA: one fixed anchor per output row (its cell centre and stride, relative to
    the input), and decoding options under which MediaPipe's raw-output decoder
    (centre = raw * anchor size + anchor centre, size = raw * anchor size, box format YXHW)
    reproduces the boxes edgecnn's runtime decodes."""
    import flatbuffers

    decoding = metadata.decoding or {}
    anchors = box_anchors(tuple(decoding["input_size"]), tuple(decoding["strides"]))
    builder = flatbuffers.Builder(1024 + 24 * len(anchors))
    write = _Writer(builder)
    anchor_tables = [write.table([(0, "float", float(x)), (1, "float", float(y)), (2, "float", float(w)),
                                  (3, "float", float(h))]) for x, y, w, h in anchors]
    fixed = write.table([(0, "offset", write.offsets(anchor_tables))])
    ssd = write.table([(0, "offset", fixed)])
    # num_values_per_keypoint: no keypoints, but MediaPipe's decoder checks it is 2 (a CHECK: 0 aborts)
    decode = write.table([(0, "int32", int(decoding["num_classes"])), (1, "int32", len(anchors)), (2, "int32", 4),
                          (5, "int32", 2), (6, "float", 1.0), (7, "float", 1.0), (8, "float", 1.0), (9, "float", 1.0),
                          (10, "bool", False), (11, "bool", True)])
    root = write.table([(0, "offset", builder.CreateString("1.5.0")), (1, "offset", ssd), (2, "offset", decode)])
    builder.Finish(root, file_identifier=TASK_OPTIONS_IDENTIFIER)
    return bytes(builder.Output())


def _segmenter_options() -> bytes:
    """SEGMENTER_METADATA: the outputs are logits; MediaPipe's confidence masks apply a softmax
    (its category mask, an argmax, is the same either way)."""
    import flatbuffers

    builder = flatbuffers.Builder(64)
    write = _Writer(builder)
    root = write.table([(0, "int8", SOFTMAX_ACTIVATION), (1, "offset", builder.CreateString("1.5.0"))])
    builder.Finish(root, file_identifier=TASK_OPTIONS_IDENTIFIER)
    return bytes(builder.Output())


class _Writer:
    """Tables and vectors by field number, on one ``flatbuffers.Builder`` (children first: a
    table's strings, vectors and sub-tables must exist before the table starts)."""

    # field kind -> the builder's method and the schema's default for it
    SLOTS = {"offset": ("PrependUOffsetTRelativeSlot", 0), "int8": ("PrependInt8Slot", 0),
             "uint8": ("PrependUint8Slot", 0), "bool": ("PrependBoolSlot", False),
             "int32": ("PrependInt32Slot", 0), "float": ("PrependFloat32Slot", 0.0)}

    def __init__(self, builder) -> None:
        self.builder = builder

    def table(self, fields: list[tuple[int, str, object]]) -> int:
        """A table of (field number, kind, value); a scalar equal to the schema's default (0,
        false) is left out, which readers take as that default."""
        builder = self.builder
        builder.StartObject(1 + max((slot for slot, _, _ in fields), default=0))
        for slot, kind, value in fields:
            method, default = self.SLOTS[kind]
            getattr(builder, method)(slot, value, default)
        return builder.EndObject()

    def offsets(self, offsets: list[int]) -> int:
        self.builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.builder.PrependUOffsetTRelative(offset)
        return self.builder.EndVector()

    def floats(self, values: Sequence[float]) -> int:
        self.builder.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.builder.PrependFloat32(float(value))
        return self.builder.EndVector()

    def uints(self, values: Sequence[int]) -> int:
        self.builder.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.builder.PrependUint32(int(value))
        return self.builder.EndVector()

    def aligned_bytes(self, data: bytes) -> int:
        """A [ubyte] vector aligned to 16 (CustomMetadata.data is ``force_align: 16``: it holds a
        nested flatbuffer)."""
        builder = self.builder
        builder.StartVector(1, len(data), 16)
        builder.head = builder.head - len(data)
        builder.Bytes[builder.head:builder.head + len(data)] = data
        return builder.EndVector()

    def tensor(self, tensor: TensorDescription) -> int:
        builder = self.builder
        name, description = builder.CreateString(tensor.name), builder.CreateString(tensor.description)
        content = None
        if tensor.content is not None:
            if tensor.content == "image":
                properties, kind = self.table([(0, "int8", tensor.color)]), IMAGE_PROPERTIES
            elif tensor.content == "boxes":
                # the order MediaPipe's own writer gives raw-output detectors: (top, left, bottom, right)
                index = self.uints([1, 0, 3, 2])
                properties, kind = self.table([(0, "offset", index), (1, "int8", BOUNDARIES),
                                               (2, "int8", RATIO)]), BOX_PROPERTIES
            else:
                properties, kind = self.table([]), FEATURE_PROPERTIES
            content_fields = [(0, "uint8", kind), (1, "offset", properties)]
            if tensor.value_range is not None:
                content_fields.append((2, "offset", self.table([(0, "int32", tensor.value_range[0]),
                                                                (1, "int32", tensor.value_range[1])])))
            content = self.table(content_fields)
        units = None
        if tensor.normalization is not None:
            mean, std = tensor.normalization
            options = self.table([(0, "offset", self.floats([mean])), (1, "offset", self.floats([std]))])
            units = self.offsets([self.table([(0, "uint8", NORMALIZATION_OPTIONS), (1, "offset", options)])])
        stats = None
        if tensor.stats is not None:
            low, high = tensor.stats
            stats = self.table([(0, "offset", self.floats([high])), (1, "offset", self.floats([low]))])
        files = None
        if tensor.labels is not None:
            label_file = self.table([(0, "offset", builder.CreateString(tensor.labels)),
                                     (1, "offset", builder.CreateString("class names, one per line")),
                                     (2, "int8", LABELS_ON_AXIS)])
            files = self.offsets([label_file])
        fields: list[tuple[int, str, object]] = [(0, "offset", name), (1, "offset", description)]
        for slot, value in ((3, content), (4, units), (5, stats), (6, files)):
            if value is not None:
                fields.append((slot, "offset", value))
        return self.table(fields)

