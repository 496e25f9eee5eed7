"""What every task of `edgecnn train` shares; the tasks add data, loss and metrics."""

from __future__ import annotations

from pathlib import Path

from edgecnn.errors import EdgeCNNError


class TrainingTask:
    """One task's side of training. ``monitor``/``mode`` choose the best checkpoint."""

    monitor, mode = "val_loss", "min"
    distills = False  # whether the QAT stage can distil from the float model (optimization.qat.objective)

    def __init__(self, recipe) -> None:
        self.recipe = recipe
        self.size = tuple(recipe.data.input_size)
        if recipe.optimization.qat.objective == "distill" and not self.distills:
            raise EdgeCNNError(f"optimization.qat.objective 'distill' is available for generation recipes only, not "
                               f"{recipe.task}.", "Leave it at 'task' (fine-tune with the training objective).")

    def start_stage(self, stage: str, epochs_done: int) -> None:
        """Told before each fit: the stage (train, prune, qat) and how many of its epochs a
        resumed run has done already, for schedules over epochs the data pipeline follows."""

    def deliverable(self, model):
        """The model that is saved and exported (a GAN trainer's generator; else the model)."""
        return model

    def save_extras(self, model, directory: Path) -> list[Path]:
        """Models besides model.keras worth keeping after training (none by default)."""
        return []

    def restore_extras(self, directory: Path) -> None:
        """Told when a resumed run skips its finished float stage: what ``save_extras`` kept in
        ``directory`` may be read back for the later stages (nothing by default)."""

    def checkpoint_callbacks(self, directory: Path) -> list:
        """Best (by ``monitor``) and last checkpoints of the deliverable model, written atomically.
        After a resume the best so far comes from the float stage's history, so a worse epoch
        does not replace the best checkpoint."""
        from edgecnn._keras import keras
        from edgecnn.export.keras_io import save_model
        from edgecnn.training.history import read_history

        task = self

        class SaveCheckpoints(keras.callbacks.Callback):
            best = None

            def on_train_begin(self, logs=None):
                earlier = [row[task.monitor] for row in read_history(directory / "logs" / "train_history.csv")
                           if task.monitor in row]
                if earlier and (directory / "checkpoints" / "best.keras").exists():
                    self.best = min(earlier) if task.mode == "min" else max(earlier)

            def on_epoch_end(self, epoch, logs=None):
                deliverable = task.deliverable(self.model)
                save_model(deliverable, directory / "checkpoints" / "last.keras")
                value = (logs or {}).get(task.monitor)
                if value is None:
                    return
                better = self.best is None or (value < self.best if task.mode == "min" else value > self.best)
                if better:
                    self.best = value
                    save_model(deliverable, directory / "checkpoints" / "best.keras")

        return [SaveCheckpoints()]
