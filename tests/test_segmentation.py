"""Segmentation: masks: loading, letterbox padding as IGNORE, mask-consistent augmentation, the
loss's ignore handling, mIoU, U-Net, FCN and SegNet graphs (index unpooling from builtins),
export and the runtime Segmenter."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.data.segmentation import IGNORE, load_mask_folder, load_shapes_semantic
from edgecnn.evaluation.metrics import segmentation_metrics


def _write_pairs(root, sizes):
    import cv2

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    masks = []
    for index, (height, width) in enumerate(sizes):
        mask = np.zeros((height, width), np.uint8)
        mask[height // 4: height // 2, width // 4: width // 2] = 1
        mask[-height // 4:, -width // 4:] = 2
        image = np.stack([mask * 100, mask * 50, np.full_like(mask, 30)], axis=2)
        cv2.imwrite(str(root / "images" / f"p{index}.png"), image)
        cv2.imwrite(str(root / "masks" / f"p{index}.png"), mask)
        masks.append(mask)
    return masks


def test_mask_folder_letterboxes_images_and_masks_together(tmp_path):
    _write_pairs(tmp_path / "data", [(40, 80), (64, 64)])
    dataset = load_mask_folder(tmp_path / "data", (32, 32, 3))
    assert dataset.images.shape == (2, 32, 32, 3) and dataset.classes == ["0", "1", "2"]
    wide = dataset.masks[0]
    assert (wide[:8] == IGNORE).all() and (wide[-8:] == IGNORE).all()  # 40x80 -> 16x32 inside 32x32
    inside = wide[8:24]
    assert set(np.unique(inside)) == {0, 1, 2}
    # the image's red channel encodes the class (100 per class id): pixels and labels still agree
    red = np.round(dataset.images[0, 8:24, :, 2] * 255 / 100)  # BGR on disk -> RGB: red is channel 2
    assert (red == inside).mean() > 0.9


def test_mask_folder_errors_name_the_fix(tmp_path):
    import cv2

    from edgecnn.errors import EdgeCNNError

    (tmp_path / "images").mkdir()
    with pytest.raises(EdgeCNNError, match="images/ and a masks/ folder"):
        load_mask_folder(tmp_path, (32, 32, 3))
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), np.zeros((12, 10), np.uint8))
    with pytest.raises(EdgeCNNError, match="must have its image's size"):
        load_mask_folder(tmp_path, (32, 32, 3))


def test_augmentation_moves_the_class_map_with_the_pixels():
    from edgecnn.training.segmentation import augment

    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 20:50] = 1
    mask[40:60, 5:25] = 2
    image = np.stack([mask * 120, np.zeros_like(mask), np.zeros_like(mask)], axis=2).astype(np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(10):
        moved_image, moved_mask = augment(image, mask, rng, flip=True, scale=0.3, color=0.0)
        valid = moved_mask != IGNORE
        assert valid.mean() > 0.3
        agree = np.round(moved_image[..., 0] / 120.0)[valid] == moved_mask[valid]
        assert agree.mean() > 0.97  # only bilinear edge pixels may differ


def test_loss_ignores_padding_and_metrics_are_exact():
    from edgecnn.training.segmentation import SegmentationLoss

    truth = np.array([[[0, 1], [2, IGNORE]]], np.int32)
    logits = np.random.default_rng(0).normal(size=(1, 2, 2, 3)).astype(np.float32)
    changed = logits.copy()
    changed[0, 1, 1] += 50.0  # only the ignored pixel changes
    for kind in ("cross_entropy", "dice", "cross_entropy+dice"):
        loss = SegmentationLoss(kind)
        assert float(loss(truth, logits)[0]) == pytest.approx(float(loss(truth, changed)[0]), rel=1e-5)
    truth = np.array([[0, 0, 1, 1], [2, 2, IGNORE, IGNORE]])
    predicted = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    metrics = segmentation_metrics(predicted, truth, 3)
    # class 0: tp 1, union 3; class 1: tp 2, union 3; class 2: tp 1, union 2
    assert metrics["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert metrics["pixel_acc"] == pytest.approx(4 / 6)
    assert segmentation_metrics(truth.clip(0, 2), truth, 3)["miou"] == 1.0


def test_dice_of_a_confident_correct_prediction_is_near_zero():
    """Classes absent from an image's labels take no part in its Dice: a confident, correct
    prediction of a 64x64 image holding 2 of 5 classes costs almost nothing (counting the 3
    absent classes, each at 3e-4 probability per pixel, it cost 0.25)."""
    from edgecnn.training.segmentation import SegmentationLoss

    truth = np.zeros((1, 64, 64), np.int32)
    truth[0, 20:40, 20:40] = 3
    logits = np.eye(5, dtype=np.float32)[truth] * 8.0
    dice = float(SegmentationLoss("dice")(truth, logits)[0])
    assert dice < 0.01, dice
    wrong = np.eye(5, dtype=np.float32)[np.where(truth == 3, 1, 0)] * 8.0  # the square called class 1
    assert float(SegmentationLoss("dice")(truth, wrong)[0]) > 0.4


def test_unet_has_the_papers_shape_and_size():
    import edgecnn

    model = edgecnn.create_model("unet")
    assert model.output_shape == (None, 256, 256, 2)  # 'same' padding: output size = input size
    assert model.count_params() == 31_031_810  # 64..1024 channels, 2 classes, biased convolutions
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2DTranspose") == 4 and kinds.count("MaxPooling2D") == 4
    with pytest.raises(edgecnn.EdgeCNNError, match="multiple of 16"):
        edgecnn.create_model("unet", input_shape=(100, 100, 3))


def test_fcn_variants_and_bilinear_upsampling():
    import edgecnn

    sizes = {name: edgecnn.create_model(name, input_shape=(64, 64, 3), width_multiplier=0.125, fc_units=64,
                                        num_classes=3) for name in ("fcn32s_vgg16", "fcn16s_vgg16", "fcn8s_vgg16")}
    for model in sizes.values():
        assert model.output_shape == (None, 64, 64, 3)
    skips = {name: sum(layer.name.startswith("score_s") for layer in m.layers) for name, m in sizes.items()}
    assert skips == {"fcn32s_vgg16": 1, "fcn16s_vgg16": 2, "fcn8s_vgg16": 3}
    # the 2x transposed convolutions start as bilinear interpolation: a constant map stays constant inside
    up = sizes["fcn8s_vgg16"].get_layer("upscore_s16")
    constant = np.ones((1, 4, 4, 3), np.float32)
    out = np.asarray(up(constant))
    assert np.allclose(out[0, 1:-1, 1:-1], 1.0)


def _argmax_unpooled(features: np.ndarray, values: np.ndarray) -> np.ndarray:
    """What SegNet's decoder must produce: TensorFlow's own max_pool_with_argmax indices."""
    from edgecnn._keras import tf

    _, indices = tf.nn.max_pool_with_argmax(features, 2, 2, "VALID", include_batch_in_index=True)
    result = np.zeros(features.size, np.float32)
    result[np.asarray(indices).ravel()] = values.ravel()
    return result.reshape(features.shape)


def test_unpooling_places_values_at_the_argmax_positions(rng):
    from edgecnn.layers import MaxUnpooling2D

    features = rng.normal(size=(2, 8, 12, 5)).astype(np.float32)
    features[0, :2, :2, 0] = 0.0  # ties (ReLU zeros are common): the first position wins
    features[1, 2:4, 4:6, 3] = [[1.0, 2.0], [2.0, 2.0]]
    values = rng.uniform(1, 2, size=(2, 4, 6, 5)).astype(np.float32)
    out = np.asarray(MaxUnpooling2D()([values, features]))
    assert np.array_equal(out, _argmax_unpooled(features, values))
    assert (out != 0).sum() == values.size  # exactly one position per window


def test_unpooling_survives_conversion_with_builtin_ops_only(rng):
    from ai_edge_litert.interpreter import Interpreter

    from edgecnn._keras import keras
    from edgecnn.export.convert import convert
    from edgecnn.layers import MaxUnpooling2D

    features = keras.Input((8, 8, 4), batch_size=1)
    values = keras.layers.MaxPooling2D()(features)
    model = keras.Model(features, MaxUnpooling2D()([values * 3.0, features]))
    interpreter = Interpreter(model_content=convert(model, "fp32"))
    interpreter.allocate_tensors()
    sample = rng.normal(size=(1, 8, 8, 4)).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    pooled = sample.reshape(1, 4, 2, 4, 2, 4).max(axis=(2, 4))
    assert np.array_equal(out, _argmax_unpooled(sample, pooled * 3.0))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "MAX_POOL_2D" in ops and not any("FLEX" in op or op == "CUSTOM" for op in ops)


def test_segnet_has_the_papers_shape_and_size():
    import edgecnn

    model = edgecnn.create_model("segnet")
    assert model.output_shape == (None, 224, 224, 12)
    assert model.count_params() == 29_488_844  # the paper's "29.5M" (VGG-16 encoder + mirrored decoder)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("MaxUnpooling2D") == kinds.count("MaxPooling2D") == 5
    assert kinds.count("Conv2D") == 13 + 13 + 1 and "Concatenate" not in kinds  # switches, not features
    basic = edgecnn.create_model("segnet_basic")
    assert basic.get_layer("enc1_conv1").kernel_size == (7, 7) and basic.count_params() == 1_417_164
    with pytest.raises(edgecnn.EdgeCNNError, match="multiple of 32"):
        edgecnn.create_model("segnet", input_shape=(100, 100, 3))


def test_segnet_quantization_aware_int8_matches_its_keras_model():
    from ai_edge_litert.interpreter import Interpreter

    import edgecnn
    from edgecnn.export.convert import convert
    from edgecnn.optimize.qat import quantize_aware

    images = load_shapes_semantic((32, 32, 3), "val", 4).images
    qat = quantize_aware(edgecnn.create_model("test_segnet", num_classes=5))
    qat.predict(images, verbose=0)
    interpreter = Interpreter(model_content=convert(qat, "int8"))
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert {"CONV_2D", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE"} <= ops and "CUSTOM" not in ops
    for image in images:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        expected = np.asarray(qat(image[None]))[0]
        assert np.abs(out - expected).max() <= 0.05 * np.ptp(expected) + 1e-6


@pytest.mark.parametrize("name", ["test_unet", "test_fcn", "test_segnet"])
def test_quantization_aware_segmenters_save_and_reload(name, tmp_path):
    """`edgecnn train` saves QAT models as .h5 and `convert` reloads them: FCN's bilinear
    initializer once held an array that the .h5 format could not restore."""
    import edgecnn
    from edgecnn.export.keras_io import load_model, save_model
    from edgecnn.optimize.qat import quantize_aware

    qat = quantize_aware(edgecnn.create_model(name, num_classes=5))
    images = load_shapes_semantic(tuple(qat.input_shape[1:]), "val", 2).images
    save_model(qat, tmp_path / "qat.h5")
    reloaded = load_model(tmp_path / "qat.h5")
    assert np.allclose(np.asarray(reloaded(images)), np.asarray(qat(images)), atol=1e-5)


@pytest.fixture(scope="module")
def tiny_unet_file(tmp_path_factory):
    import edgecnn
    from edgecnn.export.convert import convert
    from edgecnn.export.metadata import metadata_for, write_metadata

    from edgecnn._keras import keras

    # fixed weights: an unseeded untrained U-Net (its weights depended on what ran before in the
    # worker) sometimes gives one class everywhere, which the tests below need not to be the case
    keras.utils.set_random_seed(0)
    model = edgecnn.create_model("test_unet", num_classes=5)
    data = write_metadata(convert(model, "fp32"), metadata_for(model, "segmentation", ["background", "a", "b", "c", "d"]))
    path = tmp_path_factory.mktemp("seg") / "test_unet.tflite"
    path.write_bytes(data)
    return model, path


def test_segmenter_returns_class_maps_at_the_original_size(tiny_unet_file):
    from edgecnn.runtime.images import letterbox
    from edgecnn.runtime import Segmenter, draw_segmentation

    model, path = tiny_unet_file
    segmenter = Segmenter(path, accelerator="cpu")
    image = (np.random.default_rng(0).uniform(0, 65535, (30, 60))).astype(np.uint16)  # 16-bit gray, 2:1
    result = segmenter(image)
    assert result.class_map.shape == (30, 60) and result.class_map.max() < 5
    assert sum(result.areas.values()) == pytest.approx(1.0, abs=1e-4)
    rgb = np.repeat((image / 257).astype(np.uint8)[..., None], 3, axis=2)
    fitted, fit = letterbox(rgb, 32, 32)
    expected = np.asarray(model(fitted[None].astype(np.float32) / 255.0))[0].argmax(-1)[8:24]  # 16x32 inside
    import cv2

    expected = cv2.resize(expected.astype(np.uint8), (60, 30), interpolation=cv2.INTER_NEAREST)
    assert (expected == result.class_map).mean() > 0.99
    assert draw_segmentation(image, result).shape == (30, 60, 3)


def test_int8_io_segmenter_takes_the_argmax_of_the_stored_integers(tiny_unet_file):
    """An int8-io file's logits are not dequantized for the argmax; the class map is the one the
    dequantized logits give."""
    import cv2

    from edgecnn.data.detection import load_shapes
    from edgecnn.runtime.images import letterbox
    from edgecnn.export.convert import convert
    from edgecnn.export.metadata import write_metadata
    from edgecnn.runtime.metadata import read_metadata
    from edgecnn.runtime import Segmenter

    model, path = tiny_unet_file
    images = load_shapes_semantic((32, 32, 3), "train", 8).images
    data = write_metadata(convert(model, "int8-io", lambda: ([image[None]] for image in images)),
                          read_metadata(path.read_bytes()))
    segmenter = Segmenter(data, accelerator="cpu")
    assert segmenter.runner.outputs[0].dtype == np.int8
    for sample in load_shapes("val", 2).samples:
        frame = np.concatenate([sample.image, sample.image[:30]], axis=0)  # letterboxed with pads
        result = segmenter(frame)
        logits = segmenter.runner.invoke()[0][0]  # the same input, dequantized
        fit = letterbox(frame, 32, 32)[1]  # 158 x 128 -> 32 x 26, padded left and right
        left, width = int(fit.pad_x), round(128 * fit.scale)
        inside = logits[:, left:left + width].argmax(axis=-1).astype(np.uint8)
        assert left > 0 and len(np.unique(inside)) > 1  # padded, and not a trivially constant map
        expected = cv2.resize(inside, (128, 158), interpolation=cv2.INTER_NEAREST)
        assert np.array_equal(result.class_map, expected)


def test_eval_of_a_segmenter_matches_keras(tiny_unet_file):
    import edgecnn

    model, path = tiny_unet_file
    keras_metrics = edgecnn.evaluate(model, "builtin:shapes", split="val", limit=8)
    tflite_metrics = edgecnn.evaluate(path, "builtin:shapes", split="val", limit=8, accelerator="cpu")
    assert keras_metrics["backend"] == "keras" and tflite_metrics["backend"] != "keras"
    assert tflite_metrics["miou"] == pytest.approx(keras_metrics["miou"], abs=0.01)
    assert load_shapes_semantic((32, 32, 3), "val", 8).masks.max() <= 4


@pytest.mark.parametrize("name", ["test_unet", "test_fcn", "test_segnet"])
def test_segmentation_fp16_runs_fully_on_the_gpu(name, gpu):
    import edgecnn
    from edgecnn.export.convert import convert

    model = edgecnn.create_model(name)
    sample = np.random.default_rng(0).uniform(0, 1, (1, *model.input_shape[1:])).astype(np.float32)
    run = gpu(convert(model, "fp16"), [sample])
    assert run.available and run.fully_accelerated
    assert np.abs(run.outputs[0].reshape(model.output_shape[1:]) - np.asarray(model(sample))[0]).max() < 2e-2


def test_segmentation_instances_are_connected_regions_at_the_original_size():
    from edgecnn.runtime import SegmentationResult, draw_segmentation

    class_map = np.zeros((60, 80), np.uint8)
    class_map[5:15, 5:25] = 1  # two separate regions of class 1
    class_map[40:55, 60:75] = 1
    class_map[20:30, 30:50] = 2  # one of class 2, touching nothing
    class_map[58, 0] = 2  # one-pixel speckle: dropped
    result = SegmentationResult(class_map, {}, 0.0, 0.0, ["background", "circle", "star"])
    instances = result.instances()
    assert [(i.label, i.box, i.area) for i in instances] == [
        ("circle", (60, 40, 75, 55), 225), ("circle", (5, 5, 25, 15), 200), ("star", (30, 20, 50, 30), 200)]
    for instance in instances:
        assert instance.mask.shape == class_map.shape and instance.mask.sum() == instance.area
        assert np.all(class_map[instance.mask] == instance.index)
    assert len(result.instances(min_area=1)) == 4
    assert [entry["label"] for entry in result.to_json()["instances"]] == ["circle", "circle", "star"]
    image = np.full((60, 80, 3), 128, np.uint8)
    drawn = draw_segmentation(image, result)
    plain = draw_segmentation(image, result, outlines=False)
    assert drawn.shape == image.shape and (drawn != plain).any()  # the outlines are drawn
