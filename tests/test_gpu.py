"""Ops on LiteRT's GPU accelerator, checked by running there (SwiftShader Vulkan where the
machine has no GPU): what the layer library promises about GPU-friendliness must hold."""

from __future__ import annotations

import numpy as np
import pytest

import edgecnn
from edgecnn._keras import keras
from edgecnn.export.convert import convert
from edgecnn.layers import ACTIVATIONS, LocalResponseNormalization, conv_bn_act


def _run(gpu, model: keras.Model, rng, target: str = "fp32"):
    x = rng.uniform(size=(1, *model.input_shape[1:])).astype(np.float32)
    result = gpu(convert(model, target), [x])
    assert result.available, result.error
    return result, model(x, training=False)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_runs_fully_on_the_gpu(gpu, activation, rng):
    inputs = keras.Input((16, 16, 8))
    model = keras.Model(inputs, conv_bn_act(inputs, 8, 3, 1, 1, activation, name="block"))
    result, expected = _run(gpu, model, rng)
    assert result.fully_accelerated
    np.testing.assert_allclose(result.outputs[0], expected.numpy(), atol=1e-3)


def test_lrn_conv_form_runs_on_gpu_and_builtin_lrn_does_not(gpu, rng):
    inputs = keras.Input((16, 16, 16))
    conv_form = keras.Model(inputs, LocalResponseNormalization(alpha=0.01, implementation="conv")(inputs))
    builtin = keras.Model(inputs, LocalResponseNormalization(alpha=0.01, implementation="builtin")(inputs))
    result, expected = _run(gpu, conv_form, rng)
    assert result.fully_accelerated
    np.testing.assert_allclose(result.outputs[0], expected.numpy(), atol=1e-3)
    # The control: the delegate really rejects LOCAL_RESPONSE_NORMALIZATION, so the check can fail.
    assert _run(gpu, builtin, rng)[0].fully_accelerated is False


TINY = [name for name in edgecnn.list_models("classification", include_test_variants=True) if name.startswith("test_")]


@pytest.mark.parametrize("name", TINY)
def test_fp16_tiny_zoo_runs_fully_on_the_gpu(gpu, name, rng):
    # every model's fp32 file is checked on the GPU in test_export
    result, expected = _run(gpu, edgecnn.create_model(name), rng, target="fp16")
    assert result.fully_accelerated
    np.testing.assert_allclose(result.outputs[0], expected.numpy(), atol=2e-2)


def test_gpu_report_names_only_the_rejected_op_in_an_fp16_file(gpu, rng):
    """An fp16 file's weights reach CONV_2D through DEQUANTIZE: the per-op probe must keep them
    constant, or it blames CONV_2D (which runs on the GPU) beside the op really rejected."""
    from edgecnn.export.report import gpu_check
    from edgecnn.runtime.engine import load_engine

    inputs = keras.Input((16, 16, 8))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    model = keras.Model(inputs, LocalResponseNormalization(alpha=0.01, implementation="builtin")(x))
    data = convert(model, "fp16")
    engine = load_engine(data)
    check = gpu_check(data, engine, rng.uniform(size=(1, 16, 16, 8)).astype(np.float32), None)
    assert check["fully_accelerated"] is False
    assert check["unsupported_ops"] == ["LOCAL_RESPONSE_NORMALIZATION"]
