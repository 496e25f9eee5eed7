"""The ``edgecnn`` command line. Modules here import TensorFlow only inside command handlers."""
