"""Faster R-CNN (Ren et al. 2015): a region proposal network (RPN) with anchors shares the
backbone's feature map with a Fast R-CNN head that classifies and refines each proposal.

Graph (one static, builtin-only model, batch 1 on the device): backbone -> feature map at
``feature_stride`` (with ``top_down``, the next coarser map is upsampled and added to it, one
FPN step onto one level) -> RPN (3x3 conv, 1x1 objectness logit and 1x1 box deltas per anchor;
``len(anchor_sizes) x len(anchor_ratios)`` anchors per position, 3 x 3 by default) ->
``DecodeAnchors`` -> ``TopProposals`` (the ``proposals`` best-scoring boxes; no NMS inside the
graph: benchmarks/proposal_selection.py measured in-graph NMS at no mAP gain on shapes, with
NON_MAX_SUPPRESSION_V4 rejected by the GPU accelerator) -> ``RoiAlign`` (7x7 bins) -> two fully
connected layers -> softmax over K + 1 classes (0 = background) and per-class box deltas.
With ``fpn_levels`` the single map becomes a feature pyramid: one RPN head shared by the levels
(one anchor size per level) and ``PyramidRoiAlign``. With ``mask_size`` (Mask R-CNN, see
``edgecnn.models.mask_rcnn``) a mask branch adds a sixth output.

Outputs, in order: ``rpn_scores`` (1, N, 1) and ``rpn_deltas`` (1, N, 4), which only training
uses (``detector_families`` drops them for the device file), then ``proposals`` (1, P, 4, x1 y1 x2
y2 input pixels), ``class_scores`` (1, P, K + 1) and ``box_deltas`` (1, P, 4K). Per-class box
decoding and NMS happen in the runtime (``edgecnn.runtime.regions``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.region_parts import box_head, layer_names, region_feature_map, unwrapped_layer
from edgecnn.models.registry import register_model
from edgecnn.runtime.regions import DEFAULT_DELTA_WEIGHTS, MASK_KIND, REGION_KIND

if TYPE_CHECKING:
    from edgecnn._keras import keras

# The head's box deltas are trained scaled by these (Fast R-CNN's target normalization)
HEAD_DELTA_WEIGHTS = DEFAULT_DELTA_WEIGHTS
OUTPUTS = ("rpn_scores", "rpn_deltas", "proposals", "class_scores", "box_deltas")
DEPLOYED_OUTPUTS = OUTPUTS[2:]


def create_faster_rcnn(
    backbone: str = "edgenet",
    *,
    num_classes: int = 80,
    input_shape: tuple[int, int, int] = (320, 320, 3),
    width_multiplier: float = 1.0,
    backbone_width: float | None = None,
    activation: str = "relu",
    feature_stride: int = 16,
    top_down: bool = True,
    neck_channels: int = 128,
    anchor_sizes: tuple[float, ...] = (32, 64, 128),
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),
    proposals: int = 100,
    pool_size: int = 7,
    sampling: int = 2,
    head_units: int = 256,
    fpn_levels: tuple[int, ...] | None = None,
    mask_size: int | None = None,
    mask_channels: int = 256,
    backbone_options: dict | None = None,  # for the backbone's builder (models.pretrained sets them)
    name: str | None = None,
) -> keras.Model:
    """Faster R-CNN, and with ``mask_size`` Mask R-CNN (its mask branch: ``edgecnn.models.mask_rcnn``)."""
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import scale_channels
    from edgecnn.layers.regions import DecodeAnchors, TopProposals

    height, width = int(input_shape[0]), int(input_shape[1])
    stride = int(fpn_levels[0]) if fpn_levels else int(feature_stride)
    levels = tuple(int(s) for s in fpn_levels) if fpn_levels else (stride,)
    _check_anchors(height, width, levels, anchor_sizes, anchor_ratios)
    anchors_per_cell = (1 if fpn_levels else len(anchor_sizes)) * len(anchor_ratios)
    anchor_count = sum((height // s) * (width // s) for s in levels) * anchors_per_cell
    if not 1 <= proposals <= anchor_count:
        raise EdgeCNNError(f"proposals={proposals} must be between 1 and the {anchor_count} anchors.")
    if fpn_levels:
        image, features, rpn_scores, rpn_deltas = _pyramid_rpn(backbone, input_shape, width_multiplier,
                                                               backbone_width, activation, levels, neck_channels,
                                                               len(anchor_ratios), backbone_options)
    else:
        image, features, rpn_scores, rpn_deltas = _single_level_rpn(backbone, input_shape, width_multiplier,
                                                                    backbone_width, activation, stride, top_down,
                                                                    neck_channels, anchors_per_cell, backbone_options)
    boxes = DecodeAnchors((height, width), stride, tuple(anchor_sizes), tuple(anchor_ratios),
                          strides=levels if fpn_levels else None, name="rpn_decode")(rpn_deltas)
    chosen = TopProposals(proposals, name="proposals")([rpn_scores, boxes])
    pooled = pool_regions(features, chosen, levels, pool_size, sampling, "roi_align")
    class_scores, box_deltas = box_head(pooled, num_classes, head_units, activation)
    outputs = [rpn_scores, rpn_deltas, chosen, class_scores, box_deltas]
    family = "faster_rcnn"
    if mask_size:
        from edgecnn.models.region_parts import mask_branch

        if mask_size % 2:
            raise EdgeCNNError(f"mask_size={mask_size} must be even (the branch pools half of it and upsamples 2x).",
                               "Use 28, as in the paper, or 14.")
        pooled_masks = pool_regions(features, chosen, levels, mask_size // 2, sampling, "mask_roi_align")
        outputs.append(mask_branch(pooled_masks, proposals, mask_size // 2, num_classes,
                                   scale_channels(mask_channels, width_multiplier), activation))
        family = "mask_rcnn"
    suffix = "_fpn" if fpn_levels else ""
    return keras.Model(image, outputs, name=name or f"{family}_{backbone}{suffix}")


def pool_regions(features: list, proposals, levels: tuple[int, ...], size: int, sampling: int, name: str):
    """ROI Align of every proposal to ``size`` x ``size`` bins: on the one feature map, or on
    each box's pyramid level (``PyramidRoiAlign``)."""
    from edgecnn.layers.regions import PyramidRoiAlign, RoiAlign

    if len(levels) == 1:
        return RoiAlign(size, sampling, levels[0], name=name)([features[0], proposals])
    return PyramidRoiAlign(size, sampling, levels, name=name)([*features, proposals])


