"""Shared fixtures. Tests use tiny inputs and widths; full-size cases are marked slow."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def tiny_overrides(name: str) -> dict:
    """Overrides that make any classification model small and fast."""
    overrides = {"width_multiplier": 1 / 16, "num_classes": 10}
    overrides["input_shape"] = (67, 67, 3) if name.startswith("alexnet") else (32, 32, 3)
    if name.startswith(("alexnet", "vgg")):
        overrides["fc_units"] = 256
    return overrides
