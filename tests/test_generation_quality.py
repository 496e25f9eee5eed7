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
from edgecnn.data.translation import SHAPES_PALETTE, from_unit_range, load_translation_samples, to_unit_range
from edgecnn.errors import EdgeCNNError
from edgecnn.evaluation.generation import open_judge
from edgecnn.runtime.edges import canny_edges

SIZE = (32, 32, 3)


def keras_generate(generator, pictures: np.ndarray) -> np.ndarray:
    """The generator's 8-bit pictures straight from Keras, without the runtime pipeline that
    evaluation uses (an independent reference for it)."""
    return from_unit_range(generator.predict(to_unit_range(pictures), batch_size=16, verbose=0))


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
    assert "fcn_miou" in scored and scored["l1"] == pytest.approx(0.0, abs=1e-2)
    with pytest.raises(EdgeCNNError, match="not a segmentation model"):
        edgecnn.evaluate(_copying_generator(1.0), "builtin:shapes", limit=4, judge=_copying_generator(1.0))
    with pytest.raises(EdgeCNNError, match="does not exist"):
        edgecnn.evaluate(_copying_generator(1.0), "builtin:shapes", limit=4, judge=tmp_path / "missing.keras")
    # a judge opened once serves several evaluations; a colour mask is refused, not misread as class ids
    opened = open_judge(_palette_judge())
    again = edgecnn.evaluate(_copying_generator(1.0), f"pairs:{tmp_path / 'pairs'}", judge=opened)
    assert again["fcn_miou"] == scored["fcn_miou"] and again["real_fcn_pixel_acc"] == scored["real_fcn_pixel_acc"]
    cv2.imwrite(str(tmp_path / "pairs" / "masks" / "1.png"), np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(EdgeCNNError, match="colour channels"):
        edgecnn.evaluate(_copying_generator(1.0), f"pairs:{tmp_path / 'pairs'}", judge=opened)


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
        assert "fcn_miou" in metrics["stages"][stage] and metrics["stages"][stage]["real_fcn_miou"] > 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run" / "model.keras"), "--data", "builtin:shapes", "--limit", "8",
                 "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    edges_input = load_translation_samples("builtin:shapes", SIZE, "val", 8, edges=True)
    generator = edgecnn.load_model(tmp_path / "run" / "model.keras")

    expected_l1 = np.abs(keras_generate(generator, edges_input.a).astype(np.float32) / 127.5
                         - edges_input.b.astype(np.float32) / 127.5).mean()
    assert scored["l1"] == pytest.approx(expected_l1, abs=1e-4) and "fcn_miou" in scored
    assert main(["convert", str(tmp_path / "run" / "model_qat.h5"), "--target", "int8", "--out",
                 str(tmp_path / "g_int8.tflite"), "--samples", "2"]) == 0
    from edgecnn.runtime import Translator

    translator = Translator(tmp_path / "g_int8.tflite", accelerator="cpu")
    assert translator.takes_edges  # the file says so (recipe data.edges beside the QAT model)
    given = translator(edges_input.a[0])  # an edge drawing is fed as it is
    assert given.edges is None and given.image.shape == (32, 32, 3)
    drawn = translator(edges_input.b[0])  # a photo: its edges are drawn as the training pairs were
    assert np.array_equal(drawn.edges, edges_input.a[0]) and np.array_equal(drawn.image, given.image)
    assert Translator(tmp_path / "g_int8.tflite", accelerator="cpu", edges="given")(edges_input.b[0]).edges is None
    with pytest.raises(EdgeCNNError, match="edges mode"):
        Translator(tmp_path / "g_int8.tflite", edges="canny")
    # predict on a photo shows the photo, the edges drawn from it and the generated picture
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(edges_input.b[0], cv2.COLOR_RGB2BGR))
    assert main(["predict", str(tmp_path / "g_int8.tflite"), str(tmp_path / "photo.png"), "--out",
                 str(tmp_path / "out"), "--accelerator", "cpu"]) == 0
    written = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "photo_0.png")), cv2.COLOR_BGR2RGB)
    assert written.shape == (32, 3 * 32 + 2 * 4, 3)
    assert np.array_equal(written[:, 36:68], edges_input.a[0]) and np.array_equal(written[:, 72:], drawn.image)
    # eval of the file alone (no recipe beside it) reads the edges input from its metadata
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "g.tflite").write_bytes((tmp_path / "g_int8.tflite").read_bytes())
    from_file = edgecnn.evaluate(alone / "g.tflite", "builtin:shapes", limit=8)
    assert from_file["l1"] == pytest.approx(edgecnn.evaluate(alone / "g.tflite", "builtin:shapes", limit=8,
                                                             edges=True)["l1"])
    assert from_file["l1"] != pytest.approx(edgecnn.evaluate(alone / "g.tflite", "builtin:shapes", limit=8,
                                                             edges=False)["l1"])


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
    # pictures of one name in different subfolders keep apart; one name twice in a folder is refused
    pictures = tmp_path / "pictures"
    (pictures / "sub").mkdir(parents=True)
    for path, value in ((pictures / "1.png", 40), (pictures / "sub" / "1.png", 200)):
        cv2.imwrite(str(path), np.full((32, 32, 3), value, np.uint8))
    assert main(["data", "pairs", f"folder:{pictures}", "--edges", "--out", str(tmp_path / "nested")]) == 0
    assert sorted(p.name for p in (tmp_path / "nested" / "B").iterdir()) == ["1.png", "sub__1.png"]
    assert cv2.imread(str(tmp_path / "nested" / "B" / "sub__1.png")).min() == 200
    cv2.imwrite(str(pictures / "1.jpg"), np.full((32, 32, 3), 90, np.uint8))
    assert main(["data", "pairs", f"folder:{pictures}", "--edges", "--out", str(tmp_path / "clash")]) == 2
    assert not (tmp_path / "clash").exists()


