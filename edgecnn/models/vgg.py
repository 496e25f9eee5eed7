"""VGG (Simonyan & Zisserman 2015), configurations A (11), B (13), D (16) and E (19), with and
without batch norm: 3x3 convolutions at stride 1, pad 1, 2x2 max-pools at stride 2, then
FC 4096 - FC 4096 - FC classes with dropout 0.5 (VGG-16 at 224x224: 138,357,544 parameters)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model

if TYPE_CHECKING:  # the families import Keras lazily, inside their _create_* functions
    from edgecnn._keras import keras

# Convolutions per block; the block widths are 64, 128, 256, 512, 512.
_DEPTHS = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
_WIDTHS = (64, 128, 256, 512, 512)


def _create_vgg(
    config: str,
    *,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    width_multiplier: float = 1.0,
    activation: str = "relu",
    batch_norm: bool = False,
    fc_units: int = 4096,
    dropout: float = 0.5,
    features_only: bool = False,
    preprocessing: str | None = None,  # "caffe": the input as ImageNet weights expect it (models.pretrained)
    name: str | None = None,
) -> keras.Model:
    # Imported here so that registering the variants does not import TensorFlow.
    from edgecnn._keras import keras
    from edgecnn.layers import conv_bn_act, scale_channels
    from edgecnn.models.common import finish, fully_connected_head, input_preprocessing

    layers = keras.layers
    inputs = keras.Input(input_shape, name="image")
    x = input_preprocessing(inputs, preprocessing)
    stages = []
    for block, (depth, width) in enumerate(zip(_DEPTHS[config], _WIDTHS), start=1):
        for index in range(1, depth + 1):
            x = conv_bn_act(
                x, scale_channels(width, width_multiplier), 3, 1, 1, activation, batch_norm, name=f"conv{block}_{index}"
            )
        x = layers.MaxPooling2D(2, 2, name=f"pool{block}")(x)
        if block >= 2:
            stages.append((2**block, x))

    def head(features):
        return fully_connected_head(features, num_classes, scale_channels(fc_units, width_multiplier),
                                    activation, dropout)

    return finish(inputs, stages, features_only, head, name or config + ("_bn" if batch_norm else ""))


@register_model("classification", _create_vgg)
def vgg11(**overrides) -> keras.Model:
    """VGG-11 (configuration A)."""
    return _create_vgg("vgg11", **overrides)


@register_model("classification", _create_vgg)
def vgg11_bn(**overrides) -> keras.Model:
    """VGG-11 with batch norm."""
    return _create_vgg("vgg11", **{"batch_norm": True, **overrides})


@register_model("classification", _create_vgg)
def vgg13(**overrides) -> keras.Model:
    """VGG-13 (configuration B)."""
    return _create_vgg("vgg13", **overrides)


@register_model("classification", _create_vgg)
def vgg13_bn(**overrides) -> keras.Model:
    """VGG-13 with batch norm."""
    return _create_vgg("vgg13", **{"batch_norm": True, **overrides})


@register_model("classification", _create_vgg)
def vgg16(**overrides) -> keras.Model:
    """VGG-16 (configuration D), 138,357,544 parameters at 224x224x3."""
    return _create_vgg("vgg16", **overrides)


@register_model("classification", _create_vgg)
def vgg16_bn(**overrides) -> keras.Model:
    """VGG-16 with batch norm."""
    return _create_vgg("vgg16", **{"batch_norm": True, **overrides})


@register_model("classification", _create_vgg)
def vgg19(**overrides) -> keras.Model:
    """VGG-19 (configuration E)."""
    return _create_vgg("vgg19", **overrides)


@register_model("classification", _create_vgg)
def vgg19_bn(**overrides) -> keras.Model:
    """VGG-19 with batch norm."""
    return _create_vgg("vgg19", **{"batch_norm": True, **overrides})


@register_model("classification", _create_vgg, input_shape=(32, 32, 3))
def test_vgg(**overrides) -> keras.Model:
    """Tiny VGG-11 with batch norm for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 1 / 8, "fc_units": 256, "num_classes": 10}
    return _create_vgg("vgg11", **{**defaults, "batch_norm": True, "name": "test_vgg", **overrides})
