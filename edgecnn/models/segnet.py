"""SegNet (Badrinarayanan, Kendall & Cipolla 2017): an encoder (VGG-16's 13 convolutions, each
with batch norm and ReLU, five 2x2 max-pools) and a mirrored decoder that upsamples with the
*encoder's max-pooling indices*: each value goes back to the position its window's maximum came
from, zeros elsewhere, and convolutions densify the sparse map. No skip features are stored,
only the pooling switches. A 1x1 convolution gives per-pixel class logits; the argmax happens in
the runtime (ARG_MAX does not run on the GPU delegate).

TFLite has no max-pool-with-argmax builtin; ``MaxUnpooling2D`` recomputes the switches from the
pre-pool features with builtin ops (see ``edgecnn.layers.pooling``), so the file stays
builtin-only and GPU-compatible. 'same' padding keeps the output at the input size.

Variants: ``segnet`` (VGG-16 encoder), ``segnet_basic`` (the paper's small comparison network:
four levels of one 7x7 convolution with 64 channels), ``test_segnet`` (tiny, for tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model

if TYPE_CHECKING:
    from edgecnn._keras import keras

# (channels, convolutions) per encoder level
_ENCODERS = {
    "vgg16": ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),
    "basic": ((64, 1), (64, 1), (64, 1), (64, 1)),
}


def _create_segnet(
    encoder: str = "vgg16",
    *,
    num_classes: int = 12,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    width_multiplier: float = 1.0,
    depth: int | None = None,
    kernel_size: int = 3,
    activation: str = "relu",
    preprocessing: str | None = None,  # "caffe": the input as ImageNet weights expect it (models.pretrained)
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import conv_bn_act, scale_channels
    from edgecnn.layers.pooling import MaxUnpooling2D
    from edgecnn.models.common import input_preprocessing

    levels = _ENCODERS[encoder][: depth or None]
    if depth is not None and not 1 <= depth <= len(_ENCODERS[encoder]):
        raise EdgeCNNError(f"SegNet-{encoder} depth must be 1 to {len(_ENCODERS[encoder])} poolings, got {depth}.")
    factor = 2 ** len(levels)
    if input_shape[0] % factor or input_shape[1] % factor:
        raise EdgeCNNError(f"SegNet input {input_shape[:2]} must be a multiple of {factor} (2^depth).",
                           f"Use e.g. {factor * max(1, round(input_shape[0] / factor))} pixels.")
    widths = [scale_channels(width, width_multiplier) for width, _ in levels]

    inputs = keras.Input(input_shape, name="image")
    x = input_preprocessing(inputs, preprocessing)
    switches = []  # pre-pool feature maps: the unpooling recomputes the argmax from them
    for level, ((_, convs), width) in enumerate(zip(levels, widths), start=1):
        for index in range(1, convs + 1):
            x = conv_bn_act(x, width, kernel_size, activation=activation, name=f"enc{level}_conv{index}")
        switches.append(x)
        x = keras.layers.MaxPooling2D(2, 2, name=f"enc{level}_pool")(x)
    for level in range(len(levels), 0, -1):
        x = MaxUnpooling2D(name=f"dec{level}_unpool")([x, switches[level - 1]])
        convs = levels[level - 1][1]
        for index in range(1, convs + 1):
            # the last convolution of a level narrows to the next (shallower) level's width
            width = widths[level - 2] if index == convs and level > 1 else widths[level - 1]
            x = conv_bn_act(x, width, kernel_size, activation=activation, name=f"dec{level}_conv{index}")
    logits = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
    return keras.Model(inputs, logits, name=name or f"segnet_{encoder}")


@register_model("segmentation", _create_segnet, input_shape=(224, 224, 3), min_input_size=32)
def segnet(**overrides) -> keras.Model:
    """SegNet with the VGG-16 encoder (13 + 13 convolutions, batch norm)."""
    return _create_segnet("vgg16", **{"name": "segnet", **overrides})


@register_model("segmentation", _create_segnet, input_shape=(224, 224, 3), min_input_size=16)
def segnet_basic(**overrides) -> keras.Model:
    """SegNet-Basic: 4 levels, one 7x7 convolution of 64 channels each, in encoder and decoder."""
    return _create_segnet("basic", **{"kernel_size": 7, "name": "segnet_basic", **overrides})


@register_model("segmentation", _create_segnet, input_shape=(32, 32, 3), min_input_size=16)
def test_segnet(**overrides) -> keras.Model:
    """Tiny SegNet for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 0.125, "num_classes": 3, "depth": 3}
    return _create_segnet("vgg16", **{**defaults, "name": "test_segnet", **overrides})
