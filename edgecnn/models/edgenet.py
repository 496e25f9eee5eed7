"""EdgeNet: edgecnn's edge-sized backbone, a plain VGG-style stack of 3x3 conv-BN-activation
layers where each stage starts with a stride-2 convolution instead of a max-pool (so every
stage's downsampling is learned and quantizes like the rest). Five stages of widths 16-256 at
strides 2-32, about 1.2 M parameters at width 1: it is meant as the backbone of the YOLO
detector on a Raspberry Pi or phone, and classifies too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model

if TYPE_CHECKING:
    from edgecnn._keras import keras

_WIDTHS = (16, 32, 64, 128, 256)


def _create_edgenet(
    *,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    activation: str = "relu",
    dropout: float = 0.0,
    features_only: bool = False,
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.layers import conv_bn_act, scale_channels
    from edgecnn.models.common import finish

    layers = keras.layers
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    stages = []
    for index, width in enumerate(_WIDTHS, start=1):
        width = scale_channels(width, width_multiplier)
        x = conv_bn_act(x, width, 3, 2, "same", activation, name=f"stage{index}_down")
        for repeat in range(max(1, round(depth_multiplier)) if index > 1 else 0):
            x = conv_bn_act(x, width, 3, 1, "same", activation, name=f"stage{index}_conv{repeat + 1}")
        if index >= 2:
            stages.append((2**index, x))

    def head(features):
        y = layers.GlobalAveragePooling2D(name="avgpool")(features)
        if dropout:
            y = layers.Dropout(dropout, name="dropout")(y)
        return layers.Dense(num_classes, name="fc")(y)

    return finish(inputs, stages, features_only, head, name or "edgenet")


@register_model("classification", _create_edgenet)
def edgenet(**overrides) -> keras.Model:
    """EdgeNet: plain stride-2 conv stages, edge-sized (the YOLO detector's default backbone)."""
    return _create_edgenet(**overrides)


@register_model("classification", _create_edgenet, input_shape=(32, 32, 3))
def test_edgenet(**overrides) -> keras.Model:
    """Tiny EdgeNet for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 0.5, "num_classes": 10}
    return _create_edgenet(**{**defaults, "name": "test_edgenet", **overrides})
