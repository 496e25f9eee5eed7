"""Training progress: a bar per epoch with live metrics on a terminal, one line per epoch always.

Keras' own bar (verbose=1) rewrites itself with backspaces on a terminal but prints a new line at
every update into a log file, so fit runs silent and this callback reports instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _rounded(logs: dict) -> dict[str, str]:
    return {name: f"{float(value):.4f}" for name, value in logs.items()}


def epoch_progress(stage: str, stream: TextIO | None = None, bar: bool | None = None):
    """A Keras callback for ``stage`` ("train", "prune", "qat"). ``bar`` defaults to whether
    ``stream`` (stderr) is a terminal: a log file gets the per-epoch lines only."""
    from tqdm import tqdm

    from edgecnn._keras import keras

    stream = stream or sys.stderr
    show_bar = stream.isatty() if bar is None else bar

    class EpochProgress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = None
            self.started = 0.0

        def _epochs(self) -> str:
            return str(self.params.get("epochs", "?"))

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()
            if show_bar:
                self.bar = tqdm(total=self.params.get("steps"), desc=f"{stage} {epoch + 1}/{self._epochs()}",
                                unit="step", file=stream, leave=False, dynamic_ncols=True, mininterval=0.2)

        def on_train_batch_end(self, batch, logs=None):
            if self.bar is not None:
                self.bar.update(1)
                if logs:
                    self.bar.set_postfix(_rounded(logs), refresh=False)

        def on_epoch_end(self, epoch, logs=None):
            if self.bar is not None:
                self.bar.refresh()  # the finished count and last metrics, before the summary line
                self.bar.close()
                self.bar = None
            seconds = time.monotonic() - self.started
            metrics = " - ".join(f"{name}: {value}" for name, value in _rounded(logs or {}).items())
            print(f"{stage} epoch {epoch + 1}/{self._epochs()} - {seconds:.0f}s - {metrics}", file=stream, flush=True)

        def on_train_end(self, logs=None):
            if self.bar is not None:  # stopped mid-epoch (Ctrl-C): leave the terminal clean
                self.bar.close()
                self.bar = None

    return EpochProgress()
