"""Training recipes: YAML files with a typed, validated schema.

A recipe names the model (registry name + overrides), the data (a DATA spec), training
(optimizer, schedule, epochs, batch size, loss), optimization stages (pruning, QAT) and export
targets. Loading uses ``yaml.safe_load``; an unknown or mistyped key fails naming the key, the
file and the closest valid key; a wrong type names the expected type. ``--set a.b=value``
overrides any field, parsed as YAML and checked like the file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.errors import EdgeCNNError, closest_names, did_you_mean


@dataclass
class ModelSection:
    name: str = "test_vgg"
    overrides: dict[str, Any] = field(default_factory=dict)
    # starting weights: imagenet, a Keras Applications weights file, or an edgecnn model file
    # (a run's model.keras or checkpoint); none: random (training.weights)
    weights: str | None = None


@dataclass
class AugmentSection:
    flip: bool = False
    scale: float = 0.0  # random scale jitter, as a fraction (0.1 = +-10%)
    color: float = 0.0  # brightness/contrast jitter, as a fraction
    mosaic: float = 0.0  # detection: probability that a training image is a 2x2 mosaic of four
    close_mosaic: int = 0  # detection: the last epochs train without mosaic (on whole images, as evaluated)


@dataclass
class DataSection:
    train: str = "builtin:digits"
    val: str | None = None  # None: the held-out split of the training spec
    input_size: list[int] = field(default_factory=lambda: [32, 32, 3])
    augment: AugmentSection = field(default_factory=AugmentSection)
    limit: int | None = None  # use at most this many training (and validation) images
    edges: bool = False  # generation: the input is the Canny edges of each picture (edges -> photo)


@dataclass
class TrainingSection:
    optimizer: str = "adam"  # adam | sgd | adamw
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # cosine | constant | step
    epochs: int = 10
    batch_size: int = 32
    loss: str = "cross_entropy"  # classification: svm; segmentation: dice, cross_entropy+dice; generation: pix2pix, cyclegan
    weight_decay: float = 0.0
    seed: int = 0
    warmup_epochs: float = 0.0  # learning rate rises linearly from 0 over these epochs (cosine schedule)
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: off); validated and kept
    # fine-tuning: the layers the starting weights (model.weights) filled stay frozen, batch norm
    # in inference mode, for the first freeze_epochs (a "frozen" stage), then everything trains
    freeze_epochs: int = 0


@dataclass
class PruningSection:
    enabled: bool = False
    target_sparsity: float = 0.5
    schedule: str = "polynomial"  # polynomial | constant
    structure: str = "unstructured"  # unstructured | 2:4
    epochs: int = 2
    learning_rate: float = 1e-4


@dataclass
class QATSection:
    enabled: bool = False
    epochs: int = 2
    learning_rate: float = 1e-4
    # task: fine-tune with the training objective; distill (generators): with the L1 distance to
    # the float model's pictures, so QAT only learns to live with int8
    objective: str = "task"


@dataclass
class OptimizationSection:
    pruning: PruningSection = field(default_factory=PruningSection)
    qat: QATSection = field(default_factory=QATSection)


@dataclass
class ExportSection:
    targets: list[str] = field(default_factory=lambda: ["fp32"])
    calibration: str | None = None  # DATA spec; default: the training data


@dataclass
class EvaluationSection:
    # generation: a segmenter trained on the real pictures (.keras or .tflite; a path relative to
    # the working directory) that judges the generated ones (the FCN-score); skipped when absent
    judge: str | None = None


@dataclass
class Recipe:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    optimization: OptimizationSection = field(default_factory=OptimizationSection)
    export: ExportSection = field(default_factory=ExportSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    task: str = "classification"
    description: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PACKAGED_RECIPES = Path(__file__).resolve().parent.parent / "recipes"
# written by `edgecnn train` beside its models: the class names in the model's output order
RUN_LABELS = "labels.txt"

CHOICES = {
    "training.optimizer": ("adam", "adamw", "sgd"),
    "training.schedule": ("cosine", "constant", "step"),
    "training.loss": ("cross_entropy", "svm", "dice", "cross_entropy+dice", "pix2pix", "cyclegan"),
    "optimization.pruning.schedule": ("polynomial", "constant"),
    "optimization.pruning.structure": ("unstructured", "2:4"),
    "optimization.qat.objective": ("task", "distill"),
    "task": ("classification", "detection", "segmentation", "instance_segmentation", "generation"),
}


def _type_name(annotation) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _convert(value: Any, annotation, where: str, source: str) -> Any:
    """``value`` checked (and coerced where lossless, int -> float) against ``annotation``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where, source)
            except EdgeCNNError as error:
                errors.append(error)
        raise errors[0]
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise EdgeCNNError(f"'{where}' in {source} must be a mapping, got {type(value).__name__} {value!r}.")
        return _build(annotation, value, where, source)
    if origin is list:
        if not isinstance(value, list):
            raise EdgeCNNError(f"'{where}' in {source} must be a list, got {type(value).__name__} {value!r}.")
        (item,) = typing.get_args(annotation)
        return [_convert(v, item, f"{where}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise EdgeCNNError(f"'{where}' in {source} must be a mapping, got {type(value).__name__} {value!r}.")
        return dict(value)
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if annotation in (int, float) and isinstance(value, bool) or not isinstance(value, annotation):
        raise EdgeCNNError(
            f"'{where}' in {source} must be {_type_name(annotation)}, got {type(value).__name__} {value!r}."
        )
    choices = CHOICES.get(where)
    if choices and value not in choices:
        raise EdgeCNNError(f"'{where}' in {source} is '{value}'.{did_you_mean(str(value), choices)}",
                           f"Choose one of: {', '.join(choices)}.")
    return value


def _build(cls, data: dict, prefix: str, source: str):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            raise EdgeCNNError(
                f"Unknown key '{where}' in {source}.{did_you_mean(str(key), names)}",
                f"Valid keys{' under ' + prefix if prefix else ''}: {', '.join(names)}.",
            )
    values = {key: _convert(value, hints[key], f"{prefix}.{key}" if prefix else key, source)
              for key, value in data.items()}
    return cls(**values)


def recipe_from_dict(data: dict, source: str = "the recipe") -> Recipe:
    if not isinstance(data, dict):
        raise EdgeCNNError(f"{source} must be a YAML mapping at the top level.")
    return _build(Recipe, data, "", source)


def apply_overrides(data: dict, assignments: list[str]) -> dict:
    """``key.sub=value`` assignments applied to the raw recipe mapping; values are YAML."""
    import copy

    import yaml

    data = copy.deepcopy(data)
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            raise EdgeCNNError(f"--set '{assignment}' is not key=value.", "Example: --set training.epochs=5")
        value = yaml.safe_load(raw) if raw else ""
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise EdgeCNNError(f"--set '{assignment}': '{part}' is not a section.")
        node[parts[-1]] = value
    return data


def list_recipes(task: str | None = None) -> list[dict]:
    """The packaged recipes: name, task, model and the one-line description of each."""
    import yaml

    found = []
    for path in sorted(PACKAGED_RECIPES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        entry = {"name": path.stem, "task": data.get("task", "classification"),
                 "model": (data.get("model") or {}).get("name"), "description": data.get("description", "")}
        if task is None or entry["task"] == task:
            found.append(entry)
    return found


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    import yaml

    path = Path(path)
    packaged = PACKAGED_RECIPES / f"{path.stem}.yaml"
    if not path.is_file() and path.parent == Path(".") and packaged.is_file():
        path = packaged  # a bare name: one of the recipes that ship with edgecnn
    if not path.is_file():
        near = closest_names(path.stem, (p.stem for p in PACKAGED_RECIPES.glob("*.yaml")))
        raise EdgeCNNError(f"Recipe '{path}' does not exist." + (f" Closest packaged recipes: {', '.join(near)}."
                                                                  if near else ""),
                           "Give a YAML file, or a packaged recipe by name (`edgecnn recipes` lists them).")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise EdgeCNNError(f"Recipe '{path}' is not valid YAML ({str(error).splitlines()[0]}).") from error
    data = apply_overrides(data, overrides or [])
    return recipe_from_dict(data, source=f"'{path}'" + (" (with --set)" if overrides else ""))
