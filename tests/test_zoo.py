"""The classification zoo against the papers and the reference implementations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import tiny_overrides

import edgecnn
from edgecnn._keras import keras, tf
from edgecnn.errors import EdgeCNNError
from edgecnn.models.summary import count_parameters, summarize

CLASSIFIERS = edgecnn.list_models("classification")


def _shapes_only(name: str, **overrides) -> keras.Model:
    """The model built in a graph of its own: its layers and variable shapes, no weight values (a
    full-size VGG built eagerly leaves hundreds of MB in the test process, which oneDNN's
    allocator keeps)."""
    with tf.Graph().as_default():
        return edgecnn.create_model(name, **overrides)

# Learnable parameters at 224x224x3 (AlexNet 227) and 1000 classes, as torchvision reports them.
TORCHVISION_PARAMS = {
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


def _textbook_alexnet_params() -> int:
    """Sum of (F*F*D1)*K + K over the textbook's AlexNet table, FC layers as 1x1 'convs'."""
    layers = [(11, 3, 96), (5, 96, 256), (3, 256, 384), (3, 384, 384), (3, 384, 256),
              (6, 256, 4096), (1, 4096, 4096), (1, 4096, 1000)]  # (F, D1, K)
    return sum(f * f * d1 * k + k for f, d1, k in layers)


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_counts_equal_torchvision(name):
    assert count_parameters(_shapes_only(name))[0] == TORCHVISION_PARAMS[name]


def test_alexnet_parameters_follow_the_textbook_table():
    assert count_parameters(_shapes_only("alexnet"))[0] == _textbook_alexnet_params()


def test_googlenet_size_is_the_papers():
    learnable = count_parameters(_shapes_only("googlenet"))[0]
    assert 6.6e6 <= learnable <= 7.0e6
    with_aux = count_parameters(_shapes_only("googlenet", aux_logits=True))[0]
    assert with_aux > learnable + 2 * 1024 * 1000  # two auxiliary FC-1000 heads


def _check_textbook_formulas(model: keras.Model) -> int:
    """W2 = (W1 - F + 2P)/S + 1 for every conv and pool (2P = pad before + after, floor as in
    the frameworks) and params = (F*F*D1)*K + K for every convolution (no +K when bias-free)."""
    checked = 0
    for row in summarize(model):
        if row.kernel is None:
            continue
        w1, d1 = row.input_shape[0], row.input_shape[-1]
        w2, k = row.output_shape[0], row.output_shape[-1]
        pad = sum(row.padding)
        assert w2 == (w1 - row.kernel + pad) // row.stride + 1, (model.name, row)
        if row.kind == "conv":
            bias = k if model.get_layer(row.name).use_bias else 0
            assert row.params == row.kernel * row.kernel * d1 * k + bias, (model.name, row)
        else:
            assert row.params == 0 and k == d1
        checked += 1
    return checked


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_conv_and_pool_obeys_the_textbook_formulas(name):
    assert _check_textbook_formulas(_shapes_only(name)) >= 8


def test_alexnet_matches_the_textbook_table():
    rows = {row.name: row for row in summarize(_shapes_only("alexnet"))}
    expected = {
        "conv1": ((55, 55, 96), 11, 4, 0), "pool1": ((27, 27, 96), 3, 2, 0), "norm1": ((27, 27, 96),),
        "conv2": ((27, 27, 256), 5, 1, 2), "pool2": ((13, 13, 256), 3, 2, 0), "norm2": ((13, 13, 256),),
        "conv3": ((13, 13, 384), 3, 1, 1), "conv4": ((13, 13, 384), 3, 1, 1), "conv5": ((13, 13, 256), 3, 1, 1),
        "pool3": ((6, 6, 256), 3, 2, 0), "fc6": ((4096,),), "fc7": ((4096,),), "fc8": ((1000,),),
    }
    for name, (shape, *window) in expected.items():
        assert rows[name].output_shape == shape, name
        if window:
            kernel, stride, pad = window
            assert (rows[name].kernel, rows[name].stride, rows[name].padding) == (kernel, stride, (pad, pad)), name


