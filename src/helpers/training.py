"""Fit a Keras model, evaluate it, and keep the run as an experiment record.

Three small steps, and one call that joins them:

* :func:`fit` trains with the standard callbacks (TerminateOnNaN, CSVLogger, TensorBoard,
  optional EarlyStopping, a BackupAndRestore written atomically so an interrupted run resumes)
  and times every epoch;
* :func:`evaluate` gives loss, accuracy, macro P/R/F1/AUC and the predicted classes;
* :func:`fit_and_record` builds the model (from the notebook's own builder), computes the run's
  key, and through :func:`helpers.records.cached` either reuses the stored record (loading the
  saved weights where the model is needed) or fits, evaluates and writes a new one.

:func:`record_predictions` does the same for models that are not Keras models (NumPy MLPs).

Every record's key holds :data:`IMPLEMENTATION`, the version of this module's training and
evaluation code: bump it whenever the fit loop, the default callbacks, the input pipeline or the
evaluation change in a way that can change a result, and every run trains again.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from . import metrics as M
from .data import Dataset, check_arrays, fingerprint_arrays, split_validation
from .files import atomic_path, atomic_write
from .models import leaf_layers
from .records import (
    Record,
    RecordError,
    cached,
    load_records,
    make_key,
    new_record,
    normalized,
    record_path,
)
from .session import current, devices

__all__ = [
    "Record",
    "architecture",
    "evaluate",
    "fit",
    "fit_and_record",
    "load_records",
    "record_path",
    "record_predictions",
]

# The version of the code below that trains and evaluates (fit loop, default callbacks, input
# pipeline, evaluation). It enters every record's key: bump it when that code changes a result.
IMPLEMENTATION = "helpers.training v1"


# --------------------------------------------------------------------------- the key


def _strip_names(obj):
    if isinstance(obj, dict):
        return {k: _strip_names(v) for k, v in obj.items() if k not in ("name", "seed")}
    if isinstance(obj, list | tuple):
        return [_strip_names(v) for v in obj]
    return obj


def architecture(model) -> list[dict]:
    """Layer-by-layer description without auto-generated names: class, config, trainable, params."""
    rows = []
    for layer in leaf_layers(model):
        try:
            cfg = _strip_names(layer.get_config())
        except Exception:  # a layer without get_config
            cfg = {}
        rows.append(
            {
                "class": type(layer).__name__,
                "config": cfg,
                "trainable": bool(layer.trainable),
                "params": int(layer.count_params()),
            }
        )
    return rows


def _compile_config(model) -> dict:
    opt = model.optimizer
    cfg = {"optimizer": None, "loss": None}
    if opt is not None:
        cfg["optimizer"] = {"class": type(opt).__name__, **_strip_names(opt.get_config())}
    loss = getattr(model, "loss", None)
    if loss is not None:
        cfg["loss"] = loss if isinstance(loss, str) else keras.losses.serialize(loss)
    return cfg


_CALLBACK_CONFIGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _callback_config(cb) -> dict:
    """A callback's class and its plain settings (numbers, strings, flags).

    Taken the first time a callback object is seen, before it trains: training changes its
    attributes (counters such as ``wait`` and ``best``; Keras even flips the sign of
    ``min_delta``), and the same object passed again must give the same key.
    """
    try:
        return _CALLBACK_CONFIGS[cb]
    except (KeyError, TypeError):  # not seen yet, or not weakly referenceable
        pass
    plain = (int, float, str, bool, type(None))
    settings = {k: v for k, v in vars(cb).items() if not k.startswith("_") and isinstance(v, plain)}
    cfg = {"class": type(cb).__name__, **settings}
    try:
        _CALLBACK_CONFIGS[cb] = cfg
    except TypeError:
        pass
    return cfg


# --------------------------------------------------------------------------- fit and evaluate


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


def _history_from_csv(path: Path) -> dict[str, list[float]]:
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


def _resumable(name: str, backup: Path, epoch_log: Path) -> bool:
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


def steps_per_execution() -> int:
    """Batches per call into the compiled train/test step: ``$SUITE_STEPS_PER_EXECUTION``, else 1.

    A speed setting only, not part of a record's key: the same batches are trained in the same
    order, and the callbacks the suite uses act per epoch. It matters on a GPU, where the
    per-batch callbacks (TerminateOnNaN reads the loss) otherwise wait for every step
    (``scripts/gpu_full.py`` sets 50).
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
    resumed = _resumable(name, backup, epoch_log)
    epoch_log.parent.mkdir(parents=True, exist_ok=True)
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
    cbs += callbacks or []
    k = num_classes
    train_in = _pipeline(*train, batch_size, True, sess.seed, k, one_hot)
    val_in = None if val is None else _pipeline(*val, batch_size, False, 0, k, one_hot)
    if isinstance(train_in, tuple):  # NumPy arrays (non-TensorFlow backends)
        args = {"x": train_in[0], "y": train_in[1], "batch_size": batch_size, "shuffle": True}
    else:  # the tf.data pipeline shuffles already
        args = {"x": train_in, "shuffle": False}
    model.steps_per_execution = steps_per_execution()
    start = time.perf_counter()
    hist = model.fit(**args, validation_data=val_in, epochs=epochs, callbacks=cbs, verbose=verbose)
    wall = time.perf_counter() - start
    history = {m: [float(v) for v in vals] for m, vals in hist.history.items()}
    notes = ""
    if resumed:
        history = _history_from_csv(epoch_log) or history
        notes = (
            "Resumed from a backup after an interruption: wall_time_s and epoch_times_s "
            f"cover only the {len(timer.times)} epoch(s) run after it."
        )
    if history.get("loss") and not np.all(np.isfinite(history["loss"])):
        notes = (notes + " Training stopped: the loss became NaN/inf (TerminateOnNaN).").strip()
    epoch_log.unlink(missing_ok=True)
    return {"history": history, "epoch_times_s": timer.times, "wall_time_s": wall, "notes": notes}


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


