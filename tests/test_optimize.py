"""Pruning, QAT and sparsity-preserving QAT as transformations of finished models."""

from __future__ import annotations

import numpy as np
import pytest

import edgecnn
from edgecnn._keras import keras
from edgecnn.errors import EdgeCNNError
from edgecnn.export.convert import convert, is_quantization_aware
from edgecnn.export.keras_io import save_model
from edgecnn.layers import ACTIVATIONS, conv_bn_act
from edgecnn.optimize.pruning import (
    PruningConfig,
    is_2_4_sparse,
    kernel_sparsity,
    prune,
    pruning_callbacks,
    strip,
)
from edgecnn.optimize.qat import prepare_for_qat, quantize_aware
from edgecnn.runtime import load_engine
from edgecnn.runtime.modelfile import is_builtin_only, op_histogram

FAMILIES = ["test_alexnet", "test_vgg", "test_googlenet", "test_resnet", "test_resnet_bottleneck"]


def _fit(model, steps: int, rng, callbacks=(), learning_rate=1e-3):
    shape = model.input_shape[1:]
    x = rng.uniform(size=(steps * 4, *shape)).astype(np.float32)
    y = rng.integers(0, model.output_shape[-1], size=steps * 4)
    model.compile(keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=list(callbacks))
    return x


@pytest.mark.parametrize("name", ["test_alexnet", "test_googlenet", "test_resnet"])
@pytest.mark.parametrize("structure", ["unstructured", "2:4"])
def test_pruning_reaches_its_target_and_strips(name, structure, rng):
    model = edgecnn.create_model(name)
    pruned = prune(model, PruningConfig(0.6, "constant", structure, end_step=4, frequency=1))
    x = _fit(pruned, 4, rng, pruning_callbacks())
    stripped = strip(pruned)
    assert not any("PruneLowMagnitude" in type(layer).__name__ for layer in stripped.layers)
    sparsities = kernel_sparsity(stripped)
    # the stem sees 3 input channels: 2:4 needs a multiple of 4, so it is skipped, not broken
    pruned_layers = {n: s for n, s in sparsities.items() if not (structure == "2:4" and n == "conv1")}
    target = 0.5 if structure == "2:4" else 0.6
    assert all(s >= target - 0.02 for s in pruned_layers.values()), pruned_layers
    if structure == "2:4":
        assert sparsities["conv1"] == 0.0
        for layer in stripped.layers:
            if layer.name in pruned_layers:
                assert is_2_4_sparse(layer.kernel.numpy()), layer.name
    flatbuffer = convert(stripped)
    np.testing.assert_allclose(load_engine(flatbuffer)(x[:1])[0], stripped(x[:1], training=False).numpy(), atol=1e-4)


def test_polynomial_schedule_ramps_up(rng):
    model = edgecnn.create_model("test_vgg")
    pruned = prune(model, PruningConfig(0.8, "polynomial", initial_sparsity=0.1, end_step=20, frequency=5))
    _fit(pruned, 6, rng, pruning_callbacks())
    early = np.mean(list(kernel_sparsity(strip(pruned)).values()))
    _fit(pruned, 20, rng, pruning_callbacks())
    late = np.mean(list(kernel_sparsity(strip(pruned)).values()))
    assert 0.05 < early < late and late >= 0.78


@pytest.mark.parametrize("config,message", [
    (dict(target_sparsity=1.2), "target_sparsity"),
    (dict(schedule="cosine"), "Unknown pruning schedule"),
    (dict(structure="1:4"), "Unknown pruning structure"),
    (dict(begin_step=10, end_step=5), "end_step"),
])
def test_pruning_config_errors(config, message):
    with pytest.raises(EdgeCNNError, match=message):
        PruningConfig(**config)


