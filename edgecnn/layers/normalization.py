"""Local response normalization (Krizhevsky et al. 2012), AlexNet's NORM1/NORM2."""

from __future__ import annotations

import numpy as np

from edgecnn._keras import keras, tf


@keras.utils.register_keras_serializable(package="edgecnn")
class LocalResponseNormalization(keras.layers.Layer):
    """b_c = a_c / (k + alpha * sum_{|c'-c| <= n//2} a_{c'}^2) ** beta  (AlexNet: n=5, k=2,
    alpha=1e-4, beta=0.75; alpha multiplies the plain sum, as in the paper and tf.nn).

    ``implementation="conv"`` (the default) computes the windowed sum of squares as a 1x1
    convolution with a fixed band matrix and the power with SQRT/RSQRT (or POW), all builtins
    that the LiteRT GPU delegate runs; the TFLite LOCAL_RESPONSE_NORMALIZATION op it would
    otherwise use does not run there. ``implementation="builtin"`` emits that op (CPU only).
    Both compute the same function.
    """

    def __init__(
        self,
        depth: int = 5,
        bias: float = 2.0,
        alpha: float = 1e-4,
        beta: float = 0.75,
        implementation: str = "conv",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if depth < 1 or depth % 2 == 0:
            raise ValueError(f"LRN depth must be a positive odd number, got {depth}")
        if implementation not in ("conv", "builtin"):
            raise ValueError(f"LRN implementation must be 'conv' or 'builtin', got {implementation!r}")
        self.depth, self.bias, self.alpha, self.beta = int(depth), float(bias), float(alpha), float(beta)
        self.implementation = implementation

    def build(self, input_shape) -> None:
        channels = int(input_shape[-1])
        radius = self.depth // 2
        offsets = np.abs(np.arange(channels)[:, None] - np.arange(channels)[None, :])
        band = (offsets <= radius).astype(np.float32)
        # A constant, not a weight: it is part of the function, never trained or pruned.
        self._window = tf.constant(band.reshape(1, 1, channels, channels))
        super().build(input_shape)

    def call(self, inputs):
        if self.implementation == "builtin":
            return tf.nn.local_response_normalization(
                inputs, depth_radius=self.depth // 2, bias=self.bias, alpha=self.alpha, beta=self.beta
            )
        window_sum = tf.nn.conv2d(tf.square(inputs), self._window, strides=1, padding="VALID")
        scale = self.bias + self.alpha * window_sum
        if self.beta == 0.75:
            inverse = tf.math.rsqrt(scale) * tf.math.rsqrt(tf.sqrt(scale))  # scale ** -0.75
        elif self.beta == 0.5:
            inverse = tf.math.rsqrt(scale)
        else:
            inverse = tf.pow(scale, -self.beta)
        return inputs * inverse

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "depth": self.depth,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
            "implementation": self.implementation,
        }


@keras.utils.register_keras_serializable(package="edgecnn")
class InstanceNormalization(keras.layers.Layer):
    """Instance normalization (Ulyanov et al. 2016), CycleGAN's norm: each channel of each image
    is normalized over its own height and width. No learned scale or offset by default, as in
    the CycleGAN reference implementation. MEAN, SQUARED_DIFFERENCE, RSQRT, SUB and MUL in
    TFLite: builtins the GPU delegate runs."""

    def __init__(self, epsilon: float = 1e-5, affine: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.epsilon, self.affine = float(epsilon), bool(affine)

    def build(self, input_shape) -> None:
        if self.affine:
            channels = int(input_shape[-1])
            self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
            self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        mean = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        variance = tf.reduce_mean(tf.math.squared_difference(inputs, mean), axis=[1, 2], keepdims=True)
        normalized = (inputs - mean) * tf.math.rsqrt(variance + self.epsilon)
        return normalized * self.gamma + self.beta if self.affine else normalized

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon, "affine": self.affine}
