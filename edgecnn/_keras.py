"""The one module of edgecnn that imports Keras.

Everything else does ``from edgecnn._keras import keras, tf``. edgecnn uses the Keras 2 API
(``tf_keras``) because tensorflow-model-optimization supports nothing else; moving to Keras 3
later means changing this file only.
"""

from __future__ import annotations

import os

# tf.keras must resolve to tf_keras too, or tfmot and the TFLite converter would see two
# different Keras implementations. Must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edgecnn.runtime.native_logs import native_output_quiet  # noqa: E402

# TensorFlow 2.21 logs through absl at import ("oneDNN custom operations are on", "Could not find
# cuda drivers") whatever TF_CPP_MIN_LOG_LEVEL says: shown only with --verbose
# and at its first device look-up ("failed call to cuInit" on a machine without CUDA): done here
with native_output_quiet():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices()

__all__ = ["keras", "tf"]
