"""Fast R-CNN (Girshick 2015): one backbone pass per image; each external region proposal
(selective search, ``edgecnn.runtime.selective_search``) is ROI-max-pooled from the shared
feature map to a fixed grid (7x7) and classified by a fully connected head with two sibling
outputs: softmax over K + 1 classes and per-class box deltas.

Inputs: ``image`` (1, H, W, C) and ``proposals`` (1, R, 4), x1 y1 x2 y2 in input pixels, a fixed
R (the runtime pads a shorter list and ignores the padded rows). Outputs: ``class_scores``
(1, R, K + 1) and ``box_deltas`` (1, R, 4K); decoding and NMS in the runtime
(``edgecnn.runtime.regions``), as for Faster R-CNN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgecnn.models.region_parts import box_head, layer_names, region_feature_map, unwrapped_layer
from edgecnn.models.registry import register_model
from edgecnn.runtime.regions import DEFAULT_DELTA_WEIGHTS, PROPOSAL_KIND

if TYPE_CHECKING:
    from edgecnn._keras import keras


def _create_fast_rcnn(
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
    proposals: int = 128,
    pool_size: int = 7,
    sampling: int = 2,
    head_units: int = 256,
    backbone_options: dict | None = None,  # for the backbone's builder (models.pretrained sets them)
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError
    from edgecnn.layers.regions import RoiAlign

    if proposals < 1:
        raise EdgeCNNError(f"proposals={proposals}: Fast R-CNN needs at least one region per image.")
    image, features = region_feature_map(backbone, input_shape, width_multiplier=width_multiplier,
                                         backbone_width=backbone_width, activation=activation,
                                         feature_stride=feature_stride, top_down=top_down,
                                         neck_channels=neck_channels, family="Fast R-CNN",
                                         backbone_options=backbone_options)
    regions = keras.Input((proposals, 4), name="proposals")
    pooled = RoiAlign(pool_size, sampling, feature_stride, reduction="max", name="roi_pool")([features, regions])
    class_scores, box_deltas = box_head(pooled, num_classes, head_units, activation)
    return keras.Model([image, regions], [class_scores, box_deltas], name=name or f"fast_rcnn_{backbone}")


def random_proposals(input_size: tuple[int, int], count: int, seed: int) -> np.ndarray:
    """(count, 4) boxes of random position and size (4 px to the whole input), x1 y1 x2 y2: the
    proposals input for conversion's calibration and parity samples, where no search ran."""
    rng = np.random.default_rng(seed)
    height, width = input_size
    sizes = rng.uniform(4, [width, height], (count, 2))
    corner = rng.uniform(0, 1, (count, 2)) * (np.array([width, height]) - sizes)
    return np.concatenate([corner, corner + sizes], axis=1).astype(np.float32)


def is_fast_rcnn(model) -> bool:
    return "roi_pool" in layer_names(model) and len(model.inputs) == 2


def fast_rcnn_layout(model) -> dict:
    """What the runtime needs to run this model: its proposal count and box decoding."""
    if not is_fast_rcnn(model):
        raise ValueError(f"model '{model.name}' is not a Fast R-CNN (no roi_pool layer and proposals input)")
    height, width = (int(d) for d in model.input_shape[0][1:3])
    return {"kind": PROPOSAL_KIND, "input_size": [height, width], "num_classes": int(model.outputs[-1].shape[-1]) // 4,
            "proposals": int(model.input_shape[1][1]),
            "proposal_method": "selective_search", "pool": "max",
            "feature_stride": int(unwrapped_layer(model, "roi_pool").stride),
            "box_encoding": "deltas_xywh", "delta_weights": list(DEFAULT_DELTA_WEIGHTS),
            "outputs": ["class_scores", "box_deltas"]}


@register_model("detection", _create_fast_rcnn, input_shape=(320, 320, 3), min_input_size=64)
def fast_rcnn_edgenet(**overrides) -> keras.Model:
    """Fast R-CNN (selective-search proposals, ROI max pooling, FC head) on EdgeNet."""
    return _create_fast_rcnn("edgenet", **overrides)


@register_model("detection", _create_fast_rcnn, input_shape=(512, 512, 3), min_input_size=64)
def fast_rcnn_vgg16(**overrides) -> keras.Model:
    """Fast R-CNN on VGG-16 conv5 (stride 16), as in the paper."""
    return _create_fast_rcnn("vgg16", **{"top_down": False, "neck_channels": 512, "head_units": 1024, **overrides})


@register_model("detection", _create_fast_rcnn, input_shape=(64, 64, 3), min_input_size=64)
def test_fast_rcnn(**overrides) -> keras.Model:
    """Tiny Fast R-CNN on EdgeNet for fast tests."""
    defaults = {"input_shape": (64, 64, 3), "width_multiplier": 0.25, "num_classes": 3, "neck_channels": 32,
                "feature_stride": 8, "proposals": 16, "head_units": 32}
    return _create_fast_rcnn("edgenet", **{**defaults, "name": "test_fast_rcnn", **overrides})
