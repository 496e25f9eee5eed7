"""Starting weights. The machines here cannot reach the ImageNet weights' host, so the mapping is
proven on files made here: Keras Applications' own model with seeded random weights, saved as
its weights file, loaded into the zoo model with ``weights=PATH``; the zoo model must then give
what Keras Applications gives (with its own ``preprocess_input``) on the same raw image."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import edgecnn
from edgecnn._keras import keras
from edgecnn.errors import EdgeCNNError


def _randomized(model, seed: int = 0):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        low_high = (0.5, 2.0) if "moving_variance" in weight.name else None
        values = rng.uniform(*low_high, weight.shape) if low_high else rng.normal(0, 0.05, weight.shape)
        weight.assign(values.astype(np.float32))
    return model


def _reference_file(tmp_path, architecture: str, input_shape, include_top: bool = False):
    """Keras Applications' ``architecture`` with random weights, and its weights file."""
    reference = getattr(keras.applications, architecture)(include_top=include_top, weights=None,
                                                          input_shape=input_shape, classifier_activation=None)
    path = tmp_path / f"{architecture}_{'top' if include_top else 'notop'}.h5"
    _randomized(reference).save_weights(path)
    return reference, path


def _preprocess(architecture: str):
    module = keras.applications.vgg16 if architecture.startswith("VGG") else keras.applications.resnet
    return module.preprocess_input


def _assert_close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, float(np.abs(want).max())), np.abs(got - want).max()


