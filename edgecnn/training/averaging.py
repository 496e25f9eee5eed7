"""An exponential moving average (EMA) of the weights during float training, as YOLOv5/v8 and
timm keep one: the averaged weights are what validation scores, what the checkpoints and
model.keras hold, and what pruning and QAT start from.

Every float weight is averaged, batch-norm moving statistics included, so they match the
averaged kernels. The decay ramps up, ``decay * (1 - exp(-updates / RAMP_UPDATES))``, so the
average forgets the random initialisation within the first epochs instead of dragging it along.

The model holds the averaged weights from the start of each epoch's validation to the start of
the next epoch (so the checkpoint callbacks and BackupAndRestore save them) and the trained
weights while it trains. A resumed run starts its average from the restored (averaged) weights.
"""

from __future__ import annotations

RAMP_UPDATES = 200.0


def weight_average(decay: float):
    """A Keras callback keeping the average of the fitted model's weights (see the module)."""
    from edgecnn._keras import keras, tf
    from edgecnn.errors import EdgeCNNError

    if not 0.0 < decay < 1.0:
        raise EdgeCNNError(f"training.ema is {decay}; it is the decay of the weight average.",
                           "Use a value in (0, 1), e.g. 0.999, or 0 to train without the average.")

    class WeightAverage(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            # the model's own weights: not its metrics' running totals, which Keras resets itself
            tallies = {id(v) for metric in self.model.metrics for v in metric.variables}
            self.weights = [w for w in self.model.weights if w.dtype.is_floating and id(w) not in tallies]
            self.average = [tf.Variable(w, trainable=False) for w in self.weights]
            self.updates = tf.Variable(0.0, trainable=False)
            self.swapped = False

        @tf.function
        def _update(self):
            self.updates.assign_add(1.0)
            rate = decay * (1.0 - tf.exp(-self.updates / RAMP_UPDATES))
            for average, weight in zip(self.average, self.weights):
                average.assign(rate * average + (1.0 - rate) * weight)

        @tf.function
        def _swap(self):
            for average, weight in zip(self.average, self.weights):
                trained = tf.identity(weight)
                weight.assign(average)
                average.assign(trained)

        def _hold(self, averaged: bool):
            if self.swapped != averaged:
                self._swap()
                self.swapped = averaged

        def on_train_batch_end(self, batch, logs=None):
            self._update()

        def on_test_begin(self, logs=None):
            self._hold(True)

        def on_epoch_end(self, epoch, logs=None):
            self._hold(True)  # also when there is no validation

        def on_epoch_begin(self, epoch, logs=None):
            self._hold(False)

        def on_train_end(self, logs=None):
            self._hold(True)

    return WeightAverage()
