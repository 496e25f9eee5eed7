"""Generators (Pix2Pix U-Net, CycleGAN ResNet), their layers, export and the runtime Translator."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import edgecnn
from edgecnn.cli.main import main


def _trainable(model) -> int:
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def test_generators_have_the_reference_sizes():
    from edgecnn.models.pix2pix import patchgan_discriminator

    pix2pix = edgecnn.create_model("pix2pix")
    assert pix2pix.output_shape == (None, 256, 256, 3)
    assert _trainable(pix2pix) == 54_413_955  # the reference unet_256's "54.414 M"
    kinds = [type(layer).__name__ for layer in pix2pix.layers]
    assert kinds.count("Conv2D") == 8 and kinds.count("Conv2DTranspose") == 8 and kinds.count("Dropout") == 3
    cyclegan = edgecnn.create_model("cyclegan")
    assert cyclegan.count_params() == 11_378_179  # the reference resnet_9blocks' "11.378 M"
    assert sum(layer.name.endswith("_add") for layer in cyclegan.layers) == 9
    assert _trainable(patchgan_discriminator((256, 256, 3), 3)) == 2_768_705  # "2.769 M"
    assert edgecnn.list_models("generation") == ["pix2pix", "cyclegan", "cyclegan_6blocks"]
    with pytest.raises(edgecnn.EdgeCNNError, match="multiple of 256"):
        edgecnn.create_model("pix2pix", input_shape=(200, 200, 3))


def test_instance_norm_and_reflection_padding_compute_what_they_claim(rng):
    from edgecnn.layers import InstanceNormalization, ReflectionPadding2D

    x = rng.normal(3.0, 2.0, size=(2, 6, 5, 4)).astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    expected = (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    assert np.allclose(np.asarray(InstanceNormalization()(x)), expected, atol=1e-4)
    padded = np.asarray(ReflectionPadding2D(2)(x))
    assert np.array_equal(padded, np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect"))


@pytest.mark.parametrize("name", ["test_pix2pix", "test_cyclegan"])
def test_generators_run_fully_on_the_gpu(name, gpu):
    from edgecnn.export.convert import convert

    model = edgecnn.create_model(name)
    sample = np.random.default_rng(0).uniform(-1, 1, (1, *model.input_shape[1:])).astype(np.float32)
    for target, tolerance in (("fp32", 1e-3), ("fp16", 2e-2)):
        run = gpu(convert(model, target), [sample])
        assert run.available and run.fully_accelerated, (target, run.error)
        assert np.abs(run.outputs[0].reshape(model.output_shape[1:]) - np.asarray(model(sample))[0]).max() < tolerance


def test_convert_and_translate_an_image(tmp_path, capsys):
    """convert infers the task, writes [-1, 1] normalization into the file; the Translator gives
    the Keras model's output at the original image size; predict writes input and output side by
    side as a PNG."""
    from edgecnn.runtime.images import resize
    from edgecnn.runtime import Translator

    model = edgecnn.create_model("test_pix2pix")
    model.save(tmp_path / "g.keras")
    assert main(["convert", str(tmp_path / "g.keras"), "--target", "fp32", "--out", str(tmp_path / "g.tflite"),
                 "--calibration", "builtin:shapes", "--samples", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metadata"]["task"] == "generation" and report["builtin_only"]
    assert report["metadata"]["input"]["normalization"] == {"scale": 2 / 255, "offset": -1.0}
    assert report["metadata"]["outputs"][0]["range"] == [-1.0, 1.0]
    image = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    result = Translator(tmp_path / "g.tflite", accelerator="cpu")(image)
    assert result.image.shape == (48, 80, 3) and result.image.dtype == np.uint8
    resized = resize(image, 32, 32).astype(np.float32) * 2 / 255 - 1  # the runtime's resize (data.transforms)
    expected = (np.asarray(model(resized[None], training=False))[0] + 1) * 127.5
    expected = cv2.resize(np.clip(np.round(expected), 0, 255).astype(np.uint8), (80, 48),
                          interpolation=cv2.INTER_LINEAR)
    assert np.abs(result.image.astype(int) - expected.astype(int)).max() <= 1
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert main(["predict", str(tmp_path / "g.tflite"), str(tmp_path / "photo.png"), "--out", str(tmp_path / "out"),
                 "--accelerator", "cpu"]) == 0
    written = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "photo_0.png")), cv2.COLOR_BGR2RGB)
    assert written.shape == (48, 80 + 4 + 80, 3)  # side by side: the input, a gap, the generated picture
    assert np.array_equal(written[:, :80], image) and (written[:, 80:84] == 255).all()
    assert np.abs(written[:, 84:].astype(int) - result.image.astype(int)).max() <= 1
    with pytest.raises(edgecnn.EdgeCNNError, match="not generation"):
        from edgecnn.export.metadata import write_metadata
        from edgecnn.runtime.metadata import read_metadata

        data = (tmp_path / "g.tflite").read_bytes()
        Translator(write_metadata(data, dataclasses.replace(read_metadata(data), task="segmentation")))


def test_int8_generator_calibrates_on_pairs(tmp_path):
    """int8 calibration for a generator reads the A side of pairs: in [-1, 1], like training."""
    from edgecnn.data.samples import load_input_samples

    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        # varied pixels: constant calibration images give degenerate int8 ranges, and LiteRT 2.3
        # aborts (SIGABRT) allocating such a CycleGAN file (seen in 7 of 8 conversions)
        image = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        image[:8, :8] = 0
        cv2.imwrite(str(tmp_path / "A" / f"{index}.png"), image)
        cv2.imwrite(str(tmp_path / "B" / f"{index}.png"), 255 - image)
    samples, _ = load_input_samples(f"pairs:{tmp_path}", (32, 32, 3), None, "all", "generation")
    assert samples.shape == (6, 32, 32, 3) and samples.min() == -1.0 and samples.max() < 1.0
    edgecnn.create_model("test_cyclegan").save(tmp_path / "c.keras")
    assert main(["convert", str(tmp_path / "c.keras"), "--target", "int8", "--out", str(tmp_path / "c.tflite"),
                 "--calibration", f"pairs:{tmp_path}", "--samples", "2", "--calibration-samples", "4"]) == 0
    assert (tmp_path / "c.tflite").stat().st_size > 0


def _flat_colour_pairs(root, values=(0, 40, 128, 200, 255, 90)):
    for side in ("A", "B"):
        (root / side).mkdir(parents=True)
    for index, value in enumerate(values):
        image = np.full((40, 40, 3), value, np.uint8)
        cv2.imwrite(str(root / "A" / f"{index}.png"), image)
        cv2.imwrite(str(root / "B" / f"{index}.png"), 255 - image)


@pytest.fixture(scope="module")
def aborting_int8_file(tmp_path_factory):
    """An int8 CycleGAN file calibrated on flat-colour images: its instance norms see zero
    variance, and LiteRT 2.3 aborts (SIGABRT) setting up its SQUARED_DIFFERENCE kernel."""
    from edgecnn._keras import keras
    from edgecnn.export.convert import convert

    root = tmp_path_factory.mktemp("aborting")
    keras.utils.set_random_seed(0)
    model = edgecnn.create_model("test_cyclegan")
    model.save(root / "c.keras")

    def calibration():
        for value in (-1.0, 0.5, -0.2, 1.0):
            yield [np.full((1, 32, 32, 3), value, np.float32)]

    path = root / "c_int8.tflite"
    path.write_bytes(convert(model, "int8", calibration))  # the pure function: no load check
    return path


def test_probe_catches_the_abort_and_names_the_op(aborting_int8_file):
    from edgecnn.runtime.probe import probe, require_loads

    data = aborting_int8_file.read_bytes()
    result = probe(data, threads=1)
    assert not result.ok and result.signal_name == "SIGABRT"  # what this process was spared
    with pytest.raises(edgecnn.EdgeCNNError, match=r"SIGABRT.*SQUARED_DIFFERENCE \(test_cyclegan/c7s1_in/"):
        require_loads(data, "c_int8.tflite", threads=1)
    from edgecnn.runtime import Translator

    with pytest.raises(edgecnn.EdgeCNNError, match="crashes the LiteRT runtime"):
        Translator(data, accelerator="cpu")


def test_runtime_commands_exit_2_on_a_file_the_runtime_aborts_on(aborting_int8_file, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for command in (["benchmark", str(aborting_int8_file), "--accelerator", "cpu", "--runs", "1"],
                    ["predict", str(aborting_int8_file), str(tmp_path), "--out", str(tmp_path / "p"),
                     "--accelerator", "cpu"]):
        result = subprocess.run([sys.executable, "-m", "edgecnn.cli.main", *command], capture_output=True,
                                text=True, env=env, timeout=300)
        assert result.returncode == 2, (command, result.returncode, result.stderr[-2000:])
        assert "SIGABRT" in result.stderr and "Traceback" not in result.stderr


def test_convert_refuses_a_file_the_runtime_aborts_on(aborting_int8_file, tmp_path, capsys):
    """The same conversion through `edgecnn convert`: exit 2 with the cause, no file, no signal."""
    _flat_colour_pairs(tmp_path / "flat")
    out = tmp_path / "c_int8.tflite"
    code = main(["convert", str(aborting_int8_file.parent / "c.keras"), "--target", "int8", "--out", str(out),
                 "--calibration", f"pairs:{tmp_path / 'flat'}", "--samples", "2", "--calibration-samples", "4"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "SIGABRT" in err and "SQUARED_DIFFERENCE" in err and "4 of its 4 images are one flat colour" in err


def _generation_recipe(train: str, loss: str, extra: list[str] = ()):
    from edgecnn.training.recipe import recipe_from_dict

    return recipe_from_dict({
        "task": "generation",
        "model": {"name": "test_pix2pix" if loss == "pix2pix" else "test_cyclegan", "overrides": {}},
        "data": {"train": train, "input_size": [32, 32, 3], "limit": 96, "augment": {"flip": True, "scale": 0.1}},
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 0.002, "schedule": "constant", "loss": loss},
    })


def _write_domains(root, counts, pair: bool, rng):
    """Blocky RGB pictures; with ``pair`` B/NAME is A/NAME's negative (a mapping to learn)."""
    for side, count in zip(("A", "B"), counts):
        (root / side).mkdir(parents=True)
    for index in range(max(counts)):
        blocks = rng.integers(0, 256, size=(4, 4, 3)).astype(np.uint8)
        image = cv2.resize(blocks, (32, 32), interpolation=cv2.INTER_NEAREST)
        if index < counts[0]:
            cv2.imwrite(str(root / "A" / f"{index:03d}.png"), image)
        if index < counts[1]:
            cv2.imwrite(str(root / "B" / f"{index:03d}.png"), 255 - image if pair else image[:, ::-1])