def _qat_to_int8(model, rng):
    qat = quantize_aware(model)
    assert is_quantization_aware(qat)
    x = _fit(qat, 4, rng, learning_rate=1e-4)
    flatbuffer = convert(qat, "int8")  # QAT carries its ranges: no calibration needed
    ops = op_histogram(flatbuffer)
    assert is_builtin_only(ops) and "QUANTIZE" in ops, ops
    engine = load_engine(flatbuffer)
    tensors = engine.interpreter.get_tensor_details()
    # really integer: only the float I/O edge stays float, and the inside of LRN layers, which get
    # output-only quantization (their SQUARE/RSQRT chain runs in float between (de)quantize ops)
    floats = [t["name"] for t in tensors if np.dtype(t["dtype"]) == np.float32 and "/quant_norm" not in t["name"]]
    assert len(floats) <= 2 * (len(engine.inputs) + len(engine.outputs)), floats
    result = np.concatenate([engine(x[i : i + 1])[0] for i in range(4)])
    expected = qat(x[:4], training=False).numpy()
    # measured in steps of the int8 output: the untrained model's ranges are still the default
    # [-6, 6] (step 0.047) and rounding inside a deep network moves an output by 1-3 steps
    step = _output_step(engine, expected.shape[1:])
    difference = np.abs(result - expected) / step
    assert difference.max() <= 4 and difference.mean() <= 1, (difference.max(), difference.mean())
    return qat


def _output_step(engine, shape) -> float:
    """The quantization step of the last int8 tensor shaped like the output (before DEQUANTIZE)."""
    tensors = engine.interpreter.get_tensor_details()
    quantized = [t for t in tensors if np.dtype(t["dtype"]) == np.int8 and tuple(t["shape"][1:]) == tuple(shape)]
    return float(quantized[-1]["quantization"][0])


@pytest.mark.parametrize("name", FAMILIES)
def test_qat_every_family_converts_to_int8(name, rng):
    _qat_to_int8(edgecnn.create_model(name), rng)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_qat_every_activation(activation, rng):
    inputs = keras.Input((16, 16, 8))
    x = conv_bn_act(inputs, 8, 3, 1, 1, activation, name="block")
    outputs = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x))
    _qat_to_int8(keras.Model(inputs, outputs), rng)


def test_pqat_keeps_the_zeros_into_the_int8_file(rng):
    model = edgecnn.create_model("test_vgg")
    pruned = prune(model, PruningConfig(0.5, "constant", end_step=4, frequency=1))
    _fit(pruned, 4, rng, pruning_callbacks())
    stripped = strip(pruned)
    qat = quantize_aware(stripped, preserve_sparsity=True)
    _fit(qat, 8, rng, learning_rate=1e-3)
    kernels = _int8_kernels(convert(qat, "int8"))
    assert kernels
    assert np.mean([np.mean(k == 0) for k in kernels]) >= 0.48
    # plain QAT of the same pruned model lets the zeros drift away: the check above can fail
    drifting = quantize_aware(stripped)
    _fit(drifting, 8, rng, learning_rate=1e-3)
    assert np.mean([np.mean(k == 0) for k in _int8_kernels(convert(drifting, "int8"))]) < 0.48


def _fit_to_own_outputs(model, reference, rng, callbacks=(), learning_rate=1e-3, steps=2):
    """A few steps towards ``reference``'s outputs: works for any output layout (boxes, maps, images)."""
    x = rng.uniform(size=(2 * steps, *model.input_shape[1:])).astype(np.float32)
    targets = reference(x, training=False)
    targets = [np.asarray(t) for t in targets] if isinstance(targets, (list, tuple)) else np.asarray(targets)
    model.compile(keras.optimizers.Adam(learning_rate), "mse")
    model.fit(x, targets, batch_size=2, epochs=1, verbose=0, callbacks=list(callbacks))


@pytest.mark.parametrize("name", ["test_edgenet", "test_yolo", "test_fcn", "test_unet", "test_segnet",
                                  "test_pix2pix", "test_cyclegan"])
