"""Detection: geometry and augmentation consistency, label assignment, decoding, NMS, COCO
loading (polygons and RLE), COCO mAP, the YOLO graph, its export and the runtime Detector."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgecnn.data.detection import DetectionSample, DetectionSet, load_coco, load_shapes
from edgecnn.data.specs import parse_spec
from edgecnn.data.transforms import hflip, masks_to_boxes, scale_translate, transform_boxes
from edgecnn.runtime.images import letterbox, letterbox_normalized
from edgecnn.runtime.detection import anchor_points, batched_nms, iou_matrix, postprocess


def _shapes_with_masks(count=6):
    return load_shapes("val", count, with_masks=True).samples


def test_flip_and_zoom_keep_boxes_on_the_masks():
    for sample in _shapes_with_masks():
        image, boxes, masks = hflip(sample.image, sample.boxes, sample.masks)
        assert np.allclose(masks_to_boxes(masks), boxes, atol=0.01)
        for scale, dx, dy in ((1.3, -20.0, -10.0), (0.7, 15.0, 30.0)):
            moved_image, moved, moved_masks, kept = scale_translate(image, boxes, masks, scale, dx, dy)
            assert moved_image.shape == image.shape and len(moved_masks) == len(kept) == len(moved)
            assert np.array_equal(masks_to_boxes(moved_masks), moved)
            # boxes alone move like the masks (up to the rounding of nearest-neighbour warping)
            # wherever the shape was not cut by the image border
            _, box_only, _, kept_boxes = scale_translate(image, boxes, None, scale, dx, dy)
            whole = (transform_boxes(boxes[kept_boxes], scale, dx, dy) == box_only).all(axis=1)
            assert np.array_equal(kept, kept_boxes)
            assert np.abs(moved[whole] - box_only[whole]).max(initial=0) <= scale + 1.01


@pytest.mark.parametrize("shape", [(480, 640), (100, 37), (64, 64), (300, 90), (17, 500)])
@pytest.mark.parametrize("scale,offset", [(1 / 255, 0.0), (1 / 127.5, -1.0)])
def test_fused_letterbox_equals_letterbox_then_normalize(shape, scale, offset):
    """The runtime Detector's fused path gives the same input as letterbox + normalization."""
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected_image, expected_fit = letterbox(image, 96, 128)
    out = np.full((96, 128, 3), np.nan, np.float32)  # every pixel must be written
    fit = letterbox_normalized(image, out, scale, offset)
    assert fit == expected_fit
    np.testing.assert_allclose(out, expected_image.astype(np.float32) * scale + offset, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype,tensor_scale,zero_point,expect_shift", [
    (np.int8, 1 / 255, -128, 128),  # the calibrated [0, 1] input: pixel - 128, an 8-bit add
    (np.uint8, 1 / 255, 0, 0),
    (np.int8, 0.0041, -120, None),  # a QAT-learned range: a real table look-up, with clipping
    (np.uint8, 0.0036, 3, None),
])
@pytest.mark.parametrize("shape", [(240, 320), (50, 300), (192, 256), (300, 90), (96, 128)])
def test_quantized_letterbox_equals_normalize_then_quantize(shape, dtype, tensor_scale, zero_point, expect_shift):
    """The runtime's byte path for 8-bit inputs stores exactly what normalizing the letterboxed
    frame and quantizing it with the tensor's scale and zero point would."""
    from edgecnn.runtime.images import byte_shift, letterbox_mapped
    from edgecnn.runtime.engine import TensorInfo, pixel_table, quantize

    info = TensorInfo("image", (1, 96, 128, 3), np.dtype(dtype), tensor_scale, zero_point, 0)
    table = pixel_table(info, 1 / 255, 0.0)
    assert byte_shift(table) == expect_shift
    image = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected_image, expected_fit = letterbox(image, 96, 128)
    expected = quantize(expected_image.astype(np.float32) * np.float32(1 / 255), info)
    out = np.full((96, 128, 3), 77, np.uint8)  # a stale value that the pads must overwrite
    fit = letterbox_mapped(image, out, table, byte_shift(table))
    assert fit == expected_fit
    np.testing.assert_array_equal(out.view(dtype), expected)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_resize_is_area_averaging_at_a_fraction_of_its_cost():
    """INTER_AREA's pixels at a halving and at odd sizes, within one level (rounded once per
    halving) at 4x; close to it (>= 30 dB on a real photo, where one bilinear step gives 26-30
    dB) elsewhere; bilinear when enlarging."""
    from sklearn.datasets import load_sample_image

    from edgecnn.runtime.images import resize

    photo = load_sample_image("china.jpg")  # 427 x 640, a real photo shipped with scikit-learn
    for (source_w, source_h), (width, height), tolerance in [((640, 480), (320, 240), 0), ((1001, 777), (224, 224), 0),
                                                              ((1280, 960), (320, 240), 1)]:
        frame = cv2.resize(photo, (source_w, source_h), interpolation=cv2.INTER_CUBIC)
        area = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        assert np.abs(resize(frame, width, height).astype(int) - area).max() <= tolerance
    for (source_w, source_h), (width, height) in [((640, 480), (224, 224)), ((1280, 720), (300, 300)),
                                                   ((1920, 1080), (256, 256))]:
        frame = cv2.resize(photo, (source_w, source_h), interpolation=cv2.INTER_CUBIC)
        area = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        got = resize(frame, width, height)
        assert got.shape == area.shape and _psnr(got, area) >= 30.0
    small = photo[:50, :60]
    assert np.array_equal(resize(small, 90, 70), cv2.resize(small, (90, 70), interpolation=cv2.INTER_LINEAR))


