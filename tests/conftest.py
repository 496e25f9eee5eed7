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


@pytest.fixture(scope="session")
def gpu_runner():
    """``run_on_gpu`` when LiteRT's GPU accelerator can be created here (a real GPU, or the
    SwiftShader driver from deploy/software-gpu.sh), else None; fails instead where
    EDGECNN_REQUIRE_GPU=1 (CI sets it, so a broken set-up cannot pass as a skip)."""
    from edgecnn.runtime.gpu import run_on_gpu, use_software_gpu

    use_software_gpu()
    from edgecnn._keras import keras
    from edgecnn.export.convert import convert

    inputs = keras.Input((4, 4, 1))
    probe = convert(keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs)))
    result = run_on_gpu(probe, [np.zeros((1, 4, 4, 1), np.float32)])
    if not result.available:
        message = f"LiteRT GPU accelerator unavailable ({result.error}); run deploy/software-gpu.sh"
        if os.environ.get("EDGECNN_REQUIRE_GPU") == "1":
            pytest.fail(message)
        return None
    return run_on_gpu


@pytest.fixture
def gpu(gpu_runner):
    """Like ``gpu_runner`` for tests that are only about the GPU: skipped where there is none."""
    if gpu_runner is None:
        pytest.skip("LiteRT GPU accelerator unavailable; run deploy/software-gpu.sh")
    return gpu_runner
