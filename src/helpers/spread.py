"""The spread of a result over seeds: every seed's value, their mean and standard deviation, and
which differences between settings exceed that spread.

One training run proves little: the same settings trained from other initial weights (and other
shuffles and validation splits) can end several points apart, far more than the test-set standard
error says. A notebook therefore trains each setting with several seeds
(``fit_and_record(..., seed=s)``) and compares settings like this::

    groups = {"SGD": [rec_s0, rec_s1, rec_s2], "Adam": [...]}
    spread.table(groups)                 # seed 0, seed 1, seed 2, mean, sd, n per setting
    plotting.plot_seeds(groups)          # every seed a dot, mean ± sd a bar
    Markdown(spread.ranking(groups))     # which gaps exceed the spread, in words

The rule for claiming that one setting beats another: the gap between their means is larger than
the sum of their standard deviations (the two mean ± sd intervals do not overlap). With a single
seed the spread is unknown and no ranking is claimed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd


def accuracy(rec) -> float:
    """The value compared by default: test accuracy (a fraction)."""
    return rec.test_accuracy


def by_run(records: Iterable) -> dict[str, list]:
    """Records grouped by run name without the seed suffix (``rec.run``), seeds in order."""
    groups: dict[str, list] = {}
    for rec in sorted(records, key=lambda r: (r.run, r.seed)):
        groups.setdefault(rec.run, []).append(rec)
    return groups


def stats(values: Sequence[float]) -> dict[str, float]:
    """``mean``, ``sd`` (sample standard deviation, NaN for one value) and ``n`` of ``values``."""
    v = np.asarray(values, dtype=float)
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
    return {"mean": float(np.mean(v)), "sd": sd, "n": len(v)}


def table(
    groups: Mapping[str, Sequence], value: Callable = accuracy, digits: int = 3
) -> pd.DataFrame:
    """One row per setting: the value of every seed (columns ``seed <s>``), mean, sd and n.

    ``groups`` maps a label to that setting's records (one per seed); ``value(rec)`` is what is
    compared (default: test accuracy).
    """
    rows = {}
    for label, recs in groups.items():
        row = {f"seed {r.seed}": round(value(r), digits) for r in recs}
        s = stats([value(r) for r in recs])
        row |= {"mean": round(s["mean"], digits), "sd": round(s["sd"], digits), "n": s["n"]}
        rows[label] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    seeds = sorted((c for c in frame.columns if c.startswith("seed ")), key=lambda c: int(c[5:]))
    return frame[[*seeds, "mean", "sd", "n"]]


def exceeds_spread(a: Sequence[float], b: Sequence[float]) -> bool | None:
    """Whether the gap between the means of ``a`` and ``b`` is larger than the sum of their
    standard deviations; ``None`` when either has a single value (spread unknown)."""
    sa, sb = stats(a), stats(b)
    if sa["n"] < 2 or sb["n"] < 2:
        return None
    return abs(sa["mean"] - sb["mean"]) > sa["sd"] + sb["sd"]


def mean_sd(values: Sequence[float], digits: int = 3, percent: bool = False) -> str:
    """``values`` as text: ``"0.718 ± 0.007"`` (mean ± sample sd), or the mean alone for one value.

    ``percent=True`` scales fractions to percent and appends the unit:
    ``mean_sd([0.97, 0.98], 2, percent=True)`` is ``"97.50 ± 0.71 %"``.
    """
    s = stats(values)
    scale, unit = (100.0, " %") if percent else (1.0, "")
    text = f"{scale * s['mean']:.{digits}f}"
    if s["n"] > 1:
        text += f" ± {scale * s['sd']:.{digits}f}"
    return text + unit


def ranking(
    groups: Mapping[str, Sequence], value: Callable = accuracy, what: str = "test accuracy"
) -> str:
    """Markdown: the settings from best to worst mean, and for each neighbouring pair whether
    the gap exceeds the spread over seeds (the only case in which a ranking is claimed)."""
    values = {label: [value(r) for r in recs] for label, recs in groups.items()}
    order = sorted(values, key=lambda k: -stats(values[k])["mean"])
    n = sorted({len(v) for v in values.values()})
    if n == [1]:
        best = order[0]
        return (
            f"One seed per setting, so the spread over seeds is unknown and no ranking is "
            f"claimed; the highest {what} is {best}'s ({values[best][0]:.3f})."
        )
    parts = []
    for hi, lo in zip(order, order[1:], strict=False):
        sh, sl = stats(values[hi]), stats(values[lo])
        verdict = exceeds_spread(values[hi], values[lo])
        gap = 100 * (sh["mean"] - sl["mean"])
        word = (
            "exceeds"
            if verdict
            else ("is within" if verdict is False else "cannot be compared with")
        )
        parts.append(
            f"{hi} ({mean_sd(values[hi])}) over {lo} ({mean_sd(values[lo])}): {gap:+.1f} points, "
            f"{word} the spread"
        )
    seeds = "–".join(str(k) for k in (n[0], n[-1])) if len(n) > 1 else str(n[0])
    return (
        f"Mean ± sd of the {what} over {seeds} seeds, best first; a gap is called a difference "
        "only where it exceeds the sum of the two standard deviations:\n\n- " + "\n- ".join(parts)
    )
