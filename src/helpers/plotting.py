"""Figures: training curves, confusion heatmaps, sample grids, comparison bars.

Every function returns the matplotlib ``Figure`` and, when ``save`` names a file stem, also
writes it as ``figures/<notebook>/<save>.png`` (the notebook of the current session).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from . import readings, spread
from .files import atomic_path
from .readings import history_of
from .session import current


def save_figure(fig, name: str, notebook: str | None = None) -> Path:
    """Write ``fig`` to ``figures/<notebook>/<name>.png`` (100 dpi) and return the path."""
    sess = current()
    folder = sess.figures_dir if notebook is None else sess.root / "figures" / notebook
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    with atomic_path(path) as tmp:  # a figure is replaced whole or not at all
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    return path


def _finish(fig, title: str | None, save: str | None):
    """Title, tight layout and, when ``save`` names a file stem, the PNG under figures/."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if save:
        save_figure(fig, save)
    return fig


def plot_history(
    runs: Mapping[str, object],
    metrics: Sequence[str] = ("accuracy", "loss"),
    title: str | None = None,
    save: str | None = None,
):
    """Train (solid) and validation (dashed) curves of one or several runs, one panel a metric.

    Values that are NaN, infinite or ``None`` (a diverged run) leave gaps in the curves, and the
    legend says ``(diverged)`` for a record that diverged.

    Args:
        runs: ``{label: record | keras History | {"accuracy": [...], "val_accuracy": [...]}}``;
            a single run can be passed as ``{"model": record}``.
        metrics: history keys to plot, without the ``val_`` prefix.
        title: the figure's title.
        save: file stem under ``figures/<notebook>/``.
    """
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)  # "loss" is one metric
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, run) in enumerate(runs.items()):
        hist = history_of(run)
        color = colors[i % len(colors)]
        label = f"{label} (diverged)" if getattr(run, "diverged", False) is True else label
        for ax, metric in zip(axes[0], metrics, strict=True):
            for key, style, part in ((metric, "-", "train"), (f"val_{metric}", "--", "val")):
                if key not in hist:
                    continue
                values = np.asarray(hist[key], dtype=float)  # None becomes NaN: a gap
                values[~np.isfinite(values)] = np.nan
                epochs = np.arange(1, len(values) + 1)
                marker = "o" if len(epochs) < 3 else None  # a one-epoch run is a point, not a line
                ax.plot(
                    epochs,
                    values,
                    color=color,
                    linestyle=style,
                    marker=marker,
                    label=f"{label} {part}",
                )
    for ax, metric in zip(axes[0], metrics, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _finish(fig, title, save)


def plot_confusion(
    cm,
    class_names: Sequence[str],
    title: str = "Confusion matrix",
    normalize: bool = False,
    save: str | None = None,
):
    """Seaborn heatmap of a confusion matrix ``(K, K)`` (rows true, columns predicted).

    With ``normalize=True`` every row is divided by its total (recall per class).
    """
    cm = np.asarray(cm, dtype=float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.6 * k + 2), max(3.8, 0.55 * k + 1.5)))
    sns.heatmap(
        shown,
        annot=k <= 12,
        fmt=".2f" if normalize else ".0f",
        cmap="Blues",
        xticklabels=class_names,
        yticklabels=class_names,
        cbar=True,
        ax=ax,
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _finish(fig, None, save)


def plot_samples(
    images: np.ndarray,
    y_true,
    class_names: Sequence[str],
    y_pred=None,
    n: int = 16,
    cols: int = 8,
    seed: int = 0,
    title: str | None = None,
    save: str | None = None,
):
    """A grid of ``n`` images titled ``"pred (true)"`` (or just the true class without ``y_pred``).

    Wrong predictions are titled in red. ``images`` is ``(N, H, W[, C])``, uint8 or floats in [0, 1].
    """
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(images), size=min(n, len(images)), replace=False)
    rows = int(np.ceil(len(idx) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), idx, strict=False):
        img = images[i]
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]  # (H, W, 1) grayscale: drawn in gray, not in a colour map
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        true = class_names[int(y_true[i])]
        if y_pred is None:
            ax.set_title(true, fontsize=8)
        else:
            pred = class_names[int(y_pred[i])]
            ax.set_title(f"{pred} ({true})", fontsize=8, color="black" if pred == true else "red")
    return _finish(fig, title, save)


