"""`edgecnn train`: a recipe in, DIR/model.keras, DIR/metrics.json, DIR/checkpoints/, DIR/logs/ out.

Resuming has two levels. Within a stage (float training, pruning, QAT), Keras'
BackupAndRestore restarts a run killed mid-epoch (even by SIGKILL) from the last completed epoch.
A stage that already finished (its model file is written and its history holds all its epochs)
is not run again: its model is loaded, so a crash during QAT does not cost the float training. Scale-out uses
tf.distribute strategies, nothing home-made.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.io_utils import atomic_write_text
from edgecnn.training.averaging import weight_average
from edgecnn.training.history import read_history
from edgecnn.training.progress import epoch_progress
from edgecnn.training.recipe import RUN_LABELS, Recipe
from edgecnn.training.task import TrainingTask

log = logging.getLogger("edgecnn.train")

STRATEGIES = ("default", "mirrored", "multiworker")


def _strategy(name: str):
    from edgecnn._keras import tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        import os

        if "TF_CONFIG" not in os.environ:
            raise EdgeCNNError("--strategy multiworker needs the TF_CONFIG environment variable.",
                               "Set it on every worker (see the README's 'Several machines').")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


class ClassificationTask(TrainingTask):
    """The classification side of training: images and labels in memory, cross-entropy, top-1."""

    monitor, mode = "val_accuracy", "max"

    def load(self) -> list[str]:
        from edgecnn.data.images import load_classification_samples

        data = self.recipe.data
        self.x, self.y, classes = load_classification_samples(data.train, self.size, data.limit, split="train")
        self.x_val, self.y_val, _ = load_classification_samples(data.val or data.train, self.size, data.limit,
                                                                split="val")
        return classes

    def datasets(self):
        from edgecnn._keras import tf

        size, recipe = self.size, self.recipe
        augment = recipe.data.augment
        batch = recipe.training.batch_size

        def augmented(image, label):
            if augment.flip:
                image = tf.image.random_flip_left_right(image)
            if augment.color:
                image = tf.image.random_brightness(image, augment.color)
                image = tf.image.random_contrast(image, 1 - augment.color, 1 + augment.color)
            if augment.scale:
                height, width = size[0], size[1]
                factor = tf.random.uniform([], 1.0, 1.0 + augment.scale)
                bigger = tf.image.resize(image, [tf.cast(height * factor, tf.int32), tf.cast(width * factor, tf.int32)])
                image = tf.image.random_crop(bigger, size)
            return tf.clip_by_value(image, 0.0, 1.0), label

        train = (tf.data.Dataset.from_tensor_slices((self.x, self.y)).shuffle(len(self.x), seed=recipe.training.seed)
                 .map(augmented, num_parallel_calls=tf.data.AUTOTUNE).batch(batch).prefetch(tf.data.AUTOTUNE))
        val = tf.data.Dataset.from_tensor_slices((self.x_val, self.y_val)).batch(batch).prefetch(tf.data.AUTOTUNE)
        return train, val, math.ceil(len(self.x) / batch)

    def model_overrides(self, classes: list[str]) -> dict:
        return {"input_shape": self.size, "num_classes": len(classes)}

    def compile(self, model, optimizer):
        from edgecnn.training.losses import classification_loss

        model.compile(optimizer, classification_loss(self.recipe.training.loss), metrics=["accuracy"])
        return model

    def evaluate(self, model) -> dict:
        from edgecnn.evaluation.classification import top1
        from edgecnn.evaluation.keras_backend import evaluation_pipeline

        return {"val_top1": top1(evaluation_pipeline(model, "classification"), self.x_val, self.y_val)}


def _make_task(recipe: Recipe):
    """The training task of the recipe: a detector family's own (``models.detector_families``),
    else the task kind's."""
    import importlib

    from edgecnn.models.detector_families import family_named
    from edgecnn.models.zoo import family_of
    from edgecnn.training.generation import GenerationTask
    from edgecnn.training.segmentation import SegmentationTask

    family = family_named(family_of(recipe.model.name))
    if family is not None and family.task == recipe.task:
        module, name = family.training_task.split(":")
        return getattr(importlib.import_module(f"edgecnn.training.{module}"), name)(recipe)
    tasks = {"classification": ClassificationTask, "segmentation": SegmentationTask, "generation": GenerationTask}
    if recipe.task not in tasks:
        raise EdgeCNNError(f"Training for task '{recipe.task}' is not available for model {recipe.model.name}.",
                           "Choose a model of the recipe's task: `edgecnn models --task " + recipe.task + "`; "
                           "trainable recipes are listed by `edgecnn recipes`.")
    return tasks[recipe.task](recipe)


