"""Building blocks shared by the model families.

All blocks are functions on functional-API tensors, so models stay flat: QAT, pruning and the
TFLite converter see every layer directly, with no nested models to unwrap.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgecnn._keras import keras
from edgecnn.errors import EdgeCNNError
from edgecnn.layers.activations import activation_spec, make_activation

layers = keras.layers

Padding = int | str


def scale_channels(channels: int, width_multiplier: float, divisor: int = 8) -> int:
    """Channel count scaled by ``width_multiplier`` and rounded to a multiple of ``divisor``
    (GPU kernels work in groups of 4 channels; 8 keeps int8 kernels aligned too), never more
    than 10% below the exact product. A multiplier of 1 returns the paper's count unchanged."""
    if width_multiplier == 1:
        return channels
    if width_multiplier <= 0:
        raise EdgeCNNError(f"width_multiplier must be positive, got {width_multiplier}.")
    exact = channels * width_multiplier
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return rounded


def conv2d(
    x,
    filters: int,
    kernel_size: int,
    strides: int = 1,
    padding: Padding = "same",
    use_bias: bool = True,
    name: str | None = None,
):
    """A Conv2D whose padding may be given as the textbook's P (zero-padding on each side).

    P is realised with Keras' own 'same'/'valid' where they mean exactly P, else with an explicit
    ZeroPadding2D (a TFLite PAD op), so the layer has the output size the textbook formula says.
    """
    if isinstance(padding, int):
        if padding == 0:
            padding = "valid"
        elif strides == 1 and 2 * padding == kernel_size - 1:
            padding = "same"
        else:
            x = layers.ZeroPadding2D(padding, name=f"{name}_pad" if name else None)(x)
            padding = "valid"
    return layers.Conv2D(filters, kernel_size, strides, padding=padding, use_bias=use_bias, name=name)(x)


def conv_bn_act(
    x,
    filters: int,
    kernel_size: int,
    strides: int = 1,
    padding: Padding = "same",
    activation: str | None = "relu",
    batch_norm: bool = True,
    name: str | None = None,
):
    """Convolution, optional batch norm, optional activation. The convolution is bias-free
    when batch norm follows (the norm's beta is the bias). A Maxout activation makes the
    convolution produce ``pieces`` times the channels so the block still outputs ``filters``."""
    factor = activation_spec(activation).channel_factor if activation else 1
    x = conv2d(x, filters * factor, kernel_size, strides, padding, use_bias=not batch_norm, name=name)
    if batch_norm:
        x = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_bn" if name else None)(x)
    if activation:
        x = make_activation(activation, f"{name}_{activation}" if name else None)(x)
    return x


def dense_act(x, units: int, activation: str | None = "relu", dropout: float = 0.0, name: str | None = None):
    """Fully connected layer, activation, then dropout (AlexNet/VGG classifier layers)."""
    factor = activation_spec(activation).channel_factor if activation else 1
    x = layers.Dense(units * factor, name=name)(x)
    if activation:
        x = make_activation(activation, f"{name}_{activation}" if name else None, rank=2)(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout" if name else None)(x)
    return x


def inception_module(
    x,
    filters_1x1: int,
    filters_3x3_reduce: int,
    filters_3x3: int,
    filters_5x5_reduce: int,
    filters_5x5: int,
    filters_pool_proj: int,
    activation: str = "relu",
    batch_norm: bool = False,
    name: str = "inception",
):
    """GoogLeNet's Inception module (Szegedy et al. 2015, Figure 2b): parallel 1x1, 1x1->3x3,
    1x1->5x5 and 3x3 max-pool->1x1 branches, concatenated along channels."""

    def unit(tensor, filters, kernel, suffix):
        return conv_bn_act(tensor, filters, kernel, 1, "same", activation, batch_norm, name=f"{name}_{suffix}")

    branch1 = unit(x, filters_1x1, 1, "1x1")
    branch2 = unit(unit(x, filters_3x3_reduce, 1, "3x3_reduce"), filters_3x3, 3, "3x3")
    branch3 = unit(unit(x, filters_5x5_reduce, 1, "5x5_reduce"), filters_5x5, 5, "5x5")
    pooled = layers.MaxPooling2D(3, 1, padding="same", name=f"{name}_pool")(x)
    branch4 = unit(pooled, filters_pool_proj, 1, "pool_proj")
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([branch1, branch2, branch3, branch4])


def _residual_activation(activation: str) -> str:
    if activation_spec(activation).channel_factor != 1:
        raise EdgeCNNError(
            f"Activation '{activation}' changes the channel count, so it cannot follow a residual addition.",
            "Use it in plain convolutional models (AlexNet, VGG) or pick relu, prelu, elu, swish, ...",
        )
    return activation


def _shortcut(x, filters: int, strides: int, name: str):
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn_act(x, filters, 1, strides, 0, activation=None, name=f"{name}_downsample")


def basic_block(x, filters: int, strides: int = 1, activation: str = "relu", name: str = "block"):
    """ResNet basic block (He et al. 2016): 3x3 -> 3x3 with an identity or 1x1 projection."""
    activation = _residual_activation(activation)
    shortcut = _shortcut(x, filters, strides, name)
    y = conv_bn_act(x, filters, 3, strides, 1, activation, name=f"{name}_conv1")
    y = conv_bn_act(y, filters, 3, 1, 1, None, name=f"{name}_conv2")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return make_activation(activation, f"{name}_out")(y)


def bottleneck_block(
    x, width: int, strides: int = 1, expansion: int = 4, activation: str = "relu", name: str = "block",
    stride_on_first: bool = False,
):
    """ResNet bottleneck block: 1x1 reduce -> 3x3 -> 1x1 expand. The stride sits on the 3x3
    convolution ("ResNet v1.5", as torchvision): same parameters, better accuracy than on the 1x1;
    ``stride_on_first``: on the first 1x1, as the paper (v1) and Keras Applications' weights."""
    activation = _residual_activation(activation)
    shortcut = _shortcut(x, width * expansion, strides, name)
    y = conv_bn_act(x, width, 1, strides if stride_on_first else 1, 0, activation, name=f"{name}_conv1")
    y = conv_bn_act(y, width, 3, 1 if stride_on_first else strides, 1, activation, name=f"{name}_conv2")
    y = conv_bn_act(y, width * expansion, 1, 1, 0, None, name=f"{name}_conv3")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return make_activation(activation, f"{name}_out")(y)


def stack(x, block, count: int, first_strides: int, name: str, **kwargs):
    """``count`` blocks; the first one may downsample."""
    for index in range(count):
        x = block(x, strides=first_strides if index == 0 else 1, name=f"{name}_block{index + 1}", **kwargs)
    return x


__all__: Sequence[str] = [
    "scale_channels",
    "conv2d",
    "conv_bn_act",
    "dense_act",
    "inception_module",
    "basic_block",
    "bottleneck_block",
    "stack",
]
