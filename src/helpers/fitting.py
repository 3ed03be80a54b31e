"""The fit loop and the evaluation of a Keras run, with the one list of default callbacks.

:func:`fit` trains with :func:`default_callbacks` (TerminateOnNaN, epoch timing, CSV logs,
TensorBoard, a resumable backup, optional EarlyStopping) and times every epoch; :func:`evaluate`
gives the test metrics and the predicted classes. A change here that can change a result needs
a new :data:`helpers.record_key.IMPLEMENTATION`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import keras
import numpy as np

from . import metrics as M
from .callbacks import (
    AtomicBackupAndRestore,
    EpochTimer,
    history_from_csv,
    resumable,
    tensorboard_callback,
)
from .session import current


@dataclass(frozen=True)
class FitSettings:
    """How a Keras run is fitted and evaluated; all but ``verbose`` enter the record's key.

    Attributes:
        epochs: maximum number of epochs.
        batch_size: samples per gradient step.
        compile: keyword arguments of ``model.compile`` (``metrics`` defaults to accuracy);
            ``None`` if the builder compiles the model itself.
        validation: a fraction of the training data held out (stratified, seeded: like Keras's
            ``validation_split`` but class-balanced), ``"test"`` to validate on the test split
            (as some reports did), ``(x_val, y_val)``, or ``None`` for no validation curves.
        early_stopping: keyword arguments of ``keras.callbacks.EarlyStopping``, e.g.
            ``{"monitor": "val_accuracy", "patience": 5}``; ``restore_best_weights`` defaults to True.
        one_hot: feed one-hot labels (for categorical cross-entropy, KL divergence, ...).
        callbacks: further Keras callbacks (their settings enter the record's key).
        evaluate_train: also store the predictions on the whole training split
            (``record.y_train_pred``), its confusion matrix and per-class accuracy.
        verbose: Keras ``fit`` verbosity (0 silent, 2 one line per epoch).
    """

    epochs: int
    batch_size: int = 32
    compile: dict | None = None
    validation: float | str | tuple | None = None
    early_stopping: dict | None = None
    one_hot: bool = False
    callbacks: list | None = None
    evaluate_train: bool = False
    verbose: int = 0

    @classmethod
    def from_keywords(
        cls, settings: FitSettings | None, keywords: dict, caller: str
    ) -> FitSettings:
        """``settings`` (or the defaults) with ``keywords`` set: the fit keywords of ``caller``.

        Raises:
            TypeError: a keyword that is no field (naming it and the fields), or no ``epochs``.
        """
        known = [f.name for f in fields(cls)]
        unknown = [k for k in keywords if k not in known]
        if unknown:
            raise TypeError(
                f"{caller}() got an unexpected keyword argument {unknown[0]!r}; its fit settings "
                f"are {', '.join(known)}"
            )
        if settings is not None:
            return replace(settings, **keywords)
        if "epochs" not in keywords:
            raise TypeError(f"{caller}() missing required keyword argument: 'epochs'")
        return cls(**keywords)


def _pipeline(x, y, batch_size: int, shuffle: bool, seed: int, num_classes: int, one_hot: bool):
    """A batched ``tf.data`` pipeline (TensorFlow backend) or float32 NumPy arrays (others).

    Images stay uint8 in memory and are cast to float32 a batch at a time.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)

        def cast(xb, yb):
            yb = tf.one_hot(yb, num_classes) if one_hot else yb
            return tf.cast(xb, tf.float32), yb

        return (
            ds.batch(batch_size)
            .map(cast, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
        )
    yy = keras.utils.to_categorical(y, num_classes) if one_hot else y
    return x.astype("float32"), yy


def steps_per_execution() -> int:
    """Batches per call into the compiled train/test step: ``$SUITE_STEPS_PER_EXECUTION``, else 1.

    A speed setting only, not part of a record's key: the same batches are trained in the same
    order, and the callbacks the suite uses act per epoch. It matters on a GPU, where the
    per-batch callbacks (TerminateOnNaN reads the loss) otherwise wait for every step
    (50 is a good start there).
    """
    text = os.environ.get("SUITE_STEPS_PER_EXECUTION", "").strip() or "1"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"SUITE_STEPS_PER_EXECUTION={text!r}: give a whole number of batches, 1 or more "
            "(or unset it)"
        )
    return n


_JIT = {
    "auto": "auto",
    "on": True,
    "1": True,
    "true": True,
    "off": False,
    "0": False,
    "false": False,
}


def jit_compile() -> bool | str:
    """Whether :func:`fit` compiles the train and test steps with XLA: ``$SUITE_JIT_COMPILE``
    (``auto``, ``on``/``1`` or ``off``/``0``), else ``auto``.

    ``auto`` leaves the model as compiled, by default Keras's rule: off for TensorFlow on a
    machine without a GPU (XLA made the suite's conv nets slower on a CPU, benchmarks/README.md),
    on where TensorFlow sees a GPU and on JAX. ``off`` is the way around XLA failures on a GPU
    (e.g. cuDNN autotuning errors). A speed setting, not part of a record's key.
    """
    text = os.environ.get("SUITE_JIT_COMPILE", "").strip().lower() or "auto"
    if text not in _JIT:
        raise ValueError(
            f"SUITE_JIT_COMPILE={text!r}: give auto, on (1) or off (0), or unset it for auto"
        )
    return _JIT[text]


