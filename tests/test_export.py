"""Every classification model converts to an fp32 .tflite with builtin ops only and matches
Keras within 1e-4 when run through the device runtime (ai-edge-litert)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_overrides

import edgecnn
from edgecnn._keras import keras
from edgecnn.errors import EdgeCNNError
from edgecnn.export.convert import convert
from edgecnn.runtime import load_engine
from edgecnn.runtime.modelfile import is_builtin_only, op_histogram

CLASSIFIERS = edgecnn.list_models("classification")


def _assert_exports_with_parity(model: keras.Model, rng: np.random.Generator, samples: int = 2) -> dict:
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
    return ops


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_tiny_variant_exports_with_parity(name, rng):
    _assert_exports_with_parity(edgecnn.create_model(name, **tiny_overrides(name)), rng)
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
    results = sorted(engine(x), key=lambda a: -a.shape[1])
    for result, expected in zip(results, model(x, training=False)):
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
