"""The sentences that read figures (helpers.readings), the record's accessors the notebooks use,
and the per-record figures and scores of notebook 06 (plotting.record_figures,
metrics.record_scores)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from test_report import make_record

from helpers import metrics, plotting, readings

CONFIG = {
    "batch_size": 64,
    "compile": {"optimizer": {"class": "Adagrad", "learning_rate": 0.001}, "loss": "mse"},
    "architecture": [
        {"class": "Conv2D", "config": {"activation": "relu"}},
        {"class": "Flatten", "config": {}},
        {"class": "Dense", "config": {"activation": "relu"}},
        {"class": "Dense", "config": {"activation": "softmax"}},
    ],
}
HISTORY = {
    "accuracy": [0.4, 0.6, 0.8, 0.9],
    "val_accuracy": [0.35, 0.55, 0.6, 0.58],
    "loss": [1.5, 1.0, 0.6, 0.3],
    "val_loss": [1.6, 1.1, 1.0, 1.2],
}


def test_record_accessors():
    rec = make_record(config=CONFIG, history=HISTORY, reported={"test_accuracy": 0.8, "epochs": 9})
    assert (rec.batch_size, rec.optimizer_name, rec.loss_name) == (64, "Adagrad", "mse")
    assert rec.dense_activations == ["relu", "softmax"]
    assert rec.weight_layers == 3
    assert rec.test_metric("loss") == 0.9
    assert rec.reported_value("epochs") == 9 and rec.reported_value("val_accuracy") is None
    assert rec.last() == 0.58 and rec.last("loss") == 0.3
    assert rec.best() == (0.6, 3)
    assert rec.best("val_loss") == (1.0, 3)  # losses: the lowest
    assert rec.train_accuracy is None and rec.train_confusion_matrix is None


def test_record_accessors_of_train_metrics():
    train = {"metrics": {"accuracy": 0.95}, "confusion_matrix": [[2, 0], [1, 1]]}
    rec = make_record(train=train | {"per_class_accuracy": [{"class": "a"}]})
    assert rec.train_accuracy == 0.95
    assert rec.train_confusion_matrix == [[2, 0], [1, 1]]
    assert rec.train_per_class_accuracy == [{"class": "a"}]


def test_history_of_one_run_names_its_peak_and_turn():
    text = readings.history({"CNN": make_record(history=HISTORY)})
    assert text == (
        "**CNN**: validation accuracy is best at 0.600 (epoch 3 of 4) and ends at 0.580, against "
        "0.900 on the training data; its validation loss is lowest at epoch 3 and ends 0.200 "
        "higher."
    )


def test_history_of_several_runs_compares_them():
    other = {
        k: [v - (0.3 if k.startswith("val") else 0.4) for v in vals] for k, vals in HISTORY.items()
    }
    text = readings.history({"a": HISTORY, "b": other})
    assert text.startswith("At the last epoch **a** has the highest validation accuracy (0.580)")
    assert "**b** the lowest (0.280)" in text
    assert "widest gap between training and validation (0.900 against 0.580)" in text


def test_history_without_validation_reads_the_training_curve():
    text = readings.history({"m": {"accuracy": [0.2, 0.5]}})
    assert text == "Training accuracy after the last epoch: **m** 0.500."


def test_confusion_names_the_most_frequent_mistake():
    cm = [[8, 2, 0], [5, 5, 0], [0, 0, 10]]
    text = readings.confusion(cm, ["cat", "dog", "car"], part="test")
    assert text == (
        "On the test set, the most frequent mistake is dog taken for cat (5 of the 10 images of dog); "
        "car is recognised best (100.0%) and dog worst (50.0%)."
    )
    assert readings.confusion(np.eye(2, dtype=int) * 3, ["a", "b"]).startswith("Every image")


def test_bars_with_and_without_the_report():
    values = {"MLP": 0.5, "CNN": 0.8}
    assert readings.bars(values) == "**CNN** scores highest (0.800) and **MLP** lowest (0.500)."
    text = readings.bars(values, reported={"MLP": 0.51, "CNN": 0.85, "other": None})
    assert text.endswith("; **CNN** is furthest from the report, 0.050 below it.")


@pytest.fixture
def tiny_data():
    rng = np.random.default_rng(0)
    return SimpleNamespace(
        x_train=rng.integers(0, 255, size=(4, 8, 8, 3), dtype=np.uint8),
        y_train=np.array([0, 1, 0, 1]),
        x_test=rng.integers(0, 255, size=(4, 8, 8, 3), dtype=np.uint8),
        y_test=np.array([0, 1, 1, 0]),
        class_names=["a", "b"],
    )


def test_record_figures_shows_each_figure_then_its_sentence(
    suite_root, smoke_session, tiny_data, monkeypatch
):
    shown = []
    monkeypatch.setattr(readings, "show", lambda fig, sentence: shown.append(sentence))
    train = {"metrics": {"accuracy": 1.0}, "confusion_matrix": [[2, 0], [0, 2]]}
    rec = make_record(
        name="cnn", history=HISTORY, confusion_matrix=[[1, 1], [0, 2]], y_test_pred=[0, 1, 1, 1]
    )
    rec.train = train | {"per_class_accuracy": []}
    plotting.plot_history({"x": HISTORY})  # a figure left open before: not shown again
    plotting.record_figures(rec, tiny_data, "CNN", n=4)
    assert len(shown) == 4
    assert shown[0].startswith("**CNN**: validation accuracy")
    assert "gets 1 of 4 images wrong" in shown[1]
    assert shown[2].startswith("On the train set, every image")
    assert shown[3].startswith("On the test set, the most frequent mistake is a taken for b")
    folder = suite_root / "figures" / "smoke" / "unit"
    names = {"cnn_history", "cnn_predictions", "cnn_confusion_train", "cnn_confusion_test"}
    assert {p.stem for p in folder.glob("*.png")} == names


def test_record_scores_of_train_and_test(tiny_data):
    rec = make_record(
        y_test_pred=[0, 1, 1, 1],
        per_class_accuracy=metrics.per_class_accuracy(tiny_data.y_test, [0, 1, 1, 1], ["a", "b"]),
    )
    test_only = metrics.record_scores(rec, tiny_data, "M")
    assert "M, per-class test accuracy:" in test_only and "[Test]" in test_only
    assert "[Train]" not in test_only
    rec.y_train_pred = [0, 1, 0, 1]
    rec.train = {"per_class_accuracy": metrics.per_class_accuracy([0, 1, 0, 1], [0, 1, 0, 1], "ab")}
    both = metrics.record_scores(rec, tiny_data, "M")
    assert both.index("[Train]") < both.index("[Test]")
    assert "a: 100.0 % (2/2)" in both
