"""The lecture's two classification losses, on raw class scores: softmax cross-entropy and the
multiclass SVM (hinge) loss."""

from __future__ import annotations

SVM_MARGIN = 1.0


def multiclass_hinge(labels, scores, weights=None, margin: float = SVM_MARGIN):
    """The multiclass SVM loss (Weston and Watkins; the CS231n form): for each example, the sum
    over wrong classes j of max(0, s_j - s_y + margin). ``labels`` (...,) integer classes,
    ``scores`` (..., C) raw scores; ``weights`` (...,) per-example weights. Returns the mean."""
    from edgecnn._keras import tf

    labels = tf.cast(tf.reshape(labels, tf.shape(scores)[:-1]), tf.int32)
    correct = tf.gather(scores, labels, batch_dims=len(scores.shape) - 1)[..., None]
    wrong = 1.0 - tf.one_hot(labels, tf.shape(scores)[-1], dtype=scores.dtype)
    per_example = tf.reduce_sum(wrong * tf.nn.relu(scores - correct + margin), axis=-1)
    if weights is None:
        return tf.reduce_mean(per_example)
    weights = tf.cast(weights, scores.dtype)
    return tf.reduce_sum(weights * per_example) / tf.maximum(tf.reduce_sum(weights), 1.0)


def classification_loss(name: str):
    """The Keras loss a classification recipe's ``training.loss`` names, on logits."""
    from edgecnn._keras import keras
    from edgecnn.errors import EdgeCNNError

    if name == "cross_entropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if name == "svm":
        return multiclass_hinge
    raise EdgeCNNError(f"training.loss '{name}' is not a classification loss.", "Use cross_entropy (softmax) or svm.")
