"""GoogLeNet / Inception v1 (Szegedy et al. 2015, Table 1).

Convolutions carry biases and no batch norm, LRN follows the first max-pool and conv2, the
max-pools round up (Caffe's ceil mode, here 'same' padding) so 224 -> 112 -> 56 -> 28 -> 14 -> 7,
and the 5x5 branches really are 5x5. Auxiliary classifiers after inception 4a and 4d are
optional (training only); with them the model returns [logits, aux1, aux2].
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.errors import EdgeCNNError
from edgecnn.models.registry import register_model

if TYPE_CHECKING:  # the families import Keras lazily, inside their _create_* functions
    from edgecnn._keras import keras

# name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), from Table 1.
_INCEPTION = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}
_POOL_AFTER = {"inception3b": "pool3", "inception4e": "pool4"}
_AUX_AFTER = {"inception4a": "aux1", "inception4d": "aux2"}


def _aux_classifier(x, num_classes, width_multiplier, activation, batch_norm, name):
    from edgecnn._keras import keras
    from edgecnn.layers import conv_bn_act, dense_act, scale_channels

    layers = keras.layers
    y = layers.AveragePooling2D(5, 3, name=f"{name}_pool")(x)
    y = conv_bn_act(y, scale_channels(128, width_multiplier), 1, 1, 0, activation, batch_norm, name=f"{name}_conv")
    y = layers.Flatten(name=f"{name}_flatten")(y)
    y = dense_act(y, scale_channels(1024, width_multiplier), activation, 0.7, name=f"{name}_fc1")
    return layers.Dense(num_classes, name=f"{name}_fc2")(y)


def _create_googlenet(
    *,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    width_multiplier: float = 1.0,
    activation: str = "relu",
    batch_norm: bool = False,
    lrn: bool = True,
    lrn_implementation: str = "conv",
    aux_logits: bool = False,
    dropout: float = 0.4,
    features_only: bool = False,
    name: str = "googlenet",
) -> keras.Model:
    # Imported here so that registering the variants does not import TensorFlow.
    from edgecnn._keras import keras
    from edgecnn.layers import LocalResponseNormalization, conv_bn_act, inception_module, scale_channels
    from edgecnn.models.common import finish

    layers = keras.layers
    if aux_logits and min(input_shape[:2]) < 80:
        raise EdgeCNNError(
            f"GoogLeNet's auxiliary classifiers need an input of at least 80x80, got {input_shape[0]}x{input_shape[1]}.",
            "Use a larger input_shape or aux_logits=False.",
        )

    def width(channels: int) -> int:
        return scale_channels(channels, width_multiplier)

    def lrn_layer(tensor, layer_name):
        if not lrn:
            return tensor
        return LocalResponseNormalization(depth=5, bias=1.0, alpha=1e-4, beta=0.75,
                                          implementation=lrn_implementation, name=layer_name)(tensor)

    inputs = keras.Input(input_shape, name="image")
    x = conv_bn_act(inputs, width(64), 7, 2, 3, activation, batch_norm, name="conv1")
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool1")(x)
    x = lrn_layer(x, "norm1")
    stages = [(4, x)]
    x = conv_bn_act(x, width(64), 1, 1, 0, activation, batch_norm, name="conv2_reduce")
    x = conv_bn_act(x, width(192), 3, 1, 1, activation, batch_norm, name="conv2")
    x = lrn_layer(x, "norm2")
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool2")(x)
    aux_outputs = []
    for module_name, filters in _INCEPTION.items():
        x = inception_module(x, *(width(f) for f in filters), activation=activation,
                             batch_norm=batch_norm, name=module_name)
        if aux_logits and not features_only and module_name in _AUX_AFTER:
            aux_outputs.append(
                _aux_classifier(x, num_classes, width_multiplier, activation, batch_norm, _AUX_AFTER[module_name])
            )
        if module_name in _POOL_AFTER:
            stages.append((8 if module_name == "inception3b" else 16, x))
            x = layers.MaxPooling2D(3, 2, padding="same", name=_POOL_AFTER[module_name])(x)
    stages.append((32, x))

    def head(features):
        y = layers.GlobalAveragePooling2D(name="avgpool")(features)
        if dropout:
            y = layers.Dropout(dropout, name="dropout")(y)
        logits = layers.Dense(num_classes, name="fc")(y)
        return [logits, *aux_outputs] if aux_outputs else logits

    return finish(inputs, stages, features_only, head, name)


@register_model("classification", _create_googlenet)
def googlenet(**overrides) -> keras.Model:
    """GoogLeNet (Inception v1) as in the paper; aux_logits=True adds the two auxiliary heads."""
    return _create_googlenet(**overrides)


@register_model("classification", _create_googlenet)
def googlenet_bn(**overrides) -> keras.Model:
    """GoogLeNet with batch norm after each convolution instead of LRN."""
    return _create_googlenet(**{"batch_norm": True, "lrn": False, "name": "googlenet_bn", **overrides})


@register_model("classification", _create_googlenet, input_shape=(32, 32, 3))
def test_googlenet(**overrides) -> keras.Model:
    """Tiny GoogLeNet for fast tests."""
    defaults = {"input_shape": (32, 32, 3), "width_multiplier": 1 / 8, "num_classes": 10}
    return _create_googlenet(**{**defaults, "name": "test_googlenet", **overrides})
