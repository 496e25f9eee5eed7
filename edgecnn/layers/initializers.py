"""Weight initializers the zoo needs beyond Keras' own, serializable by name (a Constant
initializer holding an array cannot be restored from a QAT model's .h5 file)."""

from __future__ import annotations

import numpy as np

from edgecnn._keras import keras, tf


def bilinear_kernel(size: int, channels: int) -> np.ndarray:
    """(size, size, channels, channels) kernel of a transposed convolution that upsamples each
    channel by bilinear interpolation (FCN's initialisation of its learnable upsamplings)."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    grid = np.ogrid[:size, :size]
    weights = (1 - abs(grid[0] - centre) / factor) * (1 - abs(grid[1] - centre) / factor)
    kernel = np.zeros((size, size, channels, channels), np.float32)
    for channel in range(channels):
        kernel[:, :, channel, channel] = weights
    return kernel


@keras.utils.register_keras_serializable(package="edgecnn")
class BilinearUpsampling(keras.initializers.Initializer):
    """Initializer form of ``bilinear_kernel`` for a square Conv2DTranspose kernel whose input
    and output channel counts are equal."""

    def __call__(self, shape, dtype=None, **kwargs):
        size, _, out_channels, in_channels = shape
        if out_channels != in_channels:
            raise ValueError(f"bilinear upsampling needs as many output as input channels, got {shape}")
        return tf.constant(bilinear_kernel(int(size), int(in_channels)), dtype=dtype or tf.float32)

    def get_config(self) -> dict:
        return {}
