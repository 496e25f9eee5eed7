"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation with two generators and a
cycle-consistency loss. The generator is the ResNet of Johnson et al. 2016 that CycleGAN uses:
c7s1-64, d128, d256, nine residual blocks of 256 channels (six for 128x128 inputs), u128, u64,
c7s1-3 with tanh; instance normalization and reflection padding throughout. With 9 blocks it
has 11,378,179 parameters, the reference implementation's "11.378 M" (asserted in the tests).
The discriminators are 70x70 PatchGANs with instance norm (``edgecnn.models.pix2pix``).

TFLite: reflection padding is MIRROR_PAD, instance norm MEAN/SQUARED_DIFFERENCE/RSQRT, the
up-samplings TRANSPOSE_CONV; all builtins that the GPU delegate runs (tested on the tiny variant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model

if TYPE_CHECKING:
    from edgecnn._keras import keras


def _create_cyclegan(
    *,
    input_shape: tuple[int, int, int] = (256, 256, 3),
    output_channels: int = 3,
    width_multiplier: float = 1.0,
    residual_blocks: int = 9,
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import InstanceNormalization, ReflectionPadding2D, scale_channels

    layers = keras.layers
    if input_shape[0] % 4 or input_shape[1] % 4:
        raise EdgeCNNError(f"CycleGAN input {input_shape[:2]} must be a multiple of 4 (two stride-2 layers).")
    base = scale_channels(64, width_multiplier)

    def conv_in_relu(x, filters, kernel, stride, label, pad: int = 0, relu: bool = True):
        if pad:
            x = ReflectionPadding2D(pad, name=f"{label}_pad")(x)
        x = layers.Conv2D(filters, kernel, stride, "valid" if pad else "same", name=f"{label}_conv")(x)
        x = InstanceNormalization(name=f"{label}_in")(x)
        return layers.ReLU(name=f"{label}_relu")(x) if relu else x

    inputs = keras.Input(input_shape, name="image")
    x = conv_in_relu(inputs, base, 7, 1, "c7s1", pad=3)
    x = conv_in_relu(x, base * 2, 3, 2, "d128")
    x = conv_in_relu(x, base * 4, 3, 2, "d256")
    for index in range(1, residual_blocks + 1):
        y = conv_in_relu(x, base * 4, 3, 1, f"res{index}a", pad=1)
        y = conv_in_relu(y, base * 4, 3, 1, f"res{index}b", pad=1, relu=False)
        x = layers.Add(name=f"res{index}_add")([x, y])
    for label, filters in (("u128", base * 2), ("u64", base)):
        x = layers.Conv2DTranspose(filters, 3, 2, "same", name=f"{label}_upconv")(x)
        x = InstanceNormalization(name=f"{label}_in")(x)
        x = layers.ReLU(name=f"{label}_relu")(x)
    x = ReflectionPadding2D(3, name="out_pad")(x)
    x = layers.Conv2D(output_channels, 7, 1, "valid", name="out_conv")(x)
    outputs = layers.Activation("tanh", name="image_out")(x)
    return keras.Model(inputs, outputs, name=name or "cyclegan")


@register_model("generation", _create_cyclegan, input_shape=(256, 256, 3), min_input_size=8)
def cyclegan(**overrides) -> keras.Model:
    """CycleGAN ResNet generator, 9 residual blocks (the paper's choice at 256x256)."""
    return _create_cyclegan(**overrides)


@register_model("generation", _create_cyclegan, input_shape=(128, 128, 3), min_input_size=8)
def cyclegan_6blocks(**overrides) -> keras.Model:
    """CycleGAN ResNet generator with 6 residual blocks (the paper's choice at 128x128)."""
    return _create_cyclegan(**{"residual_blocks": 6, "input_shape": (128, 128, 3), "name": "cyclegan_6blocks",
                               **overrides})


@register_model("generation", _create_cyclegan, input_shape=(32, 32, 3), min_input_size=8)
def test_cyclegan(**overrides) -> keras.Model:
    """Tiny CycleGAN generator for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 0.125, "residual_blocks": 2}
    return _create_cyclegan(**{**defaults, "name": "test_cyclegan", **overrides})
