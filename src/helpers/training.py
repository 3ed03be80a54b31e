"""Train a compiled Keras model and keep the run as an experiment record.

``fit_and_record`` fits with the standard callbacks (TerminateOnNaN, CSVLogger, optional
EarlyStopping / TensorBoard, BackupAndRestore so an interrupted run resumes), times every epoch,
evaluates on the test split and writes a JSON record atomically to
``results/<profile>/<notebook>/<name>.json``. Called again with an unchanged config it returns
the stored record (and loads the saved weights into the model where they exist) instead of
training again; ``force=True`` or ``setup(..., force_retrain=True)`` trains anyway.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import metrics as M
from .data import DataError, Dataset, check_arrays, fingerprint_arrays, split_validation
from .session import current, devices, library_versions

RECORD_VERSION = 1


@dataclass
class Record:
    """One finished training run. Times are seconds; accuracies are fractions in [0, 1]."""

    name: str
    notebook: str
    profile: str
    config: dict
    config_hash: str
    history: dict[str, list[float]]
    epochs_run: int
    test: dict[str, float]
    confusion_matrix: list[list[int]]
    per_class_accuracy: list[dict]
    class_names: list[str]
    y_test_pred: list[int]
    wall_time_s: float
    epoch_times_s: list[float]
    params: int
    trainable_params: int
    layers: int
    backend: str
    devices: list[str]
    versions: dict[str, str]
    created: str
    data: dict = field(default_factory=dict)
    train: dict | None = None
    reported: dict | None = None
    notes: str = ""
    record_version: int = RECORD_VERSION
    reused: bool = field(default=False, compare=False)
    path: str = field(default="", compare=False)

    @property
    def test_accuracy(self) -> float:
        return self.test["accuracy"]

    @property
    def seconds_per_epoch(self) -> float:
        """Median time of one epoch (training and validation), in seconds."""
        return float(np.median(self.epoch_times_s)) if self.epoch_times_s else float("nan")

    def summary(self) -> str:
        """One line: test accuracy and loss, epochs, parameters, time; reused or trained."""
        how = "reused record" if self.reused else "trained"
        rep = ""
        if self.reported and self.reported.get("test_accuracy") is not None:
            rep = f" (report: {self.reported['test_accuracy']:.3f})"
        return (
            f"{self.name}: test accuracy {self.test['accuracy']:.4f}{rep}, test loss "
            f"{self.test.get('loss', float('nan')):.4f}, {self.epochs_run} epochs, "
            f"{self.params:,} params, {self.wall_time_s:.0f} s ({self.seconds_per_epoch:.1f} s/epoch)"
            f" [{how}]"
        )

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("reused")
        d.pop("path")
        return json.dumps(d, indent=1, default=_jsonable)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Record:
        """Read a record written by :func:`fit_and_record`."""
        try:
            d = json.loads(Path(path).read_text())
            rec = cls(**d)
        except (OSError, json.JSONDecodeError, TypeError) as err:
            raise DataError(
                f"Cannot read experiment record {path}: {err}. Delete it to train again."
            ) from err
        rec.path = str(path)
        return rec


def _jsonable(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


# --------------------------------------------------------------------------- configuration


def _leaf_layers(model) -> list:
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            out += _leaf_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            out.append(layer)
    return out


def _strip_names(obj):
    if isinstance(obj, dict):
        return {k: _strip_names(v) for k, v in obj.items() if k not in ("name", "seed")}
    if isinstance(obj, list | tuple):
        return [_strip_names(v) for v in obj]
    return obj


def architecture(model) -> list[dict]:
    """Layer-by-layer description without auto-generated names: class, config, trainable, params."""
    rows = []
    for layer in _leaf_layers(model):
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
        oc = _strip_names(opt.get_config())
        cfg["optimizer"] = {"class": type(opt).__name__, **oc}
    loss = getattr(model, "loss", None)
    if loss is not None:
        cfg["loss"] = loss if isinstance(loss, str) else keras.losses.serialize(loss)
    return cfg


def _data_config(data: Dataset) -> dict:
    """Source, sizes and a content hash of the dataset: the data part of a record's key."""
    return {
        "source": data.source,
        "stand_in": data.stand_in,
        "train": len(data.x_train),
        "test": len(data.x_test),
        "fingerprint": fingerprint_arrays(data.x_train, data.y_train, data.x_test, data.y_test),
    }


def _hash(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=_jsonable)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- input pipelines


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


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_path(name: str) -> Path:
    """Where the record ``name`` of the current notebook and profile lives."""
    return current().results_dir / f"{name}.json"


