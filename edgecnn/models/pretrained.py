"""Starting weights for a zoo model (``create_model(name, weights=...)``, recipe ``model.weights``):

- ``imagenet``: Keras Applications' ImageNet weights of the model's VGG-16/19 or ResNet-50/101/152
  (the classifier itself, or the backbone of an FCN, SegNet, YOLO or R-CNN family model), fetched and
  cached by Keras Applications' own code (``keras.utils.get_file``, ``~/.keras/models``);
- a Keras Applications weights file (what that cache holds, for a machine without internet);
- an edgecnn model (a run's ``model.keras`` or checkpoint; ``training.weights`` loads the file):
  every layer whose name and weight shapes match is loaded (``load_matching_layers``).

A model built for ImageNet weights takes the layout they were trained in: ReLU, full width, the
bottleneck stride on the first 1x1 (ResNet v1) and, as its first layer, a fixed 1x1 convolution
from RGB in [0, 1] to Keras Applications' ``caffe`` input (BGR, 0..255, less the channel means),
so the file and its metadata keep RGB in [0, 1]. Keras' convolution biases before batch norm
are folded into the norm's moving mean (exact), and its epsilon into the moving variance.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from edgecnn.errors import EdgeCNNError
from edgecnn.models.registry import ModelEntry

log = logging.getLogger("edgecnn.models")

# the zoo's architecture -> Keras Applications' builder
KERAS_APPLICATIONS = {"vgg16": "VGG16", "vgg19": "VGG19", "resnet50": "ResNet50", "resnet101": "ResNet101",
                      "resnet152": "ResNet152"}
KERAS_BN_EPSILON = 1.001e-5  # Keras Applications' ResNet batch norms; the zoo's use 1e-5
ZOO_BN_EPSILON = 1e-5
_RESNET_BLOCKS = {6: "resnet50", 23: "resnet101", 36: "resnet152"}  # stage-3 blocks -> depth


def architecture_of(model) -> str | None:
    """The Keras Applications architecture whose weights fit ``model`` (a zoo classifier, or a
    model on such a backbone), read from its layer names; None for the others."""
    names = {layer.name for layer in model.layers}
    if "enc5_conv3" in names and "enc5_conv4" not in names:  # SegNet's encoder is VGG-16's
        return "vgg16"
    if "conv5_3" in names:
        return "vgg19" if "conv5_4" in names else "vgg16"
    if "stage1_block1_conv3" in names:  # bottleneck blocks
        blocks = sum(1 for name in names if re.fullmatch(r"stage3_block\d+_conv3", name))
        return _RESNET_BLOCKS.get(blocks)
    return None


def reference_names(keras_name: str) -> tuple[str, ...]:
    """The zoo layers that may hold the weights of Keras Applications' layer ``keras_name`` (VGG's
    convolutions are conv{block}_{index} in the VGG models and enc{block}_conv{index} in SegNet)."""
    if match := re.fullmatch(r"block(\d)_conv(\d)", keras_name):  # VGG
        return f"conv{match[1]}_{match[2]}", f"enc{match[1]}_conv{match[2]}"
    if keras_name in ("fc1", "fc2"):
        return ({"fc1": "fc6", "fc2": "fc7"}[keras_name],)
    if match := re.fullmatch(r"conv(\d)_block(\d+)_(\d)_(conv|bn)", keras_name):  # ResNet
        stage, block, index, kind = int(match[1]) - 1, match[2], match[3], match[4]
        layer = f"stage{stage}_block{block}_" + ("downsample" if index == "0" else f"conv{index}")
        return (layer + ("_bn" if kind == "bn" else ""),)
    if keras_name in ("conv1_conv", "conv1_bn"):
        return ({"conv1_conv": "conv1", "conv1_bn": "conv1_bn"}[keras_name],)
    return ()


def _head_name(architecture: str) -> str:
    return "fc8" if architecture.startswith("vgg") else "fc"


def keras_applications_model(architecture: str, weights: str, input_shape: tuple[int, int, int],
                             include_top: bool):
    """Keras Applications' own model with ``weights`` (``imagenet``: downloaded and cached by
    Keras; or a weights file), logits out."""
    from edgecnn._keras import keras

    builder = getattr(keras.applications, KERAS_APPLICATIONS[architecture])
    options: dict[str, Any] = {"include_top": include_top, "weights": weights, "classifier_activation": None}
    if not include_top:
        options["input_shape"] = tuple(input_shape)
    try:
        return builder(**options)
    except (ValueError, OSError) as error:
        raise EdgeCNNError(f"The weights '{weights}' do not load into Keras Applications' "
                           f"{KERAS_APPLICATIONS[architecture]} ({str(error).splitlines()[0]}).",
                           f"Pass the {KERAS_APPLICATIONS[architecture]} weights file Keras Applications caches "
                           "(~/.keras/models/), or imagenet.") from error


def copy_reference_weights(model, reference, architecture: str) -> tuple[list[str], list[str]]:
    """Keras Applications' ``reference`` weights into ``model``, layer by mapped name: (loaded,
    new) zoo layer names. A convolution's bias before a batch norm goes into the norm."""
    import numpy as np

    from edgecnn._keras import keras

    zoo = {layer.name: layer for layer in model.layers}
    loaded = []
    biases: dict[str, np.ndarray] = {}  # zoo bn name -> the bias of the Keras convolution before it
    for layer in reference.layers:
        candidates = (_head_name(architecture),) if layer.name == "predictions" else reference_names(layer.name)
        target_name = next((name for name in candidates if name in zoo), None)
        weights = layer.get_weights() if target_name is not None else []
        if not weights:
            continue
        target = zoo[target_name]
        expected = [tuple(w.shape) for w in target.get_weights()]
        if isinstance(target, keras.layers.Conv2D) and len(expected) == 1 and len(weights) == 2:
            biases[f"{target_name}_bn"] = weights[1]  # the zoo's convolution before a norm has no bias
            weights = weights[:1]
        elif isinstance(target, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = weights
            mean = mean - biases.pop(target_name, 0.0)
            weights = [gamma, beta, mean, variance + (KERAS_BN_EPSILON - ZOO_BN_EPSILON)]
        if [tuple(w.shape) for w in weights] != expected:
            if target_name == _head_name(architecture):
                continue  # a head for another class count or input size: left new
            raise EdgeCNNError(f"The {KERAS_APPLICATIONS[architecture]} weights of {layer.name} "
                               f"{[tuple(w.shape) for w in weights]} do not fit layer {target_name} {expected}.",
                               "ImageNet weights need the full-width model (width_multiplier=1, backbone_width=1).")
        target.set_weights(weights)
        loaded.append(target_name)
    for name, bias in biases.items():  # a norm Keras' model lacks (SegNet's): the identity plus that bias
        if name in zoo:
            zoo[name].set_weights([np.ones_like(bias), np.zeros_like(bias), -bias,
                                   np.full_like(bias, 1.0 - ZOO_BN_EPSILON)])
            loaded.append(name)
    new = [layer.name for layer in model.layers if layer.get_weights() and layer.name not in loaded
           and layer.name != "caffe_preprocess"]
    return loaded, new


def is_edgecnn_model_file(path: Path) -> bool:
    """A whole saved model (.keras, or an .h5 with its configuration), not a weights-only file."""
    if path.suffix == ".keras":
        return True
    if path.suffix != ".h5":
        return False
    import h5py

    with h5py.File(path, "r") as file:
        return "model_config" in file.attrs


def has_top(path: Path) -> bool:
    """Whether a Keras Applications weights file holds the classifier head (``predictions``)."""
    import h5py

    with h5py.File(path, "r") as file:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in file.attrs.get("layer_names", [])]
    return "predictions" in names


