"""Magnitude pruning (tensorflow-model-optimization) as a transformation of a finished model.

``prune(model, PruningConfig(...))`` wraps every prunable layer (convolutions and dense layers)
and skips the rest with a logged reason; train it with ``pruning_callbacks()``; ``strip(model)``
removes the wrappers before export. ``structure="2:4"`` keeps at most two non-zeros in every
block of four weights along the input channels, the pattern sparse kernels accelerate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError

log = logging.getLogger("edgecnn.pruning")

SCHEDULES = ("polynomial", "constant")
STRUCTURES = ("unstructured", "2:4")


@dataclass(frozen=True)
class PruningConfig:
    target_sparsity: float = 0.5
    schedule: str = "polynomial"  # polynomial decay from initial_sparsity, or constant
    structure: str = "unstructured"  # or "2:4" (target_sparsity is then 0.5 by construction)
    initial_sparsity: float = 0.0
    begin_step: int = 0
    end_step: int = 1000
    frequency: int = 100

    def __post_init__(self) -> None:
        if not 0.0 <= self.target_sparsity < 1.0:
            raise EdgeCNNError(f"target_sparsity must be in [0, 1), got {self.target_sparsity}.")
        if self.schedule not in SCHEDULES:
            raise EdgeCNNError(f"Unknown pruning schedule '{self.schedule}'.", f"Choose one of: {', '.join(SCHEDULES)}.")
        if self.structure not in STRUCTURES:
            raise EdgeCNNError(f"Unknown pruning structure '{self.structure}'.",
                               f"Choose one of: {', '.join(STRUCTURES)}.")
        if self.end_step <= self.begin_step:
            raise EdgeCNNError(f"end_step ({self.end_step}) must come after begin_step ({self.begin_step}).")


def _tfmot():
    import tensorflow_model_optimization as tfmot

    return tfmot


def _schedule(config: PruningConfig):
    sparsity = _tfmot().sparsity.keras
    if config.schedule == "constant" or config.structure == "2:4":
        target = 0.5 if config.structure == "2:4" else config.target_sparsity
        return sparsity.ConstantSparsity(target, config.begin_step, config.end_step, config.frequency)
    return sparsity.PolynomialDecay(config.initial_sparsity, config.target_sparsity, config.begin_step,
                                    config.end_step, frequency=config.frequency)


def _skip_reason(layer, structure: str) -> str | None:
    """Why ``layer`` is left unpruned, or None when it is pruned."""
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    if not layer.trainable_weights:
        return "no weights"
    kind = type(layer).__name__
    if kind not in ("Conv2D", "Conv2DTranspose", "Dense"):
        return f"{kind} weights are not pruned (only convolution and dense kernels are)"
    if not PruneRegistry.supports(layer):
        return "not supported by tensorflow-model-optimization"
    if structure == "2:4":
        if kind == "Conv2DTranspose":
            return "2:4 sparsity is for Conv2D and Dense kernels (the layout sparse kernels accelerate)"
        fan_in = layer.kernel.shape[-2]
        if fan_in % 4:
            return f"2:4 sparsity needs input channels divisible by 4, this layer has {fan_in}"
    return None


def prune(model, config: PruningConfig | None = None):
    """A copy of ``model`` with its prunable layers wrapped for magnitude pruning."""
    from edgecnn._keras import keras

    config = config or PruningConfig()
    sparsity = _tfmot().sparsity.keras
    schedule = _schedule(config)
    pruned, skipped = [], []

    def wrap(layer):
        reason = _skip_reason(layer, config.structure)
        if reason:
            if layer.weights:
                skipped.append((layer.name, reason))
            return layer.__class__.from_config(layer.get_config())
        pruned.append(layer.name)
        extra = {"sparsity_m_by_n": (2, 4)} if config.structure == "2:4" else {}
        return sparsity.prune_low_magnitude(layer.__class__.from_config(layer.get_config()),
                                            pruning_schedule=schedule, **extra)

    with sparsity.prune_scope():
        clone = keras.models.clone_model(model, clone_function=wrap)
    clone.set_weights(_weights_in_clone_order(model, clone))
    for name, reason in skipped:
        log.info("not pruning %s: %s", name, reason)
    if not pruned:
        raise EdgeCNNError(f"Model '{model.name}' has no prunable layers.", "Pruning needs convolution or dense layers.")
    log.info("pruning %d layers to %.0f%% %s sparsity", len(pruned), 100 * (0.5 if config.structure == "2:4"
             else config.target_sparsity), config.structure)
    return clone


def _weights_in_clone_order(model, clone) -> list[np.ndarray]:
    """The original weights placed into the clone's (wrapped) weight list by variable name."""
    source = {}
    for layer in model.layers:
        for weight in layer.weights:
            source[(layer.name, weight.name.split("/")[-1].split(":")[0])] = weight.numpy()
    values = []
    for layer in clone.layers:
        inner = getattr(layer, "layer", layer)
        for weight in layer.weights:
            key = (inner.name, weight.name.split("/")[-1].split(":")[0])
            values.append(source.get(key, weight.numpy()))
    return values


def pruning_callbacks(log_dir: str | None = None) -> list:
    sparsity = _tfmot().sparsity.keras
    callbacks = [sparsity.UpdatePruningStep()]
    if log_dir:
        callbacks.append(sparsity.PruningSummaries(log_dir=log_dir))
    return callbacks


def strip(model):
    """The model without pruning wrappers (the zeros stay in the kernels)."""
    return _tfmot().sparsity.keras.strip_pruning(model)


def kernel_sparsity(model) -> dict[str, float]:
    """Fraction of exact zeros in each convolution/dense kernel."""
    result = {}
    for layer in model.layers:
        kernel = getattr(getattr(layer, "layer", layer), "kernel", None)
        if kernel is not None:
            values = kernel.numpy()
            result[layer.name] = float(np.mean(values == 0))
    return result


def is_2_4_sparse(kernel: np.ndarray) -> bool:
    """Every block of 4 consecutive input-channel weights has at most 2 non-zeros."""
    fan_in = kernel.shape[-2]
    if fan_in % 4:
        return False
    moved = np.moveaxis(kernel, -2, -1).reshape(-1, fan_in // 4, 4)
    return bool(np.all(np.count_nonzero(moved, axis=-1) <= 2))
