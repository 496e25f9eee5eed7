"""Recipes (schema, errors, overrides) and `edgecnn train` (outputs, stages, resume after SIGKILL)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgecnn.cli.main import main
from edgecnn.errors import EdgeCNNError
from edgecnn.training.recipe import load_recipe

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))
DIGITS = Path(__file__).parent.parent / "recipes" / "digits_vgg.yaml"  # the one with pruning + QAT


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_validates(path):
    recipe = load_recipe(path)
    assert recipe.model.name and recipe.training.epochs > 0


@pytest.mark.parametrize(
    "text,message",
    [
        ("trainig:\n  epochs: 3\n", "Unknown key 'trainig'.*Did you mean 'training'"),
        ("training:\n  epoch: 3\n", "Unknown key 'training.epoch'.*Did you mean 'epochs'"),
        ("training:\n  epochs: ten\n", "'training.epochs'.*must be int, got str 'ten'"),
        ("training:\n  optimizer: adma\n", "Did you mean 'adam'"),
        ("data:\n  input_size: 32\n", "'data.input_size'.*must be a list"),
        ("optimization:\n  pruning:\n    structure: '1:4'\n", "Choose one of: unstructured, 2:4"),
        ("training: [1, 2]\n", "'training'.*must be a mapping"),
        ("model: {name: x\n", "not valid YAML"),
    ],
)
def test_recipe_errors_name_key_file_and_fix(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(EdgeCNNError, match=message) as error:
        load_recipe(path)
    if "Unknown key" in message:
        assert str(path) in str(error.value)


def test_set_overrides_are_typed(tmp_path):
    path = _write(tmp_path, "training:\n  epochs: 3\n")
    recipe = load_recipe(path, ["training.epochs=7", "training.learning_rate=1e-3", "data.augment.flip=true",
                                "model.overrides.width_multiplier=0.25", "data.input_size=[48, 48, 3]"])
    assert recipe.training.epochs == 7 and recipe.training.learning_rate == pytest.approx(1e-3)
    assert recipe.data.augment.flip is True and recipe.model.overrides == {"width_multiplier": 0.25}
    assert recipe.data.input_size == [48, 48, 3]
    with pytest.raises(EdgeCNNError, match="must be int"):
        load_recipe(path, ["training.epochs=many"])
    with pytest.raises(EdgeCNNError, match="key=value"):
        load_recipe(path, ["training.epochs"])


SMALL = ["--set", "training.epochs=2", "--set", "optimization.pruning.epochs=1", "--set",
         "optimization.qat.epochs=1", "--set", "data.augment.scale=0.0"]


def test_train_writes_every_output_and_runs_the_stages(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(DIGITS), "--out", str(out), *SMALL]) == 0
    printed = capsys.readouterr().err
    for line in ("train epoch 1/2", "train epoch 2/2", "prune epoch 1/1", "qat epoch 1/1"):
        assert line in printed, line
    for name in ("model.keras", "model_pruned.keras", "model_qat.h5", "metrics.json", "recipe.yaml",
                 "checkpoints/best.keras", "checkpoints/last.keras"):
        assert (out / name).exists(), name
    assert any((out / "logs").rglob("events.out.tfevents.*"))  # TensorBoard
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stages"]["float"]["epochs"] == 2
    assert metrics["stages"]["pruned"]["mean_kernel_sparsity"] > 0.3
    assert metrics["stages"]["qat"]["sparsity_preserving"] is True
    history = metrics["stages"]["float"]["history"]
    assert history[1]["loss"] < history[0]["loss"]  # it learns (held-out accuracy: the full recipe)
    # a second run into the same folder must not clobber it
    assert main(["train", str(DIGITS), "--out", str(out), *SMALL]) == 2
    # convert finds the recipe beside the model: calibration data, task and the recipe in the metadata
    from edgecnn.runtime.metadata import read_metadata

    assert main(["convert", str(out / "model_qat.h5"), "--target", "int8", "--out", str(out / "m.tflite")]) == 0
    metadata = read_metadata((out / "m.tflite").read_bytes())
    assert metadata.recipe["model"]["name"] == "test_vgg" and metadata.labels == tuple(str(d) for d in range(10))
    assert metadata.label_source == "training run" and (out / "labels.txt").read_text().split() == list(metadata.labels)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_epoch_progress_shows_a_live_bar_on_a_terminal_and_a_line_per_epoch(terminal):
    from edgecnn._keras import keras
    from edgecnn.training.progress import epoch_progress

    stream = _Terminal() if terminal else io.StringIO()
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    model.fit(x, x[:, :1], validation_split=0.25, batch_size=10, epochs=2, verbose=0,
              callbacks=[epoch_progress("train", stream)])
    text = stream.getvalue()
    lines = [line for line in text.replace("\r", "\n").splitlines() if line.startswith("train epoch")]
    assert [line.split(" - ")[0] for line in lines] == ["train epoch 1/2", "train epoch 2/2"]
    assert all("loss: " in line and "val_loss: " in line for line in lines)
    bar = "train 1/2" in text and "3/3" in text and "loss=" in text  # steps done and live loss
    assert bar is terminal


def test_crash_in_a_later_stage_keeps_the_finished_stages(tmp_path, monkeypatch):
    """A crash during QAT, then --resume: float training and pruning are not run again (their
    models are loaded; before this, Keras had deleted its backup when the float stage ended and
    a resume started over from epoch 0), and QAT then finishes."""

    import edgecnn.optimize.qat as qat
    from edgecnn.export.keras_io import load_model
    from edgecnn.training.train import train

    recipe = load_recipe(DIGITS, ["training.epochs=2", "optimization.pruning.epochs=1", "optimization.qat.epochs=1",
                                  "model.overrides.width_multiplier=0.0625", "data.limit=64"])
    real = qat.quantize_aware

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash during QAT")

    monkeypatch.setattr(qat, "quantize_aware", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(recipe, tmp_path / "run")
    float_weights = load_model(tmp_path / "run" / "model.keras").get_weights()
    monkeypatch.setattr(qat, "quantize_aware", real)
    metrics = train(recipe, tmp_path / "run", resume=True)
    logs = tmp_path / "run" / "logs"
    assert len((logs / "train_history.csv").read_text().strip().splitlines()) == 1 + 2  # header + 2 epochs, once
    assert len((logs / "prune_history.csv").read_text().strip().splitlines()) == 1 + 1
    assert metrics["stages"]["float"]["epochs"] == 2 and metrics["stages"]["qat"]["epochs"] == 1
    resumed = load_model(tmp_path / "run" / "model.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(float_weights, resumed))
    assert (tmp_path / "run" / "model_qat.h5").exists() and (tmp_path / "run" / "metrics.json").exists()


def _kill_mid_epoch_then_resume(recipe: Path, out: Path, settings: list[str], epochs: int) -> dict:
    """Start `edgecnn train`, SIGKILL it inside an epoch after the first backup, resume; the
    metrics of the resumed run."""
    args = [sys.executable, "-m", "edgecnn.cli.main", "train", str(recipe), "--out", str(out),
            "--set", f"training.epochs={epochs}"] + [part for setting in settings for part in ("--set", setting)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    backup = out / "checkpoints" / "train_backup"
    deadline = time.time() + 300
    while not (backup.exists() and any(backup.rglob("*"))) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # now inside a later epoch
    assert process.poll() is None, "training ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "metrics.json").exists()
    completed = subprocess.run(args + ["--resume"], capture_output=True, text=True, env=env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["stages"]["float"]["history"]
    assert [int(row["epoch"]) for row in history] == list(range(epochs))
    assert (out / "model.keras").exists() and (out / "checkpoints" / "best.keras").exists()
    return metrics


def test_sigkill_mid_epoch_then_resume_finishes_all_epochs(tmp_path):
    _kill_mid_epoch_then_resume(DIGITS, tmp_path / "run", ["optimization.pruning.enabled=false",
                                                           "optimization.qat.enabled=false"], 5)


def test_gan_training_resumes_after_sigkill(tmp_path):
    """The GAN trainer's backup holds generator, discriminator and both optimizers."""
    metrics = _kill_mid_epoch_then_resume(
        RECIPES[0].parent / "shapes_pix2pix.yaml", tmp_path / "run",
        ["model.name=test_pix2pix", "model.overrides={}", "data.input_size=[32,32,3]", "data.limit=128"], 4)
    assert metrics["task"] == "generation" and np.isfinite(metrics["stages"]["float"]["val_l1"])