# --------------------------------------------------------------------------- the one call


def fit_and_record(
    model,
    data: Dataset,
    name: str,
    *,
    epochs: int,
    batch_size: int = 32,
    validation_split: float | None = None,
    validation_data: tuple[np.ndarray, np.ndarray] | str | None = None,
    early_stopping: dict | None = None,
    one_hot: bool = False,
    tensorboard: bool = False,
    evaluate_train: bool = False,
    reported: dict | None = None,
    config: dict | None = None,
    notes: str = "",
    callbacks: list | None = None,
    force: bool | None = None,
    need_weights: bool = False,
    verbose: int = 0,
) -> Record:
    """Fit ``model`` (already compiled) on ``data`` and return its :class:`Record`.

    Args:
        model: a compiled Keras model whose output is ``(N, K)`` class scores (softmax or sigmoid).
        data: train and test arrays; images uint8 ``(N, H, W, C)`` or features ``(N, D)``.
        name: the experiment's name, unique within the notebook (file name of the record).
        epochs: maximum number of epochs.
        batch_size: samples per gradient step.
        validation_split: fraction of the training data held out (stratified, seeded) for
            validation, like Keras's ``validation_split`` but class-balanced.
        validation_data: ``(x_val, y_val)``, or ``"test"`` to validate on the test split (as some
            reports did). ``None`` with no split: no validation curves.
        early_stopping: keyword arguments of ``keras.callbacks.EarlyStopping``, e.g.
            ``{"monitor": "val_accuracy", "patience": 5}``; ``restore_best_weights`` defaults to True.
        one_hot: feed one-hot labels (for categorical cross-entropy, KL divergence, ...).
        tensorboard: also write TensorBoard logs under ``logs/<profile>/<notebook>/tensorboard/``.
        evaluate_train: also store the training split's confusion matrix and per-class accuracy.
        reported: the report's numbers for the comparison table, e.g.
            ``{"test_accuracy": 0.74, "epochs": 15, "source": "seed 002"}``.
        config: extra settings that distinguish this run (they enter the record's key).
        notes: free text stored with the record.
        callbacks: further Keras callbacks.
        force: train even if a record with the same config exists (default: the session's
            ``force_retrain``).
        need_weights: the trained model object is used afterwards (a later stage starts from
            it): reuse a record only where its saved weights exist here, else train again.
        verbose: Keras ``fit`` verbosity (0 silent, 2 one line per epoch).

    Returns:
        The record, with ``record.reused`` telling whether it was loaded instead of trained.
    """
    sess = current()
    force = sess.force_retrain if force is None else force
    k = data.num_classes
    check_arrays(data.x_train, data.y_train, k, f"{name} training data")
    check_arrays(data.x_test, data.y_test, k, f"{name} test data")
    if validation_split is not None and validation_data is not None:
        raise ValueError("Give validation_split or validation_data, not both.")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError(f"Model for {name!r} is not compiled; call model.compile(...) first.")
    try:
        out_shape = tuple(model.output_shape)
    except (AttributeError, ValueError, TypeError):  # a subclassed model that is not built yet
        out_shape = None
    if out_shape is not None and len(out_shape) == 2 and out_shape[-1] not in (None, k):
        raise ValueError(
            f"Model for {name!r} has output shape {out_shape} but the data has {k} classes; "
            f"its last layer needs {k} units (one score per class)."
        )

    x_tr, y_tr = data.x_train, data.y_train
    val = None
    if validation_split is not None:
        (x_tr, y_tr), val = split_validation(x_tr, y_tr, validation_split, sess.seed)
    elif isinstance(validation_data, str):
        if validation_data != "test":
            raise ValueError(f"validation_data={validation_data!r}: use 'test' or (x_val, y_val).")
        val = (data.x_test, data.y_test)
    elif validation_data is not None:
        val = validation_data
        check_arrays(val[0], val[1], k, f"{name} validation data")

    full_config = {
        "architecture": architecture(model),
        "input_shape": list(data.x_train.shape[1:]),
        "compile": _compile_config(model),
        "epochs": epochs,
        "batch_size": batch_size,
        "validation_split": validation_split,
        "validation_data": "test"
        if isinstance(validation_data, str)
        else (None if validation_data is None else fingerprint_arrays(*validation_data)),
        "early_stopping": early_stopping,
        "one_hot": one_hot,
        "seed": sess.seed,
        "data": _data_config(data),
        "extra": config or {},
    }
    key = _hash(full_config)
    path = record_path(name)
    weights = sess.checkpoints_dir / f"{name}.weights.h5"
    if path.is_file() and not force:
        rec = Record.load(path)
        if rec.config_hash == key and (weights.is_file() or not need_weights):
            rec.reused = True
            if weights.is_file():
                if not model.optimizer.built:  # restore its state too (no "Skipping" warning)
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(weights)
            else:
                rec.notes = (
                    rec.notes + " (weights not saved here: the model object is untrained)"
                ).strip()
            return rec

    # ---- train
    logs = sess.logs_dir
    logs.mkdir(parents=True, exist_ok=True)
    timer = EpochTimer()
    backup = sess.checkpoints_dir / f"backup-{name}-{key}"
    # This config's per-epoch metrics beside its backup: a run resumed after an interruption
    # (BackupAndRestore) still records the epochs trained before it.
    epoch_log = backup.with_name(backup.name + ".csv")
    resumed = backup.is_dir() and epoch_log.is_file()
    if not resumed:
        epoch_log.unlink(missing_ok=True)
    epoch_log.parent.mkdir(parents=True, exist_ok=True)
    cbs = [
        keras.callbacks.TerminateOnNaN(),
        timer,
        keras.callbacks.CSVLogger(str(logs / f"{name}.csv"), append=resumed),
        keras.callbacks.CSVLogger(str(epoch_log), append=True),
        keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=True),
    ]
    if early_stopping:
        cbs.append(
            keras.callbacks.EarlyStopping(**{"restore_best_weights": True, **early_stopping})
        )
    if tensorboard:
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(logs / "tensorboard" / name)))
    cbs += callbacks or []

    train_in = _pipeline(x_tr, y_tr, batch_size, True, sess.seed, k, one_hot)
    val_in = None if val is None else _pipeline(val[0], val[1], batch_size, False, 0, k, one_hot)
    start = time.perf_counter()
    if isinstance(train_in, tuple):  # NumPy arrays (non-TensorFlow backends)
        hist = model.fit(
            *train_in,
            validation_data=val_in,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            callbacks=cbs,
            verbose=verbose,
        )
    else:
        hist = model.fit(
            train_in,
            validation_data=val_in,
            epochs=epochs,
            callbacks=cbs,
            shuffle=False,
            verbose=verbose,
        )  # the pipeline shuffles already
    wall = time.perf_counter() - start
    history = {m: [float(v) for v in vals] for m, vals in hist.history.items()}
    if resumed:
        history = _history_from_csv(epoch_log) or history
        notes = (
            notes + " Resumed from a backup after an interruption: wall_time_s and epoch_times_s "
            f"cover only the {len(timer.times)} epoch(s) run after it."
        ).strip()
    if history.get("loss") and not np.all(np.isfinite(history["loss"])):
        notes = (notes + " Training stopped: the loss became NaN/inf (TerminateOnNaN).").strip()

    test = _evaluate(model, data.x_test, data.y_test, batch_size, k, one_hot)
    train_eval = None
    if evaluate_train:
        tr = _evaluate(model, data.x_train, data.y_train, batch_size, k, one_hot)
        train_eval = {
            "metrics": tr["metrics"],
            "confusion_matrix": tr["confusion"].tolist(),
            "per_class_accuracy": M.per_class_accuracy(data.y_train, tr["pred"], data.class_names),
        }
    rec = _new_record(
        name,
        full_config,
        key,
        history,
        data,
        test["pred"],
        test["metrics"],
        wall_time_s=wall,
        epoch_times_s=timer.times,
        params=int(model.count_params()),
        trainable_params=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        layers=len(_leaf_layers(model)),
        backend=keras.backend.backend(),
        devices=devices(),
        train=train_eval,
        reported=reported,
        notes=notes,
    )
    weights.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(weights)
    _atomic_write(path, rec.to_json())
    shutil.rmtree(backup, ignore_errors=True)
    epoch_log.unlink(missing_ok=True)
    rec.path = str(path)
    return rec