def _single_level_rpn(backbone, input_shape, width_multiplier, backbone_width, activation, stride, top_down,
                      neck_channels, anchors_per_cell, backbone_options=None):
    """(image, [feature map], RPN logits (B, N, 1), RPN deltas (B, N, 4)) on one feature map."""
    from edgecnn._keras import keras
    from edgecnn.layers import conv_bn_act, scale_channels

    layers = keras.layers
    image, features = region_feature_map(backbone, input_shape, width_multiplier=width_multiplier,
                                         backbone_width=backbone_width, activation=activation,
                                         feature_stride=stride, top_down=top_down, neck_channels=neck_channels,
                                         family="Faster R-CNN", backbone_options=backbone_options)
    channels = scale_channels(neck_channels, width_multiplier)
    rpn = conv_bn_act(features, channels, 3, 1, "same", activation, name="rpn_conv")
    objectness = layers.Conv2D(anchors_per_cell, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                               name="rpn_objectness")(rpn)
    deltas = layers.Conv2D(4 * anchors_per_cell, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                           name="rpn_box")(rpn)
    return (image, [features], layers.Reshape((-1, 1), name="rpn_scores")(objectness),
            layers.Reshape((-1, 4), name="rpn_deltas")(deltas))


def _check_anchors(height: int, width: int, levels: tuple[int, ...], anchor_sizes, anchor_ratios) -> None:
    """Clear errors for an anchor set that cannot fit: sizes beyond the input or below half
    their map's stride, a pyramid without one size per level, empty sets, ratios <= 0."""
    from edgecnn.errors import EdgeCNNError

    pyramid = len(levels) > 1
    if pyramid and len(anchor_sizes) != len(levels):
        raise EdgeCNNError(f"A feature pyramid of {len(levels)} levels ({list(levels)}) takes one anchor size per "
                           f"level, not {len(anchor_sizes)} ({list(anchor_sizes)}).",
                           f"Give {len(levels)} anchor_sizes, finest level first, e.g. "
                           f"{[4 * s for s in levels]}.")
    strides = levels if pyramid else levels * len(anchor_sizes)
    too_big = [s for s in anchor_sizes if s > min(height, width)]
    too_small = [s for s, stride in zip(anchor_sizes, strides) if s < stride / 2]
    if too_big or too_small or not anchor_sizes or not anchor_ratios or min(anchor_ratios) <= 0:
        where = f"feature strides {list(levels)}" if pyramid else f"feature stride {levels[0]}"
        raise EdgeCNNError(f"The anchor set (sizes {list(anchor_sizes)}, ratios {list(anchor_ratios)}) does not fit a "
                           f"{height}x{width} input at {where}: "
                           + (f"sizes {too_big} exceed the input; " if too_big else "")
                           + (f"sizes {too_small} are below half their stride; " if too_small else "")
                           + "sizes and ratios must be non-empty and ratios positive.",
                           f"Choose anchor_sizes between half the stride and {min(height, width)} pixels "
                           "(e.g. the input's 1/8, 1/4 and 1/2) and ratios such as [0.5, 1, 2].")


