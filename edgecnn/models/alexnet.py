"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), the single-tower version of the textbook:

    [227x227x3]  INPUT
    [55x55x96]   CONV1: 96 11x11 filters at stride 4, pad 0
    [27x27x96]   MAX POOL1: 3x3 filters at stride 2
    [27x27x96]   NORM1: local response normalization
    [27x27x256]  CONV2: 256 5x5 filters at stride 1, pad 2
    [13x13x256]  MAX POOL2, NORM2
    [13x13x384]  CONV3, CONV4: 384 3x3 filters at stride 1, pad 1
    [13x13x256]  CONV5: 256 3x3 filters at stride 1, pad 1
    [6x6x256]    MAX POOL3
    [4096] FC6, [4096] FC7, [1000] FC8 (dropout 0.5 after FC6 and FC7)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model

if TYPE_CHECKING:  # the families import Keras lazily, inside their _create_* functions
    from edgecnn._keras import keras

# (name, filters, kernel, stride, pad, pool and norm after it)
_CONVS = [
    ("conv1", 96, 11, 4, 0, True),
    ("conv2", 256, 5, 1, 2, True),
    ("conv3", 384, 3, 1, 1, False),
    ("conv4", 384, 3, 1, 1, False),
    ("conv5", 256, 3, 1, 1, True),
]


def _create_alexnet(
    *,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] = (227, 227, 3),
    width_multiplier: float = 1.0,
    activation: str = "relu",
    norm: str | None = "lrn",
    lrn_implementation: str = "conv",
    fc_units: int = 4096,
    dropout: float = 0.5,
    features_only: bool = False,
    name: str = "alexnet",
) -> keras.Model:
    """``norm``: "lrn" (the paper's NORM1/NORM2 after POOL1/POOL2), "batch" (batch norm after
    every convolution instead) or None."""
    # Imported here so that registering the variants does not import TensorFlow.
    from edgecnn._keras import keras
    from edgecnn.layers import LocalResponseNormalization, conv_bn_act, scale_channels
    from edgecnn.models.common import finish, fully_connected_head

    layers = keras.layers
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    stages = []
    pool_index = 0
    for conv_name, filters, kernel, stride, pad, pool_after in _CONVS:
        x = conv_bn_act(
            x,
            scale_channels(filters, width_multiplier),
            kernel,
            stride,
            pad,
            activation,
            batch_norm=norm == "batch",
            name=conv_name,
        )
        if pool_after:
            pool_index += 1
            x = layers.MaxPooling2D(3, 2, name=f"pool{pool_index}")(x)
            if norm == "lrn" and pool_index < 3:
                x = LocalResponseNormalization(implementation=lrn_implementation, name=f"norm{pool_index}")(x)
            # conv1+pool1 reduce 227 -> 27 (about /8); pool2 -> /16; pool3 -> /32
            stages.append((4 * 2**pool_index, x))

    def head(features):
        return fully_connected_head(features, num_classes, scale_channels(fc_units, width_multiplier),
                                    activation, dropout)

    return finish(inputs, stages, features_only, head, name)


@register_model("classification", _create_alexnet, input_shape=(227, 227, 3), min_input_size=67)
def alexnet(**overrides) -> keras.Model:
    """AlexNet, single tower, LRN as in the paper (about 62 M parameters)."""
    return _create_alexnet(**overrides)


@register_model("classification", _create_alexnet, input_shape=(227, 227, 3), min_input_size=67)
def alexnet_bn(**overrides) -> keras.Model:
    """AlexNet with batch norm after each convolution instead of LRN."""
    return _create_alexnet(**{"norm": "batch", "name": "alexnet_bn", **overrides})


@register_model("classification", _create_alexnet, input_shape=(67, 67, 3), min_input_size=67)
def test_alexnet(**overrides) -> keras.Model:
    """Tiny AlexNet for fast tests."""
    defaults = {"input_shape": (67, 67, 3), "width_multiplier": 1 / 16, "fc_units": 512, "num_classes": 10}
    return _create_alexnet(**{**defaults, "name": "test_alexnet", **overrides})
