"""Metrics: confusion matrix, per-class accuracy, reports, macro AUC, summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from helpers import metrics as M


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def scored():
    """300 samples of 4 classes with noisy but informative probabilities."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4))
    logits[np.arange(300), y] += 1.5
    return y, _softmax(logits)


def test_confusion_rows_true_columns_predicted():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    cm = M.confusion(y_true, y_pred, 4)
    assert cm.shape == (4, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert cm.sum() == 6


def test_per_class_accuracy_counts():
    y_true = np.array([0] * 1000 + [1] * 10)
    y_pred = np.array([0] * 672 + [1] * 328 + [1] * 10)
    rows = M.per_class_accuracy(y_true, y_pred, ["cat", "dog", "emu"])
    assert rows[0] == {"class": "cat", "correct": 672, "total": 1000, "accuracy": 0.672}
    assert rows[1]["accuracy"] == 1.0
    assert rows[2]["total"] == 0 and math.isnan(rows[2]["accuracy"])


def test_format_per_class():
    rows = M.per_class_accuracy([0] * 1000, [0] * 672 + [1] * 328, ["cat"])
    assert M.format_per_class(rows) == "cat: 67.2 % (672/1000)"
    text = M.format_per_class(
        M.per_class_accuracy([0] * 1000 + [1] * 4, [0] * 672 + [1] * 332, ["cat", "airplane"])
    )
    lines = text.splitlines()
    assert lines == ["     cat: 67.2 % (672/1000)", "airplane: 100.0 % (4/4)"]
    # names are right-aligned so the colons line up
    assert lines[0].index(":") == lines[1].index(":")


def test_classification_report_names_every_class(scored):
    y, proba = scored
    text = M.classification_report(y, proba.argmax(1), ["ant", "bee", "cow", "dog", "emu"])
    for name in ("ant", "bee", "cow", "dog", "emu", "accuracy", "macro avg"):
        assert name in text
    # an absent class (emu) reports zeros without a warning-driven crash
    assert "emu" in text


def test_macro_auc_matches_sklearn_ovr(scored):
    y, proba = scored
    expected = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert M.macro_auc(y, proba) == pytest.approx(expected, abs=1e-12)


def test_macro_auc_two_classes_is_plain_auc():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(0.3 * y + rng.uniform(size=200) * 0.7, 0, 1)
    proba = np.stack([1 - p1, p1], axis=1)
    assert M.macro_auc(y, proba) == pytest.approx(roc_auc_score(y, p1))


def test_macro_auc_leaves_absent_classes_out(scored):
    y, proba = scored
    keep = y != 3  # class 3 absent from y_true
    y3, p3 = y[keep], proba[keep]
    expected = np.mean([roc_auc_score(y3 == c, p3[:, c]) for c in (0, 1, 2)])
    assert M.macro_auc(y3, p3) == pytest.approx(expected)
    assert math.isnan(M.macro_auc(np.zeros(5, int), proba[:5]))


def test_macro_auc_perfect_scores():
    y = np.array([0, 1, 2, 0, 1, 2])
    assert M.macro_auc(y, np.eye(3)[y]) == 1.0


def test_summary(scored):
    y, proba = scored
    s = M.summary(y, proba)
    assert set(s) == {"accuracy", "precision_macro", "recall_macro", "f1_macro", "auc_macro"}
    pred = proba.argmax(1)
    assert s["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert s["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert s["auc_macro"] == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert all(isinstance(v, float) for v in s.values())


def test_accuracy_standard_error_is_the_binomial_spread():
    # 0.71 on the 10,000 CIFAR-10 test images: sqrt(0.71 * 0.29 / 10000) = 0.00454
    assert M.accuracy_standard_error(0.71, 10_000) == pytest.approx(0.004538, abs=1e-6)
    assert M.accuracy_standard_error(0.0, 100) == 0.0
    # the spread of accuracies of a coin-flip classifier on n = 400 samples
    rng = np.random.default_rng(0)
    accs = rng.binomial(400, 0.5, size=20_000) / 400
    assert M.accuracy_standard_error(0.5, 400) == pytest.approx(accs.std(), rel=0.03)


@pytest.mark.parametrize("acc, n", [(71.0, 10_000), (0.5, 0)])
def test_accuracy_standard_error_rejects_percentages_and_empty_sets(acc, n):
    with pytest.raises(ValueError, match="fraction|positive"):
        M.accuracy_standard_error(acc, n)
