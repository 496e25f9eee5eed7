"""Keras -> TFLite/LiteRT conversion with builtin ops only.

``convert(model, target, calibration)`` is a pure function returning the flatbuffer bytes; the
CLI and the verification report are layers on top of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.native_logs import native_output_quiet


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    needs_calibration: bool = False


TARGETS = {
    "fp32": Target("fp32", "float32 weights and activations"),
    "fp16": Target("fp16", "float16 weights, float32 I/O: the GPU target"),
    "dynamic": Target("dynamic", "int8 weights, float activations (dynamic-range quantization)"),
    "int8": Target("int8", "full integer, float32 I/O", needs_calibration=True),
    "int8-io": Target("int8-io", "full integer with int8 input and output", needs_calibration=True),
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise EdgeCNNError(f"Unknown target '{name}'.", f"Choose one of: {', '.join(TARGETS)}.")
    return TARGETS[name]


def _signature_function(model, batch_size: int):
    """A concrete function with a static batch: a dynamic batch dimension makes some ops (e.g.
    TRANSPOSE_CONV) unacceptable to the GPU delegate, and edge pipelines run one frame at a time."""
    from edgecnn._keras import tf

    specs = [
        tf.TensorSpec((batch_size, *tensor.shape[1:]), tensor.dtype, name=tensor.name.split(":")[0])
        for tensor in model.inputs
    ]
    if any(dim is None for spec in specs for dim in spec.shape):
        raise EdgeCNNError(
            f"Model '{model.name}' has an input with unknown height, width or channels: "
            f"{[tuple(s.shape) for s in specs]}.",
            "Rebuild it with a fixed input_shape before converting.",
        )

    @tf.function
    def serve(*inputs):
        return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    # The converter saves a SavedModel of the trackable object it is given. Handing it the Keras
    # model makes it serialise (and retrace) every layer, which is most of the conversion time;
    # a bare module that only tracks the variables converts the same graph several times faster.
    holder = tf.Module()
    holder.weights = list(model.weights)
    holder.serve = serve
    return serve.get_concrete_function(*specs), holder


def _unsupported_ops(message: str) -> list[str]:
    """Op names out of the converter's 'ops that can be supported by the flex runtime' list."""
    names = re.findall(r"tf\.([A-Za-z0-9_]+)", message)
    return sorted(set(names))


def is_quantization_aware(model) -> bool:
    """A QAT model carries its own activation ranges: int8 conversion needs no calibration."""
    return any(type(layer).__name__.startswith(("QuantizeWrapper", "QuantizeLayer")) for layer in model.layers)


def convert(
    model,
    target: str = "fp32",
    calibration: Callable[[], Iterable[list[np.ndarray]]] | None = None,
    batch_size: int = 1,
    float_nodes: Sequence[str] = (),
) -> bytes:
    """Convert a Keras model to a .tflite flatbuffer using TFLite builtin ops only.

    ``calibration`` (int8 targets) is a callable yielding lists of input arrays (one per model
    input, batch ``batch_size``), as TFLite's representative dataset. ``float_nodes`` (int8, with
    calibration): nodes, by their output tensor's name, kept in float inside the otherwise int8
    file (the converter's quantization debugger deny-lists them), for ops the CPU has no fast int8
    kernel for.
    """
    spec = get_target(target)
    if spec.needs_calibration and calibration is None and not is_quantization_aware(model):
        raise EdgeCNNError(
            f"Target '{target}' quantizes activations and needs calibration data.",
            "Pass calibration samples (CLI: --calibration DATA, e.g. builtin:digits).",
        )
    from edgecnn._keras import tf

    function, trackable = _signature_function(model, batch_size)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], trackable)
    # Builtins only: a device has no TensorFlow, so Flex (SELECT_TF_OPS) is never an option.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if target == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif target == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif spec.needs_calibration:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if calibration is not None:
            converter.representative_dataset = calibration
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # else a QAT model: its fake-quant ranges already make every op integer
        if target == "int8-io":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    try:
        with native_output_quiet():  # the MLIR converter's warnings; its errors come in the exception
            if float_nodes and spec.needs_calibration and calibration is not None:
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                       tf.lite.OpsSet.TFLITE_BUILTINS]
                options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_nodes))
                debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=calibration,
                                                                     debug_options=options)
                return debugger.get_nondebug_quantized_model()
            return converter.convert()
    except Exception as error:  # the converter raises ConverterError and assorted internals
        message = str(error)
        ops = _unsupported_ops(message)
        if ops or "not supported" in message.lower():
            layers = [layer.name for layer in model.layers if any(op.lower() in type(layer).__name__.lower() for op in ops)]
            raise EdgeCNNError(
                f"Model '{model.name}' needs ops that are not TFLite builtins: {', '.join(ops) or 'see below'}"
                + (f" (from layers {', '.join(layers)})" if layers else "")
                + ". A device has no TensorFlow, so edgecnn never exports Flex ops.",
                "Replace those layers with builtin-friendly equivalents, or move that step into the runtime.",
            ) from error
        raise
