"""Shared fixtures. Tests use tiny inputs and widths; full-size cases are marked slow."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# fewer glibc malloc arenas: TensorFlow's threads otherwise keep freed memory in many of them, and
# a worker that builds and converts hundreds of models grows past the machine's memory (read at
# start-up: the xdist workers, started after this, get it)
os.environ.setdefault("MALLOC_ARENA_MAX", "2")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module", autouse=True)
def _release_memory():
    """After each test module: Keras' global state cleared and freed memory returned to the
    system, so a worker's memory does not grow with every module it has run."""
    yield
    import gc
    import sys

    if "tf_keras" in sys.modules:
        sys.modules["tf_keras"].backend.clear_session()
    gc.collect()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:  # a libc without malloc_trim (musl)
            pass


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


class GpuCheckSkipped(UserWarning):
    """A test ran, but its GPU assertions did not: pytest's warning summary lists each one."""


def skip_gpu_check(what: str) -> None:
    """Say that ``what`` was not checked because no GPU accelerator is available here."""
    warnings.warn(GpuCheckSkipped(f"GPU check skipped ({what}): LiteRT's GPU accelerator is not available here; "
                                  "run deploy/software-gpu.sh"), stacklevel=2)


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that need the GPU accelerator carry the ``gpu`` marker (``-m "not gpu"`` leaves them
    out). Tests marked ``slow`` run only when the ``-m`` expression names ``slow`` (``-m slow``,
    ``-m "slow or not slow"``): any other selection, ``-m "not network"`` say, keeps them out, as
    the default run does."""
    for item in items:
        if "gpu" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.gpu)
    if "slow" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture
def gpu(gpu_runner):
    """Like ``gpu_runner`` for tests that are only about the GPU: skipped where there is none."""
    if gpu_runner is None:
        pytest.skip("LiteRT GPU accelerator unavailable; run deploy/software-gpu.sh")
    return gpu_runner


@pytest.fixture(scope="session")
def shapes_detector(tmp_path_factory) -> Path:
    """A YOLO of test size trained briefly on builtin:shapes (20 epochs, 600 images at 64x64,
    about a minute): weak (mAP@.5 about 0.1) but it finds things, so comparisons of detections
    between runtimes have detections to compare. Its folder holds the recipe, so `convert`
    takes calibration data from it."""
    import edgecnn
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    run = tmp_path_factory.mktemp("shapes_detector")
    edgecnn.train("shapes_yolo", run, overrides=[
        "training.epochs=20", "optimization.pruning.enabled=false", "optimization.qat.enabled=false",
        "model.overrides.width_multiplier=0.25", "model.overrides.neck_channels=32", "data.input_size=[64,64,3]",
        "data.limit=600", "training.learning_rate=0.005"])
    return run / "model.keras"
