"""A Keras model that fits the detector it wraps with losses computed from all its outputs and
the batch's targets at once (label assignment that looks at the predictions needs both), for
YOLO, Faster R-CNN and Mask R-CNN. ``deliverable`` unwraps it for saving and export."""

from __future__ import annotations


def loss_trainer(detector, losses, names: tuple[str, ...]):
    """``detector`` wrapped so that fit minimises ``losses(outputs, *targets)``, a dict of the
    scalar losses ``names``; each is reported, with their sum as ``loss``."""
    return _trainer_class()(detector, losses, names)


def _trainer_class():
    """Built on first use: it subclasses keras.Model, and Keras loads lazily."""
    from edgecnn._keras import keras, tf

    class LossTrainer(keras.Model):
        def __init__(self, detector, losses, names: tuple[str, ...], **kwargs) -> None:
            super().__init__(name=f"{detector.name}_trainer", **kwargs)
            self.detector = detector
            self.losses_of = losses
            self.names = ("loss", *names)
            self.trackers = {name: keras.metrics.Mean(name=name) for name in self.names}

        @property
        def metrics(self):
            return list(self.trackers.values())

        def call(self, inputs, training=False):
            return self.detector(inputs, training=training)

        def _batch_losses(self, data, training: bool) -> dict:
            images, targets = data
            targets = targets if isinstance(targets, (tuple, list)) else (targets,)
            losses = self.losses_of(self.detector(images, training=training), *targets)
            losses["loss"] = tf.add_n(list(losses.values()))
            return losses

        def _report(self, losses: dict) -> dict:
            for name, value in losses.items():
                self.trackers[name].update_state(value)
            return {name: tracker.result() for name, tracker in self.trackers.items()}

        def train_step(self, data):
            with tf.GradientTape() as tape:
                losses = self._batch_losses(data, True)
                total = losses["loss"] + tf.add_n(self.detector.losses) if self.detector.losses else losses["loss"]
            variables = self.detector.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
            return self._report(losses)

        def test_step(self, data):
            return self._report(self._batch_losses(data, False))

    return LossTrainer
