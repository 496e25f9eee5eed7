"""Every classification model converts to an fp32 .tflite with builtin ops only and matches
Keras within 1e-4 when run through the device runtime (ai-edge-litert)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import skip_gpu_check, tiny_overrides

import edgecnn
from edgecnn._keras import keras
from edgecnn.errors import EdgeCNNError
from edgecnn.export.convert import convert
from edgecnn.runtime import load_engine
from edgecnn.runtime.modelfile import is_builtin_only, op_histogram

CLASSIFIERS = edgecnn.list_models("classification")


def _assert_exports_with_parity(model: keras.Model, rng: np.random.Generator, samples: int = 2, gpu=None) -> dict:
    """fp32 export: builtins only, static batch 1, Keras parity within 1e-4 on the CPU and, given
    a GPU runner, fully accelerated on LiteRT's GPU accelerator within 1e-3."""
    flatbuffer = convert(model, "fp32")
    ops = op_histogram(flatbuffer)
    assert is_builtin_only(ops), ops
    assert "LOCAL_RESPONSE_NORMALIZATION" not in ops  # the default LRN runs on GPU builtins
    engine = load_engine(flatbuffer)
    assert engine.backend == "litert"
    assert engine.inputs[0].shape == (1, *model.input_shape[1:])  # static batch of 1
    for _ in range(samples):
        x = rng.uniform(0, 1, size=(1, *model.input_shape[1:])).astype(np.float32)
        (result,) = engine(x)
        expected = model(x, training=False).numpy()
        assert np.abs(result - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
    if gpu is None:
        skip_gpu_check(f"{model.name} fully accelerated and within 1e-3 of Keras")
    else:
        on_gpu = gpu(flatbuffer, [x])
        assert on_gpu.fully_accelerated, on_gpu
        assert np.abs(on_gpu.outputs[0] - expected).max() <= 1e-3 * max(1.0, np.abs(expected).max())
    return ops


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_tiny_variant_exports_with_parity(name, rng, gpu_runner):
    _assert_exports_with_parity(edgecnn.create_model(name, **tiny_overrides(name)), rng, gpu=gpu_runner)
    keras.backend.clear_session()


@pytest.mark.slow
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_full_size_model_exports_with_parity(name, rng):
    _assert_exports_with_parity(edgecnn.create_model(name), rng, samples=1)
    keras.backend.clear_session()


def test_feature_extractor_exports_every_scale(rng):
    model = edgecnn.create_model("test_resnet", features_only=True, input_shape=(64, 64, 3))
    engine = load_engine(convert(model))
    x = rng.uniform(size=(1, 64, 64, 3)).astype(np.float32)
    results = engine(x)
    expected_outputs = model(x, training=False)
    assert [r.shape for r in results] == [tuple(e.shape) for e in expected_outputs]  # the model's order
    for result, expected in zip(results, expected_outputs):
        np.testing.assert_allclose(result, expected.numpy(), atol=1e-4)


def test_int8_target_without_calibration_is_refused():
    with pytest.raises(EdgeCNNError, match="calibration"):
        convert(edgecnn.create_model("test_vgg"), "int8")


def test_non_builtin_op_is_named():
    inputs = keras.Input((8, 8, 3))
    # tf.linalg.svd has no TFLite builtin: the converter must refuse, naming it
    outputs = keras.layers.Lambda(lambda t: __import__("tensorflow").linalg.svd(t[0, :, :, 0], compute_uv=False))(inputs)
    with pytest.raises(EdgeCNNError, match="(?i)svd"):
        convert(keras.Model(inputs, outputs))