def _new_record(name, config, key, history, data, pred, test_metrics, **fields) -> Record:
    """A :class:`Record` of the current session from test predictions ``pred`` ``(N,)``; the
    confusion matrix, per-class accuracy, versions and creation time are filled in here."""
    sess = current()
    k = data.num_classes
    return Record(
        name=name,
        notebook=sess.notebook,
        profile=sess.profile.name,
        config=config,
        config_hash=key,
        history=history,
        epochs_run=len(history.get("loss", [])),
        test=test_metrics,
        confusion_matrix=M.confusion(data.y_test, pred, k).tolist(),
        per_class_accuracy=M.per_class_accuracy(data.y_test, pred, data.class_names),
        class_names=list(data.class_names),
        y_test_pred=np.asarray(pred).tolist(),
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        data=config["data"],
        **fields,
    )


def _history_from_csv(path: Path) -> dict[str, list[float]]:
    """Per-epoch metrics from a ``CSVLogger`` file (a repeated epoch: its last row wins; columns
    that are all ``NA`` are dropped)."""
    import csv  # noqa: PLC0415

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


def _evaluate(model, x, y, batch_size: int, k: int, one_hot: bool) -> dict[str, Any]:
    """Loss, accuracy, macro P/R/F1/AUC, predictions ``(N,)`` and confusion ``(K, K)``."""
    data_in = _pipeline(x, y, batch_size, False, 0, k, one_hot)
    if isinstance(data_in, tuple):
        results = model.evaluate(*data_in, batch_size=batch_size, verbose=0, return_dict=True)
        proba = model.predict(data_in[0], batch_size=batch_size, verbose=0)
    else:
        results = model.evaluate(data_in, verbose=0, return_dict=True)
        proba = model.predict(data_in, verbose=0)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != k:
        raise ValueError(f"Model output has shape {proba.shape}; expected (N, {k}) class scores.")
    summ = M.summary(y, proba)
    summ["loss"] = float(results["loss"])
    pred = proba.argmax(axis=1)
    return {"metrics": summ, "pred": pred, "confusion": M.confusion(y, pred, k)}


