"""The layer library: every activation by name, Maxout, LRN, blocks; serialisation and export."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn._keras import keras, tf
from edgecnn.errors import EdgeCNNError
from edgecnn.export.convert import convert
from edgecnn.layers import (
    ACTIVATIONS,
    LocalResponseNormalization,
    Maxout,
    basic_block,
    bottleneck_block,
    conv_bn_act,
    inception_module,
    scale_channels,
)
from edgecnn.runtime import load_engine
from edgecnn.runtime.modelfile import is_builtin_only, op_histogram

# The TFLite op each activation must become (the GPU delegate runs all of these).
EXPECTED_OP = {
    "relu": "CONV_2D",  # fused into the convolution
    "leaky_relu": "LEAKY_RELU",
    "prelu": "PRELU",
    "elu": "ELU",
    "swish": "LOGISTIC",
    "sigmoid": "LOGISTIC",
    "tanh": "TANH",
    "maxout": "MAXIMUM",
    "linear": "CONV_2D",
}


def _block_model(activation: str, batch_norm: bool = True) -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = conv_bn_act(inputs, 8, 3, 1, 1, activation, batch_norm, name="block")
    return keras.Model(inputs, x)


def test_every_listed_activation_has_an_expected_op():
    assert set(EXPECTED_OP) == set(ACTIVATIONS)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activation_block_round_trips_and_exports(activation, tmp_path, rng):
    model = _block_model(activation)
    assert model.output_shape == (None, 8, 8, 8)  # Maxout's extra channels are consumed
    # make BN and PReLU weights non-trivial so the round trip compares real values
    model.set_weights([w + rng.normal(scale=0.1, size=w.shape).astype(np.float32) for w in model.get_weights()])
    x = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    expected = model(x, training=False).numpy()

    path = tmp_path / f"{activation}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(reloaded(x, training=False).numpy(), expected, atol=1e-6)

    flatbuffer = convert(model)
    ops = op_histogram(flatbuffer)
    assert is_builtin_only(ops), ops
    assert EXPECTED_OP[activation] in ops, ops
    np.testing.assert_allclose(load_engine(flatbuffer)(x)[0], expected, atol=1e-4)


def test_maxout_is_max_over_channel_groups(rng):
    x = rng.normal(size=(2, 4, 4, 12)).astype(np.float32)
    out = Maxout(pieces=3)(x).numpy()
    reference = np.stack(np.split(x, 3, axis=-1), axis=0).max(axis=0)  # units = channels / pieces
    np.testing.assert_array_equal(out, reference)
    assert out.shape == (2, 4, 4, 4)


def test_maxout_rejects_indivisible_channels():
    with pytest.raises(EdgeCNNError, match="divisible"):
        Maxout(pieces=2)(np.zeros((1, 2, 2, 5), np.float32))


@pytest.mark.parametrize("depth,bias,alpha,beta", [(5, 2.0, 1e-4, 0.75), (5, 1.0, 1e-2, 0.75), (3, 1.0, 0.5, 0.6)])
def test_lrn_conv_implementation_equals_tf_nn(depth, bias, alpha, beta, rng):
    x = (rng.normal(size=(1, 6, 6, 16)) * 5).astype(np.float32)
    reference = tf.nn.local_response_normalization(x, depth // 2, bias, alpha, beta).numpy()
    for implementation in ("conv", "builtin"):
        layer = LocalResponseNormalization(depth, bias, alpha, beta, implementation=implementation)
        np.testing.assert_allclose(layer(x).numpy(), reference, rtol=1e-5, atol=1e-6)


def test_lrn_conv_implementation_avoids_the_lrn_op(rng):
    inputs = keras.Input((6, 6, 16))
    for implementation, has_lrn_op in (("conv", False), ("builtin", True)):
        model = keras.Model(inputs, LocalResponseNormalization(alpha=0.01, implementation=implementation)(inputs))
        flatbuffer = convert(model)
        assert ("LOCAL_RESPONSE_NORMALIZATION" in op_histogram(flatbuffer)) is has_lrn_op
        x = (rng.normal(size=(1, 6, 6, 16)) * 5).astype(np.float32)
        np.testing.assert_allclose(load_engine(flatbuffer)(x)[0], model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_unknown_activation_names_the_choices():
    with pytest.raises(EdgeCNNError, match="Did you mean 'leaky_relu'"):
        _block_model("leaky_rellu")


def test_inception_module_concatenates_its_branches():
    inputs = keras.Input((28, 28, 192))
    output = inception_module(inputs, 64, 96, 128, 16, 32, 32, name="inception3a")
    assert tuple(output.shape) == (None, 28, 28, 64 + 128 + 32 + 32)


def test_residual_blocks_shapes_and_projection():
    inputs = keras.Input((16, 16, 8))
    identity = basic_block(inputs, 8, 1, name="identity")
    projected = basic_block(inputs, 16, 2, name="projected")
    bottleneck = bottleneck_block(inputs, 4, 2, name="bottleneck")
    model = keras.Model(inputs, [identity, projected, bottleneck])
    assert [tuple(o.shape) for o in model.outputs] == [(None, 16, 16, 8), (None, 8, 8, 16), (None, 8, 8, 16)]
    names = {layer.name for layer in model.layers}
    assert "identity_downsample" not in names and "projected_downsample" in names


def test_residual_block_refuses_a_channel_changing_activation():
    with pytest.raises(EdgeCNNError, match="cannot follow a residual addition"):
        basic_block(keras.Input((8, 8, 8)), 8, activation="maxout")


@pytest.mark.parametrize("channels,multiplier,expected", [(64, 1.0, 64), (64, 0.5, 32), (96, 1 / 16, 8), (100, 0.25, 24), (36, 0.25, 16)])
def test_scale_channels(channels, multiplier, expected):
    assert scale_channels(channels, multiplier) == expected
