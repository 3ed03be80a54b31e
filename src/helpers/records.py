"""Experiment records: one JSON file per finished run, and the cache that reuses them.

A record lives at ``results/<profile>/<notebook>/<name>.json``. Its *key* (``config_hash``) is a
hash of the run's ``config``: what determines the result (model, compile and fit settings,
callbacks, seed, dataset name, derivation steps and split sizes). Where the data was read from,
its content hash, the backend, devices and library versions are *provenance*: stored in
``record.provenance`` and shown when the record is reused, never part of the key. So a record
trained with JAX on a GPU is reused by a TensorFlow re-render on a laptop, and the committed
records serve every clone.

The key also holds the version of the code that trains and evaluates
(``config["implementation"]``, stamped by :mod:`helpers.record_key`), so changing that code
retrains on purpose. A record is strict JSON: values that are NaN or infinite (a diverged run)
are stored as ``null`` and the record says ``"diverged": true``. Provenance holds no absolute
path of the machine: a path in the data folder is stored as ``$SUITE_DATA_DIR/<relative>``.

Faults name their culprit: an unreadable or malformed record raises :class:`RecordError` naming
the file and the field; a record written by a newer version of the suite raises
:class:`RecordVersionError` and is neither reused nor overwritten; two processes that make the
same record take turns through a per-run lock file (:func:`run_lock`).

This module imports no deep-learning framework: reading records (``helpers.report``) stays light.
:func:`cached` is the one cache mechanism every kind of experiment uses (Keras fits, NumPy
models, prediction-only runs).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write
from .session import current, library_versions, portable_paths

__all__ = ["RECORD_VERSION", "Record", "RecordError", "RecordVersionError", "atomic_write"]

RECORD_VERSION = 3
# The code version that made every record of version 2 (all made by helpers.training):
# upgrading such a record stamps it into the key as ``config["implementation"]``.
LEGACY_IMPLEMENTATION = "helpers.training v1"


class RecordError(ValueError):
    """An experiment record cannot be read; the message names the file and what to do."""


class RecordVersionError(RecordError):
    """A record written by a newer version of the suite: never reused, overwritten or deleted."""


class RunBusy(RuntimeError):
    """Another process is making the same record and did not finish in the time allowed."""


class _FieldError(RecordError):
    """A record field of the wrong type or missing; ``Record.load`` adds the file's name."""