def _pyramid_rpn(backbone, input_shape, width_multiplier, backbone_width, activation, levels, neck_channels,
                 ratios, backbone_options=None):
    """(image, [map per level], RPN logits, RPN deltas) on a feature pyramid: one RPN head shared
    by every level (3x3 convolution, then objectness and deltas for one anchor size per level at
    each of ``ratios`` aspect ratios), the levels' anchors concatenated finest first."""
    from edgecnn._keras import keras
    from edgecnn.layers import scale_channels
    from edgecnn.models.region_parts import pyramid_feature_maps

    layers = keras.layers
    image, features = pyramid_feature_maps(backbone, input_shape, width_multiplier=width_multiplier,
                                           backbone_width=backbone_width, activation=activation, levels=levels,
                                           neck_channels=neck_channels, family="Faster R-CNN",
                                           backbone_options=backbone_options)
    channels = scale_channels(neck_channels, width_multiplier)
    shared_conv = layers.Conv2D(channels, 3, padding="same", activation=activation, name="rpn_conv")
    objectness = layers.Conv2D(ratios, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                               name="rpn_objectness")
    box = layers.Conv2D(4 * ratios, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                        name="rpn_box")
    scores, deltas = [], []
    for stride, feature in zip(levels, features):
        hidden = shared_conv(feature)
        scores.append(layers.Reshape((-1, 1), name=f"rpn_scores{stride}")(objectness(hidden)))
        deltas.append(layers.Reshape((-1, 4), name=f"rpn_deltas{stride}")(box(hidden)))
    return (image, features, layers.Concatenate(axis=1, name="rpn_scores")(scores),
            layers.Concatenate(axis=1, name="rpn_deltas")(deltas))


def is_faster_rcnn(model) -> bool:
    names = layer_names(model)
    return "rpn_decode" in names and "roi_align" in names


def region_layout(model) -> dict:
    """What the runtime needs to decode this model's deployed outputs, read from the graph."""
    if not is_faster_rcnn(model):
        raise ValueError(f"model '{model.name}' is not a Faster R-CNN (no rpn_decode / roi_align layers)")
    decode = unwrapped_layer(model, "rpn_decode")
    height, width = (int(d) for d in model.input_shape[1:3])
    layout = {"kind": REGION_KIND, "input_size": [height, width],
              "num_classes": int(unwrapped_layer(model, "box_deltas").units) // 4,
              "proposals": int(unwrapped_layer(model, "proposals").count),
              "feature_stride": decode.stride, "feature_strides": list(decode.strides),
              "anchor_sizes": list(decode.sizes), "anchor_ratios": list(decode.ratios),
              "box_encoding": "deltas_xywh", "delta_weights": list(HEAD_DELTA_WEIGHTS),
              "outputs": list(DEPLOYED_OUTPUTS)}
    if has_masks(model):  # Mask R-CNN: (1, P * M, M, K) per-class masks of each proposal
        layout.update(kind=MASK_KIND, outputs=[*DEPLOYED_OUTPUTS, "masks"],
                      mask_size=int(model.outputs[-1].shape[2]))  # masks: last in both forms
    return layout


def has_masks(model) -> bool:
    return "masks" in layer_names(model)


@register_model("detection", create_faster_rcnn, input_shape=(320, 320, 3), min_input_size=64)
def faster_rcnn_edgenet(**overrides) -> keras.Model:
    """Faster R-CNN (RPN with 3x3 anchors, ROI Align, FC head) on EdgeNet (edge-sized)."""
    return create_faster_rcnn("edgenet", **overrides)


@register_model("detection", create_faster_rcnn, input_shape=(512, 512, 3), min_input_size=64)
def faster_rcnn_resnet50(**overrides) -> keras.Model:
    """Faster R-CNN on ResNet-50 with one top-down (FPN) step onto the stride-16 map."""
    return create_faster_rcnn("resnet50", **{"neck_channels": 256, "head_units": 1024,
                                              "anchor_sizes": (64, 128, 256), **overrides})


@register_model("detection", create_faster_rcnn, input_shape=(512, 512, 3), min_input_size=64)
def faster_rcnn_resnet50_fpn(**overrides) -> keras.Model:
    """Faster R-CNN on ResNet-50 with a feature pyramid (strides 4-32, one anchor size per level)."""
    return create_faster_rcnn("resnet50", **{"fpn_levels": (4, 8, 16, 32), "neck_channels": 256,
                                              "anchor_sizes": (32, 64, 128, 256), "head_units": 1024,
                                              "proposals": 300, **overrides})


@register_model("detection", create_faster_rcnn, input_shape=(512, 512, 3), min_input_size=64)
def faster_rcnn_vgg16(**overrides) -> keras.Model:
    """Faster R-CNN on VGG-16 conv5 (stride 16), as in the paper."""
    return create_faster_rcnn("vgg16", **{"top_down": False, "neck_channels": 512, "head_units": 1024,
                                           "anchor_sizes": (64, 128, 256), **overrides})


@register_model("detection", create_faster_rcnn, input_shape=(64, 64, 3), min_input_size=64)
def test_faster_rcnn(**overrides) -> keras.Model:
    """Tiny Faster R-CNN on EdgeNet for fast tests."""
    defaults = {"input_shape": (64, 64, 3), "width_multiplier": 0.25, "num_classes": 3, "neck_channels": 32,
                "feature_stride": 8, "anchor_sizes": (8, 16, 32), "proposals": 16, "head_units": 32}
    return create_faster_rcnn("edgenet", **{**defaults, "name": "test_faster_rcnn", **overrides})
