"""Every activation the textbook lists, selectable by name.

Each one maps to a TFLite builtin that the LiteRT GPU delegate runs (RELU, LEAKY_RELU, PRELU,
ELU, LOGISTIC, TANH, LOGISTIC+MUL for Swish, MAXIMUM for Maxout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgecnn._keras import keras, tf
from edgecnn.errors import EdgeCNNError, did_you_mean


@keras.utils.register_keras_serializable(package="edgecnn")
class Maxout(keras.layers.Layer):
    """Maxout (Goodfellow et al. 2013): the element-wise max over ``pieces`` channel groups.

    The input has ``units * pieces`` channels; the output has ``units``. Written as a chain of
    MAXIMUM ops over contiguous channel slices rather than a 5-D reshape + reduce_max, because
    the GPU delegate runs the former and rejects the latter.
    """

    def __init__(self, pieces: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        if pieces < 2:
            raise EdgeCNNError(f"Maxout needs at least 2 pieces, got {pieces}.", "Use pieces=2 or more.")
        self.pieces = int(pieces)

    def build(self, input_shape) -> None:
        channels = input_shape[-1]
        if channels is None or channels % self.pieces:
            raise EdgeCNNError(
                f"Maxout with {self.pieces} pieces needs a channel count divisible by "
                f"{self.pieces}, got {channels}.",
                "Make the layer before it produce units * pieces channels.",
            )
        self.units = channels // self.pieces
        super().build(input_shape)

    def call(self, inputs):
        result = inputs[..., : self.units]
        for piece in range(1, self.pieces):
            result = tf.maximum(result, inputs[..., piece * self.units : (piece + 1) * self.units])
        return result

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] // self.pieces,)

    def get_config(self) -> dict:
        return {**super().get_config(), "pieces": self.pieces}


@dataclass(frozen=True)
class ActivationSpec:
    """How to build one activation; ``channel_factor`` is how many channels it consumes per
    output channel (2 for a two-piece Maxout, 1 for everything else)."""

    make: Callable[[str, int], keras.layers.Layer]
    channel_factor: int = 1


def _keras_activation(identifier: str) -> Callable[[str, int], keras.layers.Layer]:
    return lambda name, rank: keras.layers.Activation(identifier, name=name)


def _prelu(name: str, rank: int) -> keras.layers.Layer:
    # One slope per channel, shared over space: the textbook PReLU and TFLite's PRELU op.
    return keras.layers.PReLU(shared_axes=list(range(1, rank - 1)) or None, name=name)


ACTIVATIONS: dict[str, ActivationSpec] = {
    "relu": ActivationSpec(_keras_activation("relu")),
    "leaky_relu": ActivationSpec(lambda name, rank: keras.layers.LeakyReLU(alpha=0.1, name=name)),
    "prelu": ActivationSpec(_prelu),
    "elu": ActivationSpec(_keras_activation("elu")),
    "swish": ActivationSpec(_keras_activation("swish")),
    "sigmoid": ActivationSpec(_keras_activation("sigmoid")),
    "tanh": ActivationSpec(_keras_activation("tanh")),
    "maxout": ActivationSpec(lambda name, rank: Maxout(pieces=2, name=name), channel_factor=2),
    "linear": ActivationSpec(_keras_activation("linear")),
}


def activation_spec(name: str) -> ActivationSpec:
    key = name.lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise EdgeCNNError(
            f"Unknown activation '{name}'.{did_you_mean(key, ACTIVATIONS)}",
            f"Choose one of: {', '.join(ACTIVATIONS)}.",
        )
    return ACTIVATIONS[key]


def make_activation(name: str, layer_name: str, rank: int = 4) -> keras.layers.Layer:
    """A fresh activation layer for ``name`` applied to tensors of ``rank`` (4 for NHWC)."""
    return activation_spec(name).make(layer_name, rank)
