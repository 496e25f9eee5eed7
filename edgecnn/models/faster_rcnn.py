"""Faster R-CNN (Ren et al. 2015): a region proposal network (RPN) with anchors shares the
backbone's feature map with a Fast R-CNN head that classifies and refines each proposal.

Graph (one static, builtin-only model, batch 1 on the device): backbone -> feature map at
``feature_stride`` (with ``top_down``, the next coarser map is upsampled and added to it, one
FPN step onto one level) -> RPN (3x3 conv, 1x1 objectness logit and 1x1 box deltas per anchor;
``len(anchor_sizes) x len(anchor_ratios)`` anchors per position, 3 x 3 by default) ->
``DecodeAnchors`` -> ``TopProposals`` (the ``proposals`` best-scoring boxes; no NMS inside the
graph: measured on the LiteRT GPU accelerator, a file with NON_MAX_SUPPRESSION_V4 does not
compile at all) -> ``RoiAlign`` (7x7 bins) -> two fully connected layers -> softmax over K + 1
classes (0 = background) and per-class box deltas.

Outputs, in order: ``rpn_scores`` (1, N, 1) and ``rpn_deltas`` (1, N, 4), which only training
uses (``deployment_model`` drops them before conversion), then ``proposals`` (1, P, 4, x1 y1 x2
y2 input pixels), ``class_scores`` (1, P, K + 1) and ``box_deltas`` (1, P, 4K). Per-class box
decoding and NMS happen in the runtime (``edgecnn.runtime.regions``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.region_parts import box_head, layer_names, region_feature_map, unwrapped_layer
from edgecnn.models.registry import register_model
from edgecnn.runtime.regions import DEFAULT_DELTA_WEIGHTS, REGION_KIND

if TYPE_CHECKING:
    from edgecnn._keras import keras

# The head's box deltas are trained scaled by these (Fast R-CNN's target normalization)
HEAD_DELTA_WEIGHTS = DEFAULT_DELTA_WEIGHTS
OUTPUTS = ("rpn_scores", "rpn_deltas", "proposals", "class_scores", "box_deltas")
DEPLOYED_OUTPUTS = OUTPUTS[2:]


def _create_faster_rcnn(
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
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import conv_bn_act, scale_channels
    from edgecnn.layers.regions import DecodeAnchors, RoiAlign, TopProposals

    layers = keras.layers
    height, width = int(input_shape[0]), int(input_shape[1])
    stride = int(feature_stride)
    too_big = [s for s in anchor_sizes if s > min(height, width)]
    too_small = [s for s in anchor_sizes if s < stride / 2]
    if too_big or too_small or not anchor_sizes or not anchor_ratios or min(anchor_ratios) <= 0:
        raise EdgeCNNError(f"The anchor set (sizes {list(anchor_sizes)}, ratios {list(anchor_ratios)}) does not fit a "
                           f"{height}x{width} input at feature stride {stride}: "
                           + (f"sizes {too_big} exceed the input; " if too_big else "")
                           + (f"sizes {too_small} are below half the stride; " if too_small else "")
                           + "sizes and ratios must be non-empty and ratios positive.",
                           f"Choose anchor_sizes between {stride / 2:g} and {min(height, width)} pixels "
                           "(e.g. the input's 1/8, 1/4 and 1/2) and ratios such as [0.5, 1, 2].")
    anchors_per_cell = len(anchor_sizes) * len(anchor_ratios)
    cells = (height // stride) * (width // stride)
    if not 1 <= proposals <= cells * anchors_per_cell:
        raise EdgeCNNError(f"proposals={proposals} must be between 1 and the {cells * anchors_per_cell} anchors.")
    image, features = region_feature_map(backbone, input_shape, width_multiplier=width_multiplier,
                                         backbone_width=backbone_width, activation=activation,
                                         feature_stride=stride, top_down=top_down, neck_channels=neck_channels,
                                         family="Faster R-CNN")
    channels = scale_channels(neck_channels, width_multiplier)
    rpn = conv_bn_act(features, channels, 3, 1, "same", activation, name="rpn_conv")
    objectness = layers.Conv2D(anchors_per_cell, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                               name="rpn_objectness")(rpn)
    deltas = layers.Conv2D(4 * anchors_per_cell, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                           name="rpn_box")(rpn)
    rpn_scores = layers.Reshape((-1, 1), name="rpn_scores")(objectness)
    rpn_deltas = layers.Reshape((-1, 4), name="rpn_deltas")(deltas)
    boxes = DecodeAnchors((height, width), stride, tuple(anchor_sizes), tuple(anchor_ratios),
                          name="rpn_decode")(rpn_deltas)
    chosen = TopProposals(proposals, name="proposals")([rpn_scores, boxes])
    pooled = RoiAlign(pool_size, sampling, stride, name="roi_align")([features, chosen])
    class_scores, box_deltas = box_head(pooled, num_classes, head_units, activation)
    return keras.Model(image, [rpn_scores, rpn_deltas, chosen, class_scores, box_deltas],
                       name=name or f"faster_rcnn_{backbone}")


def is_faster_rcnn(model) -> bool:
    names = layer_names(model)
    return "rpn_decode" in names and "roi_align" in names


def region_layout(model) -> dict:
    """What the runtime needs to decode this model's deployed outputs, read from the graph."""
    if not is_faster_rcnn(model):
        raise ValueError(f"model '{model.name}' is not a Faster R-CNN (no rpn_decode / roi_align layers)")
    decode = unwrapped_layer(model, "rpn_decode")
    height, width = (int(d) for d in model.input_shape[1:3])
    return {"kind": REGION_KIND, "input_size": [height, width],
            "num_classes": int(model.outputs[-1].shape[-1]) // 4,  # box_deltas, last in both forms
            "proposals": int(unwrapped_layer(model, "proposals").count),
            "feature_stride": decode.stride, "anchor_sizes": list(decode.sizes), "anchor_ratios": list(decode.ratios),
            "box_encoding": "deltas_xywh", "delta_weights": list(HEAD_DELTA_WEIGHTS),
            "outputs": list(DEPLOYED_OUTPUTS)}


