"""The zoo: ``create_model(name, **overrides)``, ``list_models(task)`` and the lookups behind them,
which import every family module first (registering its variants in ``registry``). Done on first
use, so that ``import edgecnn`` does not import TensorFlow."""

from __future__ import annotations

import importlib

from edgecnn.errors import EdgeCNNError, did_you_mean
from edgecnn.models.registry import TASKS, ModelEntry, entries, registered

__all__ = ["TASKS", "create_model", "family_of", "get_entry", "list_models"]


# the family modules, in listing order: the textbook's chronology
FAMILIES = ("alexnet", "vgg", "googlenet", "resnet", "edgenet", "rcnn", "fast_rcnn", "faster_rcnn", "yolo", "fcn",
            "unet", "segnet", "mask_rcnn", "pix2pix", "cyclegan")


def _load_families() -> None:
    """Import every family module, which registers its variants; done on first use, so that
    `import edgecnn` does not import TensorFlow."""
    for family in FAMILIES:
        importlib.import_module(f"edgecnn.models.{family}")


def get_entry(name: str) -> ModelEntry:
    _load_families()
    return registered(name)


def family_of(name: str) -> str:
    """The family a zoo model belongs to: its model file's name (``yolo``, ``faster_rcnn``, ...)."""
    return get_entry(name).builder.__module__.rsplit(".", 1)[-1]


def list_models(task: str | None = None, include_test_variants: bool = False) -> list[str]:
    """Names of the registered models, optionally of one task, sorted by family order.
    The tiny ``test_*`` variants, meant for fast tests, are left out unless asked for."""
    if task is not None and task not in TASKS:
        raise EdgeCNNError(f"Unknown task '{task}'.{did_you_mean(task, TASKS)}", f"Choose one of: {', '.join(TASKS)}.")
    _load_families()
    return [
        entry.name
        for entry in entries()
        if (task is None or entry.task == task) and (include_test_variants or not entry.is_test_variant)
    ]


def _check_overrides(entry: ModelEntry, overrides: dict) -> None:
    unknown = [key for key in overrides if key not in entry.options]
    if unknown:
        key = unknown[0]
        raise EdgeCNNError(
            f"Model '{entry.name}' has no option '{key}'.{did_you_mean(key, entry.options)}",
            f"Its options are: {', '.join(entry.options)}.",
        )
    num_classes = overrides.get("num_classes")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise EdgeCNNError(f"num_classes must be a positive integer, got {num_classes!r}.")
    input_shape = overrides.get("input_shape")
    if input_shape is not None:
        if len(tuple(input_shape)) != 3 or not all(isinstance(d, int) and d > 0 for d in input_shape):
            raise EdgeCNNError(
                f"input_shape must be three positive integers (height, width, channels), got {input_shape!r}."
            )
        height, width, _ = input_shape
        if min(height, width) < entry.min_input_size:
            raise EdgeCNNError(
                f"Input {height}x{width} is too small for '{entry.name}': its layers need at least "
                f"{entry.min_input_size}x{entry.min_input_size}.",
                f"Use a larger input_shape (the default is {entry.default_input_shape}).",
            )


def create_model(name: str, weights: str | None = None, **overrides):
    """Build a registered model as a functional ``keras.Model``; ``weights``: ``imagenet`` or a
    Keras Applications weights file (``models.pretrained``; ``edgecnn.create_model`` also takes
    an edgecnn run's model file).

    Common overrides: ``num_classes``, ``input_shape`` (H, W, C), ``width_multiplier``,
    ``activation`` and ``features_only`` (return the multi-scale feature maps, strides 4 to 32,
    instead of logits, for use as a detection or segmentation backbone).
    """
    if weights is not None:
        return create_pretrained(name, weights, **overrides)[0]
    entry = get_entry(name)
    _check_overrides(entry, overrides)
    if "input_shape" in overrides:
        overrides["input_shape"] = tuple(overrides["input_shape"])
    return entry.builder(**overrides)


def create_pretrained(name: str, weights: str, **overrides) -> tuple:
    """``create_model`` with Keras Applications' ``weights``, and the names of the layers they filled."""
    from edgecnn.models.pretrained import build_pretrained

    entry = get_entry(name)
    _check_overrides(entry, overrides)
    if "input_shape" in overrides:
        overrides["input_shape"] = tuple(overrides["input_shape"])
    return build_pretrained(entry, weights, overrides)
