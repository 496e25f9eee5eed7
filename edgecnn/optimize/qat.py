"""Quantization-aware training (tensorflow-model-optimization's default 8-bit scheme) as a
transformation of a finished float model.

``quantize_aware(model)`` annotates every layer: those tfmot's registry knows get its default
configs; edgecnn's custom layers (LRN, Maxout) and layers the registry lacks get
``OutputQuantizeConfig`` (their outputs are fake-quantized, their few weights such as PReLU's
slopes stay float and the converter quantizes them). With ``preserve_sparsity=True`` (a pruned
model), the prune-preserving scheme keeps the zeros through QAT (PQAT).
"""

from __future__ import annotations

import logging

from edgecnn._keras import keras
from edgecnn.layers import LocalResponseNormalization, Maxout

log = logging.getLogger("edgecnn.qat")


def _tfmot():
    import tensorflow_model_optimization as tfmot

    return tfmot


def _output_config_class():
    tfmot = _tfmot()
    quantizers = tfmot.quantization.keras.quantizers

    @keras.utils.register_keras_serializable(package="edgecnn")
    class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        """Fake-quantize a layer's output (8-bit, moving-average range); leave its weights."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self):
            return {}

    return OutputQuantizeConfig


_OUTPUT_CONFIG = None


def output_quantize_config():
    global _OUTPUT_CONFIG
    if _OUTPUT_CONFIG is None:
        _OUTPUT_CONFIG = _output_config_class()
    return _OUTPUT_CONFIG


def custom_objects() -> dict:
    """What ``quantize_scope`` needs to rebuild or load a QAT model with edgecnn layers."""
    return {
        "LocalResponseNormalization": LocalResponseNormalization,
        "Maxout": Maxout,
        "OutputQuantizeConfig": output_quantize_config(),
    }


def _flatten(model):
    """QAT needs one flat functional model: nested models are inlined layer by layer."""
    if not any(isinstance(layer, keras.Model) for layer in model.layers):
        return model
    inputs = [keras.Input(t.shape[1:], dtype=t.dtype, name=t.name.split(":")[0]) for t in model.inputs]

    def call(submodel, tensors):
        mapping = {id(t): v for t, v in zip(submodel.inputs, tensors)}
        for depth in sorted(submodel._nodes_by_depth, reverse=True):
            for node in submodel._nodes_by_depth[depth]:
                layer = node.layer
                if isinstance(layer, keras.layers.InputLayer):
                    continue
                args = [mapping[id(t)] for t in keras.backend.flatten(node.input_tensors)] if node.input_tensors is not None else []
                args = args[0] if len(args) == 1 else args
                result = call(layer, args if isinstance(args, list) else [args]) if isinstance(layer, keras.Model) \
                    else layer(args)
                outputs = result if isinstance(result, (list, tuple)) else [result]
                for tensor, value in zip(keras.backend.flatten(node.output_tensors), outputs):
                    mapping[id(tensor)] = value
        results = [mapping[id(t)] for t in submodel.outputs]
        return results if len(results) > 1 else results[0]

    return keras.Model(inputs, call(model, inputs), name=model.name)


def _registry_handles(registry, layer) -> bool:
    """tfmot's registry claims all Activation layers but its config rejects some (ELU)."""
    if not registry.supports(layer):
        return False
    try:
        registry.get_quantize_config(layer).get_output_quantizers(layer)
    except ValueError:
        return False
    return True


def quantize_aware(model, preserve_sparsity: bool = False):
    """A QAT copy of ``model`` (weights kept), ready to fine-tune and then convert to int8."""
    tfmot = _tfmot()
    quantization = tfmot.quantization.keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    config_class = output_quantize_config()
    fallbacks = []

    def annotate(layer):
        clone = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, keras.layers.InputLayer):
            return clone
        if _registry_handles(registry, clone):
            return quantization.quantize_annotate_layer(clone)
        fallbacks.append(f"{layer.name} ({type(layer).__name__})")
        return quantization.quantize_annotate_layer(clone, quantize_config=config_class())

    flat = _flatten(model)
    with quantization.quantize_scope(custom_objects()):
        annotated = keras.models.clone_model(flat, clone_function=annotate)
        annotated.set_weights(flat.get_weights())
        if fallbacks:
            log.info("output-only quantization for: %s", ", ".join(fallbacks))
        scheme = (tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() if preserve_sparsity
                  else quantization.default_8bit.Default8BitQuantizeScheme())
        return quantization.quantize_apply(annotated, scheme)
