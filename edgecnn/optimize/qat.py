"""Quantization-aware training (tensorflow-model-optimization's default 8-bit scheme) as a
transformation of a finished float model.

``quantize_aware(model)`` annotates every layer: those tfmot's registry knows get its default
configs; edgecnn's custom layers (LRN, Maxout, unpooling, instance norm, reflection padding, the region layers) and layers the registry lacks get
``OutputQuantizeConfig`` (their outputs are fake-quantized, their few weights such as PReLU's
slopes stay float and the converter quantizes them). With ``preserve_sparsity=True`` (a pruned
model), the prune-preserving scheme keeps the zeros through QAT (PQAT); transposed convolutions,
which that scheme does not know, get a config of edgecnn's that does the same.
"""

from __future__ import annotations

import logging
from functools import cache

import numpy as np

from edgecnn._keras import keras, tf
from edgecnn.layers import (
    BilinearUpsampling,
    InstanceNormalization,
    LocalResponseNormalization,
    Maxout,
    MaxUnpooling2D,
    ReflectionPadding2D,
)
from edgecnn.layers.regions import (
    BatchToRegionRows,
    DecodeAnchors,
    PyramidRoiAlign,
    RegionsToBatch,
    RoiAlign,
    StopGradient,
    TopProposals,
)

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


def _float_output_config_class():
    @keras.utils.register_keras_serializable(package="edgecnn")
    class FloatOutputQuantizeConfig(output_quantize_config()):
        """Leave a layer's output float: for box coordinates in input pixels (0 to hundreds),
        which a fake-quantizer whose range starts at [-6, 6] and moves by a moving average would
        clip for hundreds of steps (measured: a Faster R-CNN's proposals then missed every
        object and QAT's mAP fell from 0.92 to 0). The converter keeps those few ops float."""

        def get_output_quantizers(self, layer):
            return []

    return FloatOutputQuantizeConfig


def _sparse_transpose_config_class():
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        prune_preserve_quantize_registry as prune_preserve,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as default_8bit,
    )

    @keras.utils.register_keras_serializable(package="edgecnn")
    class SparseConvTransposeQuantizeConfig(default_8bit.Default8BitConvTransposeQuantizeConfig):
        """tfmot's default config for Conv2DTranspose (per-tensor, symmetric, narrow range) with
        a weight quantizer of the same kind that multiplies by the pruning mask first: tfmot's
        prune-preserving registry knows only Conv2D, Dense and DepthwiseConv2D, and refuses the
        transposed convolutions of U-Net, FCN, Pix2Pix and CycleGAN."""

        def __init__(self, weight_attrs=("kernel",), activation_attrs=("activation",), quantize_output=False):
            super().__init__(list(weight_attrs), list(activation_attrs), quantize_output)
            self.weight_quantizer = prune_preserve.PrunePreserveDefault8BitWeightsQuantizer()

    return SparseConvTransposeQuantizeConfig


# made once, on first use (tfmot is imported lazily; Keras registers each class by name)
output_quantize_config = cache(_output_config_class)
float_output_quantize_config = cache(_float_output_config_class)
sparse_conv_transpose_quantize_config = cache(_sparse_transpose_config_class)


def custom_objects() -> dict:
    """What ``quantize_scope`` needs to rebuild or load a QAT model with edgecnn layers."""
    return {
        "LocalResponseNormalization": LocalResponseNormalization,
        "Maxout": Maxout,
        "MaxUnpooling2D": MaxUnpooling2D,
        "InstanceNormalization": InstanceNormalization,
        "ReflectionPadding2D": ReflectionPadding2D,
        "BilinearUpsampling": BilinearUpsampling,
        "DecodeAnchors": DecodeAnchors,
        "TopProposals": TopProposals,
        "RoiAlign": RoiAlign,
        "PyramidRoiAlign": PyramidRoiAlign,
        "RegionsToBatch": RegionsToBatch,
        "BatchToRegionRows": BatchToRegionRows,
        "StopGradient": StopGradient,
        "OutputQuantizeConfig": output_quantize_config(),
        "FloatOutputQuantizeConfig": float_output_quantize_config(),
        "SparseConvTransposeQuantizeConfig": sparse_conv_transpose_quantize_config(),
    }


