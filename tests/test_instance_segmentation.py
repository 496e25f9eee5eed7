"""Mask R-CNN: the mask branch converts builtin-only, the runtime's InstanceSegmenter decodes the
file like the Keras model, instances stay apart where a semantic map would merge them, and the
COCO box and mask metrics score a perfect prediction 1."""

from __future__ import annotations

import numpy as np
import pytest

import edgecnn
from edgecnn.runtime.images import Letterbox


@pytest.fixture(scope="module")
def mask_file(tmp_path_factory):
    from edgecnn._keras import keras

    keras.utils.set_random_seed(5)
    model = edgecnn.create_model("test_mask_rcnn", num_classes=4)
    path = tmp_path_factory.mktemp("mask_rcnn") / "model.tflite"
    report = edgecnn.convert(model, "fp32", out=path, calibration="builtin:shapes", samples=2)
    return model, path, report


def test_mask_rcnn_converts_builtin_only_with_its_mask_branch(mask_file):
    model, _, report = mask_file
    assert report.builtin_only and report.metadata.task == "instance_segmentation"
    assert {"TRANSPOSE_CONV", "BATCH_MATMUL", "TOPK_V2", "LOGISTIC"} <= set(report.ops)
    assert report.parity["max_abs_diff"] < 1e-3
    decoding = report.metadata.decoding
    assert decoding["kind"] == "mask_rcnn" and decoding["mask_size"] == 14 and decoding["proposals"] == 8
    assert model.outputs[-1].shape[1:] == (8 * 14, 14, 4)


def test_the_instance_segmenter_decodes_the_file_like_the_keras_model(mask_file):
    from edgecnn.runtime import InstanceSegmenter
    from edgecnn.runtime.images import letterbox
    from edgecnn.runtime.instance_segmenter import decode_instances

    model, path, _ = mask_file
    segmenter = edgecnn.runtime.open(str(path), accelerator="cpu", score_threshold=0.0)
    assert isinstance(segmenter, InstanceSegmenter)
    image = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    result = segmenter(image)
    assert result.image_size == [48, 80] and result.instances
    letterboxed, fit = letterbox(image, 64, 64)
    keras_outputs = [np.asarray(o) for o in model(letterboxed[None].astype(np.float32) / 255.0, training=False)[2:]]
    found, masks, _ = decode_instances(keras_outputs, fit, (48, 80), (64, 64), 14, score_threshold=0.0)
    assert len(found.boxes) == len(result.instances)
    agree = [np.mean(a.mask == b) for a, b in zip(result.instances, masks)]
    assert min(agree) > 0.99 and all(i.mask.shape == (48, 80) for i in result.instances)
    record = result.instances[0].to_json()
    assert set(record) == {"box", "score", "class", "label", "area", "mask"} and record["mask"]["size"] == [48, 80]


def test_two_touching_shapes_of_one_class_come_out_as_two_instances():
    """What a semantic segmenter cannot do (its connected regions merge): two detections of
    the same class whose masks touch stay two instances with their own masks."""
    from edgecnn.runtime.instance_segmenter import decode_instances

    size, count, classes = 14, 2, 2
    proposals = np.array([[[8, 16, 32, 40], [32, 16, 56, 40]]], np.float32)  # share the edge x = 32
    scores = np.array([[[0.05, 0.9, 0.05], [0.05, 0.85, 0.1]]], np.float32)  # both class 0
    deltas = np.zeros((1, count, 4 * classes), np.float32)
    masks = np.zeros((1, count * size, size, classes), np.float32)
    masks[0, :, :, 0] = 1.0  # each fills its box
    fit = Letterbox(scale=1.0, pad_x=0, pad_y=0)
    found, pasted, _ = decode_instances([proposals, scores, deltas, masks], fit, (64, 64), (64, 64), size)
    assert len(found.boxes) == 2 and set(found.classes.tolist()) == {0}
    first, second = pasted[int(np.argmin(found.boxes[:, 0]))], pasted[int(np.argmax(found.boxes[:, 0]))]
    assert first[16:40, 8:32].all() and second[16:40, 32:56].all() and not (first & second).any()
    union = (first | second).astype(np.uint8)
    import cv2

    assert cv2.connectedComponents(union)[0] - 1 == 1  # a semantic map would hold one region


