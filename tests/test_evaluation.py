"""One inference path: a Keras model runs in the same runtime pipeline objects as its .tflite
file (only the backend differs), and every detector family is one description that conversion,
metadata, training and the runtime read."""

from __future__ import annotations

import numpy as np
import pytest

import edgecnn
from edgecnn.evaluation.keras_backend import keras_pipeline
from edgecnn.export.convert import convert as to_flatbuffer
from edgecnn.export.metadata import infer_task, metadata_for, write_metadata
from edgecnn.models.detector_families import DETECTOR_FAMILIES, deployed_model, detector_family, family_named
from edgecnn.runtime.tasks import open as open_pipeline

PIPELINE_MODELS = ["test_edgenet", "test_yolo", "test_faster_rcnn", "test_fast_rcnn", "test_rcnn", "test_unet",
                   "test_mask_rcnn", "test_pix2pix"]


def _fp32_file(model) -> bytes:
    """The model's fp32 file with the metadata conversion writes (no verification: fast)."""
    deployed = deployed_model(model)
    task = infer_task(model)
    return write_metadata(to_flatbuffer(deployed, "fp32"), metadata_for(deployed, task))


def _picture(seed: int, height: int = 70, width: int = 90) -> np.ndarray:
    """A picture of another size than the models' inputs, so the pipelines letterbox or resize."""
    rng = np.random.default_rng(seed)
    picture = np.full((height, width, 3), rng.integers(0, 255, 3), np.uint8)
    picture[10:40, 20:60] = rng.integers(0, 255, 3)
    return np.clip(picture.astype(np.int16) + rng.integers(-20, 20, picture.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", PIPELINE_MODELS)
def test_a_keras_model_and_its_file_run_in_the_same_pipeline(name):
    """Same pipeline class, same pre- and post-processing: on the same picture the fp32 file and
    the Keras model give the same results to float precision (an R-CNN's proposals passed in)."""
    model = edgecnn.create_model(name)
    rng = np.random.default_rng(0)  # untrained heads score everything alike: spread the scores
    for weight in model.weights:
        if weight.trainable and ("kernel" in weight.name or "bias" in weight.name):
            weight.assign(weight.numpy() + rng.normal(0, 0.05, weight.shape).astype(np.float32))
    options = {"score_threshold": 0.0} if infer_task(model) in ("detection", "instance_segmentation") else {}
    from_keras = keras_pipeline(model, **options)
    from_file = open_pipeline(_fp32_file(model), "cpu", **options)
    assert type(from_keras) is type(from_file) and from_keras.runner.backend == "keras"
    picture = _picture(1)
    extra = {}
    if getattr(from_file, "takes_proposals", False) or getattr(from_file, "warps_regions", False):
        extra = {"proposals": np.array([[5, 5, 40, 40], [20, 10, 60, 40], [0, 0, 89, 69]], np.float32)}
    keras_result, file_result = from_keras(picture, **extra), from_file(picture, **extra)
    kind = type(file_result).__name__
    if kind == "ClassificationResult":
        assert [p.index for p in keras_result.top_k] == [p.index for p in file_result.top_k]
        assert np.allclose([p.score for p in keras_result.top_k], [p.score for p in file_result.top_k], atol=1e-4)
    elif kind in ("DetectionResult", "InstanceSegmentationResult"):
        found = [r.detections if kind == "DetectionResult" else r.instances for r in (keras_result, file_result)]
        assert len(found[1]) > 0 and len(found[0]) == len(found[1])
        for mine, theirs in zip(*found):
            assert mine.index == theirs.index and abs(mine.score - theirs.score) < 1e-3
            assert np.abs(np.subtract(mine.box, theirs.box)).max() < 0.1
    elif kind == "SegmentationResult":
        assert keras_result.class_map.shape == picture.shape[:2]
        assert np.mean(keras_result.class_map == file_result.class_map) > 0.999
    else:
        assert keras_result.image.shape == picture.shape
        assert np.abs(keras_result.image.astype(int) - file_result.image.astype(int)).max() <= 1


def test_evaluate_of_a_keras_detector_and_its_file_agree(tmp_path):
    """`edgecnn eval` on a .keras model and on its fp32 file: the same figures, different backends."""
    model = edgecnn.create_model("test_yolo", num_classes=3)
    keras_metrics = edgecnn.evaluate(model, "builtin:shapes", split="val", limit=6)
    path = tmp_path / "yolo.tflite"
    path.write_bytes(_fp32_file(model))
    file_metrics = edgecnn.evaluate(path, "builtin:shapes", split="val", limit=6, accelerator="cpu")
    assert keras_metrics["backend"] == "keras" and file_metrics["backend"] != "keras"
    assert keras_metrics["detections"] > 0
    assert keras_metrics["map50"] == pytest.approx(file_metrics["map50"], abs=1e-3)
    assert keras_metrics["detections"] == pytest.approx(file_metrics["detections"], rel=0.02)


@pytest.mark.parametrize("family", DETECTOR_FAMILIES, ids=lambda f: f.name)
def test_each_detector_family_is_one_description(family):
    """The zoo's test variant of each family is recognised as it, trained and deployed; its
    deployed model has the outputs the description names, which the metadata writes; its
    training task exists."""
    import importlib

    from edgecnn.models.zoo import family_of

    model = edgecnn.create_model(f"test_{family.name}")
    assert family_of(f"test_{family.name}") == family.name and family_named(family.name) is family
    assert detector_family(model) is family and infer_task(model) == family.task
    deployed = family.deployed(model)
    assert family.deployed(deployed) is deployed and detector_family(deployed) is family
    metadata = metadata_for(deployed, family.task)
    assert [o.kind for o in metadata.outputs] == list(family.output_kinds)
    assert len(deployed.outputs) == len(family.output_kinds) and metadata.decoding == family.layout(deployed)
    module, name = family.training_task.split(":")
    assert hasattr(importlib.import_module(f"edgecnn.training.{module}"), name)


def test_a_classifier_belongs_to_no_detector_family():
    model = edgecnn.create_model("test_edgenet")
    assert detector_family(model) is None and deployed_model(model) is model
