"""The callbacks of the fit loop: epoch timing, TensorBoard scalars, resumable backups.

:func:`helpers.fitting.default_callbacks` puts them together; a change here that can change a
result needs a new :data:`helpers.record_key.IMPLEMENTATION`.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from .files import atomic_path, atomic_write


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch (training plus validation), in seconds."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


class EpochScalars(keras.callbacks.Callback):
    """TensorBoard scalars of every epoch where ``keras.callbacks.TensorBoard`` cannot run.

    Keras's TensorBoard callback writes through ``tf.summary`` and so needs TensorFlow; on a JAX
    or PyTorch machine without it, this writes the same epoch scalars (``epoch_loss``,
    ``epoch_accuracy``, ... under ``train/`` and ``validation/``) with TensorBoard's own event
    writer, so ``tensorboard --logdir logs`` shows every run alike.
    """

    def __init__(self, log_dir: str):
        super().__init__()
        self.log_dir = log_dir
        self._writers = {}

    def _write(self, split: str, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event  # noqa: PLC0415
        from tensorboard.compat.proto.summary_pb2 import Summary  # noqa: PLC0415
        from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: PLC0415

        if split not in self._writers:
            self._writers[split] = EventFileWriter(str(Path(self.log_dir) / split))
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])
        self._writers[split].add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            split, metric = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            self._write(split, f"epoch_{metric}", value, epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def tensorboard_callback(log_dir: str) -> keras.callbacks.Callback:
    """Keras's TensorBoard callback where TensorFlow is installed, else :class:`EpochScalars`;
    with neither TensorFlow nor the ``tensorboard`` package, a callback that writes nothing."""
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("tensorflow") is not None:
        return keras.callbacks.TensorBoard(log_dir=log_dir)
    if importlib.util.find_spec("tensorboard") is not None:
        return EpochScalars(log_dir)
    print("note: no TensorBoard logs (neither tensorflow nor tensorboard is installed)")
    return keras.callbacks.Callback()


def history_from_csv(path: Path) -> dict[str, list[float]]:
    """Per-epoch metrics from a ``CSVLogger`` file (a repeated epoch: its last row wins; columns
    that are all ``NA`` are dropped)."""
    with open(path, newline="") as fh:
        rows = {int(row["epoch"]): row for row in csv.DictReader(fh)}
    history: dict[str, list[float]] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key != "epoch":
                history.setdefault(key, []).append(
                    float("nan") if value in (None, "", "NA") else float(value)
                )
    return {k: v for k, v in history.items() if not np.all(np.isnan(v))}


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore whose weights and epoch files are each written whole
    (:func:`helpers.files.atomic_path`): an interrupt while saving leaves the last backup."""

    def _save_model(self):
        Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        with atomic_path(self._weights_path) as tmp:
            self.model.save_weights(str(tmp), overwrite=True)
        meta = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        atomic_write(self._training_metadata_path, json.dumps(meta))


def backup_problem(backup: Path) -> str | None:
    """Why the resume backup folder ``backup`` cannot be restored, or ``None`` if it can: its
    epoch file must name an epoch and every array of its weights file must read."""
    import h5py  # noqa: PLC0415  (a dependency of Keras)

    try:
        meta = json.loads((backup / "training_metadata.json").read_text())
        int(meta["epoch"])
        with h5py.File(backup / "latest.weights.h5", "r") as f:
            f.visititems(lambda _, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)
    except Exception as err:  # any damage: missing, truncated, not HDF5, not JSON
        return f"{type(err).__name__}: {err}"
    return None


def resumable(name: str, backup: Path, epoch_log: Path) -> bool:
    """True when run ``name`` can resume from ``backup`` (with its epoch log ``epoch_log``).
    A damaged or incomplete backup is removed, saying so: training starts from epoch 1."""
    if not backup.exists():
        epoch_log.unlink(missing_ok=True)
        return False
    problem = backup_problem(backup)
    if problem is None and not epoch_log.is_file():
        problem = f"its epoch log {epoch_log} is missing"
    if problem is None:
        return True
    print(
        f"{name}: the resume backup {backup} cannot be restored ({problem}); it is removed and "
        "training starts again from epoch 1."
    )
    shutil.rmtree(backup, ignore_errors=True)
    epoch_log.unlink(missing_ok=True)
    return False