def test_coco_mask_metrics_score_the_ground_truth_as_perfect():
    from edgecnn.data.detection import load_detection_samples
    from edgecnn.evaluation.instances import coco_instance_map

    dataset = load_detection_samples("builtin:shapes", "val", 12, with_masks=True)
    found = [(s.image_id, s.boxes, np.ones(len(s.boxes)), s.classes, list(s.masks)) for s in dataset.samples]
    perfect = coco_instance_map(dataset, found)
    assert perfect["mask_map"] == pytest.approx(1.0) and perfect["map"] == pytest.approx(1.0)
    shifted = [(i, b, sc, c, [np.roll(m, 6, axis=1) for m in ms]) for i, b, sc, c, ms in found]
    assert coco_instance_map(dataset, shifted)["mask_map"] < 0.9  # the metric can fail


def test_evaluate_reports_box_and_mask_map_for_the_file(mask_file):
    _, path, _ = mask_file
    metrics = edgecnn.evaluate(str(path), "builtin:shapes", limit=8)
    assert {"map", "map50", "mask_map", "mask_map50"} <= set(metrics) and metrics["images"] == 8


def test_a_quantization_aware_mask_rcnn_saves_reloads_and_converts_to_int8(tmp_path):
    """QAT wraps the region layers (RegionsToBatch, BatchToRegionRows, ROI Align) and the file
    written by training must load again for `edgecnn convert` (it failed on RegionsToBatch)."""
    from edgecnn.export.keras_io import load_model, save_model
    from edgecnn.optimize.qat import quantize_aware

    qat = quantize_aware(edgecnn.create_model("test_mask_rcnn", num_classes=4))
    rng = np.random.default_rng(0)
    for _ in range(3):  # calls in training mode set the quantizers' ranges, as QAT epochs do
        qat(rng.uniform(0, 1, (2, 64, 64, 3)).astype(np.float32), training=True)
    save_model(qat, tmp_path / "model_qat.h5")
    reloaded = load_model(tmp_path / "model_qat.h5")
    report = edgecnn.convert(reloaded, "int8", out=tmp_path / "int8.tflite", calibration="builtin:shapes", samples=2)
    assert report.builtin_only and report.metadata.decoding["mask_size"] == 14
    segmenter = edgecnn.runtime.open(str(tmp_path / "int8.tflite"), accelerator="cpu", score_threshold=0.0)
    result = segmenter(np.zeros((40, 60, 3), np.uint8))
    assert all(instance.mask.shape == (40, 60) for instance in result.instances)


@pytest.mark.parametrize("target", ["dynamic", "int8-io"])  # fp32 above, int8 from QAT above, fp16 on the GPU below
def test_mask_rcnn_converts_to_the_quantized_targets_and_runs(mask_file, target, tmp_path):
    model, _, _ = mask_file
    path = tmp_path / f"mask_{target}.tflite"
    report = edgecnn.convert(model, target, out=path, calibration="builtin:shapes", samples=2, calibration_samples=8)
    assert report.builtin_only and report.target == target
    segmenter = edgecnn.runtime.open(str(path), accelerator="cpu", score_threshold=0.0)
    assert segmenter(np.zeros((64, 64, 3), np.uint8)).image_size == [64, 64]


def test_the_fp16_mask_rcnn_runs_fully_on_the_gpu_accelerator(gpu, mask_file):
    from edgecnn.export.convert import convert
    from edgecnn.models.detector_families import deployed_model

    model, _, _ = mask_file
    batch = np.random.default_rng(1).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    result = gpu(convert(deployed_model(model), "fp16"), [batch])
    assert result.available and result.fully_accelerated
    expected = np.asarray(model(batch, training=False)[-1])
    np.testing.assert_allclose(result.outputs[-1], expected, atol=0.02)  # the masks, in (0, 1)


def test_the_overlay_fills_each_instance_and_outlines_it():
    from edgecnn.runtime import Instance, InstanceSegmentationResult, draw

    left, right = np.zeros((40, 60), bool), np.zeros((40, 60), bool)
    left[10:30, 10:30], right[10:30, 30:50] = True, True  # touching, one class
    result = InstanceSegmentationResult([Instance([10, 10, 30, 30], 0.9, 0, "circle", left),
                                         Instance([30, 10, 50, 30], 0.8, 0, "circle", right)], 1.0, 0.1, 2.0, [40, 60])
    image = np.full((40, 60, 3), 100, np.uint8)
    drawn = draw(image, result)
    assert drawn.shape == image.shape and (drawn[20, 20] != 100).any() and (drawn[20, 40] != 100).any()  # filled
    assert (drawn[20, 29] == 255).all()  # the left one's outline where they touch (the right one's box is at 30)
    assert (drawn[2, 2] == 100).all()  # outside untouched
