"""The model registry, a leaf: family files register short builders here, one per variant
(``resnet18``, ``vgg16_bn``), that call the family's private ``_create_*`` function; the
overrides a user may pass are that function's keyword-only parameters. Lookups that load every
family first (``create_model``, ``list_models``) live in ``edgecnn.models.zoo``, above the families.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from edgecnn.errors import EdgeCNNError, did_you_mean

TASKS = ("classification", "detection", "segmentation", "instance_segmentation", "generation")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    task: str
    builder: Callable
    options: tuple[str, ...]  # the overrides create_model accepts
    default_input_shape: tuple[int, int, int]
    min_input_size: int  # smallest height/width the architecture can take
    description: str

    @property
    def is_test_variant(self) -> bool:
        return self.name.startswith("test_")


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    task: str,
    create: Callable,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    min_input_size: int = 32,
) -> Callable[[Callable], Callable]:
    """Decorator for a variant builder. ``create`` is the family's ``_create_*`` function
    whose keyword-only parameters are the accepted overrides."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    options = tuple(
        p.name for p in inspect.signature(create).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    )

    def decorator(builder: Callable) -> Callable:
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[builder.__name__] = ModelEntry(
            name=builder.__name__,
            task=task,
            builder=builder,
            options=options,
            default_input_shape=tuple(input_shape),
            min_input_size=min_input_size,
            description=doc[0] if doc else "",
        )
        return builder

    return decorator


def registered(name: str) -> ModelEntry:
    """The entry of ``name`` among the families imported so far. ``zoo.get_entry`` imports them
    all first; a family looks up its backbone with this at build time, when the zoo is loaded."""
    if name not in _REGISTRY:
        raise EdgeCNNError(f"Unknown model '{name}'.{did_you_mean(name, _REGISTRY)}", "Run `edgecnn models` to see the zoo.")
    return _REGISTRY[name]


def entries() -> list[ModelEntry]:
    """Every registered entry, in registration order."""
    return list(_REGISTRY.values())
