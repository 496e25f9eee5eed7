"""YOLO ("you only look once"): one network from the image to a dense tensor of box and class
scores, with multi-scale heads on any zoo backbone.

Design (documented choice): **anchor-free**, as in YOLOX/YOLOv8 and FCOS. Every cell of every
head level is a candidate point; the network predicts, per point, the log-distances from the
cell centre to the four box sides (distance = exp(t) * stride) and one logit per class (no
separate objectness). Anchor-free needs no anchor clustering per data set, and its outputs are
two plain tensors that survive int8 quantization well (each gets its own scale).

Activation: SiLU (swish) by default, in backbone, neck and head, as in YOLOv5-v11. Measured on
builtin:shapes (the quickstart's nano variant, same training): mAP@.5 / mAP 0.951 / 0.811 against
ReLU's 0.920 / 0.741; its int8 invoke costs about 1.2x ReLU's (LOGISTIC + MUL per activation),
and the GPU accelerator runs it.

Graph: backbone feature maps (strides 8, 16, 32) -> a top-down FPN neck (1x1 lateral convs,
nearest upsampling, concatenation, 3x3 convs) -> per level a decoupled head: a 3x3 conv branch
ending in a 1x1 box conv (4) and another ending in a 1x1 class conv (C) -> reshaped and concatenated over levels into two outputs,
``boxes`` (1, N, 4) and ``scores`` (1, N, C), N = sum(H_s * W_s). Static shapes, builtin ops
(CONV_2D, ADD, CONCATENATION, RESIZE_NEAREST_NEIGHBOR, RESHAPE), GPU-friendly; decoding and
NMS happen in the runtime (``edgecnn.runtime.detection``).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from edgecnn.models.registry import register_model

if TYPE_CHECKING:
    from edgecnn._keras import keras

DEFAULT_STRIDES = (8, 16, 32)
PRIOR_PROBABILITY = 0.01  # initial class score, so the many background points start near zero
_HEAD_NAME = re.compile(r"^(?:quant_)?head_s(\d+)_box$")


def _create_yolo(
    backbone: str = "edgenet",
    *,
    num_classes: int = 80,
    input_shape: tuple[int, int, int] = (320, 320, 3),
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    backbone_width: float | None = None,
    activation: str = "swish",
    strides: tuple[int, ...] = DEFAULT_STRIDES,
    neck_channels: int = 96,
    backbone_options: dict | None = None,  # for the backbone's builder (models.pretrained sets them)
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers import conv_bn_act, scale_channels
    from edgecnn.models.common import backbone_features

    layers = keras.layers
    strides = tuple(sorted(int(s) for s in strides))
    if input_shape[0] % strides[-1] or input_shape[1] % strides[-1]:
        raise EdgeCNNError(f"YOLO input {input_shape[:2]} must be a multiple of its largest stride {strides[-1]}.",
                           f"Use e.g. {strides[-1] * max(1, round(input_shape[0] / strides[-1]))} pixels.")
    trunk, features = backbone_features(backbone, input_shape, strides, activation,
                                        backbone_width if backbone_width is not None else width_multiplier,
                                        backbone_options)
    width = scale_channels(neck_channels, width_multiplier)
    depth = max(1, round(depth_multiplier))

    # top-down FPN: coarse levels refine the finer ones
    levels: dict[int, object] = {}
    previous = None
    for stride in reversed(strides):
        x = conv_bn_act(features[stride], width, 1, 1, "same", activation, name=f"neck_s{stride}_lateral")
        if previous is not None:
            up = layers.UpSampling2D(2, interpolation="nearest", name=f"neck_s{stride}_up")(previous)
            x = layers.Concatenate(name=f"neck_s{stride}_concat")([x, up])
        for index in range(depth):
            x = conv_bn_act(x, width, 3, 1, "same", activation, name=f"neck_s{stride}_conv{index + 1}")
        levels[stride] = previous = x

    boxes, scores = [], []
    bias = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
    for stride in strides:
        # decoupled head (YOLOX): box and class branches do not share convolutions; with one
        # shared stem the box loss dominated it and the classes were not learnt on shapes
        box_x = score_x = levels[stride]
        for index in range(depth):
            box_x = conv_bn_act(box_x, width, 3, 1, "same", activation, name=f"head_s{stride}_reg{index + 1}")
            score_x = conv_bn_act(score_x, width, 3, 1, "same", activation, name=f"head_s{stride}_clsconv{index + 1}")
        box = layers.Conv2D(4, 1, name=f"head_s{stride}_box")(box_x)
        score = layers.Conv2D(num_classes, 1, bias_initializer=keras.initializers.Constant(bias),
                              name=f"head_s{stride}_cls")(score_x)
        boxes.append(layers.Reshape((-1, 4), name=f"head_s{stride}_box_flat")(box))
        scores.append(layers.Reshape((-1, num_classes), name=f"head_s{stride}_cls_flat")(score))
    boxes_out = layers.Concatenate(axis=1, name="boxes")(boxes) if len(boxes) > 1 else \
        layers.Activation("linear", name="boxes")(boxes[0])
    scores_out = layers.Concatenate(axis=1, name="scores")(scores) if len(scores) > 1 else \
        layers.Activation("linear", name="scores")(scores[0])
    return keras.Model(trunk.input, [boxes_out, scores_out], name=name or f"yolo_{backbone}")


def has_yolo_heads(model) -> bool:
    return any(_HEAD_NAME.match(layer.name) for layer in model.layers)


def detection_layout(model) -> dict:
    """What the runtime needs to decode this model's outputs, read from the graph itself
    (layer names carry the strides), so a saved .keras file is enough."""
    strides = sorted(int(m.group(1)) for layer in model.layers if (m := _HEAD_NAME.match(layer.name)))
    if not strides:
        raise ValueError(f"model '{model.name}' has no YOLO head layers (head_s<stride>_box)")
    height, width = (int(d) for d in model.input_shape[1:3])
    return {"kind": "yolo_anchor_free", "strides": strides, "input_size": [height, width],
            "num_classes": int(model.outputs[1].shape[-1]), "box_encoding": "ltrb_log_stride",
            "score_activation": "sigmoid", "outputs": ["boxes", "scores"]}


@register_model("detection", _create_yolo, input_shape=(320, 320, 3), min_input_size=64)
def yolo_edgenet(**overrides) -> keras.Model:
    """YOLO, anchor-free, on EdgeNet (edge-sized)."""
    return _create_yolo("edgenet", **overrides)


@register_model("detection", _create_yolo, input_shape=(320, 320, 3), min_input_size=64)
def yolo_edgenet_n(**overrides) -> keras.Model:
    """YOLO on EdgeNet at half width, neck 64: the quickstart's nano detector."""
    return _create_yolo("edgenet", **{"width_multiplier": 0.5, "neck_channels": 64, "name": "yolo_edgenet_n",
                                      **overrides})


