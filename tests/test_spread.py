"""Seeds: one record per seed (``fit_and_record(..., seed=s)``), and the spread over seeds.

Training tests use a tiny model (162 parameters) on 200 CIFAR-10 training images for one epoch.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from keras import layers

from helpers import plotting, records, spread, training
from helpers.session import current, seeded


def builder():
    """The model is built inside the run, after its seed has been set."""
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(4, 3, strides=2, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_each_seed_has_its_own_record_and_seed_0_keeps_the_plain_name(
    small_data, smoke_session, suite_root
):
    recs = [
        training.fit_and_record("tiny", builder, small_data, epochs=1, batch_size=50, seed=s)
        for s in (0, 1, 2)
    ]
    names = sorted(p.name for p in (suite_root / "results" / "smoke" / "unit").glob("*.json"))
    assert names == ["tiny.json", "tiny_seed1.json", "tiny_seed2.json"]
    assert [r.seed for r in recs] == [0, 1, 2]
    assert {r.run for r in recs} == {"tiny"}
    assert len({r.config_hash for r in recs}) == 3
    stored = json.loads((suite_root / "results/smoke/unit/tiny_seed2.json").read_text())
    assert stored["config"]["seed"] == 2
    assert current().seed == 0  # the session's seed is back after the run


def test_a_run_depends_on_its_seed_only_not_on_the_runs_before_it(small_data, smoke_session):
    first = training.fit_and_record("a", builder, small_data, epochs=1, batch_size=50, seed=1)
    keras.random.uniform((3,))  # the notebook draws random numbers between runs
    again = training.fit_and_record(
        "a", builder, small_data, epochs=1, batch_size=50, seed=1, force=True
    )
    assert again.test_accuracy == pytest.approx(first.test_accuracy)
    assert again.history["loss"] == pytest.approx(first.history["loss"], rel=1e-5)


def test_reused_seeded_record_is_found_again(small_data, smoke_session):
    training.fit_and_record("b", builder, small_data, epochs=1, batch_size=50, seed=3)
    again = training.fit_and_record("b", builder, small_data, epochs=1, batch_size=50, seed=3)
    assert again.reused and again.name == "b_seed3"


def test_record_predictions_takes_a_seed(small_data, smoke_session):
    k = small_data.num_classes

    def train():
        rng = np.random.default_rng(current().seed)
        p = rng.random((len(small_data.y_test), k))
        return p / p.sum(1, keepdims=True), {"loss": [1.0]}

    a = training.record_predictions("np", small_data, train, config={"m": 1}, params=1, seed=4)
    assert a.name == "np_seed4" and a.seed == 4 and a.run == "np"


def test_seeded_restores_the_session_seed(smoke_session):
    with seeded(7) as sess:
        assert sess.seed == 7 and current().seed == 7
    assert current().seed == 0


class _Rec:
    """A stand-in with the two fields the spread helpers read."""

    def __init__(self, seed, acc):
        self.seed, self.test_accuracy = seed, acc


def test_table_has_every_seed_mean_and_sd():
    groups = {"A": [_Rec(0, 0.50), _Rec(1, 0.52), _Rec(2, 0.54)], "B": [_Rec(0, 0.40)]}
    t = spread.table(groups)
    assert list(t.columns) == ["seed 0", "seed 1", "seed 2", "mean", "sd", "n"]
    assert t.loc["A", "mean"] == pytest.approx(0.52) and t.loc["A", "sd"] == pytest.approx(0.02)
    assert pd.isna(t.loc["B", "sd"]) and pd.isna(t.loc["B", "seed 1"])


def test_ranking_claims_only_gaps_larger_than_the_spread():
    a = [_Rec(s, v) for s, v in enumerate((0.60, 0.61, 0.62))]
    b = [_Rec(s, v) for s, v in enumerate((0.50, 0.51, 0.52))]
    c = [_Rec(s, v) for s, v in enumerate((0.49, 0.53, 0.45))]
    text = spread.ranking({"A": a, "B": b, "C": c})
    assert "A (0.610 ± 0.010) over B (0.510 ± 0.010): +10.0 points, exceeds the spread" in text
    assert "B (0.510 ± 0.010) over C (0.490 ± 0.040): +2.0 points, is within the spread" in text
    assert spread.exceeds_spread([0.5], [0.6]) is None
    assert "no ranking is claimed" in spread.ranking({"A": a[:1], "B": b[:1]})


def test_mean_sd_prints_mean_and_sample_sd_or_the_one_value():
    assert spread.mean_sd([0.60, 0.61, 0.62]) == "0.610 ± 0.010"
    assert spread.mean_sd([0.7182]) == "0.718"
    assert spread.mean_sd([0.97, 0.98], digits=2, percent=True) == "97.50 ± 0.71 %"
    assert spread.mean_sd([0.5], digits=1, percent=True) == "50.0 %"


def test_by_run_groups_seed_records(small_data, smoke_session):
    recs = [
        training.fit_and_record(n, builder, small_data, epochs=1, batch_size=50, seed=s)
        for n in ("x", "y")
        for s in (1, 0)
    ]
    groups = spread.by_run(recs)
    assert list(groups) == ["x", "y"] and [r.seed for r in groups["x"]] == [0, 1]
    fig = plotting.plot_seeds(groups, reported={"x": 0.2}, save="seeds")
    assert (current().figures_dir / "seeds.png").is_file()
    assert len(fig.axes[0].get_yticklabels()) == 2


def test_seeded_name():
    assert records.seeded_name("run", 0) == "run" and records.seeded_name("run", 2) == "run_seed2"
