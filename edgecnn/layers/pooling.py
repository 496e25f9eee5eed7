"""Max-unpooling with the encoder's max-pooling indices (SegNet) from TFLite builtin ops.

TensorFlow's ``max_pool_with_argmax`` has no TFLite builtin. The indices are not needed as a
tensor, though: for a 2x2/stride-2 pool they are fully determined by the pre-pool feature map.
``MaxUnpooling2D()([values, features])`` recomputes, for each 2x2 window of ``features``, which
of the four positions holds the maximum (the first one in row-major order on ties, as
``max_pool_with_argmax`` does) and places ``values`` there, zeros elsewhere. It uses
SPACE_TO_DEPTH, SPLIT, MAXIMUM, GREATER_EQUAL, CAST, MUL/SUB/ADD, CONCATENATION and
DEPTH_TO_SPACE, which the GPU delegate also runs.
"""

from __future__ import annotations

from edgecnn._keras import keras, tf


@keras.utils.register_keras_serializable(package="edgecnn")
class MaxUnpooling2D(keras.layers.Layer):
    """Inverse of a 2x2, stride-2, VALID max-pool: ``values`` (B, H/2, W/2, C) go to the argmax
    positions of ``features`` (B, H, W, C), the tensor that was pooled."""

    def call(self, inputs):
        values, features = inputs
        windows = tf.split(tf.nn.space_to_depth(features, 2), 4, axis=-1)  # positions (0,0) (0,1) (1,0) (1,1)
        peak = _maximum(windows)
        taken = tf.zeros_like(peak)
        placed = []
        for window in windows:
            # window <= peak everywhere, so ">=" means "is a maximum"; earlier maxima win ties
            hit = tf.cast(window >= peak, values.dtype) * (1.0 - taken)
            taken = taken + hit
            placed.append(hit * values)
        return tf.nn.depth_to_space(tf.concat(placed, axis=-1), 2)

    def compute_output_shape(self, input_shape):
        return input_shape[1]


def _maximum(tensors):
    result = tensors[0]
    for tensor in tensors[1:]:
        result = tf.maximum(result, tensor)
    return result
