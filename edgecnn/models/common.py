"""Pieces shared by the classification families."""

from __future__ import annotations

from collections.abc import Sequence

from edgecnn._keras import keras


def feature_name(stride: int) -> str:
    return f"features_stride{stride}"


CAFFE_MEANS_BGR = (103.939, 116.779, 123.68)  # what Keras Applications' VGG and ResNet weights expect
PREPROCESSINGS = ("caffe",)


def input_preprocessing(inputs, preprocessing: str | None):
    """The image input as the pretrained weights expect it. ``caffe`` (Keras Applications' VGG and
    ResNet): RGB in [0, 1] -> BGR in 0..255 less the ImageNet channel means, as one fixed 1x1
    convolution, so the file's input and its metadata stay RGB in [0, 1] (one mean and std for
    every channel, which MediaPipe Tasks can apply) and the conversion is exact."""
    if preprocessing is None:
        return inputs
    from edgecnn.errors import EdgeCNNError

    if preprocessing not in PREPROCESSINGS:
        raise EdgeCNNError(f"Unknown preprocessing '{preprocessing}'.", f"Choose one of: {', '.join(PREPROCESSINGS)}.")
    if inputs.shape[-1] != 3:
        raise EdgeCNNError(f"ImageNet weights take RGB images; this model's input has {inputs.shape[-1]} channel(s).",
                           "Build it with input_shape=(H, W, 3).")
    import numpy as np

    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for out in range(3):
        kernel[0, 0, 2 - out, out] = 255.0  # BGR out of RGB
    layer = keras.layers.Conv2D(3, 1, name="caffe_preprocess", trainable=False,
                                kernel_initializer=keras.initializers.Constant(kernel),
                                bias_initializer=keras.initializers.Constant(-np.array(CAFFE_MEANS_BGR, np.float32)))
    return layer(inputs)


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


def backbone_features(backbone: str, input_shape, strides, activation: str, width_multiplier: float,
                      options: dict | None = None):
    """(backbone model, {stride: feature map}) of a zoo classifier built with ``features_only``
    (and ``options``, e.g. a pretrained layout: ``models.pretrained``), for detectors; clear
    errors for a model that cannot serve, or lacks one of ``strides``."""
    from edgecnn.errors import EdgeCNNError
    from edgecnn.models.registry import registered

    entry = registered(backbone)
    if "features_only" not in entry.options:
        raise EdgeCNNError(f"'{backbone}' cannot serve as a backbone.", "Use edgenet, a resnet or a vgg.")
    trunk = entry.builder(input_shape=tuple(input_shape), features_only=True, activation=activation,
                          width_multiplier=width_multiplier, **(options or {}))
    available = {int(n.split("stride")[-1]) for n in trunk.output_names}
    missing = [s for s in strides if s not in available]
    if missing:
        raise EdgeCNNError(f"Backbone '{backbone}' has no feature maps at strides {missing}.",
                           f"It provides strides {sorted(available)}.")
    return trunk, {s: trunk.get_layer(feature_name(s)).output for s in sorted(available)}