def load_matching_layers(model, source) -> tuple[list[str], list[str]]:
    """Every layer of ``model`` whose name is in ``source`` with weights of the same shapes gets
    them: (loaded, skipped with the reason)."""
    by_name = {layer.name: layer for layer in source.layers}
    loaded, skipped = [], []
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        other = by_name.get(layer.name)
        if other is None:
            skipped.append(f"{layer.name} (not in the source model)")
            continue
        theirs = other.get_weights()
        if [w.shape for w in theirs] != [w.shape for w in weights]:
            skipped.append(f"{layer.name} (shapes {[tuple(w.shape) for w in theirs]} there, "
                           f"{[tuple(w.shape) for w in weights]} here)")
            continue
        layer.set_weights(theirs)
        loaded.append(layer.name)
    return loaded, skipped


def build_pretrained(entry: ModelEntry, weights: str | os.PathLike, overrides: dict) -> tuple[Any, list[str]]:
    """``entry``'s model with ``overrides`` and Keras Applications' ``weights`` (``imagenet`` or
    a weights file), and the names of the layers they filled; an edgecnn model file is loaded by
    ``edgecnn.create_model`` (``training.weights``), which can read every kind of saved model."""
    if str(weights) != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise EdgeCNNError(f"Weights file '{path}' does not exist.",
                               "Pass imagenet, a Keras Applications weights file (.h5), or an edgecnn run's "
                               "model.keras.")
        if is_edgecnn_model_file(path):
            raise EdgeCNNError(f"'{path}' is a whole model, not a Keras Applications weights file.",
                               "Load it with edgecnn.create_model(name, weights=path) (recipes: model.weights).")
    return _build_on_keras_applications(entry, str(weights), overrides)


