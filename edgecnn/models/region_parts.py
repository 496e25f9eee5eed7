"""What the region-based detectors (Fast and Faster R-CNN) share: the backbone's feature map
with an optional top-down step, and the Fast R-CNN head on pooled regions."""

from __future__ import annotations

import itertools


def region_feature_map(backbone: str, input_shape: tuple[int, int, int], *, width_multiplier: float,
                       backbone_width: float | None, activation: str, feature_stride: int, top_down: bool,
                       neck_channels: int, family: str, backbone_options: dict | None = None):
    """(backbone input, feature map at ``feature_stride``): 1x1 lateral convolution to
    ``neck_channels``; with ``top_down``, the next coarser map (1x1 lateral, 2x nearest upsampling)
    is added and a 3x3 convolution smooths the sum (one FPN step onto one level)."""
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import conv_bn_act, scale_channels
    from edgecnn.models.common import backbone_features

    height, width = int(input_shape[0]), int(input_shape[1])
    stride = int(feature_stride)
    if height % stride or width % stride:
        raise EdgeCNNError(f"{family} input {height}x{width} must be a multiple of its feature stride {stride}.",
                           f"Use e.g. {stride * max(1, round(height / stride))} pixels, or another feature_stride.")
    trunk, maps = backbone_features(backbone, input_shape, (stride,), activation,
                                    backbone_width if backbone_width is not None else width_multiplier,
                                    backbone_options)
    channels = scale_channels(neck_channels, width_multiplier)
    features = conv_bn_act(maps[stride], channels, 1, 1, "same", activation, name="neck_lateral")
    if top_down and 2 * stride in maps:
        coarse = conv_bn_act(maps[2 * stride], channels, 1, 1, "same", activation, name="neck_coarse_lateral")
        layers = keras.layers
        features = layers.Add(name="neck_merge")([features, layers.UpSampling2D(2, name="neck_up")(coarse)])
        features = conv_bn_act(features, channels, 3, 1, "same", activation, name="neck_smooth")
    return trunk.input, features


def pyramid_feature_maps(backbone: str, input_shape: tuple[int, int, int], *, width_multiplier: float,
                         backbone_width: float | None, activation: str, levels: tuple[int, ...],
                         neck_channels: int, family: str, backbone_options: dict | None = None):
    """(backbone input, [feature map per level]): a feature pyramid network (Lin et al.) on the
    backbone's maps at ``levels`` (strides, finest first, each twice the previous): 1x1 lateral
    convolutions to ``neck_channels``, a top-down pathway (2x nearest upsampling, added) and a
    3x3 convolution smoothing each level."""
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import conv_bn_act, scale_channels
    from edgecnn.models.common import backbone_features

    levels = tuple(int(s) for s in levels)
    height, width = int(input_shape[0]), int(input_shape[1])
    if len(levels) < 2 or any(b != 2 * a for a, b in itertools.pairwise(levels)):
        raise EdgeCNNError(f"fpn_levels {list(levels)} must be two or more strides, finest first, each twice the "
                           "previous.", "Use e.g. [8, 16, 32].")
    if height % levels[-1] or width % levels[-1]:
        raise EdgeCNNError(f"{family} input {height}x{width} must be a multiple of its coarsest level's stride "
                           f"{levels[-1]}.", f"Use e.g. {levels[-1] * max(1, round(height / levels[-1]))} pixels.")
    trunk, maps = backbone_features(backbone, input_shape, levels, activation,
                                    backbone_width if backbone_width is not None else width_multiplier,
                                    backbone_options)
    channels = scale_channels(neck_channels, width_multiplier)
    layers = keras.layers
    merged = {}
    for stride in reversed(levels):  # coarsest first: each finer level adds the upsampled coarser one
        lateral = conv_bn_act(maps[stride], channels, 1, 1, "same", activation, name=f"fpn_lateral{stride}")
        if merged:
            coarser = merged[2 * stride]
            lateral = layers.Add(name=f"fpn_merge{stride}")([lateral, layers.UpSampling2D(2, name=f"fpn_up{stride}")(coarser)])
        merged[stride] = lateral
    outputs = [conv_bn_act(merged[stride], channels, 3, 1, "same", activation, name=f"fpn_smooth{stride}")
               for stride in levels]
    return trunk.input, outputs


def box_head(pooled, num_classes: int, head_units: int, activation: str):
    """Fast R-CNN's head on (B, R, P*P*C) pooled regions: two fully connected layers, then the
    sibling outputs ``class_scores`` (softmax over background + K classes) and ``box_deltas``
    (4 per class)."""
    from edgecnn._keras import keras

    layers = keras.layers
    x = layers.Dense(head_units, activation=activation, name="head_fc1")(pooled)
    x = layers.Dense(head_units, activation=activation, name="head_fc2")(x)
    class_scores = layers.Dense(num_classes + 1, activation="softmax", name="class_scores")(x)
    box_deltas = layers.Dense(4 * num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
                              name="box_deltas")(x)
    return class_scores, box_deltas


def mask_branch(pooled, proposals: int, pool_size: int, num_classes: int, channels: int, activation: str):
    """Mask R-CNN's mask branch on (B, P, m * m * C) pooled regions: four 3x3 convolutions, a
    2x transposed convolution and a 1x1 convolution to one sigmoid mask per class, output
    ``masks`` (B, P * 2m, 2m, K) (proposal p's mask is rows p * 2m to (p + 1) * 2m). The
    regions are a batch for the 3x3 convolutions (padding must not mix neighbours) and are
    stacked along the rows for the transposed convolution: its 2x2 kernel at stride 2 never
    mixes neighbouring pixels, so stacking is exact, and TRANSPOSE_CONV then has batch 1, which
    the GPU delegate needs. Four dimensions throughout: the delegate rejects 5-D tensors."""
    from edgecnn._keras import keras
    from edgecnn.layers.regions import BatchToRegionRows, RegionsToBatch

    layers = keras.layers
    x = RegionsToBatch(pool_size, name="mask_regions")(pooled)  # (B * P, m, m, C), rows then columns
    for index in range(4):
        x = layers.Conv2D(channels, 3, padding="same", activation=activation, name=f"mask_conv{index + 1}")(x)
    x = BatchToRegionRows(proposals, name="mask_stack")(x)  # (B, P * m, m, C)
    x = layers.Conv2DTranspose(channels, 2, strides=2, activation=activation, name="mask_upsample")(x)
    return layers.Conv2D(num_classes, 1, activation="sigmoid", name="masks")(x)


def unwrapped_layer(model, name: str):
    """A layer by name, also inside a QAT model (tfmot wraps layers as quant_<name>)."""
    for candidate in (name, f"quant_{name}"):
        try:
            found = model.get_layer(candidate)
        except ValueError:
            continue
        return getattr(found, "layer", found)
    raise ValueError(f"model '{model.name}' has no layer '{name}'")


def layer_names(model) -> set[str]:
    """The model's layer names without QAT's quant_ prefix."""
    return {layer.name.removeprefix("quant_") for layer in model.layers}
