"""Faster R-CNN: ROI Align from builtins, anchors and targets, the runtime's two-stage decoding,
conversion to a builtin-only file the runtime and the GPU accelerator run, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import edgecnn
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.regions import apply_deltas, encode_deltas, region_postprocess


def _bilinear(features: np.ndarray, y: float, x: float) -> np.ndarray:
    """Reference bilinear sample with zeros outside the map."""
    height, width, _ = features.shape
    value = np.zeros(features.shape[-1])
    for row in range(int(np.floor(y)), int(np.floor(y)) + 2):
        for col in range(int(np.floor(x)), int(np.floor(x)) + 2):
            if 0 <= row < height and 0 <= col < width:
                value += max(0.0, 1 - abs(y - row)) * max(0.0, 1 - abs(x - col)) * features[row, col]
    return value


def test_roi_align_matches_a_bilinear_reference_including_boxes_past_the_border():
    from edgecnn._keras import tf
    from edgecnn.layers.regions import RoiAlign

    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 16, 12, 5)).astype(np.float32)
    boxes = np.array([[[10, 20, 60, 90], [-8, -4, 140, 100], [33.3, 40.2, 50.1, 44.9]],
                      [[0, 0, 96, 128], [80, 100, 95, 127], [5, 5, 6, 6]]], np.float32)
    pool, sampling, stride = 3, 2, 8
    got = RoiAlign(pool, sampling, stride)([tf.constant(features), tf.constant(boxes)]).numpy()
    got = got.reshape(2, 3, pool, pool, 5).transpose(0, 1, 3, 2, 4)  # stored (column bin, row bin, channel)
    for b in range(2):
        for k in range(3):
            x1, y1, x2, y2 = boxes[b, k] / stride - 0.5
            for row in range(pool):
                for col in range(pool):
                    samples = [_bilinear(features[b], y1 + (row + (sy + 0.5) / sampling) / pool * (y2 - y1),
                                         x1 + (col + (sx + 0.5) / sampling) / pool * (x2 - x1))
                               for sy in range(sampling) for sx in range(sampling)]
                    np.testing.assert_allclose(got[b, k, row, col], np.mean(samples, axis=0), atol=1e-5)


def test_anchor_deltas_round_trip_and_the_graph_decodes_like_the_runtime():
    from edgecnn._keras import tf
    from edgecnn.layers.regions import apply_deltas as graph_apply_deltas

    rng = np.random.default_rng(1)
    corners = np.sort(rng.uniform(0, 100, (50, 2, 2)), axis=1)  # (box, first/second corner, x/y)
    boxes = np.concatenate([corners[:, 0], corners[:, 1] + 1], axis=1).astype(np.float32)
    targets = boxes + rng.normal(0, 5, boxes.shape).astype(np.float32)
    targets[:, 2:] = np.maximum(targets[:, 2:], targets[:, :2] + 1)
    weights = (10.0, 10.0, 5.0, 5.0)
    deltas = encode_deltas(boxes, targets, weights)
    np.testing.assert_allclose(apply_deltas(boxes, deltas, weights), targets, atol=1e-3)
    graph = graph_apply_deltas(tf.constant(boxes), tf.constant(deltas), weights).numpy()
    np.testing.assert_allclose(graph, targets, atol=1e-3)


def test_region_postprocess_refines_per_class_and_suppresses_within_a_class_only():
    proposals = np.array([[10, 10, 30, 30], [11, 11, 31, 31], [10, 10, 30, 30], [60, 60, 90, 90]], np.float32)
    # background, class 0, class 1
    scores = np.array([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.3, 0.1, 0.6], [0.9, 0.05, 0.05]], np.float32)
    target = np.array([12, 8, 34, 30], np.float32)
    deltas = np.zeros((4, 2, 4), np.float32)
    deltas[0, 0] = encode_deltas(proposals[:1], target[None], (10, 10, 5, 5))[0]
    found = region_postprocess(proposals, scores, deltas.reshape(4, 8), (100, 100), score_threshold=0.5)
    assert found.classes.tolist() == [0, 1]  # proposal 1 (class 0) overlaps proposal 0; proposal 3 is background
    np.testing.assert_allclose(found.boxes[0], target, atol=1e-3)
    np.testing.assert_allclose(found.boxes[1], proposals[2])
    assert found.scores.tolist() == pytest.approx([0.8, 0.6])


def test_rpn_targets_mark_each_box_best_anchor_and_sample_a_bounded_batch():
    from edgecnn.layers.regions import anchor_boxes
    from edgecnn.training.region_detection import RPN_BATCH, rpn_targets

    anchors = anchor_boxes((64, 64), 8, (8.0, 16.0, 32.0), (0.5, 1.0, 2.0))
    assert anchors.shape == (8 * 8 * 9, 4)
    boxes = np.array([[5, 5, 21, 21], [30, 40, 62, 50]], np.float32)
    targets = rpn_targets(anchors, boxes, np.random.default_rng(0))
    positive = targets[:, 4] == 1
    assert positive.sum() >= 2 and targets[:, 5].sum() <= RPN_BATCH
    from edgecnn.runtime.detection import iou_matrix

    overlaps = iou_matrix(anchors, boxes)
    for g in range(2):
        assert positive[overlaps[:, g].argmax()]
    np.testing.assert_allclose(apply_deltas(anchors[positive], targets[positive, :4]),
                               boxes[overlaps[positive].argmax(axis=1)], atol=1e-3)


def test_an_anchor_set_that_does_not_fit_the_input_is_refused_clearly():
    with pytest.raises(EdgeCNNError, match="anchor set.*does not fit.*exceed the input"):
        edgecnn.create_model("test_faster_rcnn", anchor_sizes=(16, 128))
    with pytest.raises(EdgeCNNError, match="multiple of its feature stride"):
        edgecnn.create_model("test_faster_rcnn", input_shape=(68, 68, 3))
    with pytest.raises(EdgeCNNError, match="pyramid of 2 levels.*one anchor size per level.*Give 2 anchor_sizes"):
        edgecnn.create_model("test_faster_rcnn", fpn_levels=(8, 16), anchor_sizes=(8, 16, 32))
    with pytest.raises(EdgeCNNError, match="each twice the previous"):
        edgecnn.create_model("test_faster_rcnn", fpn_levels=(8, 32), anchor_sizes=(16, 32))
    with pytest.raises(EdgeCNNError, match=r"sizes \[4\] are below half their stride"):
        edgecnn.create_model("test_faster_rcnn", fpn_levels=(8, 16), anchor_sizes=(16, 4))


def test_pyramid_roi_align_pools_each_box_from_the_level_its_size_belongs_to():
    from edgecnn.layers.regions import PyramidRoiAlign, RoiAlign

    rng = np.random.default_rng(2)
    fine, coarse = rng.normal(size=(1, 16, 16, 3)).astype(np.float32), rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    # FPN's rule with a 32-pixel canonical box at stride 8: a box of sqrt(area) >= 64 goes to
    # stride 16; areas 400, 7,200 and 4,225 against the boundary 64 ** 2 = 4,096
    boxes = np.array([[[0, 0, 20, 20], [10, 10, 100, 90], [5, 5, 70, 70]]], np.float32)
    got = PyramidRoiAlign(2, 2, (8, 16), canonical_size=32, canonical_stride=8)([fine, coarse, boxes]).numpy()[0]
    on_fine, on_coarse = RoiAlign(2, 2, 8)([fine, boxes]).numpy()[0], RoiAlign(2, 2, 16)([coarse, boxes]).numpy()[0]
    np.testing.assert_allclose(got, np.stack([on_fine[0], on_coarse[1], on_coarse[2]]), atol=1e-6)
    assert np.abs(on_fine[2] - on_coarse[2]).max() > 0.1  # the levels differ: the check can fail


def test_a_pyramid_faster_rcnn_converts_and_the_runtime_runs_it_like_keras(tmp_path):
    from edgecnn._keras import keras

    keras.utils.set_random_seed(4)
    model = edgecnn.create_model("test_faster_rcnn", num_classes=4, fpn_levels=(8, 16), anchor_sizes=(16, 32))
    assert model.get_layer("rpn_scores").output.shape[1] == (8 * 8 + 4 * 4) * 3  # one size x 3 ratios per level
    report = edgecnn.convert(model, "fp32", out=tmp_path / "fpn.tflite", calibration="builtin:shapes", samples=2)
    assert report.builtin_only and report.metadata.decoding["feature_strides"] == [8, 16]
    detector = edgecnn.runtime.open(str(tmp_path / "fpn.tflite"), accelerator="cpu")
    batch = np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    for got, want in zip(detector.raw(batch), model(batch, training=False)[2:]):
        np.testing.assert_allclose(got, np.asarray(want), atol=1e-4)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from edgecnn._keras import keras

    keras.utils.set_random_seed(3)
    model = edgecnn.create_model("test_faster_rcnn", num_classes=4)
    directory = tmp_path_factory.mktemp("frcnn")
    report = edgecnn.convert(model, "fp32", out=directory / "model.tflite", calibration="builtin:shapes", samples=4)
    return model, directory / "model.tflite", report


def test_faster_rcnn_converts_builtin_only_with_its_region_ops_and_keras_parity(converted):
    report = converted[2]
    assert report.builtin_only
    assert {"TOPK_V2", "GATHER", "BATCH_MATMUL"} <= set(report.ops)
    assert not {"NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "CUSTOM", "FlexCropAndResize"} & set(report.ops)
    assert report.parity["max_abs_diff"] < 1e-3
    # an untrained model may detect nothing above 0.25: then there is nothing to compare
    assert "keras_detections" in report.parity
    assert report.parity["detection_agreement"] in (None, 1.0)
    assert report.metadata.decoding["kind"] == "faster_rcnn" and report.metadata.decoding["proposals"] == 16


def test_the_runtime_detector_runs_the_two_stage_file_like_keras(converted):
    from edgecnn.runtime import Detector

    model, path, _ = converted
    detector = edgecnn.runtime.open(str(path), accelerator="cpu", score_threshold=0.0, max_detections=1000)
    assert isinstance(detector, Detector) and detector.two_stage
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    proposals, scores, deltas = detector.raw(batch)
    expected = [np.asarray(o) for o in model(batch, training=False)[2:]]
    for got, want in zip((proposals, scores, deltas), expected):
        np.testing.assert_allclose(got, want, atol=1e-4)
    image = (rng.uniform(0, 255, (48, 80, 3))).astype(np.uint8)
    result = detector(image)
    assert result.image_size == [48, 80]
    for detection in result.detections:
        x1, y1, x2, y2 = detection.box
        assert 0 <= x1 <= x2 <= 80 and 0 <= y1 <= y2 <= 48


def test_a_region_file_whose_outputs_do_not_match_its_metadata_is_refused(converted, tmp_path):
    import dataclasses

    from edgecnn.export.metadata import write_metadata
    from edgecnn.runtime.metadata import read_metadata

    _, path, _ = converted
    data = path.read_bytes()
    metadata = read_metadata(data)
    broken = write_metadata(data, dataclasses.replace(metadata, decoding={**metadata.decoding, "proposals": 7}))
    with pytest.raises(EdgeCNNError, match="outputs .* are not the"):
        edgecnn.runtime.open(broken, accelerator="cpu")


def test_the_fp16_faster_rcnn_runs_fully_on_the_gpu_accelerator(gpu, converted):
    """Everything, proposals (TOPK_V2, GATHER) and ROI Align (BATCH_MATMUL) included: measured
    on SwiftShader, the delegate takes the whole graph once coordinates are split with SPLIT
    rather than indexed (STRIDED_SLICE was rejected)."""
    from edgecnn.export.convert import convert

    model, _, _ = converted
    from edgecnn.models.detector_families import deployed_model

    deployed = deployed_model(model)
    batch = np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    result = gpu(convert(deployed, "fp16"), [batch])
    assert result.available, result.error
    assert result.fully_accelerated
    expected = [np.asarray(o) for o in deployed(batch, training=False)]
    np.testing.assert_allclose(result.outputs[1], expected[1], atol=2e-2)  # class scores


def test_roi_max_pooling_takes_each_bins_largest_sample():
    from edgecnn._keras import tf
    from edgecnn.layers.regions import RoiAlign

    rng = np.random.default_rng(2)
    features = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    boxes = np.array([[[0, 0, 64, 64], [8, 16, 40, 56]]], np.float32)
    pool, sampling, stride = 2, 4, 8
    got = RoiAlign(pool, sampling, stride, reduction="max")([tf.constant(features), tf.constant(boxes)]).numpy()
    got = got.reshape(2, pool, pool, 3).transpose(0, 2, 1, 3)
    for k in range(2):
        x1, y1, x2, y2 = boxes[0, k] / stride - 0.5
        for row in range(pool):
            for col in range(pool):
                samples = [_bilinear(features[0], y1 + (row + (sy + 0.5) / sampling) / pool * (y2 - y1),
                                     x1 + (col + (sx + 0.5) / sampling) / pool * (x2 - x1))
                           for sy in range(sampling) for sx in range(sampling)]
                np.testing.assert_allclose(got[k, row, col], np.max(samples, axis=0), atol=1e-5)
    # the whole 8x8 map at 4 samples per bin of 4 cells: the samples are the cells, the maximum is ROI pooling's
    whole = got[0]
    for row in range(pool):
        for col in range(pool):
            cells = features[0, row * 4:(row + 1) * 4, col * 4:(col + 1) * 4]
            np.testing.assert_allclose(whole[row, col], cells.max(axis=(0, 1)), atol=1e-5)


def test_selective_search_proposes_every_shape_of_a_shapes_image():
    from edgecnn.data.shapes import generate_sample
    from edgecnn.runtime.detection import iou_matrix
    from edgecnn.runtime.selective_search import selective_search

    rng = np.random.default_rng(5)
    for _ in range(3):
        sample = generate_sample(rng, 96)
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (i.bbox for i in sample.instances)], np.float32)
        proposals = selective_search(sample.image)
        assert 10 < len(proposals) <= 2000 and proposals.dtype == np.float32
        assert (proposals[:, 2] > proposals[:, 0]).all() and (proposals[:, 3] > proposals[:, 1]).all()
        assert proposals.min() >= 0 and proposals[:, 2:].max() <= 96
        assert (iou_matrix(boxes, proposals).max(axis=1) >= 0.7).all()
        np.testing.assert_array_equal(selective_search(sample.image), proposals)  # deterministic
    with pytest.raises(EdgeCNNError, match="uint8 RGB"):
        selective_search(np.zeros((32, 32), np.uint8))


def test_fast_rcnn_regions_are_sampled_a_quarter_foreground_with_their_targets():
    from edgecnn.training.fast_rcnn import sample_regions

    boxes = np.array([[10, 10, 40, 40], [60, 60, 90, 100]], np.float32)
    rng = np.random.default_rng(0)
    proposals = np.concatenate([boxes + rng.normal(0, 2, (2, 4)), rng.uniform(0, 100, (50, 4))]).astype(np.float32)
    proposals[:, 2:] = np.maximum(proposals[:, 2:], proposals[:, :2] + 2)
    regions, targets = sample_regions(proposals, boxes, np.array([2, 0]), 32, rng)
    assert regions.shape == (32, 4) and targets.shape == (32, 5)
    foreground = targets[:, 4] > 0
    assert 2 <= foreground.sum() <= 8
    assert set(targets[foreground, 4].tolist()) <= {1.0, 3.0}
    refined = apply_deltas(regions[foreground], targets[foreground, :4], (10, 10, 5, 5))
    from edgecnn.runtime.detection import iou_matrix

    assert (iou_matrix(refined, boxes).max(axis=1) > 0.999).all()


@pytest.fixture(scope="module")
def fast_converted(tmp_path_factory):
    from edgecnn._keras import keras

    keras.utils.set_random_seed(4)
    model = edgecnn.create_model("test_fast_rcnn", num_classes=4)
    path = tmp_path_factory.mktemp("fast") / "model.tflite"
    report = edgecnn.convert(model, "fp32", out=path, calibration="builtin:shapes", samples=2)
    return model, path, report


def test_fast_rcnn_converts_builtin_only_with_a_proposals_input(fast_converted):
    report = fast_converted[2]
    assert report.builtin_only and {"BATCH_MATMUL", "MAX_POOL_2D"} <= set(report.ops)
    assert report.parity["max_abs_diff"] < 1e-3
    assert report.metadata.decoding["kind"] == "fast_rcnn" and report.metadata.decoding["proposals"] == 16


def test_the_runtime_runs_fast_rcnn_on_its_own_selective_search(fast_converted):
    from edgecnn.data.shapes import generate_sample
    from edgecnn.runtime.regions import padded_proposals
    from edgecnn.runtime.selective_search import selective_search

    model, path, _ = fast_converted
    detector = edgecnn.runtime.open(str(path), accelerator="cpu", score_threshold=0.0, max_detections=1000)
    assert detector.takes_proposals
    image = generate_sample(np.random.default_rng(1), 64).image
    regions, real = padded_proposals(selective_search(image), 16)
    scores, deltas = detector.raw(image[None].astype(np.float32) / 255.0, regions)
    expected = model([image[None].astype(np.float32) / 255.0, regions[None]], training=False)
    np.testing.assert_allclose(scores, np.asarray(expected[0]), atol=1e-4)
    result = detector(image)
    assert result.detections and all(d.label for d in result.detections)
    with pytest.raises(EdgeCNNError, match="no regions"):
        detector(np.zeros((3, 3, 3), np.uint8))


def test_warp_region_maps_the_box_with_its_context_onto_the_output():
    from edgecnn.runtime.search_pixels import warp_region

    image = np.zeros((100, 120, 3), np.uint8)
    image[20:60, 30:50] = 255  # a 20 x 40 white box
    context = 0.25  # a quarter of the output on each side is surrounding image
    warped = warp_region(image, np.array([30, 20, 50, 60]), (40, 40), context)
    inner = warped[10:30, 10:30]
    assert inner.min() >= 250  # the box fills the middle half exactly
    assert warped[:9].max() <= 5 and warped[31:].max() <= 5 and warped[:, :9].max() <= 5
    outside = warp_region(image, np.array([-30, -30, 10, 10]), (16, 16), 0.0)
    assert (outside[:8, :8] == 114).all()  # beyond the image: grey


def test_svm_loss_is_the_multiclass_hinge_and_can_be_chosen_for_classifiers():
    from edgecnn.training.losses import classification_loss, multiclass_hinge

    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]], np.float32)
    assert float(multiclass_hinge(np.array([0, 1, 2]), scores)) == pytest.approx((2.9 + 0 + 12.9) / 3, abs=1e-4)
    assert float(multiclass_hinge(np.array([0, 1, 2]), scores, np.array([1, 1, 0]))) == pytest.approx(2.9 / 2, abs=1e-4)
    assert classification_loss("svm") is multiclass_hinge
    with pytest.raises(EdgeCNNError, match="not a classification loss"):
        classification_loss("dice")


def test_rcnn_converts_to_one_region_per_invoke_and_the_runtime_decodes_svm_scores(tmp_path):
    from edgecnn._keras import keras
    from edgecnn.data.shapes import generate_sample
    from edgecnn.models.detector_families import deployed_model

    keras.utils.set_random_seed(6)
    model = edgecnn.create_model("test_rcnn", num_classes=4)
    report = edgecnn.convert(model, "fp32", out=tmp_path / "rcnn.tflite", calibration="builtin:shapes", samples=2)
    assert report.builtin_only and report.metadata.decoding["kind"] == "rcnn"
    assert [o.kind for o in report.metadata.outputs] == ["svm_scores", "box_deltas"]
    detector = edgecnn.runtime.open(str(tmp_path / "rcnn.tflite"), accelerator="cpu", score_threshold=0.0)
    assert detector.warps_regions
    crops = np.random.default_rng(0).uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)
    svm, deltas = detector.classify_regions(crops)
    expected = deployed_model(model)(crops, training=False)
    np.testing.assert_allclose(svm, np.asarray(expected[0]), atol=1e-4)
    np.testing.assert_allclose(deltas, np.asarray(expected[1]), atol=1e-4)
    result = detector(generate_sample(np.random.default_rng(2), 64).image)
    assert result.detections and all(0 <= d.box[0] <= d.box[2] <= 64 for d in result.detections)


def test_a_region_file_without_its_decoding_metadata_gets_a_clear_error(converted):
    import dataclasses

    from edgecnn.export.metadata import write_metadata
    from edgecnn.runtime.metadata import read_metadata

    data = converted[1].read_bytes()
    stripped = write_metadata(data, dataclasses.replace(read_metadata(data), decoding=None))
    with pytest.raises(EdgeCNNError, match="no detection decoding metadata.*Faster R-CNN"):
        edgecnn.runtime.open(stripped, accelerator="cpu")


@pytest.mark.parametrize("target", ["dynamic", "int8-io"])  # fp32 above, fp16 in the GPU test, int8 by the recipes
def test_region_detectors_convert_to_the_quantized_targets_and_run(converted, fast_converted, target, tmp_path):
    from edgecnn.data.shapes import generate_sample

    image = generate_sample(np.random.default_rng(3), 64).image
    for model in (converted[0], fast_converted[0]):
        path = tmp_path / f"{model.name}_{target}.tflite"
        report = edgecnn.convert(model, target, out=path, calibration="builtin:shapes", samples=2,
                                 calibration_samples=8)
        assert report.builtin_only and report.target == target
        detector = edgecnn.runtime.open(str(path), accelerator="cpu", score_threshold=0.0)
        assert detector(image).image_size == [64, 64]


def test_decoding_no_proposals_gives_no_detections():
    from edgecnn.runtime.regions import svm_postprocess

    empty = np.zeros((0, 4), np.float32)
    assert len(region_postprocess(empty, np.zeros((0, 5)), np.zeros((0, 16)), (64, 64)).boxes) == 0
    assert len(svm_postprocess(empty, np.zeros((0, 5)), np.zeros((0, 16)), (64, 64)).boxes) == 0


@pytest.mark.parametrize("recipe", ["coco_faster_rcnn.yaml", "coco_fast_rcnn.yaml", "coco_rcnn.yaml",
                                    "coco_mask_rcnn.yaml"])
def test_coco_recipes_build_at_their_size_and_train_on_coco_json(recipe, tmp_path):
    """The COCO recipes (not trained here: no COCO) build their model at the recipe's input
    size and class count, and train and evaluate from COCO JSON (Mask R-CNN on its polygons):
    a COCO-format export of builtin:shapes stands in for COCO, with the model narrowed and one
    short epoch."""
    from edgecnn.data.shapes import write_shapes
    from edgecnn.training.recipe import PACKAGED_RECIPES, load_recipe

    full = load_recipe(PACKAGED_RECIPES / recipe)
    assert full.data.train.startswith("coco:") and full.data.val.startswith("coco:")
    model = edgecnn.create_model(full.model.name, num_classes=80, input_shape=tuple(full.data.input_size),
                                 **full.model.overrides)
    assert model.count_params() > 1_000_000
    annotations = write_shapes(tmp_path / "coco", num=16, size=128)
    spec = f"coco:{annotations}"
    trained = edgecnn.train(PACKAGED_RECIPES / recipe, tmp_path / "run", overrides=[
        f"data.train={spec}", f"data.val={spec}", "training.epochs=1", "training.batch_size=4",
        "optimization.pruning.enabled=false", "optimization.qat.enabled=false",
        "model.overrides.width_multiplier=0.25"])
    assert trained["classes"] == ["circle", "rectangle", "triangle", "star"]
    assert "map50" in trained["stages"]["float"] and trained["stages"]["float"]["detections"] > 0
    assert edgecnn.load_model(tmp_path / "run" / "model.keras").get_layer("box_deltas").units == 4 * 4  # per class


def test_detection_agreement_matches_by_class_and_overlap_once_each():
    from edgecnn.export.report import matched_detections
    from edgecnn.runtime.detection import RawDetections

    def detections(boxes, scores, classes):
        return RawDetections(np.array(boxes, np.float32), np.array(scores, np.float32), np.array(classes),
                             np.arange(len(boxes)))

    reference = detections([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]],
                           [0.9, 0.8, 0.7, 0.6], [0, 1, 0, 2])
    converted = detections([[1, 1, 10, 10], [20, 20, 30, 31], [50, 50, 60, 60], [0, 0, 10, 10]],
                           [0.9, 0.8, 0.7, 0.6], [0, 0, 1, 1])
    # box 0 (class 0) and box 2 (class 0) match; box 1 (class 1) takes converted box 3; box 3's
    # class-2 twin has class 1 in the file: not a match
    assert matched_detections(reference, converted) == 3
    assert matched_detections(reference, detections(np.zeros((0, 4)), [], [])) == 0