def _build_on_keras_applications(entry: ModelEntry, weights: str, overrides: dict):
    probe = entry.builder(**overrides)
    architecture = architecture_of(probe)
    if architecture is None:
        raise EdgeCNNError(f"There are no ImageNet weights for {entry.name}: Keras Applications publishes them for "
                           f"{', '.join(KERAS_APPLICATIONS)} (AlexNet, GoogLeNet and EdgeNet have none; GoogLeNet "
                           "is not InceptionV3).",
                           "Use one of the VGG/ResNet-50/101/152 models or a detector or segmenter on one of them "
                           "(e.g. fcn8s_vgg16, segnet, yolo_resnet50, faster_rcnn_resnet50), or start from an earlier run.")
    layout: dict[str, Any] = {"preprocessing": "caffe"}
    if architecture.startswith("resnet"):
        layout["bottleneck_stride"] = "1x1"
    activations = {layer.name.rsplit("_", 1)[-1] for layer in probe.layers}
    if overrides.get("activation", "relu") != "relu" or "relu" not in activations:
        if "activation" in overrides:
            raise EdgeCNNError(f"ImageNet weights were trained with ReLU; {entry.name} is built with "
                               f"activation={overrides['activation']}.", "Leave activation at relu.")
        overrides = {**overrides, "activation": "relu"}
        log.info("%s: activation relu, as the ImageNet weights were trained", entry.name)
    takes_backbone = "backbone_options" in entry.options
    model = entry.builder(**overrides, **({"backbone_options": layout} if takes_backbone else layout))
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    head = _head_name(architecture)
    wants_top = not takes_backbone and head in {layer.name for layer in model.layers} and \
        int(model.get_layer(head).units) == 1000 and input_shape == (224, 224, 3)
    if weights != "imagenet":
        wants_top = wants_top and has_top(Path(weights))
    elif not wants_top and not takes_backbone:
        log.info("%s: the classifier head is new (ImageNet's head takes 224x224x3 and 1000 classes)", entry.name)
    reference = keras_applications_model(architecture, weights, input_shape, wants_top)
    loaded, new = copy_reference_weights(model, reference, architecture)
    log.info("%s: %s weights (%s) in %d layers; %d layers new: %s", entry.name, KERAS_APPLICATIONS[architecture],
             weights, len(loaded), len(new), ", ".join(new[:12]) + (" ..." if len(new) > 12 else ""))
    return model, loaded
