"""The device runtime: runs .tflite/LiteRT files with the base install only.

Never import TensorFlow or Keras here (a test checks it in a fresh process): a Raspberry Pi or
phone has neither.
"""

from edgecnn.runtime.engine import Engine, available_backends, load_engine

__all__ = ["Engine", "available_backends", "load_engine"]