def _rebuild(model, make_layer):
    """Re-run ``model``'s graph on fresh inputs, inlining nested models; ``make_layer(layer)``
    returns the layer to call in its place, or None to pass its input straight through."""
    inputs = [keras.Input(t.shape[1:], dtype=t.dtype, name=t.name.split(":")[0]) for t in model.inputs]

    def call(submodel, tensors):
        mapping = {id(t): v for t, v in zip(submodel.inputs, tensors)}
        for depth in sorted(submodel._nodes_by_depth, reverse=True):
            for node in submodel._nodes_by_depth[depth]:
                layer = node.layer
                if isinstance(layer, keras.layers.InputLayer):
                    continue
                args = [mapping[id(t)] for t in tf.nest.flatten(node.input_tensors)]
                if isinstance(layer, keras.Model):
                    result = call(layer, args)
                else:
                    replacement = make_layer(layer)
                    argument = args[0] if len(args) == 1 else args
                    result = argument if replacement is None else replacement(argument)
                outputs = result if isinstance(result, (list, tuple)) else [result]
                for tensor, value in zip(tf.nest.flatten(node.output_tensors), outputs):
                    mapping[id(tensor)] = value
        results = [mapping[id(t)] for t in submodel.outputs]
        return results if len(results) > 1 else results[0]

    return keras.Model(inputs, call(model, inputs), name=model.name)


def _sole_consumer_pairs(model, producer_types: tuple[str, ...], accepts) -> dict[str, object]:
    """Producer layer name -> the layer that alone consumes its output, for producers of the
    given types with a linear activation whose consumer satisfies ``accepts``. Only this model's
    own nodes count: layers reused by an earlier rebuild have nodes in other graphs too."""
    pairs = {}
    calls: dict[str, int] = {}
    consumers: dict[str, list] = {}
    producers: dict[str, object] = {}
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            layer = node.layer
            if isinstance(layer, keras.Model):
                pairs.update(_sole_consumer_pairs(layer, producer_types, accepts))
            calls[layer.name] = calls.get(layer.name, 0) + 1
            for source in tf.nest.flatten(node.inbound_layers):
                consumers.setdefault(source.name, []).append(layer)
                producers[source.name] = source
    for name, users in consumers.items():
        source = producers[name]
        if (len(users) == 1 and calls.get(name) == 1 and calls.get(users[0].name) == 1 and accepts(users[0])
                and type(source).__name__ in producer_types and source.get_config()["activation"] == "linear"):
            pairs[name] = users[0]
    return pairs


def _is_channel_batch_norm(layer) -> bool:
    return type(layer).__name__ == "BatchNormalization" and layer.axis in ([-1], [3], -1, 3)


def _is_plain_relu(layer) -> bool:
    if type(layer).__name__ == "Activation":
        return layer.get_config()["activation"] == "relu"
    if type(layer).__name__ == "ReLU":
        config = layer.get_config()
        return config.get("max_value") is None and not config.get("negative_slope") and not config.get("threshold")
    return False


def _replace_pairs(model, pairs: dict[str, object], make_replacement):
    """Rebuild ``model`` with each producer in ``pairs`` replaced by ``make_replacement(producer,
    consumer)`` and the consumer dropped (its input passes straight through)."""
    consumers = {consumer.name for consumer in pairs.values()}

    def make_layer(layer):
        if layer.name in consumers:
            return None
        consumer = pairs.get(layer.name)
        return layer if consumer is None else make_replacement(layer, consumer)

    return _rebuild(model, make_layer)