@register_model("detection", _create_yolo, input_shape=(320, 320, 3), min_input_size=64)
def yolo_resnet18(**overrides) -> keras.Model:
    """YOLO, anchor-free, on ResNet-18."""
    return _create_yolo("resnet18", **{"neck_channels": 128, **overrides})


@register_model("detection", _create_yolo, input_shape=(320, 320, 3), min_input_size=64)
def yolo_resnet50(**overrides) -> keras.Model:
    """YOLO, anchor-free, on ResNet-50."""
    return _create_yolo("resnet50", **{"neck_channels": 256, **overrides})


@register_model("detection", _create_yolo, input_shape=(320, 320, 3), min_input_size=64)
def yolo_vgg16(**overrides) -> keras.Model:
    """YOLO, anchor-free, on VGG-16 (conv layers)."""
    return _create_yolo("vgg16", **{"neck_channels": 128, **overrides})


@register_model("detection", _create_yolo, input_shape=(64, 64, 3), min_input_size=64)
def test_yolo(**overrides) -> keras.Model:
    """Tiny YOLO on EdgeNet for fast tests."""
    defaults = {"input_shape": (64, 64, 3), "width_multiplier": 0.25, "num_classes": 3, "neck_channels": 32}
    return _create_yolo("edgenet", **{**defaults, "name": "test_yolo", **overrides})