def test_pix2pix_training_learns_the_translation(tmp_path, rng):
    """On pairs whose target is the input's negative, the L1 to held-out targets falls far below
    the untrained generator's; the deliverable is the generator alone."""
    from edgecnn.data.translation import load_pairs, to_unit_range
    from edgecnn.training.train import train

    _write_domains(tmp_path / "data", (120, 120), True, rng)
    recipe = _generation_recipe(f"pairs:{tmp_path / 'data'}", "pix2pix")
    pairs = load_pairs(tmp_path / "data", (32, 32, 3), "val")
    untrained = edgecnn.create_model("test_pix2pix")
    before = float(np.mean(np.abs(untrained.predict(to_unit_range(pairs.a), verbose=0) - to_unit_range(pairs.b))))
    metrics = train(recipe, tmp_path / "run")
    after = metrics["stages"]["float"]["val_l1"]
    assert after < 0.6 * before, (before, after)
    generator = edgecnn.load_model(tmp_path / "run" / "model.keras")
    assert generator.name == "test_pix2pix" and generator.output_shape == (None, 32, 32, 3)
    assert (tmp_path / "run" / "checkpoints" / "best.keras").exists()
    history = metrics["stages"]["float"]["history"]
    assert len(history) == 4 and {"l1", "d_loss", "val_l1"} <= history[0].keys()


