"""Experiment records: one JSON file per finished run, and the cache that reuses them.

A record lives at ``results/<profile>/<notebook>/<name>.json``. Its *key* (``config_hash``) is a
hash of the run's ``config``: what determines the result (model, compile and fit settings,
callbacks, seed, dataset name, derivation steps and split sizes). Where the data was read from,
its content hash, the backend, devices and library versions are *provenance*: stored in
``record.provenance`` and shown when the record is reused, never part of the key. So a record
trained with JAX on a GPU is reused by a TensorFlow re-render on a laptop, and the committed
records serve every clone.

This module imports no deep-learning framework: reading records (``helpers.report``) stays light.
:func:`cached` is the one cache mechanism every kind of experiment uses (Keras fits, NumPy
models, prediction-only runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .session import current, library_versions

RECORD_VERSION = 2


class RecordError(ValueError):
    """An experiment record cannot be read; the message names the file and what to do."""


@dataclass
class Record:
    """One finished run. Times are seconds; accuracies are fractions in [0, 1].

    ``y_test_pred`` (and ``y_train_pred`` where train metrics were asked for) are the predicted
    class indices ``(N,)`` in the order of the dataset's splits. :attr:`model` gives the trained
    Keras model of a record made by ``fit_and_record`` (not stored in the file).
    """

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
    provenance: dict = field(default_factory=dict)
    train: dict | None = None
    y_train_pred: list[int] | None = None
    reported: dict | None = None
    notes: str = ""
    record_version: int = RECORD_VERSION
    reused: bool = field(default=False, compare=False)
    path: str = field(default="", compare=False)
    trained_model: Any = field(default=None, compare=False, repr=False)
    model_loader: Callable[[], Any] | None = field(default=None, compare=False, repr=False)

    _NOT_STORED = ("reused", "path", "trained_model", "model_loader")

    @property
    def model(self):
        """The trained model: the one just trained, or for a reused record one built and given
        its saved weights, or, where they are not saved here, trained again on first use (which
        rewrites the record). ``None`` for records of models that are not Keras models."""
        if self.trained_model is None and self.model_loader is not None:
            self.trained_model = self.model_loader()
        return self.trained_model

    @property
    def test_accuracy(self) -> float:
        return self.test["accuracy"]

    @property
    def data(self) -> dict:
        """The data part of the key: dataset name, steps, classes, split sizes, sample shape."""
        return self.config.get("data", {})

    @property
    def backend(self) -> str:
        return self.provenance.get("backend", "?")

    @property
    def seconds_per_epoch(self) -> float:
        """Median time of one epoch (training and validation), in seconds."""
        return float(np.median(self.epoch_times_s)) if self.epoch_times_s else float("nan")

    @property
    def timed_epochs(self) -> int:
        """Epochs whose times the record holds: all of them, unless the run was resumed from a
        backup after an interruption, which times only the epochs after it."""
        return len(self.epoch_times_s)

    @property
    def timed_in_part(self) -> bool:
        """True when ``wall_time_s`` covers only some of the epochs (a resumed run)."""
        return 0 < self.timed_epochs < self.epochs_run

    def made_with(self) -> str:
        """Provenance in words, e.g. ``image folder /data/cifar10 on tensorflow/cpu:0, 2026-11-22``."""
        p = self.provenance
        devices = ",".join(p.get("devices", [])) or "?"
        return (
            f"{p.get('data_source', '?')} on {p.get('backend', '?')}/{devices}, "
            f"{str(p.get('created', '?'))[:10]}"
        )

    def summary(self) -> str:
        """One line: test (and last validation) accuracy, epochs, parameters, time, provenance."""
        rep = ""
        if self.reported and self.reported.get("test_accuracy") is not None:
            rep = f" (report: {self.reported['test_accuracy']:.3f})"
        val = self.history.get("val_accuracy")
        val_txt = f", last val accuracy {val[-1]:.4f}" if val else ""
        how = f"reused record made with {self.made_with()}" if self.reused else "trained"
        part = f" for {self.timed_epochs} of {self.epochs_run} epochs" if self.timed_in_part else ""
        return (
            f"{self.name}: test accuracy {self.test['accuracy']:.4f}{rep}, test loss "
            f"{self.test.get('loss', float('nan')):.4f}{val_txt}, {self.epochs_run} epochs, "
            f"{self.params:,} params, {self.wall_time_s:.0f} s{part} ({self.seconds_per_epoch:.1f} s/epoch)"
            f" [{how}]"
        )

    def to_json(self) -> str:
        d = asdict(replace(self, trained_model=None, model_loader=None))
        for k in self._NOT_STORED:
            d.pop(k)
        return json.dumps(d, indent=1, default=jsonable)

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        """A record from its JSON fields; a version-1 record (provenance in top-level fields,
        data source inside the key) is read as well and keeps ``record_version == 1``."""
        d = dict(d)
        if d.get("record_version", 1) < 2:
            data = d.pop("data", {}) or {}
            d["provenance"] = {
                "data_source": data.get("source"),
                "stand_in": data.get("stand_in", False),
                "fingerprint": data.get("fingerprint"),
                **{k: d.pop(k) for k in ("backend", "devices", "versions", "created") if k in d},
            }
            d["record_version"] = 1
        known = {f.name for f in fields(cls)} - set(cls._NOT_STORED)
        unknown = set(d) - known
        if unknown:
            raise TypeError(f"unknown fields {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Record:
        """Read a record file; raises :class:`RecordError` naming the file if it is unreadable."""
        try:
            rec = cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as err:
            raise RecordError(
                f"Cannot read experiment record {path}: {err}. Delete it to train again."
            ) from err
        rec.path = str(path)
        return rec

    # ------------------------------------------------------------------ accessors for notebooks

    @property
    def batch_size(self) -> int | None:
        """The batch size the run was fitted with."""
        return self.config.get("batch_size")

    @property
    def optimizer_name(self) -> str:
        """The optimizer's class, e.g. ``"Adagrad"``."""
        return self.config.get("compile", {}).get("optimizer", {}).get("class", "?")

    @property
    def loss_name(self) -> str:
        """The loss the run was compiled with, e.g. ``"categorical_crossentropy"``."""
        return str(self.config.get("compile", {}).get("loss", "?"))

    @property
    def dense_activations(self) -> list[str]:
        """The activation of every Dense layer, input to output."""
        arch = self.config.get("architecture", [])
        return [row["config"].get("activation", "?") for row in arch if row["class"] == "Dense"]

    @property
    def weight_layers(self) -> int:
        """Dense and Conv2D layers, the way the reports count a network's layers."""
        return sum(
            row["class"] in ("Dense", "Conv2D") for row in self.config.get("architecture", [])
        )

    def test_metric(self, name: str) -> float:
        """A test metric: ``accuracy``, ``loss``, ``precision_macro``, ``f1_macro``, ``auc_macro``..."""
        return self.test[name]

    def reported_value(self, key: str):
        """The report's number ``key`` (``test_accuracy``, ``val_accuracy``, ``epochs``...), or
        None where the report gives none."""
        return (self.reported or {}).get(key)

    @property
    def train_accuracy(self) -> float | None:
        """Accuracy on the training set, evaluated after training (None where not asked for)."""
        return self.train["metrics"].get("accuracy") if self.train else None

    @property
    def train_confusion_matrix(self) -> list[list[int]] | None:
        return self.train["confusion_matrix"] if self.train else None

    @property
    def train_per_class_accuracy(self) -> list[dict] | None:
        return self.train["per_class_accuracy"] if self.train else None

    def last(self, metric: str = "val_accuracy") -> float:
        """The last epoch's value of a history metric."""
        return self.history[metric][-1]

    def best(self, metric: str = "val_accuracy") -> tuple[float, int]:
        """The best value of a history metric and its epoch (1-based): the highest for
        accuracies, the lowest for losses."""
        values = np.asarray(self.history[metric], dtype=float)
        i = int(np.nanargmin(values) if "loss" in metric else np.nanargmax(values))
        return float(values[i]), i + 1