def test_googlenet_follows_table_1():
    model = _shapes_only("googlenet")
    channels = {"inception3a": 256, "inception3b": 480, "inception4a": 512, "inception4b": 512, "inception4c": 512,
                "inception4d": 528, "inception4e": 832, "inception5a": 832, "inception5b": 1024}
    sizes = {"3": 28, "4": 14, "5": 7}
    for module, depth in channels.items():
        assert model.get_layer(f"{module}_concat").output_shape == (None, sizes[module[9]], sizes[module[9]], depth)
    assert model.get_layer("conv1").output_shape == (None, 112, 112, 64)
    assert model.get_layer("inception3a_5x5").kernel_size == (5, 5)  # the paper's 5x5, not torchvision's 3x3


def test_resnet50_stage_shapes():
    model = _shapes_only("resnet50", features_only=True)
    assert [tuple(o.shape) for o in model.outputs] == [
        (None, 56, 56, 256), (None, 28, 28, 512), (None, 14, 14, 1024), (None, 7, 7, 2048)
    ]
    assert model.output_names == [f"features_stride{s}" for s in (4, 8, 16, 32)]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_features_only_returns_multiscale_maps(name):
    overrides = tiny_overrides(name)
    overrides.pop("fc_units", None)
    # AlexNet's unpadded 11x11/4 stem makes its strides nominal; at its native 227 they hold.
    size = 227 if name.startswith("alexnet") else 128
    overrides["input_shape"] = (size, size, 3)
    model = edgecnn.create_model(name, features_only=True, **overrides)
    strides = [int(n.rsplit("stride", 1)[1]) for n in model.output_names]
    assert strides == sorted(strides) and strides[-1] == 32 and len(strides) >= 3
    for stride, output in zip(strides, model.outputs):
        assert abs(output.shape[1] - size / stride) <= 1.5, (name, stride, output.shape)


@pytest.mark.parametrize("name", edgecnn.list_models("classification", include_test_variants=True))
def test_models_save_and_load_with_identical_outputs(name, tmp_path, rng):
    overrides = tiny_overrides(name) if not name.startswith("test_") else {}
    model = edgecnn.create_model(name, **overrides)
    x = rng.normal(size=(1, *model.input_shape[1:])).astype(np.float32)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = edgecnn.load_model(path)
    np.testing.assert_allclose(reloaded(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-6)


def test_width_multiplier_and_classes_shrink_the_model():
    small = edgecnn.create_model("resnet18", width_multiplier=0.25, num_classes=10, input_shape=(64, 64, 3))
    assert small.output_shape == (None, 10)
    assert count_parameters(small)[0] < TORCHVISION_PARAMS["resnet18"] / 10


def test_googlenet_aux_heads():
    model = edgecnn.create_model("googlenet", aux_logits=True, width_multiplier=1 / 8, num_classes=7,
                                 input_shape=(96, 96, 3))
    assert [tuple(o.shape) for o in model.outputs] == [(None, 7)] * 3
    with pytest.raises(EdgeCNNError, match="at least 80x80"):
        edgecnn.create_model("googlenet", aux_logits=True, input_shape=(64, 64, 3))


@pytest.mark.parametrize(
    "name,overrides,message",
    [
        ("resnet5", {}, "Did you mean 'resnet50'"),
        ("resnet18", {"num_clases": 3}, "Did you mean 'num_classes'"),
        ("alexnet", {"input_shape": (32, 32, 3)}, "too small"),
        ("vgg16", {"input_shape": (224, 224)}, "three positive integers"),
        ("vgg16", {"num_classes": 0}, "positive integer"),
        ("resnet18", {"width_multiplier": -1.0}, "positive"),
    ],
)
def test_bad_requests_give_clear_errors(name, overrides, message):
    with pytest.raises(EdgeCNNError, match=message):
        edgecnn.create_model(name, **overrides)


def test_list_models_by_task():
    assert set(CLASSIFIERS) >= {"alexnet", "vgg16_bn", "googlenet", "resnet152"}
    assert not any(name.startswith("test_") for name in CLASSIFIERS)
    assert "test_resnet" in edgecnn.list_models(include_test_variants=True)
    generators = edgecnn.list_models("generation")
    assert {"pix2pix", "cyclegan"} <= set(generators) and not set(generators) & set(CLASSIFIERS)
    with pytest.raises(EdgeCNNError, match="Unknown task"):
        edgecnn.list_models("clasification")


def test_listing_the_zoo_does_not_import_tensorflow():
    code = "import sys, edgecnn; assert edgecnn.list_models(); assert 'tensorflow' not in sys.modules, 'tf imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