def test_cyclegan_trains_on_unpaired_folders(tmp_path, rng):
    from edgecnn.training.train import train

    _write_domains(tmp_path / "data", (20, 15), False, rng)  # domains of different sizes
    recipe = _generation_recipe(f"unpaired:{tmp_path / 'data'}", "cyclegan")
    metrics = train(recipe, tmp_path / "run")
    float_stage = metrics["stages"]["float"]
    assert float_stage["epochs"] == 4 and np.isfinite(float_stage["val_cycle_l1"])
    assert {"cycle_l1", "d_loss", "val_cycle_l1"} <= float_stage["history"][-1].keys()
    assert edgecnn.load_model(tmp_path / "run" / "model.keras").name == "test_cyclegan"
    inverse = edgecnn.load_model(tmp_path / "run" / "model_b_to_a.keras")  # the B -> A direction is kept too
    assert inverse.output_shape == (None, 32, 32, 3)


@pytest.mark.parametrize("change,message", [
    (["optimization.pruning.enabled=true"], "not available for generation"),
    (["training.loss=dice"], "not a generation objective"),
])
def test_generation_recipe_errors(tmp_path, change, message):
    from edgecnn.training.recipe import apply_overrides, recipe_from_dict
    from edgecnn.training.train import train

    recipe = _generation_recipe("builtin:shapes", "pix2pix")
    recipe = recipe_from_dict(apply_overrides(recipe.to_dict(), change))
    with pytest.raises(edgecnn.EdgeCNNError, match=message):
        train(recipe, tmp_path / "run")


@pytest.mark.parametrize("recipe,model", [("shapes_pix2pix", "test_pix2pix"), ("shapes_cyclegan", "test_cyclegan")])
def test_gan_training_runs_under_a_distribution_strategy(tmp_path, recipe, model):
    """Under tf.distribute the trainers may not use Keras loss objects (they refuse) and must
    scale each replica's loss; --strategy mirrored runs both objectives."""
    out = tmp_path / "run"
    completed = subprocess.run(
        [sys.executable, "-m", "edgecnn.cli.main", "train", recipe, "--out", str(out), "--strategy", "mirrored",
         "--set", "training.epochs=1", "--set", "data.limit=16", "--set", f"model.name={model}",
         "--set", "model.overrides={}", "--set", "data.input_size=[32,32,3]"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["stages"]["float"]["val_l1"])