def fold_batch_norms(model):
    """An inference-equivalent copy of ``model`` where each Conv2D -> BatchNormalization pair is
    one biased Conv2D: W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps).
    tfmot's QAT leaves such pairs for the converter, which then keeps batch norm as float
    MUL/ADD between DEQUANTIZE/QUANTIZE once the statistics moved; folded, every op is int8."""

    def folded(layer, norm):
        conv = keras.layers.Conv2D.from_config({**layer.get_config(), "use_bias": True})
        conv.build(layer.input_shape)
        kernel = layer.kernel.numpy()
        bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1], np.float32)
        gamma = norm.gamma.numpy() if norm.scale else np.ones_like(bias)
        beta = norm.beta.numpy() if norm.center else np.zeros_like(bias)
        scale = gamma / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)
        conv.set_weights([kernel * scale, (bias - norm.moving_mean.numpy()) * scale + beta])
        return conv

    return _replace_pairs(model, _sole_consumer_pairs(model, ("Conv2D",), _is_channel_batch_norm), folded)


def fuse_relu(model):
    """A copy of ``model`` where a ReLU that alone follows a Conv2D or Dense becomes that layer's
    own activation. tfmot gives a layer followed by a separate ReLU a no-op quantize config, so
    its weights would get no fake quantization during QAT and no sparsity mask during PQAT."""

    def fused(layer, relu):
        replacement = layer.__class__.from_config({**layer.get_config(), "activation": "relu"})
        replacement.build(layer.input_shape)
        replacement.set_weights(layer.get_weights())
        return replacement

    return _replace_pairs(model, _sole_consumer_pairs(model, ("Conv2D", "Dense"), _is_plain_relu), fused)


def prepare_for_qat(model):
    """Flatten nested models, fold batch norms, fuse ReLUs: same function, QAT-friendly graph."""
    return fuse_relu(fold_batch_norms(model))


def _flatten(model):
    """QAT needs one flat functional model: nested models are inlined layer by layer."""
    if not any(isinstance(layer, keras.Model) for layer in model.layers):
        return model
    return _rebuild(model, lambda layer: layer)


def _registry_handles(registry, layer) -> bool:
    """tfmot's registry claims all Activation layers but its config rejects some (ELU)."""
    if not registry.supports(layer):
        return False
    try:
        registry.get_quantize_config(layer).get_output_quantizers(layer)
    except ValueError:
        return False
    return True


def quantize_aware(model, preserve_sparsity: bool = False, fold_batch_norm: bool = True):
    """A QAT copy of ``model`` (weights kept), ready to fine-tune and then convert to int8.
    The graph is first made QAT-friendly without changing its function (``prepare_for_qat``:
    batch norms folded into convolutions, ReLUs fused into the layer before them)."""
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
        if preserve_sparsity and type(layer) is keras.layers.Conv2DTranspose:
            return quantization.quantize_annotate_layer(clone, quantize_config=sparse_conv_transpose_quantize_config()())
        if isinstance(layer, (DecodeAnchors, TopProposals)):  # box coordinates in pixels stay float
            return quantization.quantize_annotate_layer(clone, quantize_config=float_output_quantize_config()())
        if _registry_handles(registry, clone):
            return quantization.quantize_annotate_layer(clone)
        fallbacks.append(f"{layer.name} ({type(layer).__name__})")
        return quantization.quantize_annotate_layer(clone, quantize_config=config_class())

    flat = prepare_for_qat(model) if fold_batch_norm else _flatten(model)
    with quantization.quantize_scope(custom_objects()):
        annotated = keras.models.clone_model(flat, clone_function=annotate)
        annotated.set_weights(flat.get_weights())
        if fallbacks:
            log.info("output-only quantization for: %s", ", ".join(fallbacks))
        scheme = (tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() if preserve_sparsity
                  else quantization.default_8bit.Default8BitQuantizeScheme())
        return quantization.quantize_apply(annotated, scheme)