def test_a_resumed_cyclegan_fine_tunes_against_its_trained_companions(tmp_path, monkeypatch):
    """A crash before QAT, then resume: the QAT stage starts from the trained B -> A generator
    and discriminators the float stage saved (fresh ones would make its cycle loss meaningless)."""
    import edgecnn.optimize.qat as qat
    from edgecnn.export.keras_io import load_model
    from edgecnn.training.generation import GenerationTask
    from edgecnn.training.recipe import load_recipe
    from edgecnn.training.train import train

    recipe = load_recipe("shapes_cyclegan", ["model.name=test_cyclegan", "model.overrides={}", "data.limit=8",
                                              "data.input_size=[32,32,3]", "training.epochs=1",
                                              "optimization.qat.epochs=1", "evaluation.judge=null"])
    real = qat.quantize_aware
    monkeypatch.setattr(qat, "quantize_aware", lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError, match="crash"):
        train(recipe, tmp_path / "run")
    monkeypatch.setattr(qat, "quantize_aware", real)
    at_qat_start = {}

    def remember(task, stage, epochs_done):
        if stage == "qat":
            at_qat_start.update({name: part.get_weights() for name, part in task.companions.items()})

    monkeypatch.setattr(GenerationTask, "start_stage", remember, raising=False)
    train(recipe, tmp_path / "run", resume=True)
    saved = {"inverse": tmp_path / "run" / "model_b_to_a.keras",
             "discriminator_a": tmp_path / "run" / "checkpoints" / "discriminator_a.keras",
             "discriminator_b": tmp_path / "run" / "checkpoints" / "discriminator_b.keras"}
    for name, path in saved.items():
        assert all(np.array_equal(a, b) for a, b in zip(at_qat_start[name], load_model(path).get_weights())), name


def test_distilling_qat_stays_with_the_float_generator(tmp_path):
    """optimization.qat.objective: distill fine-tunes the quantize-aware generator towards the
    float generator's pictures: after the same QAT epochs at a high learning rate it is closer to
    the float model than QAT with the GAN objective; other tasks refuse the setting."""
    from edgecnn.export.keras_io import load_model
    from edgecnn.training.recipe import load_recipe
    from edgecnn.training.train import train

    data = load_translation_samples("builtin:painted_shapes", SIZE, "val", 16)
    settings = ["model.name=test_pix2pix", "model.overrides={}", "data.input_size=[32,32,3]", "data.limit=32",
                "training.epochs=1", "optimization.qat.epochs=2", "optimization.qat.learning_rate=0.003",
                "evaluation.judge=null"]
    distance = {}
    for objective in ("task", "distill"):
        run = tmp_path / objective
        metrics = train(load_recipe("shapes_pix2pix", [*settings, f"optimization.qat.objective={objective}"]), run)
        assert ("d_loss" in metrics["stages"]["qat"]["history"][0]) == (objective == "task")
        float_pictures = keras_generate(load_model(run / "model.keras"), data.a).astype(np.float32)
        qat_pictures = keras_generate(load_model(run / "model_qat.h5"), data.a).astype(np.float32)
        distance[objective] = float(np.abs(qat_pictures - float_pictures).mean())
    assert distance["distill"] < 0.5 * distance["task"], distance
    with pytest.raises(EdgeCNNError, match="generation recipes only"):
        train(load_recipe("digits_vgg", ["optimization.qat.enabled=true", "optimization.qat.objective=distill"]),
              tmp_path / "digits")
