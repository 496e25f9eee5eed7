"""Judging generators: Canny edges -> photo pairs from any pictures, class labels per pair, the
FCN-score (`edgecnn eval GENERATOR --judge SEGMENTER`) for .keras and .tflite generators, the
recipe's judge and edges setting found beside the model, QAT for generators."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import edgecnn
from edgecnn.cli.main import main
from edgecnn.data.translation import SHAPES_PALETTE, canny_edges, load_translation_samples
from edgecnn.errors import EdgeCNNError

SIZE = (32, 32, 3)


def _palette_judge():
    """A segmenter that labels each pixel with the nearest SHAPES_PALETTE colour: a 1x1
    convolution whose logits are 2 x.p - |p|^2 (the negative squared distance less |x|^2). On
    builtin:shapes' class maps it is exact, on the photos it is mostly wrong: a judge whose
    verdict on real and generated pictures differs by construction."""
    from edgecnn._keras import keras

    colours = SHAPES_PALETTE.astype(np.float32) / 255.0
    inputs = keras.Input(SIZE)
    logits = keras.layers.Conv2D(len(colours), 1, name="class_logits")(inputs)
    model = keras.Model(inputs, logits, name="palette_judge")
    model.get_layer("class_logits").set_weights([2 * colours.T[None, None], -(colours ** 2).sum(axis=1)])
    return model


def _copying_generator(gain: float):
    """A 'generator' that returns ``gain`` times its input (1: a copy, 0: flat mid-grey)."""
    from edgecnn._keras import keras

    inputs = keras.Input(SIZE)
    outputs = keras.layers.Conv2D(3, 1, name="image_out")(inputs)
    model = keras.Model(inputs, outputs, name=f"copy_{gain:g}")
    model.get_layer("image_out").set_weights([gain * np.eye(3, dtype=np.float32)[None, None], np.zeros(3, np.float32)])
    return model


def test_painted_shapes_take_their_colour_from_their_class():
    """builtin:painted_shapes: scenes drawn as builtin:shapes' are, each shape in its class's
    paint: what makes labels -> photo learnable. Every loader serves it."""
    from edgecnn.data.detection import load_detection_samples
    from edgecnn.data.segmentation import load_segmentation_samples
    from edgecnn.data.shapes import PAINT_JITTER, PAINTS

    painted = load_detection_samples("builtin:painted_shapes", "val", 12, with_masks=True)
    plain = load_detection_samples("builtin:shapes", "val", 12, with_masks=True)
    spread = []
    for sample in painted.samples:
        for mask, class_id in zip(sample.masks, sample.classes):
            colour = np.median(sample.image[mask], axis=0)
            assert np.abs(colour - PAINTS[class_id]).max() <= PAINT_JITTER + 1
        spread += [np.abs(np.median(s.image[m], axis=0) - PAINTS[c]).max()
                   for s in plain.samples for m, c in zip(s.masks, s.classes)]
    assert np.mean(np.array(spread) > PAINT_JITTER) > 0.5  # builtin:shapes' colours are anything
    masks = load_segmentation_samples("builtin:painted_shapes", SIZE, "val", 4)
    assert masks.source.startswith("builtin:painted_shapes") and masks.masks.max() >= 1
    pairs = load_translation_samples("builtin:painted_shapes", SIZE, "val", 4)
    assert pairs.labels.shape == (4, 32, 32) and np.array_equal(SHAPES_PALETTE[pairs.labels], pairs.a)


def test_canny_edges_find_shapes_of_the_background_brightness():
    """Edges are black lines on white; a shape as bright as its background (equal grey, other
    hue) still has its outline, which Canny on the grey picture alone would miss."""
    picture = np.zeros((48, 48, 3), np.uint8)
    picture[:] = (120, 120, 120)
    picture[12:36, 12:36] = (180, 90, 110)  # grey level ~115: same brightness, different colour
    assert abs(float(cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)[20, 20]) - 120) < 8
    edges = canny_edges(picture)
    assert edges.shape == picture.shape and set(np.unique(edges)) <= {0, 255}
    lines = edges[..., 0] == 0
    assert lines[10:14, 12:36].any(axis=0).mean() > 0.9 and lines[12:36, 10:14].any(axis=1).mean() > 0.9
    assert not lines[18:30, 18:30].any() and not lines[:6].any()  # inside and far outside: blank
    assert canny_edges(picture[..., :1]).shape == (48, 48, 1)


def test_any_pictures_become_edges_to_photo_pairs_with_their_labels(tmp_path, rng):
    from edgecnn.data.shapes import write_shapes

    shapes = load_translation_samples("builtin:shapes", SIZE, "val", 6, edges=True)
    assert shapes.paired and shapes.labels.shape == (6, 32, 32) and shapes.labels.max() <= 4
    assert np.array_equal(shapes.a[0], canny_edges(shapes.b[0]))
    plain = load_translation_samples("builtin:shapes", SIZE, "val", 6)
    assert np.array_equal(SHAPES_PALETTE[plain.labels], plain.a)  # labels are what the class maps show
    # a flat folder of pictures (no classes, no partners), nested folders too
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    for index in range(3):
        cv2.imwrite(str(tmp_path / "photos" / ("sub" if index else "") / f"{index}.jpg"),
                    rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    folder = load_translation_samples(f"folder:{tmp_path / 'photos'}", SIZE, "all", edges=True)
    assert folder.a.shape == (3, 32, 32, 3) and folder.labels is None and folder.paired
    # masks:DIR brings class labels for the FCN-score
    write_shapes(tmp_path / "masked", num=5, size=64)
    masked = load_translation_samples(f"masks:{tmp_path / 'masked'}", SIZE, "all", edges=True)
    assert masked.labels.shape == (5, 32, 32) and masked.labels.max() >= 1
    with pytest.raises(EdgeCNNError, match="does not provide image pairs"):
        load_translation_samples("builtin:digits", SIZE, edges=True)


def test_fcn_score_judges_generated_pictures_against_the_real_ones(tmp_path, capsys):
    """A copy of the class map is judged perfect, a flat grey picture is not; the .tflite files
    (generator and judge) give the Keras figures through the runtime."""
    judge = _palette_judge()
    judge.save(tmp_path / "judge.keras")
    copied = edgecnn.evaluate(_copying_generator(1.0), "builtin:shapes", limit=24, judge=tmp_path / "judge.keras")
    assert copied["fcn_miou"] == pytest.approx(1.0) and copied["fcn_pixel_acc"] == pytest.approx(1.0)
    assert copied["real_fcn_miou"] < 0.6  # the palette judge on photos: a poor segmenter, said so
    assert copied["l1"] > 0.1 and copied["images"] == 24
    flat = edgecnn.evaluate(_copying_generator(0.0), "builtin:shapes", limit=24, judge=judge)
    assert flat["fcn_miou"] < 0.3 and flat["real_fcn_miou"] == pytest.approx(copied["real_fcn_miou"])
    assert "fcn_miou" not in edgecnn.evaluate(_copying_generator(1.0), "builtin:shapes", limit=4)  # no judge: L1 only

    _copying_generator(1.0).save(tmp_path / "g.keras")
    for name in ("g", "judge"):
        assert main(["convert", str(tmp_path / f"{name}.keras"), "--target", "fp32", "--out",
                     str(tmp_path / f"{name}.tflite"), "--calibration", "builtin:shapes", "--samples", "2"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "g.tflite"), "--data", "builtin:shapes", "--limit", "24",
                 "--judge", str(tmp_path / "judge.tflite"), "--json"]) == 0
    through_runtime = json.loads(capsys.readouterr().out)
    for key in ("fcn_miou", "fcn_pixel_acc", "real_fcn_miou", "real_fcn_pixel_acc", "l1"):
        assert through_runtime[key] == pytest.approx(copied[key], abs=2e-3), key
    assert main(["eval", str(tmp_path / "g.tflite"), "--data", "builtin:shapes", "--limit", "4"]) == 0
    assert "l1 " in capsys.readouterr().out


def test_fcn_score_needs_labels_and_a_segmenter(tmp_path, rng):
    for side in ("A", "B"):
        (tmp_path / "pairs" / side).mkdir(parents=True)
    for index in range(3):  # B is A: the copying generator's L1 is zero
        picture = rng.integers(0, 256, (32, 32, 3), np.uint8)
        for side in ("A", "B"):
            cv2.imwrite(str(tmp_path / "pairs" / side / f"{index}.png"), picture)
    with pytest.raises(EdgeCNNError, match="no class labels"):
        edgecnn.evaluate(_copying_generator(1.0), f"pairs:{tmp_path / 'pairs'}", judge=_palette_judge())
    (tmp_path / "pairs" / "masks").mkdir()
    for index in range(3):
        cv2.imwrite(str(tmp_path / "pairs" / "masks" / f"{index}.png"), np.full((32, 32), index, np.uint8))
    scored = edgecnn.evaluate(_copying_generator(1.0), f"pairs:{tmp_path / 'pairs'}", judge=_palette_judge())
    assert 0 <= scored["fcn_miou"] <= 1 and scored["l1"] == pytest.approx(0.0, abs=1e-2)
    with pytest.raises(EdgeCNNError, match="not a segmentation model"):
        edgecnn.evaluate(_copying_generator(1.0), "builtin:shapes", limit=4, judge=_copying_generator(1.0))
    with pytest.raises(EdgeCNNError, match="does not exist"):
        edgecnn.evaluate(_copying_generator(1.0), "builtin:shapes", limit=4, judge=tmp_path / "missing.keras")


def test_generator_qat_with_the_recipes_judge_and_edges(tmp_path, capsys):
    """QAT fine-tunes a generator after training; the run's metrics carry the FCN-score of each
    stage, and `edgecnn eval` of the run's files finds the judge and the edges input in the
    recipe beside them; the QAT model converts to an int8 file the Translator runs."""
    from edgecnn.training.recipe import load_recipe
    from edgecnn.training.train import train

    _palette_judge().save(tmp_path / "judge.keras")
    recipe = load_recipe("shapes_pix2pix_edges", [
        "model.name=test_pix2pix", "model.overrides={}", "data.input_size=[32,32,3]", "data.limit=24",
        "training.epochs=1", "optimization.qat.epochs=1", f"evaluation.judge={tmp_path / 'judge.keras'}"])
    metrics = train(recipe, tmp_path / "run")
    for stage in ("float", "qat"):
        assert 0 <= metrics["stages"][stage]["fcn_miou"] <= 1 and metrics["stages"][stage]["real_fcn_miou"] > 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run" / "model.keras"), "--data", "builtin:shapes", "--limit", "8",
                 "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    edges_input = load_translation_samples("builtin:shapes", SIZE, "val", 8, edges=True)
    generator = edgecnn.load_model(tmp_path / "run" / "model.keras")
    from edgecnn.generation_evaluation import keras_generate

    expected_l1 = np.abs(keras_generate(generator, edges_input.a).astype(np.float32) / 127.5
                         - edges_input.b.astype(np.float32) / 127.5).mean()
    assert scored["l1"] == pytest.approx(expected_l1, abs=1e-4) and "fcn_miou" in scored
    assert main(["convert", str(tmp_path / "run" / "model_qat.h5"), "--target", "int8", "--out",
                 str(tmp_path / "g_int8.tflite"), "--samples", "2"]) == 0
    from edgecnn.runtime import Translator

    result = Translator(tmp_path / "g_int8.tflite", accelerator="cpu")(edges_input.a[0])
    assert result.image.shape == (32, 32, 3)


def test_data_pairs_writes_pairs_that_read_back(tmp_path):
    """`edgecnn data pairs --edges` writes pairs:DIR (A edges, B pictures, masks) that load as
    written; without --edges the data's own pairs (label maps) are written."""
    assert main(["data", "pairs", "builtin:painted_shapes", "--edges", "--out", str(tmp_path / "pairs"),
                 "--size", "32", "32", "--limit", "4", "--split", "val"]) == 0
    written = load_translation_samples(f"pairs:{tmp_path / 'pairs'}", SIZE, "all")
    direct = load_translation_samples("builtin:painted_shapes", SIZE, "val", 4, edges=True)
    assert np.array_equal(written.a, direct.a) and np.array_equal(written.b, direct.b)
    assert np.array_equal(written.labels, direct.labels)
    assert main(["data", "pairs", "builtin:painted_shapes", "--out", str(tmp_path / "labels"), "--size", "32", "32",
                 "--limit", "4", "--split", "val"]) == 0
    labels = load_translation_samples(f"pairs:{tmp_path / 'labels'}", SIZE, "all")
    assert np.array_equal(SHAPES_PALETTE[labels.labels], labels.a) and np.array_equal(labels.b, direct.b)
    assert main(["data", "pairs", "builtin:digits", "--edges", "--out", str(tmp_path / "no")]) == 2
