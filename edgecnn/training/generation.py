"""Training image-to-image generators: Pix2Pix on pairs, CycleGAN on two unpaired domains.

The generator named by the recipe (a zoo "generation" model) is what `edgecnn train` delivers
as model.keras; discriminators and the second CycleGAN generator are training-time models.
Training runs through ``keras.Model.fit`` on a small trainer model whose ``train_step`` updates
the generators and the discriminators in turn, so the progress bar, TensorBoard, backups
(resume after SIGKILL) and Ctrl-C handling are those of every other task.

Objectives (``training.loss``; by default "pix2pix" on paired data, "cyclegan" on unpaired):

- "pix2pix" (Isola et al. 2017): conditional PatchGAN with binary cross-entropy, plus
  ``L1_WEIGHT`` (100, the paper's lambda) times the L1 distance to the target.
- "cyclegan" (Zhu et al. 2017): least-squares GAN losses for both directions, cycle
  consistency (lambda 10) and identity (0.5 lambda). The paper's pool of 50 earlier fakes for
  the discriminators is left out (it steadies long runs; the shipped recipes are short).

Validation reports ``val_l1``, the mean absolute error in [-1, 1] between generated and true
targets, when the validation data is paired, else ``val_cycle_l1`` (A -> B -> A); with a judge
(``evaluation.judge``) also the FCN-score (``edgecnn.evaluation.generation``). The QAT stage
fine-tunes the quantize-aware generator with the same objective against the trained
discriminators, or (``optimization.qat.objective: distill``) with the L1 distance to the float
generator's pictures; pruning is not offered (not measured for generators).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgecnn.data.translation import load_translation_samples, to_unit_range, translation_dataset
from edgecnn.errors import EdgeCNNError
from edgecnn.training.task import TrainingTask

log = logging.getLogger("edgecnn.train")

L1_WEIGHT = 100.0  # Pix2Pix lambda
CYCLE_WEIGHT = 10.0  # CycleGAN lambda
IDENTITY_WEIGHT = 0.5 * CYCLE_WEIGHT
ADAM_BETA_1 = 0.5  # both papers: Adam(2e-4, beta_1 0.5)
OBJECTIVES = ("pix2pix", "cyclegan")


def _trainer_classes():
    """Built on first use: the classes subclass keras.Model, and Keras loads lazily."""
    from edgecnn._keras import keras, tf

    def mean_abs(a, b):
        return tf.reduce_mean(tf.abs(a - b))

    def bce(labels, logits):  # a plain mean: Keras loss objects refuse to run under a strategy
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))

    def per_replica(loss):
        """Under a tf.distribute strategy the replicas' gradients are summed: each replica
        differentiates its share of the global mean."""
        return loss / tf.distribute.get_strategy().num_replicas_in_sync

    class _Averaged(keras.Model):
        """Epoch averages of the step values (a bare dict from train_step would show only the
        last batch); Keras resets the trackers listed in ``metrics`` at every epoch. They are
        made here, outside any tf.function or replica context."""

        def __init__(self, tracked: tuple[str, ...], **kwargs) -> None:
            super().__init__(**kwargs)
            self._trackers = {key: keras.metrics.Mean(name=key) for key in tracked}

        def _averaged(self, values: dict) -> dict:
            for key, value in values.items():
                self._trackers[key].update_state(value)
            return {key: self._trackers[key].result() for key in values}

        @property
        def metrics(self):
            return list(self._trackers.values())

    class Pix2PixTrainer(_Averaged):
        def __init__(self, generator, discriminator, discriminator_optimizer) -> None:
            super().__init__(("loss", "g_gan", "l1", "d_loss"), name="pix2pix_trainer")
            self.generator, self.discriminator = generator, discriminator
            self.discriminator_optimizer = discriminator_optimizer

        def call(self, inputs, training=False):
            return self.generator(inputs, training=training)

        def train_step(self, data):
            a, b = data
            with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
                fake = self.generator(a, training=True)
                real_logits = self.discriminator([a, b], training=True)
                fake_logits = self.discriminator([a, fake], training=True)
                adversarial = bce(tf.ones_like(fake_logits), fake_logits)
                l1 = mean_abs(b, fake)
                generator_loss = adversarial + L1_WEIGHT * l1
                discriminator_loss = 0.5 * (bce(tf.ones_like(real_logits), real_logits)
                                            + bce(tf.zeros_like(fake_logits), fake_logits))
                generator_share, discriminator_share = per_replica(generator_loss), per_replica(discriminator_loss)
            self.optimizer.apply_gradients(zip(
                generator_tape.gradient(generator_share, self.generator.trainable_variables),
                self.generator.trainable_variables))
            self.discriminator_optimizer.apply_gradients(zip(
                discriminator_tape.gradient(discriminator_share, self.discriminator.trainable_variables),
                self.discriminator.trainable_variables))
            return self._averaged({"loss": generator_loss, "g_gan": adversarial, "l1": l1,
                                   "d_loss": discriminator_loss})

        def test_step(self, data):
            a, b = data
            return self._averaged({"l1": mean_abs(b, self.generator(a, training=False))})

    class DistillTrainer(_Averaged):
        """QAT by distillation: the quantize-aware generator learns to draw what the float one
        (``teacher``, frozen) draws; no discriminator, so nothing moves it away from float."""

        def __init__(self, generator, teacher, paired: bool) -> None:
            super().__init__(("loss", "l1" if paired else "float_l1"), name="distill_trainer")
            self.generator, self.teacher, self.paired = generator, teacher, paired

        def call(self, inputs, training=False):
            return self.generator(inputs, training=training)

        def train_step(self, data):
            a, _ = data
            target = self.teacher(a, training=False)
            with tf.GradientTape() as tape:
                loss = mean_abs(target, self.generator(a, training=True))
                share = per_replica(loss)  # inside the tape, or it has no gradient
            self.optimizer.apply_gradients(zip(tape.gradient(share, self.generator.trainable_variables),
                                               self.generator.trainable_variables))
            return self._averaged({"loss": loss})

        def test_step(self, data):
            a, b = data
            fake = self.generator(a, training=False)
            if self.paired:
                return self._averaged({"l1": mean_abs(b, fake)})
            return self._averaged({"float_l1": mean_abs(self.teacher(a, training=False), fake)})

    class CycleGANTrainer(_Averaged):
        def __init__(self, generator, inverse, discriminator_a, discriminator_b, discriminator_optimizer,
                     paired_validation: bool) -> None:
            super().__init__(("loss", "g_gan", "cycle_l1", "d_loss", "l1"), name="cyclegan_trainer")
            self.generator, self.inverse = generator, inverse  # A -> B and B -> A
            self.discriminator_a, self.discriminator_b = discriminator_a, discriminator_b
            self.discriminator_optimizer = discriminator_optimizer
            self.paired_validation = paired_validation

        def call(self, inputs, training=False):
            return self.generator(inputs, training=training)

        def train_step(self, data):
            a, b = data
            generators = self.generator.trainable_variables + self.inverse.trainable_variables
            discriminators = self.discriminator_a.trainable_variables + self.discriminator_b.trainable_variables
            with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
                fake_b, fake_a = self.generator(a, training=True), self.inverse(b, training=True)
                cycle = mean_abs(a, self.inverse(fake_b, training=True)) + mean_abs(b, self.generator(fake_a,
                                                                                                     training=True))
                identity = mean_abs(b, self.generator(b, training=True)) + mean_abs(a, self.inverse(a, training=True))
                score_fake_b = self.discriminator_b(fake_b, training=True)
                score_fake_a = self.discriminator_a(fake_a, training=True)
                adversarial = (tf.reduce_mean(tf.square(score_fake_b - 1.0))
                               + tf.reduce_mean(tf.square(score_fake_a - 1.0)))
                generator_loss = adversarial + CYCLE_WEIGHT * cycle + IDENTITY_WEIGHT * identity
                discriminator_loss = 0.0
                for discriminator, real, fake in ((self.discriminator_b, b, fake_b), (self.discriminator_a, a, fake_a)):
                    real_score = discriminator(real, training=True)
                    fake_score = discriminator(tf.stop_gradient(fake), training=True)
                    discriminator_loss += 0.5 * (tf.reduce_mean(tf.square(real_score - 1.0))
                                                 + tf.reduce_mean(tf.square(fake_score)))
                generator_share, discriminator_share = per_replica(generator_loss), per_replica(discriminator_loss)
            self.optimizer.apply_gradients(zip(generator_tape.gradient(generator_share, generators), generators))
            self.discriminator_optimizer.apply_gradients(zip(
                discriminator_tape.gradient(discriminator_share, discriminators), discriminators))
            return self._averaged({"loss": generator_loss, "g_gan": adversarial, "cycle_l1": cycle,
                                   "d_loss": discriminator_loss})

        def test_step(self, data):
            a, b = data
            fake_b = self.generator(a, training=False)
            if self.paired_validation:
                return self._averaged({"l1": mean_abs(b, fake_b)})
            return self._averaged({"cycle_l1": mean_abs(a, self.inverse(fake_b, training=False))})

    return Pix2PixTrainer, CycleGANTrainer, DistillTrainer


class GenerationTask(TrainingTask):
    """The generation side of `edgecnn train` (see ``edgecnn.training.train``)."""

    mode = "min"
    distills = True

    def __init__(self, recipe) -> None:
        super().__init__(recipe)
        if recipe.optimization.pruning.enabled:
            raise EdgeCNNError("The pruning stage is not available for generation recipes (not measured there).",
                               "Set optimization.pruning.enabled to false; QAT (optimization.qat) is available.")
        self.companions: dict | None = None  # discriminators (and CycleGAN's B -> A generator), kept across stages
        self.companions_distributed = False
        self.opened_judge = None  # the FCN-score judge, opened at the first evaluation
        self.saved_run = None  # a resumed run's directory, whose saved companions compile() reads
        self.float_generator = None  # the last float generator compiled: a distilling QAT stage's teacher
        if recipe.training.loss not in ("cross_entropy", *OBJECTIVES):  # cross_entropy: the schema's default
            raise EdgeCNNError(f"training.loss '{recipe.training.loss}' is not a generation objective.",
                               f"Choose one of: {', '.join(OBJECTIVES)}.")

    def load(self) -> list[str]:
        data = self.recipe.data
        self.train_set = load_translation_samples(data.train, self.size, "all" if data.val else "train", data.limit,
                                                  data.edges)
        self.val_set = load_translation_samples(data.val or data.train, self.size, "all" if data.val else "val",
                                                data.limit, data.edges)
        loss = self.recipe.training.loss
        self.objective = loss if loss in OBJECTIVES else ("pix2pix" if self.train_set.paired else "cyclegan")
        if self.objective == "pix2pix" and not self.train_set.paired:
            raise EdgeCNNError(f"The pix2pix objective needs paired data; '{data.train}' is unpaired.",
                               "Use pairs:DIR (A/NAME and B/NAME), or training.loss: cyclegan.")
        self.monitor = "val_l1" if self.val_set.paired else "val_cycle_l1"
        log.info("generation: %s objective, %d training images", self.objective, len(self.train_set.a))
        return []

    def datasets(self):
        from edgecnn._keras import tf

        recipe = self.recipe
        batch = recipe.training.batch_size
        augment = recipe.data.augment
        train = translation_dataset(self.train_set, batch, recipe.training.seed, augment.scale, augment.flip)
        count = min(len(self.val_set.a), len(self.val_set.b))
        val = tf.data.Dataset.from_tensor_slices((to_unit_range(self.val_set.a[:count]),
                                                  to_unit_range(self.val_set.b[:count]))).batch(batch)
        return train, val, max(1, len(self.train_set.a) // batch)

    def model_overrides(self, classes: list[str]) -> dict:
        return {"input_shape": self.size, "output_channels": int(self.train_set.b.shape[-1])}

    def _discriminator(self, conditional: bool, name: str):
        from edgecnn.models.pix2pix import patchgan_discriminator

        width = float(self.recipe.model.overrides.get("width_multiplier", 1.0))
        channels = int(self.train_set.b.shape[-1])
        input_shape = (*self.size[:2], int(self.train_set.a.shape[-1]) if conditional else channels)
        return patchgan_discriminator(input_shape, channels if conditional else None, width,
                                      norm="batch" if conditional else "instance", name=name)

    @staticmethod
    def _adam_pair(optimizer):
        """The generators' and the discriminators' optimizers: the recipe's, with Adam's beta_1
        at 0.5 as both papers use (a fresh copy each, so their slots and step counts are apart)."""
        config = optimizer.get_config()
        if "beta_1" in config:
            config["beta_1"] = ADAM_BETA_1
        return type(optimizer).from_config(dict(config)), type(optimizer).from_config(dict(config))

    def _new_companions(self, model) -> dict:
        from edgecnn.models.zoo import create_model

        if self.objective == "pix2pix":
            return {"discriminator": self._discriminator(True, "discriminator")}
        overrides = {**self.recipe.model.overrides, "input_shape": (*self.size[:2], int(self.train_set.b.shape[-1])),
                     "output_channels": int(self.train_set.a.shape[-1])}
        inverse = create_model(self.recipe.model.name, **overrides)
        inverse._name = f"{model.name}_inverse"
        return {"inverse": inverse, "discriminator_a": self._discriminator(False, "discriminator_a"),
                "discriminator_b": self._discriminator(False, "discriminator_b")}

    def compile(self, model, optimizer):
        """The trainer around ``model``. Its discriminators (and CycleGAN's inverse generator) are
        made once and kept, so the QAT stage fine-tunes the quantize-aware generator against the
        discriminator the training stage trained (a run resumed past that stage reads them from
        its checkpoints/; a run under a distribution strategy starts fresh ones)."""
        pix2pix_trainer, cyclegan_trainer, distill_trainer = _trainer_classes()
        optimizer, discriminator_optimizer = self._adam_pair(optimizer)
        from edgecnn._keras import tf
        from edgecnn.export.convert import is_quantization_aware

        # a discriminator made under a tf.distribute strategy and reused by a second trainer fails
        # in Adam's update (TypeError on a MirroredVariable, measured with --strategy mirrored):
        # such runs get fresh ones per stage
        if self.companions is None and self.saved_run is not None and not tf.distribute.has_strategy():
            self.companions = self._saved_companions(self.saved_run)
        if self.companions is None or self.companions_distributed:
            self.companions = self._new_companions(model)
            self.companions_distributed = tf.distribute.has_strategy()
        parts = self.companions
        quantized = is_quantization_aware(model)
        if not quantized:
            self.float_generator = model  # the teacher of a distilling QAT stage
        if quantized and self.recipe.optimization.qat.objective == "distill":
            trainer = distill_trainer(model, self.float_generator, self.val_set.paired)
        elif self.objective == "pix2pix":
            trainer = pix2pix_trainer(model, parts["discriminator"], discriminator_optimizer)
        else:
            trainer = cyclegan_trainer(model, parts["inverse"], parts["discriminator_a"], parts["discriminator_b"],
                                       discriminator_optimizer, self.val_set.paired)
        trainer.compile(optimizer=optimizer)
        trainer.build((None, *self.size[:2], int(self.train_set.a.shape[-1])))  # BackupAndRestore needs it built
        return trainer

    def deliverable(self, model):
        return model.generator

    def save_extras(self, model, directory: Path) -> list[Path]:
        """CycleGAN trains both directions: the B -> A generator goes to model_b_to_a.keras. The
        trained discriminators go to checkpoints/, so a run resumed after its float stage
        fine-tunes (QAT) against them, as an uninterrupted run does."""
        from edgecnn.export.keras_io import save_model

        return [save_model(getattr(model, name), path) for name, path in self._companion_paths(directory).items()]

    def restore_extras(self, directory: Path) -> None:
        # read at the next compile(), where it is known whether a strategy is in use; the fresh
        # companions of the first compile (before the run knew it would skip float training) go
        self.saved_run, self.companions = directory, None

    def _companion_paths(self, directory: Path) -> dict[str, Path]:
        """Where ``save_extras`` keeps each companion, by its name in ``companions`` (and on the
        trainer): discriminators in checkpoints/, CycleGAN's B -> A generator beside model.keras."""
        if self.objective == "pix2pix":
            return {"discriminator": directory / "checkpoints" / "discriminator.keras"}
        return {"inverse": directory / "model_b_to_a.keras",
                "discriminator_a": directory / "checkpoints" / "discriminator_a.keras",
                "discriminator_b": directory / "checkpoints" / "discriminator_b.keras"}

    def _saved_companions(self, directory: Path) -> dict | None:
        """The companions ``save_extras`` wrote, or None (with a warning) where one is missing:
        runs from before they were saved start the later stages with fresh ones."""
        from edgecnn.export.keras_io import load_model

        paths = self._companion_paths(directory)
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing:
            log.warning("resuming without the trained %s (%s missing): the later stages start them afresh",
                        "discriminator" if self.objective == "pix2pix" else "discriminators and B -> A generator",
                        ", ".join(missing))
            return None
        log.info("resuming with the trained discriminators from %s", directory / "checkpoints")
        return {name: load_model(path) for name, path in paths.items()}

    def evaluate(self, model) -> dict:
        """val_l1 (paired validation data) or val_cycle_l1, and the FCN-score of the held-out
        pictures when the recipe names a judge (``evaluation.judge``) that exists."""
        from edgecnn.evaluation.generation import generate
        from edgecnn.evaluation.keras_backend import evaluation_pipeline

        count = min(len(self.val_set.a), len(self.val_set.b))
        fake = generate(evaluation_pipeline(self.deliverable(model), "generation"), self.val_set.a[:count])
        if self.val_set.paired:
            metrics = {"val_l1": float(np.mean(np.abs(to_unit_range(fake) - to_unit_range(self.val_set.b[:count]))))}
        else:
            inverse = self.companions["inverse"]  # a distilling trainer has none of its own
            back = generate(evaluation_pipeline(inverse, "generation"), fake)
            distance = np.abs(to_unit_range(back) - to_unit_range(self.val_set.a[:count]))
            metrics = {"val_cycle_l1": float(np.mean(distance))}
        judge = self._judge()
        if judge is not None:
            from edgecnn.evaluation.generation import fcn_metrics

            scores = fcn_metrics(fake, self.val_set, judge)
            metrics.update({key: value for key, value in scores.items() if "fcn" in key})
        return metrics

    def _judge(self):
        """The recipe's FCN-score judge, opened at the first evaluation and kept for the later
        stages (opened after the float training, so it leaves the training's random stream alone);
        None when the recipe names none, it is missing, or the held-out data has no class labels."""
        path = self.recipe.evaluation.judge
        if not path or self.val_set.labels is None or not self.val_set.paired:
            return None
        if self.opened_judge is None:
            if not Path(path).is_file():
                log.warning("no FCN-score: the judge %s does not exist (train it first, e.g. `edgecnn train "
                            "shapes_judge --out %s`)", path, Path(path).parent)
                return None
            from edgecnn.evaluation.generation import open_judge

            self.opened_judge = open_judge(path)
        return self.opened_judge
