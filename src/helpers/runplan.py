"""Train one run of a notebook (or none) and log which runs it has: the hook of ``make train``.

Two environment variables, read each time a run reaches :func:`helpers.records.cached`:

``SUITE_ONLY_RUN``
    Where it is set, only the run of that name may train; every other run without a record is
    not trained and its call returns a :class:`SkippedRun` placeholder (NaN metrics, no model),
    so the notebook goes on to the runs after it. Set but empty: no run trains (listing).
``SUITE_RUNS_LOG``
    A file: every run that reaches the cache appends one JSON line with the notebook, profile,
    name, key, whether its record is here, and the 12-digit keys its settings name (a run that
    starts from another run's weights names that run's key).

``scripts/train.py`` lists a notebook's runs with ``SUITE_ONLY_RUN=""`` and then executes the
notebook once per missing run with ``SUITE_ONLY_RUN=<name>``. Without these variables nothing
changes. This module imports no deep-learning framework.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass

from .records import Record
from .session import current

ONLY_RUN = "SUITE_ONLY_RUN"
RUNS_LOG = "SUITE_RUNS_LOG"
_KEY = re.compile(r"\b[0-9a-f]{12}\b")


class NotTrainedHere(RuntimeError):
    """The model of a run that this execution of the notebook does not train."""


class _Filled(dict):
    """A dict that gives ``fill()`` for a key it does not hold (NaN metrics of a placeholder)."""

    def __init__(self, fill):
        super().__init__()
        self._fill = fill

    def __missing__(self, key):
        return self._fill()


@dataclass
class SkippedRun(Record):
    """The stand-in for a run that is not trained in this execution: every metric is NaN, the
    key is the run's own (so runs that start from it get their true keys), it has no model."""

    @property
    def model(self):
        raise NotTrainedHere(
            f"{self.name}: not trained in this execution ({ONLY_RUN}={os.environ.get(ONLY_RUN)!r})"
        )

    def summary(self) -> str:
        return f"{self.name}: not trained in this execution ({ONLY_RUN} names another run)"


def placeholder(name: str, config: dict, key: str) -> SkippedRun:
    """The :class:`SkippedRun` of run ``name`` with ``config`` and ``key`` in the current notebook."""
    sess, nan = current(), math.nan
    return SkippedRun(
        name=name, notebook=sess.notebook, profile=sess.profile.name, config=config,
        config_hash=key, history=_Filled(lambda: [nan]), epochs_run=0,
        test=_Filled(lambda: nan), confusion_matrix=[], per_class_accuracy=[], class_names=[],
        y_test_pred=[], wall_time_s=nan, epoch_times_s=[], params=0, trainable_params=0,
        layers=0, notes="not trained in this execution",
    )  # fmt: skip


def note(name: str, config: dict, key: str, recorded: bool) -> None:
    """Append run ``name`` to ``$SUITE_RUNS_LOG`` (where it is set)."""
    log = os.environ.get(RUNS_LOG)
    if not log:
        return
    sess = current()
    refs = sorted(set(_KEY.findall(json.dumps(config, sort_keys=True, default=str))) - {key})
    line = {"notebook": sess.notebook, "profile": sess.profile.name, "name": name, "key": key,
            "recorded": recorded, "refs": refs}  # fmt: skip
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


def skipped(name: str, config: dict, key: str) -> SkippedRun | None:
    """For a run without a record: ``None`` where it may train, else its placeholder."""
    note(name, config, key, recorded=False)
    only = os.environ.get(ONLY_RUN)
    if only is None or only == name:
        return None
    return placeholder(name, config, key)