# the coco_ recipes read COCO, which tests do not have: test_region_detection trains them on a
# COCO-format export of builtin:shapes instead; the recipes that start from ImageNet weights
# (which tests cannot download) read your own data: test_pretrained checks them
EMBEDDED_DATA_RECIPES = [p for p in RECIPES if not p.name.startswith("coco_") and load_recipe(p).model.weights is None]


@pytest.mark.parametrize("path", EMBEDDED_DATA_RECIPES, ids=[p.name for p in EMBEDDED_DATA_RECIPES])
def test_every_recipe_trains_a_few_steps(path, tmp_path):
    from edgecnn.training.train import train

    # selective search (R-CNN, Fast R-CNN) costs about 0.25 s an image, a CycleGAN step runs four
    # generators and two discriminators: fewer images there
    few = ("shapes_rcnn.yaml", "shapes_fast_rcnn.yaml", "shapes_cyclegan.yaml", "shapes_cyclegan_edges.yaml")
    limit = 16 if path.name in few else 64
    recipe = load_recipe(path, ["training.epochs=1", "model.overrides.width_multiplier=0.0625",
                                "optimization.pruning.epochs=1", "optimization.qat.epochs=1", f"data.limit={limit}"])
    metrics = train(recipe, tmp_path / "run")
    assert metrics["stages"]["float"]["epochs"] == 1 and (tmp_path / "run" / "model.keras").exists()


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_two_workers_on_localhost_finish_with_identical_weights(tmp_path):
    """MultiWorkerMirroredStrategy across two processes on loopback ports: same final weights."""

    import edgecnn

    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "edgecnn.cli.main", "train", str(DIGITS), "--out", str(tmp_path / f"w{index}"),
             "--strategy", "multiworker", "--set", "training.epochs=1", "--set", "optimization.pruning.enabled=false",
             "--set", "optimization.qat.enabled=false", "--set", "model.overrides.width_multiplier=0.0625"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env))
    try:
        results = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, err) in zip(processes, results):
        assert process.returncode == 0, err[-2000:]
    first, second = (edgecnn.load_model(tmp_path / f"w{i}" / "model.keras") for i in range(2))
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # and training really moved them (not two untouched initialisations)
    fresh = edgecnn.create_model("test_vgg", input_shape=(32, 32, 3), num_classes=10, dropout=0.0,
                                 width_multiplier=0.0625)
    assert any(not np.allclose(a, b) for a, b in zip(first.get_weights(), fresh.get_weights()))


