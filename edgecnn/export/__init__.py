"""Export: Keras model files and TFLite/LiteRT conversion."""
