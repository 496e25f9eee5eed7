"""U-Net (Ronneberger et al. 2015): a contracting path of two 3x3 convolutions + ReLU and a 2x2
max-pool per level (64, 128, 256, 512, 1024 channels), an expanding path of 2x2 up-convolutions
(TRANSPOSE_CONV, halving the channels), concatenation with the contracting path's feature map of
the same level, and two 3x3 convolutions; a 1x1 convolution gives per-pixel class logits.

One deliberate change from the paper: 'same' padding, so the output has the input's size and no
cropping of the skip connections is needed (the paper's unpadded 572x572 input gives 388x388).
The output is logits (1, H, W, classes); the per-pixel argmax happens in the runtime, since
ARG_MAX does not run on the GPU delegate. Optional batch norm after each convolution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model

if TYPE_CHECKING:
    from edgecnn._keras import keras

_WIDTHS = (64, 128, 256, 512, 1024)


def _create_unet(
    *,
    num_classes: int = 2,
    input_shape: tuple[int, int, int] = (256, 256, 3),
    width_multiplier: float = 1.0,
    depth: int = 4,
    activation: str = "relu",
    batch_norm: bool = False,
    dropout: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import conv_bn_act, scale_channels

    layers = keras.layers
    if not 1 <= depth <= 4:
        raise EdgeCNNError(f"U-Net depth must be 1 to 4 poolings, got {depth}.")
    if input_shape[0] % 2**depth or input_shape[1] % 2**depth:
        raise EdgeCNNError(f"U-Net input {input_shape[:2]} must be a multiple of {2**depth} (2^depth).",
                           f"Use e.g. {2**depth * max(1, round(input_shape[0] / 2**depth))} pixels.")
    widths = [scale_channels(w, width_multiplier) for w in _WIDTHS[: depth + 1]]

    def double_conv(x, filters, label):
        x = conv_bn_act(x, filters, 3, 1, "same", activation, batch_norm, name=f"{label}_conv1")
        return conv_bn_act(x, filters, 3, 1, "same", activation, batch_norm, name=f"{label}_conv2")

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    skips = []
    for level, width in enumerate(widths[:-1], start=1):
        x = double_conv(x, width, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, 2, name=f"down{level}_pool")(x)
    x = double_conv(x, widths[-1], "bottom")
    if dropout:  # the paper's drop-out layers at the end of the contracting path
        x = layers.Dropout(dropout, name="bottom_dropout")(x)
    for level in range(depth, 0, -1):
        width = widths[level - 1]
        x = layers.Conv2DTranspose(width, 2, 2, padding="same", name=f"up{level}_upconv")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([skips[level - 1], x])
        x = double_conv(x, width, f"up{level}")
    logits = layers.Conv2D(num_classes, 1, name="logits")(x)
    return keras.Model(inputs, logits, name=name or "unet")


@register_model("segmentation", _create_unet, input_shape=(256, 256, 3), min_input_size=16)
def unet(**overrides) -> keras.Model:
    """U-Net as in the paper (64-1024 channels), with 'same' padding."""
    return _create_unet(**overrides)


@register_model("segmentation", _create_unet, input_shape=(256, 256, 3), min_input_size=16)
def unet_bn(**overrides) -> keras.Model:
    """U-Net with batch norm after every convolution."""
    return _create_unet(**{"batch_norm": True, "name": "unet_bn", **overrides})


@register_model("segmentation", _create_unet, input_shape=(32, 32, 3), min_input_size=16)
def test_unet(**overrides) -> keras.Model:
    """Tiny U-Net for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 0.125, "num_classes": 3, "batch_norm": True,
                "depth": 3}
    return _create_unet(**{**defaults, "name": "test_unet", **overrides})