def deployment_model(model):
    """The model a device runs: the training-only RPN outputs dropped."""
    from edgecnn._keras import keras

    return keras.Model(model.inputs, model.outputs[2:], name=model.name)


@register_model("detection", _create_faster_rcnn, input_shape=(320, 320, 3), min_input_size=64)
def faster_rcnn_edgenet(**overrides) -> keras.Model:
    """Faster R-CNN (RPN with 3x3 anchors, ROI Align, FC head) on EdgeNet (edge-sized)."""
    return _create_faster_rcnn("edgenet", **overrides)


@register_model("detection", _create_faster_rcnn, input_shape=(512, 512, 3), min_input_size=64)
def faster_rcnn_resnet50(**overrides) -> keras.Model:
    """Faster R-CNN on ResNet-50 with one top-down (FPN) step onto the stride-16 map."""
    return _create_faster_rcnn("resnet50", **{"neck_channels": 256, "head_units": 1024,
                                              "anchor_sizes": (64, 128, 256), **overrides})


@register_model("detection", _create_faster_rcnn, input_shape=(512, 512, 3), min_input_size=64)
def faster_rcnn_vgg16(**overrides) -> keras.Model:
    """Faster R-CNN on VGG-16 conv5 (stride 16), as in the paper."""
    return _create_faster_rcnn("vgg16", **{"top_down": False, "neck_channels": 512, "head_units": 1024,
                                           "anchor_sizes": (64, 128, 256), **overrides})


@register_model("detection", _create_faster_rcnn, input_shape=(64, 64, 3), min_input_size=64)
def test_faster_rcnn(**overrides) -> keras.Model:
    """Tiny Faster R-CNN on EdgeNet for fast tests."""
    defaults = {"input_shape": (64, 64, 3), "width_multiplier": 0.25, "num_classes": 3, "neck_channels": 32,
                "feature_stride": 8, "anchor_sizes": (8, 16, 32), "proposals": 16, "head_units": 32}
    return _create_faster_rcnn("edgenet", **{**defaults, "name": "test_faster_rcnn", **overrides})