# --------------------------------------------------------------------------- the one call


def _check_model(model, name: str, k: int) -> None:
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            f"Model for {name!r} is not compiled: pass compile={{'optimizer': ..., 'loss': ...}}"
            " or call model.compile(...) in the builder."
        )
    try:
        out_shape = tuple(model.output_shape)
    except (AttributeError, ValueError, TypeError):  # a subclassed model that is not built yet
        return
    if len(out_shape) == 2 and out_shape[-1] not in (None, k):
        raise ValueError(
            f"Model for {name!r} has output shape {out_shape} but the data has {k} classes; "
            f"its last layer needs {k} units (one score per class)."
        )


def _validation(data: Dataset, validation, seed: int, name: str):
    """``(train, val)`` pairs for ``validation``: a fraction, ``"test"``, ``(x, y)`` or None."""
    train = (data.x_train, data.y_train)
    if validation is None:
        return train, None, {"validation_split": None, "validation_data": None}
    if isinstance(validation, int | float) and not isinstance(validation, bool):
        train, val = split_validation(*train, validation, seed)
        return train, val, {"validation_split": validation, "validation_data": None}
    if isinstance(validation, str):
        if validation != "test":
            raise ValueError(
                f"validation={validation!r}: use a fraction, 'test' or (x_val, y_val)."
            )
        return (
            train,
            (data.x_test, data.y_test),
            {"validation_split": None, "validation_data": "test"},
        )
    check_arrays(validation[0], validation[1], data.num_classes, f"{name} validation data")
    return (
        train,
        validation,
        {"validation_split": None, "validation_data": fingerprint_arrays(*validation)},
    )