def learning_rate_schedule(recipe: Recipe, steps: int):
    """The recipe's learning rate over training, ``steps`` batches an epoch: a schedule, or a
    number for ``constant``. Warm-up (cosine only) rises linearly from 0, then the cosine decays
    over the remaining steps."""
    from edgecnn._keras import keras

    training = recipe.training
    rate = training.learning_rate
    total = max(1, steps * training.epochs)
    if training.schedule == "cosine":
        warmup = min(total - 1, round(training.warmup_epochs * steps))
        if warmup > 0:
            return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=rate, warmup_steps=warmup)
        return keras.optimizers.schedules.CosineDecay(rate, total)
    if training.schedule == "step":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(total * 0.5), int(total * 0.75)], [rate, rate / 10, rate / 100])
    return rate


def build_optimizer(recipe: Recipe, steps: int, learning_rate: float | None = None):
    """The recipe's optimizer with its schedule (``learning_rate_schedule``), or with a fixed
    ``learning_rate`` for the fine-tuning stages."""
    from edgecnn._keras import keras

    training = recipe.training
    rate = learning_rate_schedule(recipe, steps) if learning_rate is None else learning_rate
    if training.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9)
    if training.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=training.weight_decay or 1e-4)
    return keras.optimizers.Adam(rate)


class _InterruptRequest:
    """Ctrl-C during fit: the SIGINT handler only sets a flag, and a callback raises
    KeyboardInterrupt at the next batch boundary. A KeyboardInterrupt raised wherever the signal
    happens to land (inside TensorFlow's Python internals) was seen to be swallowed under load,
    training then running to the end."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self):
        import signal
        import threading

        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.requested and exc[0] is None:
            raise KeyboardInterrupt

    def callback(self):
        from edgecnn._keras import keras

        request = self

        class StopOnInterrupt(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if request.requested:
                    raise KeyboardInterrupt

            on_test_batch_end = on_train_batch_end

        return StopOnInterrupt()


def _fit_stage(task, model, train, val, epochs: int, directory: Path, stage: str, extra_callbacks=()):
    """fit with backup (resume), CSV history, TensorBoard; returns the merged history."""
    from edgecnn._keras import keras

    # a resumed stage continues at the epoch after its last logged one (BackupAndRestore)
    task.start_stage(stage, len(read_history(directory / "logs" / f"{stage}_history.csv")))
    checkpoints = directory / "checkpoints"
    interrupt = _InterruptRequest()
    callbacks = [
        interrupt.callback(),
        # The history row is written before the backup: killed between the two, a resume redoes
        # the epoch (read_history keeps one row per epoch) instead of losing that epoch's row.
        keras.callbacks.CSVLogger(str(directory / "logs" / f"{stage}_history.csv"), append=True),
        keras.callbacks.BackupAndRestore(str(checkpoints / f"{stage}_backup")),
        keras.callbacks.TensorBoard(str(directory / "logs" / stage)),
        *extra_callbacks,
        epoch_progress(stage),
    ]
    with interrupt:
        model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=0)
    return read_history(directory / "logs" / f"{stage}_history.csv")


def train(recipe: Recipe, out: str | Path, resume: bool = False, strategy_name: str = "default") -> dict:
    """Run the recipe's training and optimization stages into ``out``; returns the metrics."""
    import yaml

    from edgecnn._keras import keras
    from edgecnn.export.keras_io import load_model, save_model
    from edgecnn.training.weights import starting_model

    if strategy_name not in STRATEGIES:
        raise EdgeCNNError(f"Unknown strategy '{strategy_name}'.", f"Choose one of: {', '.join(STRATEGIES)}.")
    directory = Path(out)
    started = (directory / "checkpoints").exists()
    if started and not resume:
        raise EdgeCNNError(f"'{directory}' already holds a training run.",
                           "Pass --resume to continue it, or choose another --out.")
    for sub in ("checkpoints", "logs"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / "recipe.yaml", yaml.safe_dump(recipe.to_dict(), sort_keys=False))

    strategy = _strategy(strategy_name)  # multi-worker: before any other TensorFlow op runs
    keras.utils.set_random_seed(recipe.training.seed)
    task = _make_task(recipe)
    log.info("loading data (%s)", recipe.data.train)
    classes = task.load()
    if classes:  # what `edgecnn convert` names the outputs with
        atomic_write_text(directory / RUN_LABELS, "".join(f"{name}\n" for name in classes))
    train_data, val_data, steps = task.datasets()
    overrides = {**task.model_overrides(classes), **recipe.model.overrides}
    with strategy.scope():
        model, loaded = starting_model(recipe.model.name, recipe.model.weights, overrides)
        model = task.compile(model, build_optimizer(recipe, steps))
    if recipe.training.freeze_epochs and (not loaded or recipe.task == "generation"):
        raise EdgeCNNError("training.freeze_epochs freezes the layers model.weights fills, for classifiers, detectors "
                           "and segmenters; " + ("generators have none." if loaded else "this recipe names no weights."),
                           "Set model.weights (e.g. imagenet or an earlier run's model.keras), or freeze_epochs: 0.")
    metrics: dict = {"model": recipe.model.name, "task": recipe.task, "classes": classes, "stages": {}}
    try:
        if resume and _finished(directory, "train", "model.keras", recipe.training.epochs):
            log.info("float training finished earlier: loading %s", directory / "model.keras")
            task.restore_extras(directory)
            with strategy.scope():
                model = task.compile(load_model(directory / "model.keras"), build_optimizer(recipe, steps))
            history = read_history(directory / "logs" / "train_history.csv")
        else:
            if recipe.training.freeze_epochs:
                model = _frozen_stage(task, model, loaded, train_data, val_data, steps, directory, strategy, resume)
            averaging = [weight_average(recipe.training.ema)] if recipe.training.ema else []
            history = _fit_stage(task, model, train_data, val_data, recipe.training.epochs, directory, "train",
                                 [*averaging, *task.checkpoint_callbacks(directory)])
            save_model(task.deliverable(model), directory / "model.keras")
            task.save_extras(model, directory)
        metrics["stages"]["float"] = {"epochs": len(history), **task.evaluate(model), "history": history}
        current = model
        pruning = recipe.optimization.pruning
        if pruning.enabled:
            current = _prune_stage(task, current, train_data, val_data, steps, directory, metrics, resume)
        if recipe.optimization.qat.enabled:
            _qat_stage(task, current, train_data, val_data, directory, metrics, preserve=pruning.enabled)
    except KeyboardInterrupt:
        save_model(task.deliverable(model), directory / "checkpoints" / "interrupted.keras")
        log.warning("interrupted: saved %s; run again with --resume", directory / "checkpoints" / "interrupted.keras")
        raise
    atomic_write_text(directory / "metrics.json", json.dumps(metrics, indent=2))
    for stage in ("frozen", "train", "prune", "qat"):  # finished: backups are no longer needed
        shutil.rmtree(directory / "checkpoints" / f"{stage}_backup", ignore_errors=True)
    return metrics


