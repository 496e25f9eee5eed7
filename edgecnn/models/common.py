"""Pieces shared by the classification families."""

from __future__ import annotations

from collections.abc import Sequence

from edgecnn._keras import keras


def feature_name(stride: int) -> str:
    return f"features_stride{stride}"


def finish(inputs, stages: Sequence[tuple[int, object]], features_only: bool, head, name: str):
    """Either the classifier (``head`` applied to the last stage) or, with ``features_only``,
    a model whose outputs are the stage feature maps named ``features_stride{s}``, finest first."""
    if features_only:
        outputs = [
            keras.layers.Identity(name=feature_name(stride))(tensor) for stride, tensor in stages
        ]
        return keras.Model(inputs, outputs, name=f"{name}_features")
    return keras.Model(inputs, head(stages[-1][1]), name=name)


def fully_connected_head(features, num_classes: int, units: int, activation: str, dropout: float):
    """The AlexNet/VGG classifier: flatten, FC6 and FC7 (activation + dropout), FC8 logits."""
    from edgecnn.layers import dense_act

    y = keras.layers.Flatten(name="flatten")(features)
    y = dense_act(y, units, activation, dropout, name="fc6")
    y = dense_act(y, units, activation, dropout, name="fc7")
    return keras.layers.Dense(num_classes, name="fc8")(y)


def backbone_features(backbone: str, input_shape, strides, activation: str, width_multiplier: float):
    """(backbone model, {stride: feature map}) of a zoo classifier built with ``features_only``,
    for detectors; clear errors for a model that cannot serve, or lacks one of ``strides``."""
    from edgecnn.errors import EdgeCNNError
    from edgecnn.models.registry import registered

    entry = registered(backbone)
    if "features_only" not in entry.options:
        raise EdgeCNNError(f"'{backbone}' cannot serve as a backbone.", "Use edgenet, a resnet or a vgg.")
    trunk = entry.builder(input_shape=tuple(input_shape), features_only=True, activation=activation,
                          width_multiplier=width_multiplier)
    available = {int(n.split("stride")[-1]) for n in trunk.output_names}
    missing = [s for s in strides if s not in available]
    if missing:
        raise EdgeCNNError(f"Backbone '{backbone}' has no feature maps at strides {missing}.",
                           f"It provides strides {sorted(available)}.")
    return trunk, {s: trunk.get_layer(feature_name(s)).output for s in sorted(available)}
