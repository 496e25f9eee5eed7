"""Reflection padding (CycleGAN pads with mirrored borders before its 7x7 and 3x3 convolutions,
which avoids the dark frame zero padding paints into generated images). TFLite: MIRROR_PAD."""

from __future__ import annotations

from edgecnn._keras import keras, tf


@keras.utils.register_keras_serializable(package="edgecnn")
class ReflectionPadding2D(keras.layers.Layer):
    def __init__(self, padding: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        return tf.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        p = 2 * self.padding
        height, width = input_shape[1], input_shape[2]
        return (input_shape[0], None if height is None else height + p, None if width is None else width + p,
                input_shape[3])

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding}