def fit_and_record(
    name: str,
    model,
    data: Dataset,
    *,
    epochs: int,
    batch_size: int = 32,
    compile: dict | None = None,
    validation: float | str | tuple | None = None,
    early_stopping: dict | None = None,
    one_hot: bool = False,
    callbacks: list | None = None,
    evaluate_train: bool = False,
    reported: dict | None = None,
    config: dict | None = None,
    notes: str = "",
    force: bool | None = None,
    init: Callable[[keras.Model], None] | None = None,
    verbose: int = 0,
) -> Record:
    """Train the model on ``data`` (or reuse the stored run), print one summary line, return the record.

    Args:
        name: the experiment's name, unique within the notebook (file name of the record).
        model: a function without arguments that returns the Keras model (the notebook's own
            builder), or a model. Its output is ``(N, K)`` class scores (softmax or sigmoid).
        data: train and test arrays; images uint8 ``(N, H, W, C)`` or features ``(N, D)``.
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
        reported: the report's numbers for the comparison table, e.g.
            ``{"test_accuracy": 0.74, "epochs": 15, "source": "the report"}``.
        config: extra settings that distinguish this run (they enter the record's key).
        notes: free text stored with the record.
        force: train even if a record with the same key exists (default: the session's
            ``force_retrain``).
        init: called with the model just before training (never when the record is reused),
            e.g. to copy the weights of an earlier run it continues from
            (``lambda m: m.set_weights(stage1.model.get_weights())``); put that run's
            ``config_hash`` into ``config`` so the key says where training started.
        verbose: Keras ``fit`` verbosity (0 silent, 2 one line per epoch).

    Returns:
        The record. ``record.reused`` tells whether it was loaded instead of trained.
        ``record.model`` is the trained model: for a reused record it is built and given the saved
        weights on first use, or trained again then where they are not saved here. A reused record
        never hands out an untrained model, and nothing is trained unless ``record.model`` is used.
    """
    sess = current()
    k = data.num_classes
    model = model() if callable(model) and not isinstance(model, keras.Model) else model
    if compile is not None:
        model.compile(**{"metrics": ["accuracy"], **compile})
    check_arrays(data.x_train, data.y_train, k, f"{name} training data")
    check_arrays(data.x_test, data.y_test, k, f"{name} test data")
    _check_model(model, name, k)
    train, val, val_config = _validation(data, validation, sess.seed, name)
    cfg = {
        "architecture": architecture(model),
        "input_shape": list(data.x_train.shape[1:]),
        "compile": _compile_config(model),
        "epochs": epochs,
        "batch_size": batch_size,
        **val_config,
        "early_stopping": early_stopping,
        "one_hot": one_hot,
        "callbacks": [_callback_config(cb) for cb in callbacks or []],
        "evaluate_train": evaluate_train,
        "seed": sess.seed,
        "data": data.key(),
        "extra": config or {},
        "implementation": IMPLEMENTATION,
    }
    weights = sess.checkpoints_dir / f"{name}.weights.h5"
    provenance = {
        **data.provenance(),
        "backend": keras.backend.backend(),
        "devices": devices(),
    }
    settings = {"batch_size": batch_size, "num_classes": k, "one_hot": one_hot}

    key = make_key(normalized(cfg))

    def run() -> Record:
        if init is not None:
            init(model)
        out = fit(
            model,
            train,
            val,
            name=name,
            key=key,
            epochs=epochs,
            early_stopping=early_stopping,
            callbacks=callbacks,
            verbose=verbose,
            **settings,
        )
        test, pred = evaluate(model, data.x_test, data.y_test, **settings)
        tr_metrics, tr_pred = (
            evaluate(model, data.x_train, data.y_train, **settings)
            if evaluate_train
            else (None, None)
        )
        with atomic_path(weights) as tmp:
            model.save_weights(str(tmp))
        return new_record(
            name,
            cfg,
            y_test=data.y_test,
            y_test_pred=pred,
            class_names=data.class_names,
            test=test,
            history=out["history"],
            provenance=provenance,
            y_train=data.y_train,
            y_train_pred=tr_pred,
            train_metrics=tr_metrics,
            wall_time_s=out["wall_time_s"],
            epoch_times_s=out["epoch_times_s"],
            params=int(model.count_params()),
            trainable_params=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            layers=len(leaf_layers(model)),
            reported=reported,
            notes=" ".join(t for t in (notes, out["notes"]) if t),
        )

    def load_model():
        if not weights.is_file():
            print(f"{name}: weights not saved here ({weights}); training it again for the model.")
            cached(name, cfg, run, provenance=provenance, force=True)
            return model
        if not model.optimizer.built:  # restore its state too (no "Skipping" warning)
            model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(weights)
        except Exception as err:  # truncated, not HDF5, or of another architecture
            raise RecordError(
                f"{name}: the saved weights {weights} cannot be read ({type(err).__name__}: "
                f"{str(err)[:200]}). Delete that file and use record.model again: the run is "
                "trained again for its model and its record rewritten."
            ) from err
        return model

    rec = cached(name, cfg, run, provenance=provenance, force=force)
    if rec.reused:
        rec.model_loader = load_model  # nothing is loaded or trained unless rec.model is used
    else:
        rec.trained_model = model
    print(rec.summary())
    return rec