def load_records(
    notebook: str | None = None, profile: str | None = None, root: Path | None = None
) -> list[Record]:
    """All records under ``results/`` (optionally of one notebook and/or profile), sorted by path."""
    base = (root or current().root) / "results"
    pattern = f"{profile or '*'}/{notebook or '*'}/*.json"
    return [Record.load(p) for p in sorted(base.glob(pattern))]


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

    Same file (``results/<profile>/<notebook>/<name>.json``) and same reuse rule as
    :func:`fit_and_record`: the key is a hash of ``config``, the session's seed and the data's
    fingerprint; a stored record with the same key is returned (``reused=True``) without calling
    ``train``.

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
        reported: the report's numbers, e.g. ``{"test_accuracy": 0.9454, "source": "seed 001"}``.
        notes: free text stored with the record.
        force: train even if a matching record exists (default: the session's ``force_retrain``).

    Returns:
        The record; its test metrics (accuracy, macro P/R/F1/AUC, loss = mean cross-entropy in
        nats) and confusion matrix are computed from ``proba``.
    """
    sess = current()
    force = sess.force_retrain if force is None else force
    k = data.num_classes
    check_arrays(data.x_test, data.y_test, k, f"{name} test data")
    full_config = {
        "model": config,
        "seed": sess.seed,
        "data": _data_config(data),
    }
    key = _hash(full_config)
    path = record_path(name)
    if path.is_file() and not force:
        rec = Record.load(path)
        if rec.config_hash == key:
            rec.reused = True
            return rec

    start = time.perf_counter()
    out = train()
    wall = time.perf_counter() - start
    if not isinstance(out, tuple) or len(out) not in (2, 3):
        raise ValueError(
            f"train() for {name!r} returned {type(out).__name__}; it must return "
            "(proba, history) or (proba, history, epoch_times_s)."
        )
    proba, history = np.asarray(out[0], dtype=np.float64), out[1]
    epoch_times = [float(t) for t in out[2]] if len(out) == 3 else []
    if proba.shape != (len(data.y_test), k):
        raise ValueError(
            f"{name}: test probabilities have shape {proba.shape}; expected "
            f"({len(data.y_test)}, {k}), one row per test sample and one column per class."
        )
    if not np.all(np.isfinite(proba)):
        raise ValueError(f"{name}: test probabilities contain NaN/inf; training diverged?")
    history = {m: [float(v) for v in vals] for m, vals in dict(history).items()}
    y = np.asarray(data.y_test)
    pred = proba.argmax(axis=1)
    test = M.summary(y, proba)
    true_p = np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)
    test["loss"] = float(-np.mean(np.log(true_p)))
    rec = _new_record(
        name,
        full_config,
        key,
        history,
        data,
        pred,
        test,
        wall_time_s=wall,
        epoch_times_s=epoch_times,
        params=int(params),
        trainable_params=int(params),
        layers=int(layers),
        backend=backend,
        devices=["cpu:0"],
        reported=reported,
        notes=notes,
    )
    _atomic_write(path, rec.to_json())
    rec.path = str(path)
    return rec
