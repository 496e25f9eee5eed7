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
import os
import struct
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.flatbuffer_fields import metadata_buffer

METADATA_NAME = "edgecnn"
# 2: the typed schema (ModelMetadata); version-1 documents have the same fields and read alike
SCHEMA_VERSION = 2
TASKS = ("classification", "detection", "segmentation", "instance_segmentation", "generation")
# where a file's labels came from (ModelMetadata.label_source); "none": classes are named by index
LABEL_SOURCES = ("argument", "training run", "none")


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
    content: str = "picture"  # or "edges": the Canny edge drawing of a picture (runtime/edges.py)


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
    label_source: str | None = None  # one of LABEL_SOURCES; None in files of earlier versions
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


def class_count(metadata: ModelMetadata | None) -> int | None:
    """How many classes the file's outputs score, which is how many labels it needs: a
    classifier's outputs, a detector's scores (background not counted), a segmenter's channels;
    None for generators and files without metadata."""
    if metadata is None:
        return None
    if metadata.task in ("detection", "instance_segmentation"):
        count = (metadata.decoding or {}).get("num_classes")
        return int(count) if count else None
    if metadata.task in ("classification", "segmentation") and metadata.outputs:
        return int(metadata.outputs[0].shape[-1])
    return None


def label_mismatch(labels, metadata: ModelMetadata | None) -> str | None:
    """Why ``labels`` cannot name the classes of ``metadata``'s outputs, or None when they can."""
    count = class_count(metadata)
    if not labels:
        return None
    if count is None:
        task = metadata.task if metadata is not None else "unknown"
        return f"{len(labels)} labels given, but the model's task ({task}) has no class outputs"
    if len(labels) != count:
        return f"{len(labels)} labels for a model whose outputs score {count} classes"
    return None


def labels_of(metadata: ModelMetadata | None, given: list[str] | None = None) -> list[str] | None:
    """The class names a pipeline uses: ``given`` by the caller, else the file's, else None
    (classes named by index). Given labels of the wrong count are an error; a file whose own
    labels do not match its outputs (made by another tool) opens with a warning and index names."""
    if given:
        count = class_count(metadata)
        if count is not None and len(given) != count:
            raise EdgeCNNError(f"The labels given do not fit this model: {label_mismatch(given, metadata)}.",
                               f"Give exactly {count} class names, one per line, in the model's class order "
                               "(`edgecnn inspect MODEL` shows its outputs).")
        return list(given)
    if metadata is None or not metadata.labels:
        return None
    problem = label_mismatch(metadata.labels, metadata)
    if problem:
        warnings.warn(f"The file's labels do not fit its outputs ({problem}): classes are named by index. "
                      "Convert it again with `edgecnn convert --labels FILE`, or pass labels to the pipeline.",
                      stacklevel=3)
        return None
    return list(metadata.labels)


def parse_labels(text: str) -> list[str]:
    """Class names from a label file's text, one per line (blank lines ignored)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_labels(path: str | os.PathLike) -> list[str]:
    """Class names from a text file, one per line (blank lines ignored)."""
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise EdgeCNNError(f"Labels file '{file}' does not exist.", "Give a text file with one class name per line.")
    return parse_labels(file.read_text(encoding="utf-8"))


def label_of(labels: tuple[str, ...] | list[str] | None, index: int) -> str:
    """The class name of ``index``, or the index itself where there is none."""
    return labels[index] if labels and 0 <= index < len(labels) else str(index)


def _known(cls, document: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in document.items() if key in names}


def read_metadata(data: bytes) -> ModelMetadata | None:
    """The edgecnn metadata of a model, or None for files that carry none (third-party models).
    Read straight from the flatbuffer (see ``flatbuffer_fields``), so it needs neither TensorFlow
    nor ai-edge-litert's schema module: an old Pi image with only tflite_runtime reads it too."""
    try:
        raw = metadata_buffer(data, METADATA_NAME)
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