def _frozen_stage(task, model, loaded: list[str], train_data, val_data, steps: int, directory: Path, strategy,
                  resume: bool):
    """The first ``training.freeze_epochs``: the layers the starting weights filled stay frozen
    (their batch norms in inference mode), at the recipe's learning rate; then every layer is
    trainable again and the model is compiled for the training stage. Saved to
    checkpoints/frozen.keras, from which a resumed run continues."""
    from edgecnn.export.keras_io import load_model, save_model

    recipe = task.recipe
    epochs, path = recipe.training.freeze_epochs, directory / "checkpoints" / "frozen.keras"
    inner = task.deliverable(model)
    if resume and _finished(directory, "frozen", f"checkpoints/{path.name}", epochs):
        log.info("frozen stage finished earlier: loading %s", path)
        inner.set_weights(load_model(path).get_weights())
    else:
        log.info("frozen stage: %d layers of the starting weights frozen for %d epochs", len(loaded), epochs)
        for name in loaded:
            inner.get_layer(name).trainable = False
        with strategy.scope():
            model = task.compile(inner, build_optimizer(recipe, steps, recipe.training.learning_rate))
        _fit_stage(task, model, train_data, val_data, epochs, directory, "frozen")
        for name in loaded:
            inner.get_layer(name).trainable = True
        save_model(inner, path)
    with strategy.scope():
        return task.compile(inner, build_optimizer(recipe, steps))


