"""R-CNN (Girshick et al. 2014): every region proposal (selective search) is cropped with some
context, warped to a fixed size and classified on its own by a CNN.

The network sees one warped region (1, S, S, C): a zoo backbone, global average pooling and a
fully connected feature layer (the paper's fc7), then three heads:
``class_scores`` (softmax over K + 1, only for fine-tuning the CNN on regions), ``svm_scores``
(K + 1 linear SVMs, one per class and background) and ``box_deltas`` (class-specific box
regression, 4K). The SVMs and the box regressor learn on the features behind a stop-gradient:
features are the fine-tuned CNN's and only the softmax head changes them, as in the paper, where
SVMs and regressors are trained on frozen features (here in the same epochs as fine-tuning, not
after it). The device file keeps ``svm_scores`` and ``box_deltas``; cropping, warping, decoding
and NMS happen in the runtime, one invoke per region (which is what makes R-CNN slow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.models.region_parts import layer_names
from edgecnn.models.registry import register_model
from edgecnn.runtime.regions import DEFAULT_DELTA_WEIGHTS, WARP_KIND

if TYPE_CHECKING:
    from edgecnn._keras import keras

# context around each region before warping, in pixels of the warped region: the paper's 16 of 227
CONTEXT_FRACTION = 16 / 227


def _create_rcnn(
    backbone: str = "edgenet",
    *,
    num_classes: int = 80,
    input_shape: tuple[int, int, int] = (64, 64, 3),
    width_multiplier: float = 1.0,
    activation: str = "relu",
    feature_units: int = 256,
    backbone_options: dict | None = None,  # for the backbone's builder (models.pretrained sets them)
    name: str | None = None,
) -> keras.Model:
    from edgecnn._keras import keras
    from edgecnn.layers import StopGradient
    from edgecnn.models.common import backbone_features

    layers = keras.layers
    trunk, maps = backbone_features(backbone, input_shape, (), activation, width_multiplier, backbone_options)
    last = maps[max(maps)]
    x = layers.GlobalAveragePooling2D(name="region_pool")(last)
    features = layers.Dense(feature_units, activation=activation, name="region_features")(x)
    class_scores = layers.Dense(num_classes + 1, activation="softmax", name="class_scores")(features)
    frozen = StopGradient(name="frozen_features")(features)
    svm_scores = layers.Dense(num_classes + 1, name="svm_scores")(frozen)
    box_deltas = layers.Dense(4 * num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
                              name="box_deltas")(frozen)
    return keras.Model(trunk.input, [class_scores, svm_scores, box_deltas], name=name or f"rcnn_{backbone}")


def is_rcnn(model) -> bool:
    return "frozen_features" in layer_names(model)


def rcnn_layout(model) -> dict:
    if not is_rcnn(model):
        raise ValueError(f"model '{model.name}' is not an R-CNN (no frozen_features layer)")
    height, width = (int(d) for d in model.input_shape[1:3])
    return {"kind": WARP_KIND, "region_size": [height, width], "num_classes": int(model.outputs[-1].shape[-1]) // 4,
            "context": CONTEXT_FRACTION, "proposal_method": "selective_search", "score": "sigmoid(svm_c - svm_bg)",
            "box_encoding": "deltas_xywh", "delta_weights": list(DEFAULT_DELTA_WEIGHTS),
            "outputs": ["svm_scores", "box_deltas"]}


@register_model("detection", _create_rcnn, input_shape=(64, 64, 3), min_input_size=32)
def rcnn_edgenet(**overrides) -> keras.Model:
    """R-CNN: selective search, each region warped and classified by EdgeNet, SVMs, box regression."""
    return _create_rcnn("edgenet", **overrides)


@register_model("detection", _create_rcnn, input_shape=(224, 224, 3), min_input_size=32)
def rcnn_vgg16(**overrides) -> keras.Model:
    """R-CNN on VGG-16 (conv layers, global pooling, 4096-unit features)."""
    return _create_rcnn("vgg16", **{"feature_units": 4096, **overrides})


@register_model("detection", _create_rcnn, input_shape=(32, 32, 3), min_input_size=32)
def test_rcnn(**overrides) -> keras.Model:
    """Tiny R-CNN on EdgeNet for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 0.25, "num_classes": 3, "feature_units": 32}
    return _create_rcnn("edgenet", **{**defaults, "name": "test_rcnn", **overrides})
