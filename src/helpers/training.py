"""The notebooks' entry: train a model on a dataset, or reuse the record of that run.

:func:`fit_and_record` builds the model (from the notebook's own builder), computes the run's
key (:mod:`helpers.record_key`) and through :func:`helpers.records.cached` either reuses the
stored record (loading the saved weights where the model is needed) or fits and evaluates the
model (:mod:`helpers.fitting`) and writes a new record. :func:`record_predictions` does the same
for models that are not Keras models (NumPy MLPs).

The names notebooks, tests and scripts use from here (``fit``, ``evaluate``,
``IMPLEMENTATION``, ...) stay importable from this module; ``fit`` and ``devices`` are looked up
here when a run trains, so a test can replace ``training.fit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import keras
import numpy as np

from . import metrics as M
from .callbacks import (
    AtomicBackupAndRestore,
    EpochScalars,
    EpochTimer,
    backup_problem,
    tensorboard_callback,
)
from .data import Dataset, check_arrays
from .files import atomic_path
from .fitting import (
    FitSettings,
    _pipeline,  # noqa: F401  (tests and benchmarks/throughput.py use it from here)
    default_callbacks,
    evaluate,
    fit,
    jit_compile,
    steps_per_execution,
)
from .models import leaf_layers
from .record_key import (
    IMPLEMENTATION,
    architecture,
    keras_config,
    predictions_config,
    validation_split,
)
from .records import (
    Record,
    RecordError,
    cached,
    load_records,
    make_key,
    new_record,
    normalized,
    record_path,
    seeded_name,
)
from .session import current, devices, seeded

__all__ = [
    "IMPLEMENTATION",
    "AtomicBackupAndRestore",
    "EpochScalars",
    "EpochTimer",
    "FitSettings",
    "Record",
    "architecture",
    "backup_problem",
    "default_callbacks",
    "evaluate",
    "fit",
    "fit_and_record",
    "jit_compile",
    "load_records",
    "record_path",
    "record_predictions",
    "steps_per_execution",
    "tensorboard_callback",
]


def _check_data(name: str, data: Dataset) -> None:
    check_arrays(data.x_train, data.y_train, data.num_classes, f"{name} training data")
    check_arrays(data.x_test, data.y_test, data.num_classes, f"{name} test data")


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


@dataclass
class _KerasRun:
    """One run of :func:`fit_and_record`: its model, data, settings and key config; what trains
    it (:meth:`train`) and what gives a reused record its model (:meth:`load_model`)."""

    name: str
    model: keras.Model
    data: Dataset
    settings: FitSettings
    cfg: dict
    split: tuple  # (train, val): the (x, y) pairs fit trains and validates on
    init: Callable[[keras.Model], None] | None
    reported: dict | None
    notes: str

    @classmethod
    def prepare(cls, name: str, model, data: Dataset, s: FitSettings, extra, **record):
        """The model built and compiled, the data and model checked, the key config made."""
        seed = current().seed
        model = model() if callable(model) and not isinstance(model, keras.Model) else model
        if s.compile is not None:
            model.compile(**{"metrics": ["accuracy"], **s.compile})
        _check_data(name, data)
        _check_model(model, name, data.num_classes)
        train, val, val_config = validation_split(data, s.validation, seed, name)
        cfg = keras_config(model, data, s, val_config, seed, extra)
        return cls(name, model, data, s, cfg, (train, val), **record)

    def __post_init__(self):
        self.weights: Path = current().checkpoints_dir / f"{self.name}.weights.h5"
        self.provenance = {
            **self.data.provenance(),
            "backend": keras.backend.backend(),
            "devices": devices(),
        }
        self.key = make_key(normalized(self.cfg))
        s = self.settings
        self.eval_settings = {
            "batch_size": s.batch_size,
            "num_classes": self.data.num_classes,
            "one_hot": s.one_hot,
        }

    def train(self) -> Record:
        """Fit, evaluate, save the weights; the new record."""
        s, data, model = self.settings, self.data, self.model
        if self.init is not None:
            self.init(model)
        out = fit(
            model,
            *self.split,
            name=self.name,
            key=self.key,
            epochs=s.epochs,
            early_stopping=s.early_stopping,
            callbacks=s.callbacks,
            verbose=s.verbose,
            **self.eval_settings,
        )
        test, pred = evaluate(model, data.x_test, data.y_test, **self.eval_settings)
        tr_metrics, tr_pred = (
            evaluate(model, data.x_train, data.y_train, **self.eval_settings)
            if s.evaluate_train
            else (None, None)
        )
        with atomic_path(self.weights) as tmp:
            model.save_weights(str(tmp))
        return new_record(
            self.name,
            self.cfg,
            y_test=data.y_test,
            y_test_pred=pred,
            class_names=data.class_names,
            test=test,
            history=out["history"],
            provenance=self.provenance,
            y_train=data.y_train,
            y_train_pred=tr_pred,
            train_metrics=tr_metrics,
            wall_time_s=out["wall_time_s"],
            epoch_times_s=out["epoch_times_s"],
            params=int(model.count_params()),
            trainable_params=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            layers=len(leaf_layers(model)),
            reported=self.reported,
            notes=" ".join(t for t in (self.notes, out["notes"]) if t),
        )

    def load_model(self) -> keras.Model:
        """The trained model of a reused record: the saved weights, or trained again."""
        name, model, weights = self.name, self.model, self.weights
        if not weights.is_file():
            print(f"{name}: weights not saved here ({weights}); training it again for the model.")
            with seeded(self.cfg["seed"]):
                cached(name, self.cfg, self.train, provenance=self.provenance, force=True)
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


def fit_and_record(
    name: str,
    model,
    data: Dataset,
    settings: FitSettings | None = None,
    *,
    init: Callable[[keras.Model], None] | None = None,
    reported: dict | None = None,
    config: dict | None = None,
    notes: str = "",
    force: bool | None = None,
    seed: int | None = None,
    **fit_settings,
) -> Record:
    """Train the model on ``data`` (or reuse the stored run), print one summary line, return the record.

    ``model`` is a function without arguments that returns the Keras model (the notebook's own
    builder), or a model, with ``(N, K)`` class scores as output. ``name`` names the record
    within the notebook. How it is fitted: ``settings`` and the :class:`FitSettings` fields
    given as keywords (``epochs=..., batch_size=..., validation=...``, overriding ``settings``).
    ``init(model)`` runs just before training, never on reuse (e.g. to copy an earlier run's
    weights: put that run's ``config_hash`` into ``config``). ``config``: further settings that
    distinguish the run (they enter the key); ``reported``: the report's numbers; ``notes``: free
    text; ``force``: train even if the record exists (default: the session's ``force_retrain``).
    ``seed``: the run's seed (default: the session's); the RNGs are reset to it before the model
    is built, and a seed other than 0 names the record ``<name>_seed<seed>``
    (:func:`helpers.records.seeded_name`), so repeating a run over seeds keeps every record.

    ``record.reused`` tells whether the record was loaded instead of trained. ``record.model`` is
    the trained model: for a reused record it is built and given the saved weights on first use
    (trained again then where they are not saved here); nothing trains unless it is used.
    """
    s = FitSettings.from_keywords(settings, fit_settings, "fit_and_record")
    with seeded(seed) as sess:
        name = seeded_name(name, sess.seed)
        run = _KerasRun.prepare(
            name, model, data, s, config, init=init, reported=reported, notes=notes
        )
        rec = cached(name, run.cfg, run.train, provenance=run.provenance, force=force)
    if rec.reused:
        rec.model_loader = run.load_model  # nothing is loaded or trained unless rec.model is used
    else:
        rec.trained_model = run.model
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
    seed: int | None = None,
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
        seed: the run's seed, as in :func:`fit_and_record` (``train`` must use it itself, e.g.
            ``current().seed`` or the notebook's loop variable).

    Returns:
        The record (its summary line is printed); test metrics (accuracy, macro P/R/F1/AUC,
        loss = mean cross-entropy in nats) and the confusion matrix are computed from ``proba``.
    """
    _check_data(name, data)
    provenance = {**data.provenance(), "backend": backend, "devices": ["cpu:0"]}
    record = {"params": int(params), "layers": int(layers), "reported": reported, "notes": notes}
    with seeded(seed) as sess:
        name = seeded_name(name, sess.seed)
        cfg = predictions_config(config, data, sess.seed)
        run = partial(_predictions_record, name, data, train, cfg, provenance, record)
        rec = cached(name, cfg, run, provenance=provenance, force=force)
    print(rec.summary())
    return rec


def _predictions_record(name, data: Dataset, train, cfg, provenance, record: dict) -> Record:
    """Run ``train`` of :func:`record_predictions` (timing it); the new record."""
    start = time.perf_counter()
    out = train()
    wall = time.perf_counter() - start
    proba = _checked_proba(name, data, out)
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
        params=record["params"],
        trainable_params=record["params"],
        layers=record["layers"],
        reported=record["reported"],
        notes=record["notes"],
    )


def _checked_proba(name: str, data: Dataset, out) -> np.ndarray:
    """The test probabilities of ``train()``'s output ``out``, checked (shape, finite)."""
    k = data.num_classes
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
    return proba