@pytest.mark.parametrize("seed", range(4))
def test_mosaic_boxes_stay_on_their_objects(seed):
    """Four tiles of solid rectangles, one colour each: in the mosaic every kept box is the
    bounding box of its colour's pixels, and a colour that stays largely in view keeps its box."""
    from edgecnn.data.transforms import mosaic

    rng = np.random.default_rng(seed)
    tiles, colours = [], {}
    for tile in range(4):
        image = np.zeros((64, 64, 3), np.uint8)
        boxes = []
        for k in range(2):
            x1, y1 = rng.integers(0, 8) + 32 * k, rng.integers(0, 40)  # left and right halves: no overlap
            x2, y2 = x1 + rng.integers(8, 24), y1 + rng.integers(8, 24)
            colour = (40 + 50 * tile, 60 + 100 * k, 200)
            image[y1:y2, x1:x2] = colour
            colours[len(colours)] = colour
            boxes.append([x1, y1, x2, y2])
        tiles.append((image, np.array(boxes, np.float32), np.array([2 * tile, 2 * tile + 1])))
    image, boxes, classes = mosaic(tiles, rng, scale=0.0)  # no zoom: pixels land exactly
    assert image.shape == (64, 64, 3) and len(boxes) == len(classes)
    for box, cls in zip(boxes, classes):
        ys, xs = np.nonzero((image == colours[int(cls)]).all(axis=2))
        assert len(xs) and np.allclose(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1)
    for cls, colour in colours.items():
        visible = (image == colour).all(axis=2).sum()
        full = np.prod(np.diff(tiles[cls // 2][1][cls % 2].reshape(2, 2), axis=0))
        if visible >= 0.5 * full:
            assert cls in classes


def test_letterbox_maps_boxes_there_and_back():
    image = np.zeros((90, 200, 3), np.uint8)
    canvas, fit = letterbox(image, 128, 128)
    assert canvas.shape == (128, 128, 3) and fit.pad_x == 0 and fit.pad_y > 0
    boxes = np.array([[10, 5, 150, 80], [0, 0, 200, 90]], np.float32)
    there = transform_boxes(boxes, fit.scale, fit.pad_x, fit.pad_y)
    assert (there[:, 1] >= fit.pad_y - 1e-3).all()
    assert np.allclose(fit.to_original(there, 200, 90), boxes, atol=1e-3)


def test_task_aligned_assignment_follows_the_predictions():
    """The points a box gets are those inside it whose predictions fit it best (at most TOP_K),
    a point two boxes want goes to the one its prediction overlaps most, the best point's
    class target is its IoU, and padding rows assign nothing."""
    from edgecnn._keras import tf
    from edgecnn.training.task_aligned import TOP_K, assign, decoded_boxes

    strides = (8, 16, 32)
    centres, point_strides = anchor_points((64, 64), strides)
    count = len(centres)
    truth = np.array([[[4, 4, 36, 36, 1], [20, 20, 60, 60, 0], [0, 0, 0, 0, -1]]], np.float32)
    rng = np.random.default_rng(0)
    raw = rng.normal(0.0, 0.3, (1, count, 4)).astype(np.float32)  # boxes about one stride each way
    # three points predict the first box exactly: they must be its best
    exact = [i for i in np.nonzero((point_strides == 8) & (centres[:, 0] > 8) & (centres[:, 0] < 32)
                                   & (centres[:, 1] > 8) & (centres[:, 1] < 32))[0][:3]]
    for i in exact:
        distances = np.concatenate([centres[i] - truth[0, 0, :2], truth[0, 0, 2:4] - centres[i]])
        raw[0, i] = np.log(distances / point_strides[i])
    scores = np.full((1, count, 2), 0.5, np.float32)
    boxes = decoded_boxes(tf.constant(raw), centres, point_strides)
    target_boxes, class_targets, positive = (np.asarray(t) for t in assign(tf.constant(scores), boxes,
                                                                            tf.constant(truth), centres))
    positive = positive[0] > 0
    assert 0 < positive.sum() <= 2 * TOP_K
    for g in range(2):
        mine = positive & (target_boxes[0, :, :4] == truth[0, g, :4]).all(axis=1)
        x1, y1, x2, y2 = truth[0, g, :4]
        assert mine.any() and mine.sum() <= TOP_K
        assert ((centres[mine, 0] > x1) & (centres[mine, 0] < x2) & (centres[mine, 1] > y1)
                & (centres[mine, 1] < y2)).all()  # only points inside their box
        label = int(truth[0, g, 4])
        assert (class_targets[0, mine, 1 - label] == 0).all()
    assert set(exact) <= set(np.nonzero(positive)[0])
    assert np.allclose(class_targets[0, exact, 1], 1.0, atol=1e-4)  # IoU 1: target 1
    assert (class_targets[0, ~positive] == 0).all() and (class_targets[0, positive].max(axis=1) > 0).all()
    # no positive is an unused padding row's
    assert not (target_boxes[0, positive, :4] == 0).all(axis=1).any()


def test_class_aware_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    kept = batched_nms(boxes, scores, np.array([0, 0, 1, 0]), 0.5)
    assert sorted(kept.tolist()) == [0, 2, 3]  # box 1 overlaps box 0 of its class; box 2 is another class
    assert batched_nms(boxes, scores, np.zeros(4, int), 0.5).tolist() == [0, 3]


@pytest.mark.parametrize("count", [1, 7, 16, 17, 60, 128, 129, 257, 800])  # each NMS implementation and its edges
def test_nms_is_the_textbook_greedy_and_stops_early_at_the_head(rng, count):
    # clustered boxes (a detector's neighbouring points on one object) and scattered ones, tied scores
    objects = max(1, count // 6)
    which = rng.integers(0, objects, count)
    scattered = rng.uniform(0, 1, (count, 1)) < 0.2
    corners = np.where(scattered, rng.uniform(0, 300, (count, 2)),
                       rng.uniform(20, 280, (objects, 2))[which] + rng.normal(0, 2, (count, 2)))
    sizes = np.where(scattered, rng.uniform(5, 40, (count, 2)), rng.uniform(20, 40, (objects, 2))[which])
    boxes = np.concatenate([corners, corners + sizes], axis=1).astype(np.float32)
    scores = np.round(rng.uniform(0, 1, count), 2).astype(np.float32)
    classes = rng.integers(0, 2, count)
    full = batched_nms(boxes, scores, classes, 0.5)
    # the textbook definition, one box at a time against the full IoU matrix, ties in index order
    overlaps = iou_matrix(boxes, boxes) * (classes[:, None] == classes[None, :])
    reference, removed = [], np.zeros(count, bool)
    for index in np.argsort(-scores, kind="stable"):
        if not removed[index]:
            reference.append(index)
            removed |= overlaps[index] > 0.5
    assert full.tolist() == reference
    assert 0 < len(full) and (count < 7 or len(full) < count)  # both outcomes occur
    head = max(1, len(full) // 2)
    assert batched_nms(boxes, scores, classes, 0.5, max_keep=head).tolist() == full[:head].tolist()


def test_candidate_cap_keeps_the_best_scores_with_ties_to_the_lowest_index(rng):
    """Over the 1,000-candidate cap the best scores are kept; an int8 model's scores tie by the
    thousand, and the ones kept at the cut are the lowest indices (deterministic, both paths)."""
    from edgecnn.runtime.detection import _top

    for values in (rng.integers(0, 3, 5000).astype(np.float32), rng.standard_normal(5000).astype(np.float32),
                   np.zeros(50, np.float32), np.arange(40, dtype=np.float32)):
        for count in (1, 10, 999, len(values) - 1):
            count = min(count, len(values) - 1)
            expected = np.sort(np.argsort(-values, kind="stable")[:count])
            np.testing.assert_array_equal(_top(values, count), expected)


def test_postprocess_keeps_the_confident_points():
    strides = (8, 16, 32)
    count = len(anchor_points((64, 64), strides)[0])
    raw_boxes = np.zeros((count, 4), np.float32)
    raw_scores = np.full((count, 2), -10.0, np.float32)
    raw_scores[5, 1] = 3.0
    found = postprocess(raw_boxes, raw_scores, (64, 64), strides, 0.25, 0.5)
    assert found.classes.tolist() == [1] and found.scores[0] == pytest.approx(1 / (1 + np.exp(-3.0)))
    centre = anchor_points((64, 64), strides)[0][5]
    assert np.allclose(found.boxes[0], [*(centre - 8), *(centre + 8)])


@pytest.mark.parametrize("max_candidates", [1000, 10])
def test_postprocess_on_stored_int8_outputs_equals_dequantizing_first(max_candidates):
    """int8-io detectors are decoded from their stored integers (threshold on the integers, only
    candidates dequantized): exactly what dequantizing every output first gives, at thresholds
    that fall between levels and right at them."""
    from edgecnn.runtime.engine import dequantize_values

    strides = (8, 16, 32)
    count = len(anchor_points((64, 64), strides)[0])
    rng = np.random.default_rng(3)
    raw_boxes = rng.integers(-128, 128, (count, 4)).astype(np.int8)
    raw_scores = rng.integers(-128, 128, (count, 3)).astype(np.int8)
    box_quantization, score_quantization = (0.021, 3), (0.0731, -20)
    at_levels = [float(1 / (1 + np.exp(-dequantize_values(np.int8(q), *score_quantization)))) for q in (-60, 0, 40)]
    keep_all = raw_scores.size  # no NMS (IoU threshold 1) and no cap: every candidate is compared
    for threshold in [0.0, 0.1, 0.25, 0.5, 0.9, 0.99999, *at_levels]:
        expected = postprocess(dequantize_values(raw_boxes, *box_quantization),
                               dequantize_values(raw_scores, *score_quantization), (64, 64), strides, threshold,
                               1.0, keep_all, max_candidates)
        got = postprocess(raw_boxes, raw_scores, (64, 64), strides, threshold, 1.0, keep_all, max_candidates,
                          quantization=(box_quantization, score_quantization))
        assert len(expected.scores) > 0 or threshold > 0.99
        for name in ("boxes", "scores", "classes"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


@pytest.mark.parametrize("quantized", [False, True])
def test_few_candidates_plain_python_path_equals_the_vector_path(quantized, monkeypatch):
    """Up to SMALL_NMS candidates are decoded in plain Python (cheaper right after an invoke):
    the same detections as the NumPy path, overlapping boxes of two classes included."""
    import edgecnn.runtime.detection as detection
    from edgecnn.runtime.engine import dequantize_values

    strides = (8, 16, 32)
    count = len(anchor_points((64, 64), strides)[0])
    rng = np.random.default_rng(5)
    box_quantization, score_quantization = (0.03, -4), (0.09, 10)
    for trial in range(20):
        raw_boxes = rng.integers(0, 90, (count, 4)).astype(np.int8)  # 0 .. 2.6: boxes that overlap
        raw_scores = np.full((count, 2), -128, np.int8)
        chosen = rng.choice(raw_scores.size, int(rng.integers(1, detection.SMALL_NMS + 1)), replace=False)
        raw_scores.reshape(-1)[chosen] = rng.integers(0, 100, len(chosen))
        if not quantized:
            raw_boxes = dequantize_values(raw_boxes, *box_quantization)
            raw_scores = dequantize_values(raw_scores, *score_quantization)
        quantization = (box_quantization, score_quantization) if quantized else None
        few = postprocess(raw_boxes, raw_scores, (64, 64), strides, 0.3, 0.45, quantization=quantization)
        monkeypatch.setattr(detection, "SMALL_NMS", 0)
        vector = postprocess(raw_boxes, raw_scores, (64, 64), strides, 0.3, 0.45, quantization=quantization)
        monkeypatch.undo()
        assert few.classes.tolist() == vector.classes.tolist() and len(few.classes) >= 1
        np.testing.assert_allclose(few.boxes, vector.boxes, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(few.scores, vector.scores, rtol=1e-6)
        assert few.boxes.dtype == vector.boxes.dtype and few.scores.dtype == vector.scores.dtype


@pytest.mark.parametrize("few", [True, False])
def test_yxhw_stride_encoding_gives_the_boxes_of_the_log_distances_it_came_from(few, monkeypatch):
    """The files' device head turns log-distances into (dy, dx, h, w) in stride units (its NumPy
    reference, the same transform the parity check uses); decoding either encoding gives the same
    detections, on both the plain-Python and the NumPy path."""
    import edgecnn.runtime.detection as detection
    from edgecnn.export.device_heads import reference_outputs

    strides = (8, 16, 32)
    count = len(anchor_points((64, 64), strides)[0])
    rng = np.random.default_rng(11)
    for trial in range(10):
        log_distances = rng.uniform(-1.5, 1.5, (count, 4)).astype(np.float32)
        logits = np.full((count, 3), -9.0, np.float32)
        chosen = rng.choice(logits.size, 6 if few else 40, replace=False)
        logits.reshape(-1)[chosen] = rng.uniform(-1, 4, len(chosen))
        yxhw = reference_outputs([log_distances[None], logits[None]], "detection")[0][0]
        if not few:
            monkeypatch.setattr(detection, "SMALL_NMS", 0)
        expected = postprocess(log_distances, logits, (64, 64), strides, 0.3, 0.5)
        got = postprocess(yxhw, logits, (64, 64), strides, 0.3, 0.5, box_encoding="yxhw_stride")
        monkeypatch.undo()
        assert got.classes.tolist() == expected.classes.tolist() and len(got.classes) >= 1
        np.testing.assert_allclose(got.boxes, expected.boxes, atol=1e-4)
        np.testing.assert_array_equal(got.scores, expected.scores)


def test_agnostic_postprocess_keeps_one_class_per_point_and_suppresses_across_classes():
    """agnostic=True (MediaPipe's ObjectDetector semantics): a point's best class only, and a box
    suppresses overlapping boxes of other classes; the default keeps both."""
    strides = (8, 16, 32)
    count = len(anchor_points((64, 64), strides)[0])
    raw_boxes = np.zeros((count, 4), np.float32)
    raw_scores = np.full((count, 3), -10.0, np.float32)
    raw_scores[5, 0], raw_scores[5, 2] = 2.0, 3.0  # one point, two classes
    raw_scores[6, 1] = 1.0  # the next cell: its box overlaps point 5's (IoU 1/3 at stride 8)
    default = postprocess(raw_boxes, raw_scores, (64, 64), strides, 0.25, 0.3)
    assert sorted(default.classes.tolist()) == [0, 1, 2]  # class-aware: nothing suppresses another class
    agnostic = postprocess(raw_boxes, raw_scores, (64, 64), strides, 0.25, 0.5, agnostic=True)
    assert agnostic.classes.tolist() == [2, 1] and agnostic.points.tolist() == [5, 6]
    stricter = postprocess(raw_boxes, raw_scores, (64, 64), strides, 0.25, 0.3, agnostic=True)
    assert stricter.classes.tolist() == [2]  # suppressed across classes: IoU 1/3 > 0.3


def test_coco_loader_reads_polygons_and_rle_to_the_same_masks(tmp_path):
    from pycocotools import mask as mask_utils

    from edgecnn.data.shapes import write_shapes

    annotations = write_shapes(tmp_path, num=4, size=64, seed=3)
    polygons = load_coco(parse_spec(f"coco:{annotations}"), "all", with_masks=True)
    document = json.loads(annotations.read_text())
    for annotation in document["annotations"]:  # the same shapes, stored as RLE instead of polygons
        image = document["images"][annotation["image_id"] - 1]
        rle = mask_utils.merge(mask_utils.frPyObjects(annotation["segmentation"], image["height"], image["width"]))
        annotation["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    rle_file = tmp_path / "rle.json"
    rle_file.write_text(json.dumps(document))
    rles = load_coco(parse_spec(f"coco:{rle_file}@{tmp_path}"), "all", with_masks=True)
    assert polygons.classes == ["circle", "rectangle", "triangle", "star"]
    for a, b in zip(polygons.samples, rles.samples):
        assert np.array_equal(a.masks, b.masks) and np.array_equal(a.boxes, b.boxes)
        assert a.masks.any(axis=(1, 2)).all()
        # polygons through pixel centres rasterize up to a pixel or two off the original mask
        assert np.abs(masks_to_boxes(a.masks) - a.boxes).max() <= 2.0


def test_coco_loader_errors_name_the_problem(tmp_path):
    from edgecnn.errors import EdgeCNNError

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(EdgeCNNError, match="not valid JSON"):
        load_coco(parse_spec(f"coco:{bad}"))
    bad.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    with pytest.raises(EdgeCNNError, match="no categories"):
        load_coco(parse_spec(f"coco:{bad}"))


def test_coco_map_of_perfect_shifted_and_no_detections():
    from edgecnn.evaluation.metrics import coco_map
    from edgecnn.runtime.detection import RawDetections

    dataset = load_shapes("val", 10)
    perfect = [(s.image_id, RawDetections(s.boxes, np.ones(len(s.boxes)), s.classes)) for s in dataset.samples]
    assert coco_map(dataset, perfect)["map"] == pytest.approx(1.0)
    shifted = [(i, RawDetections(d.boxes + 6.0, d.scores, d.classes)) for i, d in perfect]
    assert 0.0 < coco_map(dataset, shifted)["map"] < 0.9
    wrong_class = [(i, RawDetections(d.boxes, d.scores, (d.classes + 1) % 4)) for i, d in perfect]
    assert coco_map(dataset, wrong_class)["map50"] == pytest.approx(0.0)
    assert coco_map(dataset, [])["map50"] == 0.0


def test_yolo_builds_on_every_backbone_family():
    import edgecnn
    from edgecnn.models.yolo import detection_layout

    for variant in ("yolo_edgenet", "yolo_resnet18", "yolo_vgg16"):
        model = edgecnn.create_model(variant, input_shape=(64, 64, 3), num_classes=2, width_multiplier=0.125,
                                     neck_channels=16)
        layout = detection_layout(model)
        assert layout["strides"] == [8, 16, 32]
        assert tuple(model.outputs[0].shape) == (None, 64 + 16 + 4, 4)
        assert tuple(model.outputs[1].shape) == (None, 84, 2)
    with pytest.raises(edgecnn.EdgeCNNError, match="multiple of its largest stride"):
        edgecnn.create_model("test_yolo", input_shape=(72, 72, 3))


@pytest.fixture(scope="module")
def tiny_detector_file(tmp_path_factory):
    import edgecnn
    from edgecnn.export.convert import convert
    from edgecnn.export.metadata import metadata_for, write_metadata

    model = edgecnn.create_model("test_yolo", num_classes=4)
    data = convert(model, "fp32")
    data = write_metadata(data, metadata_for(model, "detection", ["circle", "rectangle", "triangle", "star"]))
    path = tmp_path_factory.mktemp("det") / "test_yolo.tflite"
    path.write_bytes(data)
    return model, path


def test_detector_matches_keras_postprocessing_in_original_pixels(tiny_detector_file):
    from edgecnn.runtime import Detector

    model, path = tiny_detector_file
    detector = Detector(path, accelerator="cpu", score_threshold=0.0, max_detections=20)
    image = load_shapes("val", 1).samples[0].image
    wide = np.concatenate([image, image], axis=1)  # 128 x 256: letterboxed into 64 x 64
    result = detector(wide)
    fitted, fit = letterbox(wide, 64, 64)
    batch = fitted[None].astype(np.float32) / 255.0
    boxes, scores = detector.raw(batch)
    # the file computes what Keras does; the pipeline is then compared on the file's own numbers
    # (an untrained model's scores nearly tie, and 1e-6 of difference may reorder NMS)
    keras_boxes, keras_scores = (np.asarray(t) for t in model(batch))
    assert np.abs(boxes - keras_boxes).max() < 1e-4 and np.abs(scores - keras_scores).max() < 1e-4
    expected = postprocess(boxes[0], scores[0], (64, 64), (8, 16, 32), 0.0, 0.5, 20)
    expected_boxes = fit.to_original(expected.boxes, 256, 128)
    assert len(result.detections) == len(expected.boxes) == 20
    got = np.array([d.box for d in result.detections])
    assert np.abs(got - expected_boxes).max() < 0.05
    assert got[:, [0, 2]].max() <= 256 and got[:, [1, 3]].max() <= 128
    assert {d.label for d in result.detections} <= {"circle", "rectangle", "triangle", "star"}


def test_int8_io_detector_takes_the_byte_path_with_the_same_result(tiny_detector_file):
    """An int8-io file: the Detector writes the int8 input through the byte table (an 8-bit add
    here) and decodes the stored int8 outputs, and finds what the reference path (normalize in
    float, quantize; dequantize the outputs, decode) finds."""
    from edgecnn.export.convert import convert
    from edgecnn.export.metadata import write_metadata
    from edgecnn.runtime.metadata import read_metadata
    from edgecnn.runtime import Detector

    model, path = tiny_detector_file
    images = [cv2.resize(s.image, (64, 64)).astype(np.float32)[None] / 255 for s in load_shapes("train", 8).samples]
    images[0][0, 0, 0], images[0][0, 0, 1] = 0.0, 1.0  # the input range is exactly [0, 1]
    data = write_metadata(convert(model, "int8-io", lambda: ([image] for image in images)),
                          read_metadata(path.read_bytes()))
    fast = Detector(data, accelerator="cpu", score_threshold=0.0, max_detections=30)
    reference = Detector(data, accelerator="cpu", score_threshold=0.0, max_detections=30)
    assert fast.runner.inputs[0].dtype == np.int8 and fast._write_frame.shift == 128
    reference._write_frame.table = None  # normalize in float, then quantize with the tensor's parameters
    assert fast._quantization is not None
    reference._quantization = None  # dequantize every output, then decode in float
    for sample in load_shapes("val", 3).samples:
        frame = np.concatenate([sample.image, sample.image[:40]], axis=0)  # letterboxed with pads
        got, expected = fast(frame), reference(frame)
        assert [d.box for d in got.detections] == [d.box for d in expected.detections]
        assert [d.score for d in got.detections] == [d.score for d in expected.detections]


def test_detector_frames_of_changing_sizes_each_get_their_own_letterbox(tiny_detector_file):
    """The letterbox plan is kept from frame to frame of a stream: a frame of another size (a
    folder of mixed photos) must get its own, with pads and boxes as a fresh Detector gives."""
    from edgecnn.runtime import Detector

    _, path = tiny_detector_file
    image = load_shapes("val", 1).samples[0].image
    frames = [np.concatenate([image, image], axis=1), np.concatenate([image, image], axis=0), image[:50, :61],
              np.concatenate([image, image], axis=0), np.concatenate([image, image], axis=1)]
    stream = Detector(path, accelerator="cpu", score_threshold=0.0, max_detections=10)
    for frame in frames:
        got = stream(frame)
        expected = Detector(path, accelerator="cpu", score_threshold=0.0, max_detections=10)(frame)
        assert [(d.box, d.index) for d in got.detections] == [(d.box, d.index) for d in expected.detections]
        assert got.image_size == list(frame.shape[:2])


def test_predict_agnostic_keeps_one_label_per_box(tiny_detector_file, tmp_path):
    """`edgecnn predict --agnostic`: no two detections share a box (one class per anchor)."""
    from edgecnn.cli.main import main

    _, path = tiny_detector_file
    image = tmp_path / "image.png"
    cv2.imwrite(str(image), np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    counts = {}
    for flag in ([], ["--agnostic"]):
        out = tmp_path / ("agnostic" if flag else "default")
        assert main(["predict", str(path), str(image), "--out", str(out), "--accelerator", "cpu",
                     "--score-threshold", "0.0", *flag]) == 0
        (record,) = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        boxes = [tuple(d["box"]) for d in record["detections"]]
        counts[bool(flag)] = (len(boxes), len(set(boxes)))
    assert counts[True][0] == counts[True][1]  # agnostic: every box once
    assert counts[False][0] > counts[False][1]  # default: the same box under several classes


def test_detector_without_metadata_asks_for_strides(tiny_detector_file, tmp_path):
    import edgecnn
    from edgecnn.export.convert import convert
    from edgecnn.runtime import Detector

    bare = tmp_path / "bare.tflite"
    bare.write_bytes(convert(edgecnn.create_model("test_yolo"), "fp32"))
    with pytest.raises(edgecnn.EdgeCNNError, match="--strides 8 16 32"):
        Detector(bare, accelerator="cpu")
    result = Detector(bare, accelerator="cpu", strides=[8, 16, 32], score_threshold=0.0)(np.zeros((50, 70), np.uint16))
    assert result.image_size == [50, 70] and result.detections


@pytest.mark.parametrize("device_head", [False, True])
def test_yolo_fp16_runs_fully_on_the_gpu(tiny_detector_file, gpu, device_head):
    """With and without the MediaPipe-readable box head (MINIMUM, EXP, FULLY_CONNECTED) that
    `edgecnn convert` appends: every op runs on the GPU accelerator, with the Keras outputs."""
    from edgecnn.export.convert import convert
    from edgecnn.export.device_heads import add_device_heads, reference_outputs

    model, _ = tiny_detector_file
    data = convert(model, "fp16")
    if device_head:
        data, applied = add_device_heads(data, "detection")
        assert applied
    sample = np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    run = gpu(data, [sample])
    assert run.available and run.fully_accelerated
    expected = [np.asarray(t) for t in model(sample)]
    expected = reference_outputs(expected, "detection") if device_head else expected
    assert max(np.abs(o.reshape(e.shape) - e).max() for o, e in zip(run.outputs, expected)) < 2e-2


def test_coco_yolo_recipe_builds_at_its_size_and_trains_on_coco_json(tmp_path):
    """coco_yolo.yaml (not trained here: no COCO) builds its model at the recipe's size for 80
    classes, and trains (mosaic included) and evaluates from COCO JSON: a COCO-format export of
    builtin:shapes stands in for COCO, the model narrowed, one short epoch."""
    import edgecnn
    from edgecnn.data.shapes import write_shapes
    from edgecnn.training.recipe import PACKAGED_RECIPES, load_recipe

    full = load_recipe(PACKAGED_RECIPES / "coco_yolo.yaml")
    assert full.data.train.startswith("coco:") and full.data.augment.mosaic > 0
    model = edgecnn.create_model(full.model.name, num_classes=80, input_shape=tuple(full.data.input_size),
                                 **full.model.overrides)
    assert model.outputs[1].shape[-1] == 80 and model.count_params() > 1_000_000
    spec = f"coco:{write_shapes(tmp_path / 'coco', num=16, size=128)}"
    trained = edgecnn.train(PACKAGED_RECIPES / "coco_yolo.yaml", tmp_path / "run", overrides=[
        f"data.train={spec}", f"data.val={spec}", "data.input_size=[128,128,3]", "training.epochs=1",
        "training.batch_size=4", "optimization.pruning.enabled=false", "optimization.qat.enabled=false",
        "model.overrides.width_multiplier=0.25", "model.overrides.neck_channels=16"])
    assert trained["classes"] == ["circle", "rectangle", "triangle", "star"]
    assert "map50" in trained["stages"]["float"] and trained["stages"]["float"]["detections"] > 0


def test_mosaic_runs_in_the_float_stage_only_until_close_mosaic_resumed_runs_included():
    """Mosaic follows the stage and epoch that training reports (start_stage), not a count of
    the generator's own calls, so a resumed run and the pruning / QAT stages get it right."""
    from edgecnn.training.detection import DetectionTask, to_input
    from edgecnn.training.recipe import PACKAGED_RECIPES, load_recipe

    recipe = load_recipe(PACKAGED_RECIPES / "shapes_yolo.yaml", [
        "data.limit=8", "data.input_size=[64,64,3]", "training.batch_size=8", "training.epochs=3",
        "data.augment.mosaic=1.0", "data.augment.close_mosaic=1", "data.augment.flip=false",
        "data.augment.scale=0.0", "data.augment.color=0.0"])
    task = DetectionTask(recipe)
    task.load()
    train, _, _ = task.datasets()
    plain = [to_input(p[0], 3) for p in task.prepared]

    def whole_images(stage, epochs_done):
        task.start_stage(stage, epochs_done)
        images = next(iter(train))[0].numpy()
        return sum(any(np.array_equal(image, p) for p in plain) for image in images)

    assert whole_images("train", 2) == 8  # resumed in the last (close_mosaic) epoch: whole images
    assert whole_images("prune", 0) == 8 and whole_images("qat", 0) == 8
    assert whole_images("train", 0) == 0 and whole_images("train", 1) == 0  # mosaics