def test_prune_then_pqat_every_other_family(name, rng):
    """The detection, segmentation and generation families (transposed convolutions, unpooling,
    instance norm, reflection padding) prune, take sparsity-preserving QAT and convert to int8
    with their zeros; tfmot's own prune-preserving scheme refused transposed convolutions."""
    model = edgecnn.create_model(name)
    pruned = prune(model, PruningConfig(0.5, "constant", end_step=2, frequency=1))
    _fit_to_own_outputs(pruned, model, rng, pruning_callbacks())
    stripped = strip(pruned)
    sparsities = kernel_sparsity(stripped)
    trainable = {layer.name for layer in stripped.layers if layer.trainable_weights}
    assert all(sparsities[n] >= 0.48 for n in sparsities if n in trainable), sparsities
    qat = quantize_aware(stripped, preserve_sparsity=True)
    _fit_to_own_outputs(qat, stripped, rng, steps=4)
    flatbuffer = convert(qat, "int8")
    ops = op_histogram(flatbuffer)
    assert is_builtin_only(ops), ops
    kernels = _int8_kernels(flatbuffer)
    assert kernels and np.mean([np.mean(k == 0) for k in kernels]) >= 0.45
    if "TRANSPOSE_CONV" in ops:  # the transposed convolutions' own kernels kept their zeros
        transposed = [l for l in stripped.layers if type(l).__name__ == "Conv2DTranspose" and l.trainable_weights]
        sizes = {int(np.prod(l.kernel.shape)) for l in transposed}
        kept = [np.mean(k == 0) for k in _int8_kernels(flatbuffer, 1) if k.size in sizes]
        assert kept and min(kept) >= 0.45, kept


def _int8_kernels(flatbuffer: bytes, min_size: int = 256) -> list[np.ndarray]:
    """The int8 constant tensors (weights) of a converted model, read from the flatbuffer's
    buffers (an interpreter would also show activations left over from its last run)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(flatbuffer, 0)
    kernels = []
    for graph_index in range(model.SubgraphsLength()):
        graph = model.Subgraphs(graph_index)
        for index in range(graph.TensorsLength()):
            tensor = graph.Tensors(index)
            data = model.Buffers(tensor.Buffer()).DataAsNumpy()
            shape = tuple(tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
            if tensor.Type() != schema.TensorType.INT8 or isinstance(data, int) or len(shape) not in (2, 4):
                continue
            if int(np.prod(shape)) >= min_size:
                kernels.append(data.view(np.int8).reshape(shape))
    return kernels


def test_qat_models_save_as_h5_and_load(tmp_path, rng):
    qat = quantize_aware(edgecnn.create_model("test_alexnet"))
    x = _fit(qat, 2, rng)
    with pytest.raises(EdgeCNNError, match=r"\.h5"):
        save_model(qat, tmp_path / "qat.keras")
    path = save_model(qat, tmp_path / "qat.h5")
    reloaded = edgecnn.load_model(path)
    np.testing.assert_allclose(reloaded(x[:2], training=False).numpy(), qat(x[:2], training=False).numpy(), atol=1e-6)


def test_nested_models_are_flattened_for_qat(rng):
    backbone = edgecnn.create_model("test_resnet", features_only=True)
    inputs = keras.Input((32, 32, 3))
    features = backbone(inputs)[-1]
    outputs = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(features))
    nested = keras.Model(inputs, outputs)
    qat = _qat_to_int8(nested, rng)
    assert not any(isinstance(layer, keras.Model) for layer in qat.layers)


@pytest.mark.parametrize("name", FAMILIES + ["googlenet_bn"])
def test_prepare_for_qat_keeps_the_function_and_removes_bn_and_relu_layers(name, rng):
    overrides = {} if name.startswith("test_") else {"width_multiplier": 1 / 16, "num_classes": 10,
                                                      "input_shape": (64, 64, 3)}
    model = edgecnn.create_model(name, **overrides)
    # non-trivial batch-norm statistics, so folding has something to fold
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, channels), rng.normal(size=channels),
                               rng.normal(size=channels), rng.uniform(0.5, 2.0, channels)])
    prepared = prepare_for_qat(model)
    kinds = [type(layer).__name__ for layer in prepared.layers]
    assert "BatchNormalization" not in kinds
    relus_left = [layer.name for layer in prepared.layers if type(layer).__name__ == "Activation"
                  and layer.get_config()["activation"] == "relu"]
    # what stays is a ReLU after an Add, a pool or a concat, never one after a conv or dense
    for layer in prepared.layers:
        if layer.name in relus_left:
            source = layer.inbound_nodes[-1].inbound_layers
            assert type(source).__name__ not in ("Conv2D", "Dense"), layer.name
    x = rng.uniform(size=(2, *model.input_shape[1:])).astype(np.float32)
    expected = model(x, training=False).numpy()
    np.testing.assert_allclose(prepared(x, training=False).numpy(), expected, atol=1e-4 * max(1, np.abs(expected).max()))
