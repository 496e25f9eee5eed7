"""ResNet (He et al. 2016): 18 and 34 with basic blocks, 50, 101 and 152 with bottlenecks.

Convolutions before batch norm are bias-free and the bottleneck strides on its 3x3 convolution,
as in torchvision (``bottleneck_stride="1x1"``: on its first 1x1, as the paper and Keras
Applications' ImageNet weights), so ResNet-50 at 224x224 has 25,557,032 trainable parameters. The stem's
3x3/2 max-pool pads with zeros on each side (P=1); it follows a ReLU, so this equals padding
with -inf for the default activation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model

if TYPE_CHECKING:  # the families import Keras lazily, inside their _create_* functions
    from edgecnn._keras import keras

# name: (block kind, blocks per stage)
_CONFIGS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
_STAGE_WIDTHS = (64, 128, 256, 512)


def _create_resnet(
    config: str,
    *,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    width_multiplier: float = 1.0,
    activation: str = "relu",
    dropout: float = 0.0,
    features_only: bool = False,
    preprocessing: str | None = None,  # "caffe": the input as ImageNet weights expect it (models.pretrained)
    bottleneck_stride: str = "3x3",  # "1x1": on the first 1x1 (v1, the paper's and Keras Applications')
    name: str | None = None,
) -> keras.Model:
    # Imported here so that registering the variants does not import TensorFlow.
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import basic_block, bottleneck_block, conv_bn_act, scale_channels, stack
    from edgecnn.models.common import finish, input_preprocessing

    if bottleneck_stride not in ("3x3", "1x1"):
        raise EdgeCNNError(f"bottleneck_stride must be 3x3 or 1x1, not {bottleneck_stride!r}.")
    layers = keras.layers
    kind, depths = _CONFIGS[config]
    inputs = keras.Input(input_shape, name="image")
    x = conv_bn_act(input_preprocessing(inputs, preprocessing), scale_channels(64, width_multiplier), 7, 2, 3, activation, name="conv1")
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, 2, name="pool1")(x)
    stages = []
    for index, (depth, width) in enumerate(zip(depths, _STAGE_WIDTHS)):
        stage_name = f"stage{index + 1}"
        width = scale_channels(width, width_multiplier)
        first_strides = 1 if index == 0 else 2
        if kind == "basic":
            x = stack(x, basic_block, depth, first_strides, stage_name, filters=width, activation=activation)
        else:
            x = stack(x, bottleneck_block, depth, first_strides, stage_name, width=width, activation=activation,
                      stride_on_first=bottleneck_stride == "1x1")
        stages.append((4 * 2**index, x))

    def head(features):
        y = layers.GlobalAveragePooling2D(name="avgpool")(features)
        if dropout:
            y = layers.Dropout(dropout, name="dropout")(y)
        return layers.Dense(num_classes, name="fc")(y)

    return finish(inputs, stages, features_only, head, name or config)


@register_model("classification", _create_resnet)
def resnet18(**overrides) -> keras.Model:
    """ResNet-18, basic blocks."""
    return _create_resnet("resnet18", **overrides)


@register_model("classification", _create_resnet)
def resnet34(**overrides) -> keras.Model:
    """ResNet-34, basic blocks."""
    return _create_resnet("resnet34", **overrides)


@register_model("classification", _create_resnet)
def resnet50(**overrides) -> keras.Model:
    """ResNet-50, bottleneck blocks (25,557,032 parameters at 224x224x3)."""
    return _create_resnet("resnet50", **overrides)


@register_model("classification", _create_resnet)
def resnet101(**overrides) -> keras.Model:
    """ResNet-101, bottleneck blocks."""
    return _create_resnet("resnet101", **overrides)


@register_model("classification", _create_resnet)
def resnet152(**overrides) -> keras.Model:
    """ResNet-152, bottleneck blocks."""
    return _create_resnet("resnet152", **overrides)


@register_model("classification", _create_resnet, input_shape=(32, 32, 3))
def test_resnet(**overrides) -> keras.Model:
    """Tiny ResNet-18 for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 1 / 8, "num_classes": 10}
    return _create_resnet("resnet18", **{**defaults, "name": "test_resnet", **overrides})


@register_model("classification", _create_resnet, input_shape=(32, 32, 3))
def test_resnet_bottleneck(**overrides) -> keras.Model:
    """Tiny ResNet-50 (bottleneck blocks) for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 1 / 8, "num_classes": 10}
    return _create_resnet("resnet50", **{**defaults, "name": "test_resnet_bottleneck", **overrides})