def fit(
    model,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray] | None,
    *,
    name: str,
    key: str,
    epochs: int,
    batch_size: int,
    num_classes: int,
    one_hot: bool = False,
    early_stopping: dict | None = None,
    callbacks: list | None = None,
    verbose: int = 0,
) -> dict:
    """Train ``model`` on ``train = (x, y)`` (validating on ``val``) with the standard callbacks.

    Logs go to ``logs/<profile>/<notebook>/`` (``<name>.csv`` and ``tensorboard/<name>``). A
    BackupAndRestore folder under ``checkpoints/`` named by ``key`` lets an interrupted run resume
    from its last finished epoch; the epochs trained before the interruption stay in the history.
    A damaged backup is removed (with a message naming it) and the run starts from epoch 1.

    Returns:
        ``{"history": {metric: [per epoch]}, "epoch_times_s": [...], "wall_time_s": seconds,
        "notes": text}``.
    """
    sess = current()
    logs = sess.logs_dir
    logs.mkdir(parents=True, exist_ok=True)
    backup = sess.checkpoints_dir / f"backup-{name}-{key}"
    epoch_log = backup.with_name(backup.name + ".csv")
    resumed = resumable(name, backup, epoch_log)
    epoch_log.parent.mkdir(parents=True, exist_ok=True)
    cbs, timer = default_callbacks(name, logs, backup, epoch_log, resumed, early_stopping)
    cbs += callbacks or []
    args, val_in = _fit_inputs(train, val, batch_size, sess.seed, num_classes, one_hot)
    model.steps_per_execution = steps_per_execution()
    if (jit := jit_compile()) != "auto":
        model.jit_compile = jit
    start = time.perf_counter()
    hist = model.fit(**args, validation_data=val_in, epochs=epochs, callbacks=cbs, verbose=verbose)
    wall = time.perf_counter() - start
    history = {m: [float(v) for v in vals] for m, vals in hist.history.items()}
    history, notes = _resumed_history(history, resumed, epoch_log, len(timer.times))
    epoch_log.unlink(missing_ok=True)
    return {"history": history, "epoch_times_s": timer.times, "wall_time_s": wall, "notes": notes}


def default_callbacks(
    name: str, logs: Path, backup: Path, epoch_log: Path, resumed: bool, early_stopping
) -> tuple[list, EpochTimer]:
    """The callbacks every Keras run trains with, and its epoch timer among them.

    TerminateOnNaN; the epoch timer; the run's CSV log ``logs/<name>.csv`` (appended to when
    ``resumed``) and the epoch log ``epoch_log`` that outlives an interruption; the resumable
    ``backup`` folder; TensorBoard under ``logs/tensorboard/<name>``; and EarlyStopping with
    ``early_stopping``'s settings (``restore_best_weights`` defaults to True) when given.
    """
    timer = EpochTimer()
    cbs = [
        keras.callbacks.TerminateOnNaN(),
        timer,
        keras.callbacks.CSVLogger(str(logs / f"{name}.csv"), append=resumed),
        keras.callbacks.CSVLogger(str(epoch_log), append=True),
        AtomicBackupAndRestore(str(backup), delete_checkpoint=True),
        tensorboard_callback(str(logs / "tensorboard" / name)),
    ]
    if early_stopping:
        cbs.append(
            keras.callbacks.EarlyStopping(**{"restore_best_weights": True, **early_stopping})
        )
    return cbs, timer


def _fit_inputs(train, val, batch_size: int, seed: int, k: int, one_hot: bool):
    """``model.fit``'s input arguments for ``train``, and its validation data for ``val``."""
    train_in = _pipeline(*train, batch_size, True, seed, k, one_hot)
    val_in = None if val is None else _pipeline(*val, batch_size, False, 0, k, one_hot)
    if isinstance(train_in, tuple):  # NumPy arrays (non-TensorFlow backends)
        args = {"x": train_in[0], "y": train_in[1], "batch_size": batch_size, "shuffle": True}
    else:  # the tf.data pipeline shuffles already
        args = {"x": train_in, "shuffle": False}
    return args, val_in


def _resumed_history(history: dict, resumed: bool, epoch_log: Path, epochs_run: int):
    """``(history, notes)``: the whole history of a resumed run (from its epoch log), and notes
    on the resumption and on a loss that became NaN/inf."""
    notes = ""
    if resumed:
        history = history_from_csv(epoch_log) or history
        notes = (
            "Resumed from a backup after an interruption: wall_time_s and epoch_times_s "
            f"cover only the {epochs_run} epoch(s) run after it."
        )
    if history.get("loss") and not np.all(np.isfinite(history["loss"])):
        notes = (notes + " Training stopped: the loss became NaN/inf (TerminateOnNaN).").strip()
    return history, notes


def evaluate(
    model, x: np.ndarray, y: np.ndarray, *, batch_size: int, num_classes: int, one_hot: bool
) -> tuple[dict[str, float], np.ndarray]:
    """Test metrics of ``model`` on ``(x, y)``: loss, accuracy, macro P/R/F1/AUC; and the
    predicted classes ``(N,)``."""
    data_in = _pipeline(x, y, batch_size, False, 0, num_classes, one_hot)
    if isinstance(data_in, tuple):
        results = model.evaluate(*data_in, batch_size=batch_size, verbose=0, return_dict=True)
        proba = model.predict(data_in[0], batch_size=batch_size, verbose=0)
    else:
        results = model.evaluate(data_in, verbose=0, return_dict=True)
        proba = model.predict(data_in, verbose=0)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != num_classes:
        raise ValueError(
            f"Model output has shape {proba.shape}; expected (N, {num_classes}) class scores."
        )
    if np.all(np.isfinite(proba)):
        summary = M.summary(y, proba)
    else:  # diverged (NaN/inf weights): record what it predicts; its AUC is undefined
        proba = np.nan_to_num(proba, nan=0.0, posinf=1.0, neginf=0.0)
        summary = {**M.summary(y, proba), "auc_macro": float("nan")}
    summary["loss"] = float(results["loss"])
    return summary, proba.argmax(axis=1)