def plot_bars(
    values: Mapping[str, float],
    reported: Mapping[str, float] | None = None,
    ylabel: str = "test accuracy",
    title: str | None = None,
    save: str | None = None,
):
    """Bar chart of one value per experiment, with the report's value beside it where given."""
    labels = list(values)
    x = np.arange(len(labels))
    width = 0.4 if reported else 0.6
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(labels) + 2), 3.8))
    bars = ax.bar(
        x - (width / 2 if reported else 0), [values[k] for k in labels], width, label="this suite"
    )
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    if reported:
        rep = [np.nan if reported.get(k) is None else reported[k] for k in labels]
        rbars = ax.bar(x + width / 2, rep, width, label="report", alpha=0.6)
        ax.bar_label(rbars, fmt="%.3f", fontsize=8)
        ax.legend()
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _finish(fig, None, save)


def plot_seeds(
    groups: Mapping[str, Sequence],
    reported: Mapping[str, float] | None = None,
    value=None,
    xlabel: str = "test accuracy",
    title: str | None = None,
    save: str | None = None,
):
    """Every seed of every setting as a dot, the mean ± standard deviation as a bar over them, and
    the report's value (a cross) where given. ``groups`` maps a label to its records (one per
    seed); ``value(rec)`` is what is plotted (default: test accuracy)."""
    value = value or spread.accuracy
    labels = list(groups)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(labels) + 1.4))
    for i, label in enumerate(labels):
        v = [value(r) for r in groups[label]]
        s = spread.stats(v)
        ax.scatter(v, [i] * len(v), s=22, color="tab:blue", alpha=0.7, zorder=3)
        ax.errorbar(
            s["mean"],
            i,
            xerr=0 if s["n"] < 2 else s["sd"],
            fmt="|",
            color="black",
            markersize=14,
            capsize=4,
            zorder=2,
        )
        if reported and reported.get(label) is not None:
            ax.scatter(reported[label], i, marker="x", color="tab:red", zorder=4)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color="tab:blue", label="one seed"),
        plt.Line2D([], [], marker="|", ls="", color="black", markersize=12, label="mean ± sd"),
    ]
    if reported:
        handles.append(plt.Line2D([], [], marker="x", ls="", color="tab:red", label="report"))
    ax.legend(handles=handles, fontsize=8, loc="best")
    if title:
        ax.set_title(title)
    return _finish(fig, None, save)


def plot_layers(
    frames: Mapping[str, object],
    columns: Sequence[str] = ("output sd", "gradient norm", "dead units"),
    log: Sequence[str] = ("output sd", "gradient norm"),
    title: str | None = None,
    save: str | None = None,
):
    """One panel per column of :func:`helpers.diagnostics.layer_statistics`, one line per model:
    the value at each weight layer, from the first (1) to the output. ``frames`` maps a label to
    that model's table; the columns named in ``log`` get a logarithmic axis (zeros left out)."""
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        for label, frame in frames.items():
            v = np.asarray(frame[column], dtype=float)
            if column in log:
                v = np.where(v > 0, v, np.nan)
            ax.plot(np.arange(1, len(v) + 1), v, marker="o", ms=3.5, label=label)
        if column in log:
            ax.set_yscale("log")
        ax.set_xlabel("weight layer (1 = first convolution)")
        ax.set_title(column)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _finish(fig, title, save)


def record_figures(rec, data, label: str, seed: int = 0, n: int = 16) -> None:
    """The figures of one record, each followed by the sentence that reads it: train and
    validation curves, ``n`` test images titled "pred (true)", train and test confusion matrices.

    Args:
        rec: a record with test (and, for the train matrix, train) predictions.
        data: the dataset it was trained on (``x_test``, ``y_test``, ``class_names``).
        label: the model's name in titles and sentences.
        seed: which test images are shown.
    """
    curves = plot_history(
        {label: rec}, title=f"{label}: training and validation curves", save=f"{rec.name}_history"
    )
    readings.show(curves, readings.history({label: rec}))
    grid = plot_samples(
        data.x_test,
        data.y_test,
        data.class_names,
        y_pred=rec.y_test_pred,
        n=n,
        seed=seed,
        title=f"{label}: pred (true)",
        save=f"{rec.name}_predictions",
    )
    wrong = int(np.sum(np.asarray(rec.y_test_pred) != np.asarray(data.y_test)))
    readings.show(
        grid,
        f"Titles in red are wrong predictions; over the whole test set {label} "
        f"gets {wrong:,} of {len(data.y_test):,} images wrong.",
    )
    matrices = [("train", rec.train_confusion_matrix), ("test", rec.confusion_matrix)]
    for part, cm in matrices:
        if cm is None:
            continue
        fig = plot_confusion(
            cm, data.class_names, title=f"{label}, {part} set", save=f"{rec.name}_confusion_{part}"
        )
        readings.show(fig, readings.confusion(cm, data.class_names, part))
    plt.close("all")
