"""FCN (Long, Shelhamer & Darrell 2015): a classification network made fully convolutional, with
skip connections from finer layers: FCN-32s (class scores of the stride-32 layer upsampled 32x),
FCN-16s (adds the stride-16 layer's scores) and FCN-8s (adds the stride-8 layer's too).

As in the paper, on VGG-16 the fully connected layers become convolutions (fc6: 7x7 -> 4096,
fc7: 1x1 -> 4096, with dropout), each skip is scored by a 1x1 convolution, the 2x upsamplings
between levels are learnable transposed convolutions initialised to bilinear interpolation, and
the last upsampling is fixed bilinear interpolation (RESIZE_BILINEAR). 'same' padding (the
paper's 100-pixel pad and crops exist for its unpadded convolutions) keeps the output at the
input size. The edge variant uses EdgeNet with a 3x3 "fc6" of 4x fewer channels.
Output: logits (1, H, W, classes); the argmax runs in the runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model, registered

if TYPE_CHECKING:
    from edgecnn._keras import keras


def _create_fcn(
    backbone: str = "vgg16",
    skips: int = 2,  # 0: FCN-32s, 1: FCN-16s, 2: FCN-8s
    *,
    num_classes: int = 21,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    width_multiplier: float = 1.0,
    fc_units: int = 4096,
    fc_kernel: int = 7,
    dropout: float = 0.5,
    activation: str = "relu",
    backbone_options: dict | None = None,  # for the backbone's builder (models.pretrained sets them)
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import conv_bn_act, scale_channels
    from edgecnn.layers.initializers import BilinearUpsampling
    from edgecnn.models.common import feature_name

    layers = keras.layers
    if input_shape[0] % 32 or input_shape[1] % 32:
        raise EdgeCNNError(f"FCN input {input_shape[:2]} must be a multiple of 32.")
    trunk = registered(backbone).builder(input_shape=tuple(input_shape), features_only=True,
                                        width_multiplier=width_multiplier, activation=activation,
                                        **(backbone_options or {}))
    x = trunk.get_layer(feature_name(32)).output
    units = scale_channels(fc_units, width_multiplier)
    for index, kernel in ((6, fc_kernel), (7, 1)):  # the fully connected layers, as convolutions
        x = conv_bn_act(x, units, kernel, 1, "same", activation, batch_norm=False, name=f"fc{index}")
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    scores = layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name="score_s32")(x)
    stride = 32
    for skip in range(skips):
        stride //= 2
        up = layers.Conv2DTranspose(
            num_classes, 4, 2, padding="same", use_bias=False, name=f"upscore_s{stride}",
            kernel_initializer=BilinearUpsampling())(scores)
        skip_scores = layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name=f"score_s{stride}")(
            trunk.get_layer(feature_name(stride)).output)
        scores = layers.Add(name=f"fuse_s{stride}")([up, skip_scores])
    logits = layers.UpSampling2D(stride, interpolation="bilinear", name=f"upsample_x{stride}")(scores)
    suffix = {0: "32s", 1: "16s", 2: "8s"}[skips]
    return keras.Model(trunk.input, logits, name=name or f"fcn{suffix}_{backbone}")


@register_model("segmentation", _create_fcn, input_shape=(224, 224, 3), min_input_size=32)
def fcn32s_vgg16(**overrides) -> keras.Model:
    """FCN-32s on VGG-16."""
    return _create_fcn("vgg16", 0, **overrides)


@register_model("segmentation", _create_fcn, input_shape=(224, 224, 3), min_input_size=32)
def fcn16s_vgg16(**overrides) -> keras.Model:
    """FCN-16s on VGG-16."""
    return _create_fcn("vgg16", 1, **overrides)


@register_model("segmentation", _create_fcn, input_shape=(224, 224, 3), min_input_size=32)
def fcn8s_vgg16(**overrides) -> keras.Model:
    """FCN-8s on VGG-16 (the paper's best)."""
    return _create_fcn("vgg16", 2, **overrides)


@register_model("segmentation", _create_fcn, input_shape=(224, 224, 3), min_input_size=32)
def fcn8s_edgenet(**overrides) -> keras.Model:
    """FCN-8s on EdgeNet (edge-sized)."""
    return _create_fcn("edgenet", 2, **{"fc_units": 256, "fc_kernel": 3, "dropout": 0.1, **overrides})


@register_model("segmentation", _create_fcn, input_shape=(64, 64, 3), min_input_size=32)
def test_fcn(**overrides) -> keras.Model:
    """Tiny FCN-8s on EdgeNet for fast tests."""
    defaults = {"input_shape": (64, 64, 3), "width_multiplier": 0.25, "num_classes": 3, "fc_units": 64,
                "fc_kernel": 3, "dropout": 0.0}
    return _create_fcn("edgenet", 2, **{**defaults, "name": "test_fcn", **overrides})