@dataclass
class Record:
    """One finished run. Times are seconds; accuracies are fractions in [0, 1].

    ``y_test_pred`` (and ``y_train_pred`` where train metrics were asked for) are the predicted
    class indices ``(N,)`` in the order of the dataset's splits. :attr:`model` gives the trained
    Keras model of a record made by ``fit_and_record`` (not stored in the file).

    ``diverged`` is True when a loss or metric became NaN or infinite; such values are ``null``
    in the file and NaN here (plots leave gaps). ``record_version`` is the version of the file
    the record was read from; its fields are always in the current layout.
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
    diverged: bool = False
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
    def seed(self) -> int:
        """The seed the run was trained with (part of its key)."""
        return int(self.config.get("seed", 0))

    @property
    def run(self) -> str:
        """The run's name without the seed suffix (:func:`seeded_name`): the same for every seed."""
        suffix = f"_seed{self.seed}"
        return self.name.removesuffix(suffix) if self.seed else self.name

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
        """Provenance in words, e.g. ``image folder $SUITE_DATA_DIR/cifar10 on tensorflow/cpu:0,
        2026-11-22`` (paths as stored: relative to the data folder)."""
        p = self.provenance
        devices = ",".join(p.get("devices", [])) or "?"
        source = str(p.get("data_source", "?"))
        return f"{source} on {p.get('backend', '?')}/{devices}, {str(p.get('created', '?'))[:10]}"

    def summary(self) -> str:
        """One line: test (and last validation) accuracy, epochs, parameters, time, provenance."""
        rep = ""
        if self.reported and self.reported.get("test_accuracy") is not None:
            rep = f" (report: {self.reported['test_accuracy']:.3f})"
        val = self.history.get("val_accuracy")
        val_txt = f", last val accuracy {val[-1]:.4f}" if val else ""
        how = f"reused record made with {self.made_with()}" if self.reused else "trained"
        part = f" for {self.timed_epochs} of {self.epochs_run} epochs" if self.timed_in_part else ""
        div = ", DIVERGED (NaN/inf loss)" if self.diverged else ""
        return (
            f"{self.name}{div}: test accuracy {self.test['accuracy']:.4f}{rep}, test loss "
            f"{self.test.get('loss', float('nan')):.4f}{val_txt}, {self.epochs_run} epochs, "
            f"{self.params:,} params, {self.wall_time_s:.0f} s{part} ({self.seconds_per_epoch:.1f} s/epoch)"
            f" [{how}]"
        )

    def to_json(self) -> str:
        """The record as strict JSON: NaN and infinities become ``null``."""
        d = asdict(replace(self, trained_model=None, model_loader=None))
        for k in self._NOT_STORED:
            d.pop(k)
        return json.dumps(finite(d), indent=1, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        """A record from its JSON fields, checked field by field; older layouts are upgraded.

        A version-2 record gets the key of version 3 here (:func:`_upgrade_v2`) and keeps
        ``record_version == 2`` until it is written again. ``null`` metrics become NaN.

        Raises:
            RecordVersionError: a record of a newer version than :data:`RECORD_VERSION`.
            _FieldError: a version-1 record (no longer read: no record needs it).
            _FieldError: a field that is missing or of the wrong type (named).
        """
        if not isinstance(d, dict):
            raise _FieldError(f"the file holds a JSON {type(d).__name__}, not an object")
        version = d.get("record_version", 1)
        if isinstance(version, bool) or not isinstance(version, int):
            raise _FieldError(f"field 'record_version' is {version!r}; expected a whole number")
        if version > RECORD_VERSION:
            raise RecordVersionError(
                f"record version {version}, written by a newer version of the suite; this code "
                f"reads versions up to {RECORD_VERSION}"
            )
        if version < 2:
            raise _FieldError(
                f"record version {version}, which this suite no longer reads (it reads versions "
                f"2 to {RECORD_VERSION}); delete the file and run the experiment again"
            )
        d = dict(d)
        known = {f.name for f in fields(cls)} - set(cls._NOT_STORED)
        unknown = set(d) - known
        if unknown:
            raise _FieldError(f"unknown fields {sorted(unknown)}")
        _check_fields(d)
        if version == 2:
            d = _upgrade_v2(d)
        d = _with_nan(d)
        return cls(**d)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Record:
        """Read a record file.

        Raises:
            RecordVersionError: written by a newer suite (names the file and both versions).
            RecordError: unreadable, not JSON, or a field missing or of the wrong type (names
                the file and the field).
        """
        try:
            rec = cls.from_dict(json.loads(Path(path).read_text(), parse_constant=_nan_token))
        except RecordVersionError as err:
            raise RecordVersionError(
                f"Experiment record {path} has {err}. Update the helpers (use the suite that "
                "wrote it) to read it; this code leaves the file as it is."
            ) from err
        except _FieldError as err:
            raise RecordError(
                f"Cannot read experiment record {path}: {err}. Fix that field, or delete the "
                "file to train the run again."
            ) from err
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RecordError(
                f"Cannot read experiment record {path}: {err}. Restore the file (e.g. from git) "
                "or delete it to train the run again."
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


def _nan_token(token: str) -> float:
    """``NaN``/``Infinity`` in a record written before records were strict JSON."""
    return float(token.replace("Infinity", "inf"))


def finite(obj):
    """``obj`` (dicts, lists, NumPy numbers and arrays) with NaN and infinities as ``None``."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


def has_nonfinite(*values) -> bool:
    """True if a number in ``values`` (nested dicts and lists) is NaN or infinite."""
    for v in values:
        if isinstance(v, dict) and has_nonfinite(*v.values()):
            return True
        if isinstance(v, list | tuple) and has_nonfinite(*v):
            return True
        if isinstance(v, float | np.floating) and not math.isfinite(v):
            return True
    return False


# --------------------------------------------------------------------------- field checks

_NUM = (int, float)
# field: (allowed types, required); metric containers may hold null (a diverged value)
_FIELDS = {
    "name": (str, True),
    "notebook": (str, True),
    "profile": (str, True),
    "config": (dict, True),
    "config_hash": (str, True),
    "history": (dict, True),
    "epochs_run": (int, True),
    "test": (dict, True),
    "confusion_matrix": (list, True),
    "per_class_accuracy": (list, True),
    "class_names": (list, True),
    "y_test_pred": (list, True),
    "wall_time_s": (_NUM, True),
    "epoch_times_s": (list, True),
    "params": (int, True),
    "trainable_params": (int, True),
    "layers": (int, True),
    "provenance": (dict, False),
    "train": ((dict, type(None)), False),
    "y_train_pred": ((list, type(None)), False),
    "reported": ((dict, type(None)), False),
    "notes": (str, False),
    "diverged": (bool, False),
}


def _expect(ok: bool, where: str, value, what: str) -> None:
    if not ok:
        shown = "missing" if value is _MISSING else f"{type(value).__name__} {value!r:.60}"
        raise _FieldError(f"field {where!r} is {shown}; expected {what}")


_MISSING = object()


def _is(value, types) -> bool:
    """``isinstance`` where a bool is no number."""
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _check_items(items: list, where: str, types, what: str) -> None:
    for i, v in enumerate(items):
        _expect(_is(v, types), f"{where}[{i}]", v, what)


def _check_fields(d: dict) -> None:
    """Raise :class:`_FieldError` naming the first field that is missing or of a wrong type."""
    for name, (types, required) in _FIELDS.items():
        value = d.get(name, _MISSING)
        if value is _MISSING and not required:
            continue
        types = types if isinstance(types, tuple) else (types,)
        _expect(value is not _MISSING and _is(value, types), name, value, _names(types))
    accuracy = d["test"].get("accuracy", _MISSING)
    _expect(_is(accuracy, _NUM), "test.accuracy", accuracy, "a number")
    _check_metrics(d["test"], "test")
    for key, values in d["history"].items():
        _expect(isinstance(values, list), f"history.{key}", values, "a list of numbers")
        _check_items(values, f"history.{key}", _METRIC, "a number or null")
    for i, row in enumerate(d["confusion_matrix"]):
        _expect(isinstance(row, list), f"confusion_matrix[{i}]", row, "a list of counts")
        _check_items(row, f"confusion_matrix[{i}]", (int,), "a count")
    _check_items(d["per_class_accuracy"], "per_class_accuracy", (dict,), "an object")
    _check_items(d["class_names"], "class_names", (str,), "a class name")
    _check_items(d["y_test_pred"], "y_test_pred", (int,), "a class index")
    _check_items(d["epoch_times_s"], "epoch_times_s", _NUM, "seconds")
    if d.get("y_train_pred") is not None:
        _check_items(d["y_train_pred"], "y_train_pred", (int,), "a class index")
    if d.get("train") is not None:
        metrics = d["train"].get("metrics", _MISSING)
        _expect(isinstance(metrics, dict), "train.metrics", metrics, "an object")
        _check_metrics(metrics, "train.metrics")
    if d.get("reported") is not None:
        _check_metrics({k: d["reported"].get(k) for k in ("test_accuracy", "val_accuracy")},
                       "reported")  # fmt: skip
    prov = d.get("provenance", {})
    _expect(isinstance(prov.get("devices", []), list), "provenance.devices",
            prov.get("devices"), "a list of device names")  # fmt: skip


_METRIC = (int, float, type(None))


def _check_metrics(metrics: dict, where: str) -> None:
    """Every value of ``metrics`` is a number or null (a diverged value)."""
    for key, value in metrics.items():
        _expect(_is(value, _METRIC), f"{where}.{key}", value, "a number or null")


def _names(types: tuple) -> str:
    words = {str: "a string", dict: "an object", list: "a list", int: "a whole number",
             float: "a number", bool: "true or false", type(None): "null"}  # fmt: skip
    return " or ".join(dict.fromkeys(words[t] for t in types))


def _with_nan(d: dict) -> dict:
    """Checked fields with ``null`` metrics as NaN and ``diverged`` set where one is."""
    nan = float("nan")

    def floats(m: dict) -> dict:
        return {k: nan if v is None else v for k, v in m.items()}

    d = {**d, "history": {k: [nan if v is None else v for v in vals]
                          for k, vals in d["history"].items()},
         "test": floats(d["test"])}  # fmt: skip
    if d.get("train") is not None:
        d["train"] = {**d["train"], "metrics": floats(d["train"]["metrics"])}
    metrics = (d["history"], d["test"], (d.get("train") or {}).get("metrics"))
    d["diverged"] = bool(d.get("diverged")) or has_nonfinite(*metrics)
    return d


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
    """``config`` as it reads back from JSON (tuples become lists, NumPy numbers plain ones,
    NaN and infinities ``None``)."""
    return json.loads(json.dumps(finite(config), default=jsonable))


def make_key(config: dict) -> str:
    """The record key: a short hash of ``config`` (sorted keys, JSON)."""
    text = json.dumps(config, sort_keys=True, default=jsonable)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def seeded_name(name: str, seed: int) -> str:
    """The record name of run ``name`` trained with ``seed``: ``name`` itself for seed 0, else
    ``name_seed<seed>`` (so every seed has its own record, weights, logs and lock)."""
    return name if seed == 0 else f"{name}_seed{seed}"


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
    test = {k: float(v) if isinstance(v, np.floating) else v for k, v in test.items()}
    history = {m: [float(v) for v in vals] for m, vals in history.items()}
    return Record(
        name=name,
        notebook=sess.notebook,
        profile=sess.profile.name,
        config=config,
        config_hash=make_key(config),
        history=history,
        epochs_run=len(history.get("loss", [])),
        test=test,
        confusion_matrix=M.confusion(y_test, y_test_pred, k).tolist(),
        per_class_accuracy=M.per_class_accuracy(y_test, y_test_pred, class_names),
        class_names=list(class_names),
        y_test_pred=np.asarray(y_test_pred).tolist(),
        y_train_pred=None if y_train_pred is None else np.asarray(y_train_pred).tolist(),
        train=train,
        diverged=has_nonfinite(history, test, train and train["metrics"]),
        provenance={
            **provenance,
            "data_source": portable_paths(str(provenance.get("data_source", "?"))),
            "versions": library_versions(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        **fields_,
    )


def _lock_timeout() -> float:
    """Seconds to wait for another process's run: ``$SUITE_LOCK_TIMEOUT``, else as long as it
    takes (-1)."""
    text = os.environ.get("SUITE_LOCK_TIMEOUT", "").strip()
    try:
        return float(text) if text else -1.0
    except ValueError:
        raise ValueError(
            f"SUITE_LOCK_TIMEOUT={text!r}: give seconds (a number), or unset it to wait as long "
            "as the other process trains."
        ) from None


@contextmanager
def run_lock(name: str) -> Iterator[Path]:
    """Hold the lock of run ``name`` of the current notebook and profile (a file under
    ``checkpoints/``): one process at a time trains a run, writes its weights and its record.

    A second process prints who holds it and waits (``$SUITE_LOCK_TIMEOUT`` seconds, default
    without limit); it then finds the first one's record. The lock is the operating system's,
    so a process that dies releases it.

    Raises:
        RunBusy: the wait timed out; names the lock file and what to do.
    """
    from filelock import FileLock, Timeout  # noqa: PLC0415

    path = current().checkpoints_dir / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        wait = _lock_timeout()
        print(f"{name}: another process is training this run (lock {path}); waiting for it.")
        try:
            lock.acquire(timeout=wait)
        except Timeout as err:
            raise RunBusy(
                f"{name}: another process is still training this run (lock file {path}) after "
                f"{wait:g} s. Let it finish (its record is then reused) or stop it, then run "
                "this again."
            ) from err
    try:
        yield path
    finally:
        lock.release()


def refuse_newer(path: Path) -> None:
    """Raise :class:`RecordVersionError` if the record at ``path`` was written by a newer suite
    (it must not be overwritten); an unreadable file passes (it may be replaced)."""
    try:
        version = json.loads(path.read_text()).get("record_version", 1)
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(version, int) and version > RECORD_VERSION:
        Record.load(path)  # raises, naming the file and both versions


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
    ``config`` and ``force`` is off (default: the session's ``force_retrain``). Otherwise
    ``run()`` makes a new record, which is written atomically over the old file. A version-2
    record of the same run (its key upgraded: :func:`_upgrade_v2`) is rewritten in the current
    version instead of being run again. The whole check-run-write holds the run's lock
    (:func:`run_lock`), so a second process waits and then reuses it. ``provenance`` (where and
    how ``run()`` would make the record) is not needed here since version-1 records are no
    longer read; it is still accepted so that callers need not change. ``$SUITE_ONLY_RUN`` can
    keep ``run()`` from running for a run without a record (:mod:`helpers.runplan`).

    Raises:
        RecordVersionError: the stored record is of a newer version (even with ``force``).
        RecordError: the stored record is unreadable or malformed (``force`` replaces it).
    """
    from . import runplan  # noqa: PLC0415  (it imports Record from here)

    force = current().force_retrain if force is None else force
    config = normalized(config)
    key = make_key(config)
    path = record_path(name)
    with run_lock(name):
        refuse_newer(path)
        if path.is_file() and not force:
            rec = Record.load(path)
            if rec.config_hash == key:
                if rec.record_version < RECORD_VERSION:
                    rec = _rewrite(rec)
                rec.reused = True
                runplan.note(name, config, key, recorded=True)
                return rec
        if (skipped := runplan.skipped(name, config, key)) is not None:
            return skipped  # another run trains in this execution (make train)
        rec = run()
        if rec.config_hash != key:
            raise RuntimeError(
                f"{name}: run() made a record for another config ({rec.config_hash})."
            )
        atomic_write(path, rec.to_json())
    rec.path = str(path)
    return rec


def _rewrite(rec: Record) -> Record:
    """``rec`` (read from an older version's file, fields upgraded) written as the current
    version over its file; returns it."""
    new = replace(rec, record_version=RECORD_VERSION)
    atomic_write(Path(rec.path), new.to_json())
    return new


# --------------------------------------------------------------------------- older versions

_UPGRADED: dict[str, str] = {}  # old key -> new key of the records upgraded in this process


def _translate(config: dict) -> dict:
    """``config`` with the keys of records upgraded in this process replaced by their new keys
    (settings of runs that start from another run name its key)."""
    text = json.dumps(config)
    for before, after in _UPGRADED.items():
        text = text.replace(before, after)
    return json.loads(text)


def _upgrade_v2(d: dict) -> dict:
    """A checked version-2 record under the key of version 3.

    Version 3 adds the training code's version to the key: every version-2 record was made by
    :data:`LEGACY_IMPLEMENTATION`, which is stamped in. Keys of records upgraded earlier in
    this process that appear in its settings are translated; the old key is kept as
    ``provenance["upgraded_from_key"]``. Absolute paths leave the provenance
    (:func:`helpers.session.portable_paths`). ``record_version`` stays 2 until it is written.
    """
    config = _translate({**d["config"], "implementation": LEGACY_IMPLEMENTATION})
    key = make_key(config)
    _UPGRADED[d["config_hash"]] = key
    provenance = _upgraded_provenance(d.get("provenance", {}), d["config_hash"])
    return {**d, "config": config, "config_hash": key, "provenance": provenance}


def _upgraded_provenance(provenance: dict, old_key: str) -> dict:
    """``provenance`` of an upgraded record: no absolute path, and the key it had before."""
    data_source = portable_paths(str(provenance.get("data_source", "?")))
    return {**provenance, "data_source": data_source, "upgraded_from_key": old_key}


def upgrade_files(root: Path | None = None) -> list[Path]:
    """Rewrite every version-2 record under ``<root>/results/`` as version 3; returns them.

    Records whose settings name other records' keys get the new keys whatever the order of the
    files: the upgrade is repeated until no key changes.
    """
    paths = sorted(((root or current().root) / "results").glob("*/*/*.json"))
    old = [p for p in paths if Record.load(p).record_version == 2]
    recs: list[Record] = []
    for _ in range(len(old) + 1):  # a chain of n runs settles within n passes
        before = dict(_UPGRADED)
        recs = [Record.load(p) for p in old]
        if _UPGRADED == before:
            break
    for rec in recs:
        _rewrite(rec)
    return old


def load_records(
    notebook: str | None = None, profile: str | None = None, root: Path | None = None
) -> list[Record]:
    """All records under ``results/`` (optionally of one notebook and/or profile), sorted by path."""
    base = (root or current().root) / "results"
    pattern = f"{profile or '*'}/{notebook or '*'}/*.json"
    return [Record.load(p) for p in sorted(base.glob(pattern))]


def main(argv: list[str] | None = None) -> None:
    """``python -m helpers.records --upgrade``: rewrite the records under ``results/`` in the
    current version (nothing is trained), then check that every record loads."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="rewrite older records")
    args = parser.parse_args(argv)
    if args.upgrade:
        print(f"upgraded {len(upgrade_files())} record(s) to version {RECORD_VERSION}")
    recs = load_records()
    print(f"{len(recs)} record(s) load; versions {sorted({r.record_version for r in recs})}")


if __name__ == "__main__":
    main()