def _finished(directory: Path, stage: str, artifact: str, epochs: int) -> bool:
    """A stage finished when its model file exists (written atomically after its last epoch)
    and its CSV history holds all its epochs."""
    history = directory / "logs" / f"{stage}_history.csv"
    return (directory / artifact).is_file() and history.is_file() and len(read_history(history)) >= epochs


def _prune_stage(task, model, train_data, val_data, steps, directory, metrics, resume: bool = False):
    from edgecnn.export.keras_io import load_model, save_model
    from edgecnn.optimize.pruning import PruningConfig, kernel_sparsity, prune, pruning_callbacks, strip

    recipe = task.recipe
    section = recipe.optimization.pruning
    if resume and _finished(directory, "prune", "model_pruned.keras", section.epochs):
        log.info("pruning finished earlier: loading %s", directory / "model_pruned.keras")
        stripped = task.compile(load_model(directory / "model_pruned.keras"),
                                build_optimizer(recipe, steps, section.learning_rate))
        history = read_history(directory / "logs" / "prune_history.csv")
    else:
        config = PruningConfig(section.target_sparsity, section.schedule, section.structure,
                               end_step=max(2, steps * max(1, section.epochs - 1)), frequency=max(1, steps // 4))
        pruned = task.compile(prune(task.deliverable(model), config), build_optimizer(recipe, steps, section.learning_rate))
        history = _fit_stage(task, pruned, train_data, val_data, section.epochs, directory, "prune", pruning_callbacks())
        stripped = task.compile(strip(task.deliverable(pruned)), build_optimizer(recipe, steps, section.learning_rate))
        save_model(task.deliverable(stripped), directory / "model_pruned.keras")
    sparsity = kernel_sparsity(task.deliverable(stripped))
    metrics["stages"]["pruned"] = {"epochs": len(history), **task.evaluate(stripped),
                                   "mean_kernel_sparsity": float(np.mean(list(sparsity.values()))),
                                   "history": history}
    return stripped


def _qat_stage(task, model, train_data, val_data, directory, metrics, preserve: bool):
    from edgecnn.export.keras_io import save_model
    from edgecnn.optimize.qat import quantize_aware

    section = task.recipe.optimization.qat
    qat = task.compile(quantize_aware(task.deliverable(model), preserve_sparsity=preserve),
                       build_optimizer(task.recipe, 1, section.learning_rate))
    history = _fit_stage(task, qat, train_data, val_data, section.epochs, directory, "qat")
    save_model(task.deliverable(qat), directory / "model_qat.h5")
    metrics["stages"]["qat"] = {"epochs": len(history), **task.evaluate(qat),
                                "sparsity_preserving": preserve, "history": history}
