"""One sentence that reads a figure, written from the numbers the figure plots.

Every figure of a notebook is followed by such a sentence, so that each number in the prose is
printed by code (it changes with the profile and the records) rather than typed by hand::

    from IPython.display import Markdown
    plotting.plot_history(runs, save="curves")
    Markdown(readings.history(runs))

:func:`show` displays a figure and its sentence together, for helpers that draw several figures.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

import numpy as np


def history_of(run) -> Mapping[str, Sequence[float]]:
    """A history dict from a record, a Keras ``History`` or a plain dict."""
    if hasattr(run, "history") and isinstance(run.history, Mapping):
        return run.history
    return run


def _curve_facts(hist: Mapping[str, Sequence[float]], metric: str) -> dict | None:
    """Last training value, best and last validation value (and its epoch) of one run."""
    val = hist.get(f"val_{metric}")
    if not val:
        return None
    values = np.asarray(val, dtype=float)
    lower_is_better = "loss" in metric
    best = int(np.nanargmin(values) if lower_is_better else np.nanargmax(values))
    train = hist.get(metric)
    return {
        "best": float(values[best]),
        "best_epoch": best + 1,
        "last": float(values[-1]),
        "epochs": len(values),
        "train": float(train[-1]) if train else float("nan"),
    }


def _one_run(label: str, facts: dict, metric: str, loss: dict | None) -> str:
    text = (
        f"**{label}**: validation {metric} is best at {facts['best']:.3f} (epoch "
        f"{facts['best_epoch']} of {facts['epochs']}) and ends at {facts['last']:.3f}, against "
        f"{facts['train']:.3f} on the training data"
    )
    if loss and loss["best_epoch"] < loss["epochs"]:
        text += (
            f"; its validation loss is lowest at epoch {loss['best_epoch']} and ends "
            f"{loss['last'] - loss['best']:.3f} higher"
        )
    return text + "."


def history(runs: Mapping[str, object], metric: str = "accuracy") -> str:
    """Reads :func:`helpers.plotting.plot_history`: for one run its best and last validation
    value and where its validation loss turned; for several, which ends highest and lowest and
    which ends with the widest gap between training and validation."""
    facts = {label: _curve_facts(history_of(run), metric) for label, run in runs.items()}
    facts = {label: f for label, f in facts.items() if f is not None}
    if not facts:
        last = {label: history_of(run)[metric][-1] for label, run in runs.items()}
        parts = ", ".join(f"**{label}** {value:.3f}" for label, value in last.items())
        return f"Training {metric} after the last epoch: {parts}."
    if len(facts) == 1:
        (label, f), run = next(iter(facts.items())), next(iter(runs.values()))
        return _one_run(label, f, metric, _curve_facts(history_of(run), "loss"))
    hi = max(facts, key=lambda k: facts[k]["last"])
    lo = min(facts, key=lambda k: facts[k]["last"])
    gap = max(facts, key=lambda k: facts[k]["train"] - facts[k]["last"])
    g = facts[gap]
    return (
        f"At the last epoch **{hi}** has the highest validation {metric} "
        f"({facts[hi]['last']:.3f}) and **{lo}** the lowest ({facts[lo]['last']:.3f}); **{gap}** ends with the widest gap between "
        f"training and validation ({g['train']:.3f} against {g['last']:.3f})."
    )


def confusion(cm, class_names: Sequence[str], part: str | None = None) -> str:
    """Reads :func:`helpers.plotting.plot_confusion` (rows true, columns predicted): the most
    frequent mistake, and the classes recognised best and worst; ``part`` names the split."""
    cm = np.asarray(cm, dtype=int)
    totals = cm.sum(axis=1)
    recall = np.divide(np.diag(cm), totals, out=np.zeros(len(cm)), where=totals > 0)
    best, worst = int(np.argmax(recall)), int(np.argmin(recall))
    classes = (
        f"{class_names[best]} is recognised best ({recall[best]:.1%}) and "
        f"{class_names[worst]} worst ({recall[worst]:.1%})"
    )
    off = cm - np.diag(np.diag(cm))
    if off.sum() == 0:
        text = f"every image is classified correctly; {classes}."
    else:
        t, p = np.unravel_index(int(np.argmax(off)), off.shape)
        text = (
            f"the most frequent mistake is {class_names[t]} taken for {class_names[p]} "
            f"({off[t, p]:,} of the {totals[t]:,} images of {class_names[t]}); {classes}."
        )
    text = f"on the {part} set, {text}" if part else text
    return text[0].upper() + text[1:]


def bars(values: Mapping[str, float], reported: Mapping[str, float] | None = None) -> str:
    """Reads :func:`helpers.plotting.plot_bars`: the highest and lowest bar and, with the
    report's values, the largest difference from the report."""
    hi = max(values, key=values.get)
    lo = min(values, key=values.get)
    text = f"**{hi}** scores highest ({values[hi]:.3f}) and **{lo}** lowest ({values[lo]:.3f})"
    diffs = {k: values[k] - v for k, v in (reported or {}).items() if v is not None and k in values}
    if diffs:
        far = max(diffs, key=lambda k: abs(diffs[k]))
        side = "below" if diffs[far] < 0 else "above"
        text += f"; **{far}** is furthest from the report, {abs(diffs[far]):.3f} {side} it"
    return text + "."


def show(fig, sentence: str) -> None:
    """Display ``fig`` and then ``sentence`` (Markdown) in the notebook, in that order."""
    from IPython.display import Markdown, display  # noqa: PLC0415  (only inside a notebook)

    display(fig)
    display(Markdown(sentence))


def source(*objects) -> None:
    """Display the source code of helper functions or classes in the notebook (Markdown).

    For the code a notebook teaches that must also live in the package (the benchmark and the
    tests use it too): the reader sees the one real copy instead of a second one in the notebook.
    """
    from IPython.display import Markdown, display  # noqa: PLC0415  (only inside a notebook)

    text = "\n\n".join(inspect.getsource(o).rstrip() for o in objects)
    display(Markdown(f"```python\n{text}\n```"))