def record_predictions(
    name: str,
    data: Dataset,
    train,
    *,
    config: dict,
    params: int,
    layers: int = 0,
    backend: str = "numpy",
    reported: dict | None = None,
    notes: str = "",
    force: bool | None = None,
) -> Record:
    """The :class:`Record` of a model that is not a Keras model (e.g. a NumPy MLP).

    Same file and same reuse rule as :func:`fit_and_record` (:func:`helpers.records.cached`):
    the key is a hash of ``config``, the session's seed and the data's key; a stored record
    with the same key is returned (``reused=True``) without calling ``train``.

    Args:
        name: the experiment's name, unique within the notebook.
        data: the dataset the model is trained and tested on; ``data.y_test`` ``(N,)`` labels.
        train: a callable without arguments that trains the model and returns
            ``(proba, history)`` or ``(proba, history, epoch_times_s)``: ``proba`` the test-set
            class probabilities ``(N, K)`` in the order of ``data.x_test``, ``history`` per-epoch
            lists like Keras's (``loss``, ``accuracy``, ``val_loss``, ...), ``epoch_times_s`` the
            seconds of every epoch. Its wall time (seconds) is measured here.
        config: everything that distinguishes the run (architecture, optimiser, epochs, ...).
        params: number of trainable parameters.
        layers: number of weight layers.
        backend: what computed it, e.g. ``"numpy"``.
        reported: the report's numbers, e.g. ``{"test_accuracy": 0.9454, "source": "the report"}``.
        notes: free text stored with the record.
        force: train even if a matching record exists (default: the session's ``force_retrain``).

    Returns:
        The record (its summary line is printed); test metrics (accuracy, macro P/R/F1/AUC,
        loss = mean cross-entropy in nats) and the confusion matrix are computed from ``proba``.
    """
    k = data.num_classes
    check_arrays(data.x_train, data.y_train, k, f"{name} training data")
    check_arrays(data.x_test, data.y_test, k, f"{name} test data")
    cfg = {
        "model": config,
        "seed": current().seed,
        "data": data.key(),
        "implementation": IMPLEMENTATION,
    }
    provenance = {**data.provenance(), "backend": backend, "devices": ["cpu:0"]}

    def run() -> Record:
        start = time.perf_counter()
        out = train()
        wall = time.perf_counter() - start
        if not isinstance(out, tuple) or len(out) not in (2, 3):
            raise ValueError(
                f"train() for {name!r} returned {type(out).__name__}; it must return "
                "(proba, history) or (proba, history, epoch_times_s)."
            )
        proba = np.asarray(out[0], dtype=np.float64)
        if proba.shape != (len(data.y_test), k):
            raise ValueError(
                f"{name}: test probabilities have shape {proba.shape}; expected "
                f"({len(data.y_test)}, {k}), one row per test sample and one column per class."
            )
        if not np.all(np.isfinite(proba)):
            raise ValueError(
                f"{name}: {int(np.sum(~np.isfinite(proba)))} test probabilities are NaN/inf, so "
                "training diverged; nothing is recorded. Lower the learning rate or check the "
                "inputs, then run it again."
            )
        y = np.asarray(data.y_test)
        test = M.summary(y, proba)
        test["loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0))))
        return new_record(
            name,
            cfg,
            y_test=y,
            y_test_pred=proba.argmax(axis=1),
            class_names=data.class_names,
            test=test,
            history=dict(out[1]),
            provenance=provenance,
            wall_time_s=wall,
            epoch_times_s=[float(t) for t in out[2]] if len(out) == 3 else [],
            params=int(params),
            trainable_params=int(params),
            layers=int(layers),
            reported=reported,
            notes=notes,
        )

    rec = cached(name, cfg, run, provenance=provenance, force=force)
    print(rec.summary())
    return rec