# (Keras Applications architecture, zoo model, the zoo layer holding Keras' last backbone output)
BACKBONES = [
    ("VGG16", "vgg16", "pool5"),
    ("ResNet50", "resnet50", "stage4_block3_out"),
    pytest.param("VGG19", "vgg19", "pool5", marks=pytest.mark.slow),
    pytest.param("ResNet101", "resnet101", "stage4_block3_out", marks=pytest.mark.slow),
    pytest.param("ResNet152", "resnet152", "stage4_block3_out", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("architecture, name, last", BACKBONES)
def test_keras_applications_weights_give_keras_applications_features(architecture, name, last, tmp_path):
    shape = (64, 64, 3)
    reference, path = _reference_file(tmp_path, architecture, shape)
    model = edgecnn.create_model(name, weights=path, input_shape=shape, num_classes=5)
    image = np.random.default_rng(1).integers(0, 256, (1, *shape)).astype(np.float32)
    features = keras.Model(model.input, model.get_layer(last).output)(image / 255.0)
    _assert_close(features, reference(_preprocess(architecture)(image.copy())))


@pytest.mark.slow  # ResNet-50 at 224x224 with its 1000-class head: about 15 s and a 100 MB file
def test_a_classifier_with_the_imagenet_head_gives_keras_applications_logits(tmp_path):
    shape = (224, 224, 3)
    reference, path = _reference_file(tmp_path, "ResNet50", shape, include_top=True)
    model = edgecnn.create_model("resnet50", weights=path)
    image = np.random.default_rng(2).integers(0, 256, (1, *shape)).astype(np.float32)
    _assert_close(model(image / 255.0), reference(_preprocess("ResNet50")(image.copy())))


@pytest.mark.parametrize("name, architecture, last, options", [
    ("fcn8s_vgg16", "VGG16", "pool5", {"fc_units": 256}),  # fc6/fc7 are new layers: 4096 wide they hold 2 GB
    ("segnet", "VGG16", "enc5_pool", {}),
    ("yolo_resnet50", "ResNet50", "stage4_block3_out", {}),
    pytest.param("faster_rcnn_resnet50_fpn", "ResNet50", "stage4_block3_out", {"anchor_sizes": (16, 32, 64, 128)},
                 marks=pytest.mark.slow),  # the backbone path yolo_resnet50 takes, in a bigger model
    pytest.param("mask_rcnn_resnet50_fpn", "ResNet50", "stage4_block3_out", {"anchor_sizes": (16, 32, 64, 128)},
                 marks=pytest.mark.slow),
])
def test_detectors_and_segmenters_take_the_backbone_and_keep_their_new_layers(name, architecture, last, options,
                                                                                tmp_path, caplog):
    shape = (128, 128, 3)
    reference, path = _reference_file(tmp_path, architecture, shape)
    with caplog.at_level(logging.INFO, logger="edgecnn.models"):
        model = edgecnn.create_model(name, weights=path, input_shape=shape, num_classes=3, **options)
    image = np.random.default_rng(3).integers(0, 256, (1, *shape)).astype(np.float32)
    features = keras.Model(model.input, model.get_layer(last).output)(image / 255.0)
    _assert_close(features, reference(_preprocess(architecture)(image.copy())))
    assert "layers new: " in caplog.text  # the log names the layers left new
    fresh = edgecnn.create_model(name, input_shape=shape, num_classes=3, **options)

    def weighted(m):
        return {layer.name for layer in m.layers if layer.weights}

    assert weighted(model) - weighted(fresh) == {"caffe_preprocess"} and weighted(fresh) <= weighted(model)


def test_the_converted_file_on_a_raw_image_gives_what_keras_applications_gives(tmp_path):
    """The normalization follows the weights into the file: the runtime feeds RGB in [0, 1] (the
    metadata's, which MediaPipe can apply too) and the file's first layer makes Keras' caffe input."""
    from edgecnn.runtime.metadata import read_metadata

    shape = (64, 64, 3)
    reference, path = _reference_file(tmp_path, "ResNet50", shape)
    model = edgecnn.create_model("resnet50", weights=path, input_shape=shape, num_classes=4)
    report = edgecnn.convert(model, "fp32", out=tmp_path / "resnet50.tflite", samples=1)
    normalization = read_metadata(report.flatbuffer).normalization
    assert (normalization.scale, normalization.offset) == (1 / 255, 0.0)  # one for all channels
    image = np.random.default_rng(4).integers(0, 256, shape, dtype=np.uint8)
    result = edgecnn.runtime.open(tmp_path / "resnet50.tflite", accelerator="cpu", top_k=4)(image)
    features = np.asarray(reference(_preprocess("ResNet50")(image[None].astype(np.float32))))
    logits = features.mean(axis=(1, 2)) @ model.get_layer("fc").kernel.numpy() + model.get_layer("fc").bias.numpy()
    expected = np.exp(logits[0] - logits.max()) / np.exp(logits[0] - logits.max()).sum()
    assert [p.index for p in result.top_k] == list(np.argsort(-expected))
    assert np.allclose([p.score for p in result.top_k], np.sort(expected)[::-1], atol=1e-4)


def test_an_earlier_run_starts_the_same_model_with_a_new_head(tmp_path, caplog):
    earlier = _randomized(edgecnn.create_model("test_resnet", num_classes=10))
    earlier.save(tmp_path / "model.keras")
    with caplog.at_level(logging.INFO, logger="edgecnn.training"):
        model = edgecnn.create_model("test_resnet", weights=tmp_path / "model.keras", num_classes=4)
    assert "fc (shapes" in caplog.text  # the head for 4 classes is new, and the log says why
    for layer in model.layers:
        if layer.name != "fc" and layer.get_weights():
            for mine, theirs in zip(layer.get_weights(), earlier.get_layer(layer.name).get_weights()):
                assert np.array_equal(mine, theirs)


def test_bad_starting_weights_give_clear_errors_and_load_nothing(tmp_path):
    with pytest.raises(EdgeCNNError, match="no ImageNet weights for alexnet.*vgg16, vgg19, resnet50"):
        edgecnn.create_model("alexnet", weights="imagenet")
    with pytest.raises(EdgeCNNError, match="does not exist"):
        edgecnn.create_model("vgg16", weights=tmp_path / "missing.h5")
    _, vgg_file = _reference_file(tmp_path, "VGG16", (32, 32, 3))
    with pytest.raises(EdgeCNNError, match="do not load into Keras Applications' ResNet50"):
        edgecnn.create_model("resnet50", weights=vgg_file, input_shape=(64, 64, 3))
    edgecnn.create_model("test_yolo").save(tmp_path / "yolo.keras")
    with pytest.raises(EdgeCNNError, match="No layer of .* matches test_unet"):
        edgecnn.create_model("test_unet", weights=tmp_path / "yolo.keras")
    with pytest.raises(EdgeCNNError, match="width_multiplier=1"):
        edgecnn.create_model("vgg16", weights=vgg_file, input_shape=(32, 32, 3), width_multiplier=0.5)
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(tmp_path / "code.h5")
    with pytest.raises(EdgeCNNError, match="Python code"):
        edgecnn.create_model("test_resnet", weights=tmp_path / "code.h5")


def test_a_recipe_starts_from_the_weights_it_names(tmp_path):
    from edgecnn.training.recipe import load_recipe

    recipe = load_recipe("digits_vgg", ["model.weights=imagenet"])
    assert recipe.model.weights == "imagenet" and recipe.training.freeze_epochs == 0


def test_frozen_epochs_keep_the_starting_layers_then_train_them(tmp_path):
    """training.freeze_epochs: the layers the starting weights filled (batch norm statistics
    included) do not move in the frozen stage while the new head learns; then all train."""
    from edgecnn.export.keras_io import load_model

    start = _randomized(edgecnn.create_model("test_vgg", num_classes=4, dropout=0.0), seed=5)
    start.save(tmp_path / "start.keras")
    settings = [f"model.weights={tmp_path / 'start.keras'}", "training.freeze_epochs=1", "training.epochs=1",
                "data.limit=64", "optimization.pruning.enabled=false", "optimization.qat.enabled=false"]
    edgecnn.train("digits_vgg", tmp_path / "run", overrides=settings)
    frozen, trained = load_model(tmp_path / "run" / "checkpoints" / "frozen.keras"), load_model(tmp_path / "run" / "model.keras")
    for layer in start.layers:
        if not layer.weights:
            continue
        before, after_freeze = layer.get_weights(), frozen.get_layer(layer.name).get_weights()
        if layer.name == "fc8":  # 4 classes there, 10 here: new, and it learned
            assert before[0].shape != after_freeze[0].shape
            continue
        assert all(np.array_equal(a, b) for a, b in zip(before, after_freeze)), layer.name
    moved = [name for name in ("conv1_1", "fc6") if not np.array_equal(frozen.get_layer(name).get_weights()[0],
                                                                      trained.get_layer(name).get_weights()[0])]
    assert moved == ["conv1_1", "fc6"]
    with pytest.raises(EdgeCNNError, match="names no weights"):
        edgecnn.train("digits_vgg", tmp_path / "other", overrides=["training.freeze_epochs=1", *settings[2:]])


@pytest.mark.parametrize("recipe", ["folder_resnet50_imagenet", "coco_yolo_resnet50_imagenet",
                                    "masks_fcn8s_imagenet", "coco_mask_rcnn_resnet50_imagenet"])
def test_the_pretrained_recipes_name_models_that_have_imagenet_weights(recipe):
    from edgecnn.export.metadata import infer_task
    from edgecnn.models.pretrained import architecture_of
    from edgecnn.models.zoo import create_model
    from edgecnn.training.recipe import load_recipe

    loaded = load_recipe(recipe)
    assert loaded.model.weights == "imagenet" and loaded.training.freeze_epochs > 0
    model = create_model(loaded.model.name, input_shape=tuple(loaded.data.input_size), **loaded.model.overrides)
    assert architecture_of(model) in ("vgg16", "resnet50") and infer_task(model) == loaded.task