def jsonable(obj):
    """JSON fallback for NumPy scalars and arrays (and ``str()`` of anything else)."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def normalized(config: dict) -> dict:
    """``config`` as it reads back from JSON (tuples become lists, NumPy numbers plain ones)."""
    return json.loads(json.dumps(config, default=jsonable))


def make_key(config: dict) -> str:
    """The record key: a short hash of ``config`` (sorted keys, JSON)."""
    text = json.dumps(config, sort_keys=True, default=jsonable)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: never a half-written file."""
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


def new_record(
    name: str,
    config: dict,
    *,
    y_test,
    y_test_pred,
    class_names: list[str],
    test: dict,
    history: dict[str, list[float]],
    provenance: dict,
    y_train=None,
    y_train_pred=None,
    train_metrics: dict | None = None,
    **fields_,
) -> Record:
    """A :class:`Record` of the current session. Confusion matrices and per-class accuracies are
    computed here from the labels ``(N,)`` and predictions ``(N,)``; train ones only where
    ``y_train_pred`` is given. ``fields_`` are the remaining :class:`Record` fields (times,
    parameter counts, reported numbers, notes)."""
    from . import metrics as M  # noqa: PLC0415  (scikit-learn: only when a record is made)

    sess = current()
    k = len(class_names)
    train = None
    if y_train_pred is not None:
        train = {
            "metrics": train_metrics or {},
            "confusion_matrix": M.confusion(y_train, y_train_pred, k).tolist(),
            "per_class_accuracy": M.per_class_accuracy(y_train, y_train_pred, class_names),
        }
    config = normalized(config)
    return Record(
        name=name,
        notebook=sess.notebook,
        profile=sess.profile.name,
        config=config,
        config_hash=make_key(config),
        history={m: [float(v) for v in vals] for m, vals in history.items()},
        epochs_run=len(history.get("loss", [])),
        test=test,
        confusion_matrix=M.confusion(y_test, y_test_pred, k).tolist(),
        per_class_accuracy=M.per_class_accuracy(y_test, y_test_pred, class_names),
        class_names=list(class_names),
        y_test_pred=np.asarray(y_test_pred).tolist(),
        y_train_pred=None if y_train_pred is None else np.asarray(y_train_pred).tolist(),
        train=train,
        provenance={
            **provenance,
            "versions": library_versions(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        **fields_,
    )


def cached(
    name: str,
    config: dict,
    run: Callable[[], Record],
    *,
    provenance: dict,
    force: bool | None = None,
) -> Record:
    """The record ``name`` of the current notebook for ``config``: reused or made by ``run()``.

    A stored record is reused (``reused=True``, nothing is run) when its key equals the key of
    ``config`` and ``force`` is off (default: the session's ``force_retrain``). Otherwise ``run()`` makes a new record, which is
    written atomically over the old file. A version-1 record that describes the same run
    (see :func:`upgrade`) is rewritten with the new key instead of being run again.
    """
    force = current().force_retrain if force is None else force
    config = normalized(config)
    key = make_key(config)
    path = record_path(name)
    if path.is_file() and not force:
        rec = Record.load(path)
        if rec.record_version < RECORD_VERSION:
            rec = upgrade(rec, config, provenance) or rec
        if rec.config_hash == key:
            rec.reused = True
            return rec
    rec = run()
    if rec.config_hash != key:
        raise RuntimeError(f"{name}: run() made a record for another config ({rec.config_hash}).")
    atomic_write(path, rec.to_json())
    rec.path = str(path)
    return rec


# --------------------------------------------------------------------------- version 1 -> 2

_UPGRADED: dict[str, str] = {}  # old key -> new key of the records upgraded in this process


def upgrade(rec: Record, config: dict, provenance: dict) -> Record | None:
    """Rewrite a version-1 record under the key of ``config`` if it describes the same run.

    Version-1 keys hashed the data's source (an absolute path) and content hash. A v1 record is
    the same run when its data content hash equals this data's (``provenance["fingerprint"]``)
    and every other setting matches ``config`` (settings new in v2 aside: ``callbacks`` must be
    empty, train predictions must be there if ``evaluate_train`` asks for them). Keys of
    records upgraded earlier in this process that appear in its settings (runs that start from
    another run) are translated. Returns the upgraded record (also written to its file), or
    ``None`` when it is another run.
    """
    old = rec.config
    if not old or rec.provenance.get("fingerprint") != provenance.get("fingerprint"):
        return None
    if rec.class_names != config.get("data", {}).get("classes", rec.class_names):
        return None
    if config.get("callbacks") or (config.get("evaluate_train") and rec.y_train_pred is None):
        return None
    drop = ("data", "callbacks", "evaluate_train")
    old_text = json.dumps({k: v for k, v in old.items() if k not in drop}, sort_keys=True)
    for before, after in _UPGRADED.items():
        old_text = old_text.replace(before, after)
    if json.loads(old_text) != {k: v for k, v in config.items() if k not in drop}:
        return None
    provenance = {**rec.provenance, "upgraded_from_key": rec.config_hash}
    new = Record.from_dict(
        {
            **json.loads(rec.to_json()),
            "config": config,
            "config_hash": make_key(config),
            "provenance": provenance,
            "record_version": RECORD_VERSION,
        }
    )
    _UPGRADED[rec.config_hash] = new.config_hash
    atomic_write(Path(rec.path), new.to_json())
    new.path = rec.path
    return new


def load_records(
    notebook: str | None = None, profile: str | None = None, root: Path | None = None
) -> list[Record]:
    """All records under ``results/`` (optionally of one notebook and/or profile), sorted by path."""
    base = (root or current().root) / "results"
    pattern = f"{profile or '*'}/{notebook or '*'}/*.json"
    return [Record.load(p) for p in sorted(base.glob(pattern))]
