"""Pix2Pix (Isola et al. 2017): conditional GAN for paired image-to-image translation.

Generator: a U-Net of 4x4 stride-2 convolutions. The encoder (C64-C128-C256-C512-C512-C512-
C512-C512 at 256x256) uses LeakyReLU 0.2 and batch norm except on the first and the innermost
layer; the decoder mirrors it with 4x4 stride-2 transposed convolutions, batch norm, ReLU,
dropout 0.5 in the three 512-channel layers next to the bottleneck, and concatenates each
encoder output of the same size. The last transposed convolution gives ``output_channels``
through tanh, so images live in [-1, 1]. Layout and parameter count follow the authors'
reference implementation (unet_256: 54,413,955 trainable parameters, its "54.414 M";
asserted in the tests). 'same' padding: the PatchGAN gives 32x32 patch logits at 256x256, not
the reference's 30x30 (same weights, two more rows and columns of patches).

Discriminator: the 70x70 PatchGAN, C64-C128-C256-C512 (4x4, LeakyReLU 0.2, batch norm except
the first) and a 1-channel 4x4 convolution, on the input image and the real or generated
output, concatenated. It is a training-time model (``patchgan_discriminator``), not exported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model

if TYPE_CHECKING:
    from edgecnn._keras import keras

_ENCODER = (64, 128, 256, 512, 512, 512, 512, 512)


def _create_pix2pix(
    *,
    input_shape: tuple[int, int, int] = (256, 256, 3),
    output_channels: int = 3,
    width_multiplier: float = 1.0,
    depth: int = 8,
    dropout: float = 0.5,
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import scale_channels

    layers = keras.layers
    if not 2 <= depth <= len(_ENCODER):
        raise EdgeCNNError(f"Pix2Pix depth must be 2 to {len(_ENCODER)} downsamplings, got {depth}.")
    if input_shape[0] % 2**depth or input_shape[1] % 2**depth:
        raise EdgeCNNError(f"Pix2Pix input {input_shape[:2]} must be a multiple of {2**depth} (2^depth).",
                           "256x256 with depth 8 as in the paper, or lower the depth.")
    widths = [scale_channels(width, width_multiplier) for width in _ENCODER[:depth]]

    inputs = keras.Input(input_shape, name="image")
    # encoder: each output is kept before its activation, as the skip the decoder concatenates
    skips = []
    x = layers.Conv2D(widths[0], 4, 2, "same", use_bias=False, name="down1_conv")(inputs)
    skips.append(x)
    for level, width in enumerate(widths[1:], start=2):
        x = layers.LeakyReLU(0.2, name=f"down{level}_lrelu")(x)
        x = layers.Conv2D(width, 4, 2, "same", use_bias=False, name=f"down{level}_conv")(x)
        if level < depth:  # the innermost layer has no norm (its map can be 1x1)
            x = layers.BatchNormalization(epsilon=1e-5, name=f"down{level}_bn")(x)
            skips.append(x)
    # decoder: up-convolutions back to the input size, each followed by the skip of that size
    # the reference's three 512-channel decoder layers after the innermost one (fewer when shallower)
    dropout_levels = {level for level in range(max(1, depth - 4), depth - 1) if widths[level - 1] == widths[-1]}
    for level in range(depth - 1, 0, -1):
        x = layers.ReLU(name=f"up{level}_relu")(x)
        x = layers.Conv2DTranspose(widths[level - 1], 4, 2, "same", use_bias=False, name=f"up{level}_upconv")(x)
        x = layers.BatchNormalization(epsilon=1e-5, name=f"up{level}_bn")(x)
        if dropout and level in dropout_levels:
            x = layers.Dropout(dropout, name=f"up{level}_dropout")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([skips[level - 1], x])
    x = layers.ReLU(name="out_relu")(x)
    x = layers.Conv2DTranspose(output_channels, 4, 2, "same", name="out_upconv")(x)
    outputs = layers.Activation("tanh", name="image_out")(x)
    return keras.Model(inputs, outputs, name=name or "pix2pix")


def patchgan_discriminator(input_shape: tuple[int, int, int], target_channels: int | None = 3,
                           width_multiplier: float = 1.0, layers_count: int = 3, norm: str = "batch",
                           name: str = "patchgan") -> keras.Model:
    """The PatchGAN discriminator: one logit per (70x70 with 3 layers) patch. With
    ``target_channels`` it is conditional (Pix2Pix: input image and candidate output are
    concatenated); with None it sees one image (CycleGAN). ``norm`` is "batch" or "instance"."""
    from edgecnn._keras import keras
    from edgecnn.layers import InstanceNormalization, scale_channels

    layers = keras.layers
    image = keras.Input(input_shape, name="image")
    inputs = [image]
    x = image
    if target_channels:
        target = keras.Input((*input_shape[:2], target_channels), name="target")
        inputs.append(target)
        x = layers.Concatenate(name="pair")([image, target])
    x = layers.Conv2D(scale_channels(64, width_multiplier), 4, 2, "same", name="d1_conv")(x)
    x = layers.LeakyReLU(0.2, name="d1_lrelu")(x)
    for index in range(1, layers_count + 1):
        width = scale_channels(64 * min(2**index, 8), width_multiplier)
        stride = 2 if index < layers_count else 1
        x = layers.Conv2D(width, 4, stride, "same", use_bias=norm == "instance", name=f"d{index + 1}_conv")(x)
        x = (layers.BatchNormalization(epsilon=1e-5, name=f"d{index + 1}_bn") if norm == "batch"
             else InstanceNormalization(name=f"d{index + 1}_in"))(x)
        x = layers.LeakyReLU(0.2, name=f"d{index + 1}_lrelu")(x)
    logits = layers.Conv2D(1, 4, 1, "same", name="patch_logits")(x)
    return keras.Model(inputs, logits, name=name)


@register_model("generation", _create_pix2pix, input_shape=(256, 256, 3), min_input_size=4)
def pix2pix(**overrides) -> keras.Model:
    """Pix2Pix U-Net generator (unet_256), 256x256, tanh output."""
    return _create_pix2pix(**overrides)


@register_model("generation", _create_pix2pix, input_shape=(32, 32, 3), min_input_size=4)
def test_pix2pix(**overrides) -> keras.Model:
    """Tiny Pix2Pix generator for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 0.125, "depth": 5}
    return _create_pix2pix(**{**defaults, "name": "test_pix2pix", **overrides})
