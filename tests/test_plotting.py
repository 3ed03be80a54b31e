"""Figures: every plotting helper returns a Figure and writes figures/<notebook>/<name>.png
(figures/smoke/<notebook>/ in the smoke profile, which git ignores)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from helpers import plotting


@pytest.fixture
def figures(suite_root, smoke_session):
    """The figure folder of the test session's notebook (``unit``, smoke) under the tmp root."""
    return suite_root / "figures" / "smoke" / "unit"


def _png_ok(path):
    assert path.is_file(), path
    head = path.read_bytes()[:8]
    assert head == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def _history(n=4, val=True):
    h = {"accuracy": list(np.linspace(0.3, 0.8, n)), "loss": list(np.linspace(2, 0.5, n))}
    if val:
        h["val_accuracy"] = list(np.linspace(0.25, 0.7, n))
        h["val_loss"] = list(np.linspace(2.1, 0.9, n))
    return h


class _FakeHistory:
    """Quacks like keras.callbacks.History (and like a training Record)."""

    def __init__(self, h):
        self.history = h


def test_plot_history_with_dicts_and_history_objects(figures):
    fig = plotting.plot_history(
        {"a": _history(), "b": _FakeHistory(_history(3, val=False))}, title="t", save="curves"
    )
    assert isinstance(fig, Figure)
    _png_ok(figures / "curves.png")
    acc_ax, loss_ax = fig.axes[:2]
    assert acc_ax.get_ylabel() == "accuracy" and loss_ax.get_ylabel() == "loss"
    labels = [line.get_label() for line in acc_ax.get_lines()]
    assert labels == ["a train", "a val", "b train"]
    val_line = acc_ax.get_lines()[1]
    assert val_line.get_linestyle() == "--"
    assert list(val_line.get_xdata()) == [1, 2, 3, 4]  # epochs count from 1


@pytest.mark.parametrize("metrics", [("loss",), "loss"], ids=["tuple", "string"])
def test_plot_history_single_metric_without_save(figures, metrics):
    fig = plotting.plot_history({"m": _history()}, metrics=metrics)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert fig.axes[0].get_ylabel() == "loss"
    assert not figures.exists()


@pytest.mark.parametrize("normalize", [False, True])
def test_plot_confusion(figures, normalize):
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    fig = plotting.plot_confusion(cm, ["a", "b", "c"], normalize=normalize, save=f"cm{normalize}")
    assert isinstance(fig, Figure)
    _png_ok(figures / f"cm{normalize}.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    texts = [t.get_text() for t in ax.texts]
    assert ("0.70" if normalize else "7") in texts


@pytest.mark.parametrize(
    "shape",
    [(20, 8, 8, 3), (20, 8, 8), (20, 8, 8, 1)],
    ids=["rgb", "gray", "gray-channel"],
)
def test_plot_samples_titles_pred_true(figures, shape):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    y_true = np.arange(20) % 3
    y_pred = y_true.copy()
    y_pred[::2] = (y_pred[::2] + 1) % 3  # every even index wrong
    names = ["cat", "dog", "emu"]
    fig = plotting.plot_samples(images, y_true, names, y_pred, n=10, cols=5, save="samples")
    assert isinstance(fig, Figure)
    _png_ok(figures / "samples.png")
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 10
    for ax in titled:
        title = ax.get_title()
        pred, true = title[:-1].split(" (")
        assert pred in names and true in names
        wrong = pred != true
        assert ax.title.get_color() == ("red" if wrong else "black")
    assert any(ax.title.get_color() == "red" for ax in titled)
    if shape[-1] != 3:  # grayscale, with or without a channel axis, is drawn in gray
        assert titled[0].images[0].get_cmap().name == "gray"


def test_plot_samples_without_predictions_and_float_images(figures):
    images = np.random.default_rng(1).uniform(0, 1, (5, 6, 6, 3))
    fig = plotting.plot_samples(images, [0, 1, 0, 1, 0], ["x", "y"], n=16, cols=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sorted(titles) == ["x", "x", "x", "y", "y"]  # n larger than the images: all of them


def test_plot_bars_with_reported_values(figures):
    fig = plotting.plot_bars(
        {"base": 0.71, "bn": 0.78, "new": 0.5},
        reported={"base": 0.74, "bn": 0.80, "new": None},  # None: the report gives no number
        title="acc",
        save="bars",
    )
    assert isinstance(fig, Figure)
    _png_ok(figures / "bars.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["base", "bn", "new"]
    heights = [p.get_height() for p in ax.patches]
    assert heights[:3] == [0.71, 0.78, 0.5]
    assert heights[3:5] == [0.74, 0.80] and np.isnan(heights[5])
    assert "nan" not in [t.get_text() for t in ax.texts]  # a missing number is left blank
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["this suite", "report"]


def test_plot_bars_without_reported(figures):
    fig = plotting.plot_bars({"a": 1.0, "b": 0.5})
    assert len(fig.axes[0].patches) == 2 and fig.axes[0].get_legend() is None


def test_save_figure_to_another_notebook(suite_root, smoke_session):
    fig = plotting.plot_bars({"a": 1.0})
    path = plotting.save_figure(fig, "x", notebook="other")
    assert path == suite_root.resolve() / "figures" / "other" / "x.png"
    _png_ok(path)


def test_default_session_writes_under_scratch(suite_root):
    plotting.plot_bars({"a": 1.0}, save="y")  # conftest sets SUITE_PROFILE=smoke
    _png_ok(suite_root / "figures" / "smoke" / "scratch" / "y.png")


def test_figures_of_quick_and_full_runs_go_to_figures_notebook(suite_root):
    import helpers  # noqa: PLC0415

    helpers.setup("unit", profile="quick", verbose=False)
    path = plotting.save_figure(plotting.plot_bars({"a": 0.5}), "bars")
    assert path == suite_root / "figures" / "unit" / "bars.png"
    _png_ok(path)


def test_plot_layers_one_panel_per_column(figures):
    import pandas as pd

    frames = {
        "a": pd.DataFrame({"output sd": [0.1, 0.05, 0.0], "dead units": [0.0, 0.5, np.nan]}),
        "b": pd.DataFrame({"output sd": [0.3, 0.3], "dead units": [0.0, 0.1]}),
    }
    fig = plotting.plot_layers(frames, columns=("output sd", "dead units"), save="layers")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_yscale() == "linear"
    _png_ok(figures / "layers.png")