def test_ctrl_c_stops_cleanly_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "edgecnn.cli.main", "train", str(DIGITS), "--out", str(out),
            "--set", "training.epochs=50", "--set", "optimization.pruning.enabled=false",
            "--set", "optimization.qat.enabled=false"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    backup = out / "checkpoints" / "train_backup"
    deadline = time.time() + 300
    while not (backup.exists() and any(backup.rglob("*"))) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    assert (out / "checkpoints" / "interrupted.keras").exists()


def test_weight_average_holds_the_ramped_average_and_trains_on_the_raw_weights():
    """After fit the model holds the exponential average of its per-step weights (the ramped
    decay of averaging.py, BN statistics included); each epoch trains on from the raw weights."""
    from edgecnn._keras import keras, tf
    from edgecnn.training.averaging import RAMP_UPDATES, weight_average
    from edgecnn.training.trainer import loss_trainer

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.BatchNormalization()(inputs)))
    x, y = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32), np.ones((32, 1), np.float32)
    steps, epoch_starts = [], []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append([w.numpy().copy() for w in self.model.detector.weights])

        def on_epoch_begin(self, epoch, logs=None):
            epoch_starts.append([w.numpy().copy() for w in self.model.detector.weights])

    decay = 0.9
    initial = [w.numpy().copy() for w in model.weights]

    def fit(net, callbacks):
        # through the trainer that YOLO and the region detectors use: its loss trackers are
        # attributes of the model, so their running totals sit among the model's variables
        trainer = loss_trainer(net, lambda out, target: {"mse": tf.reduce_mean((out - target) ** 2)}, ("mse",))
        trainer.compile(keras.optimizers.SGD(0.1))
        return trainer.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0, shuffle=False,
                           callbacks=callbacks)

    plain = keras.models.clone_model(model)
    plain.set_weights(initial)
    without = fit(plain, [])
    history = fit(model, [weight_average(decay), Record()])
    # the average changes what is validated and kept, not the training or its reported loss
    assert np.allclose(history.history["loss"], without.history["loss"], rtol=1e-5)
    assert not np.allclose(history.history["val_loss"], without.history["val_loss"])
    expected = initial
    for update, weights in enumerate(steps, start=1):
        rate = decay * (1 - np.exp(-update / RAMP_UPDATES))
        expected = [rate * e + (1 - rate) * w for e, w in zip(expected, weights)]
    for held, want, last in zip(model.weights, expected, steps[-1]):
        assert np.allclose(held.numpy(), want, atol=1e-5)
    assert not np.allclose(model.weights[-2].numpy(), steps[-1][-2])  # not simply the last weights
    # the second epoch began from the first epoch's last raw weights, not from the average
    assert all(np.allclose(a, b) for a, b in zip(epoch_starts[1], steps[3]))
    with pytest.raises(EdgeCNNError, match="training.ema"):
        weight_average(1.5)


def test_warmup_rises_linearly_then_follows_the_cosine():
    from edgecnn.training.recipe import Recipe
    from edgecnn.training.train import learning_rate_schedule

    recipe = Recipe()
    recipe.training.learning_rate, recipe.training.epochs, recipe.training.warmup_epochs = 0.01, 10, 2
    rate = learning_rate_schedule(recipe, steps=100)
    values = [float(rate(step)) for step in (0, 100, 200, 600, 1000)]
    assert values[0] == 0.0 and np.isclose(values[1], 0.005) and np.isclose(values[2], 0.01)
    assert np.isclose(values[3], 0.01 * 0.5 * (1 + np.cos(np.pi * 400 / 800))) and values[4] < 1e-6
