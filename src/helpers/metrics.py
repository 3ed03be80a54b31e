"""Classification metrics on integer labels, with scikit-learn underneath.

Shapes: ``y_true`` and ``y_pred`` are ``(N,)`` integer class indices; ``proba`` is ``(N, K)``
class probabilities (rows sum to 1) for ``K`` classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm


def confusion(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Confusion matrix ``(K, K)``: row = true class, column = predicted class, counts."""
    return skm.confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))


def per_class_accuracy(y_true, y_pred, class_names: Sequence[str]) -> list[dict]:
    """Accuracy of every class: ``[{"class": "cat", "correct": 672, "total": 1000, "accuracy": 0.672}]``.

    A class with no samples gets ``accuracy`` NaN.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rows = []
    for k, name in enumerate(class_names):
        mask = y_true == k
        total = int(mask.sum())
        correct = int((y_pred[mask] == k).sum())
        rows.append(
            {
                "class": name,
                "correct": correct,
                "total": total,
                "accuracy": correct / total if total else float("nan"),
            }
        )
    return rows


def format_per_class(rows: list[dict]) -> str:
    """One line per class, e.g. ``cat: 67.2 % (672/1000)``."""
    width = max(len(r["class"]) for r in rows)
    return "\n".join(
        f"{r['class']:>{width}}: {100 * r['accuracy']:.1f} % ({r['correct']}/{r['total']})"
        for r in rows
    )


def classification_report(y_true, y_pred, class_names: Sequence[str], digits: int = 3) -> str:
    """scikit-learn's text classification report with the class names."""
    return skm.classification_report(
        y_true,
        y_pred,
        labels=np.arange(len(class_names)),
        target_names=list(class_names),
        digits=digits,
        zero_division=0,
    )


def macro_auc(y_true, proba: np.ndarray) -> float:
    """Macro-averaged one-vs-rest ROC AUC. Classes absent from ``y_true`` are left out.

    For two classes this is the ordinary ROC AUC of the positive class's probability.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    k = proba.shape[1]
    present = np.unique(y_true)
    if present.size < 2:
        return float("nan")
    if k == 2:
        return float(skm.roc_auc_score(y_true, proba[:, 1]))
    aucs = [skm.roc_auc_score(y_true == c, proba[:, c]) for c in present]
    return float(np.mean(aucs))


def accuracy_standard_error(accuracy: float, n: int) -> float:
    """Standard error of an accuracy measured on ``n`` test samples: ``sqrt(a (1 - a) / n)``.

    Both are fractions (0.71, not 71 %). The binomial error of one model's accuracy on a test set
    of this size; two models' accuracies differ by more than chance only when the gap is several
    times ``sqrt(se1**2 + se2**2)``, about 1.4 standard errors of one.
    """
    if n <= 0:
        raise ValueError(f"n must be a positive number of test samples, got {n}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be a fraction in [0, 1], got {accuracy}")
    return math.sqrt(accuracy * (1.0 - accuracy) / n)


def summary(y_true, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, macro precision / recall / F1 and macro AUC from class probabilities ``(N, K)``."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(proba).argmax(axis=1)
    p, r, f, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(proba.shape[1]), average="macro", zero_division=0
    )
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision_macro": float(p),
        "recall_macro": float(r),
        "f1_macro": float(f),
        "auc_macro": macro_auc(y_true, proba),
    }


def record_scores(rec, data, label: str) -> str:
    """Per-class accuracy and classification report of a record, on the training set (where it
    holds train predictions) and on the test set, as text."""
    parts = []
    sets = [("train", rec.train_per_class_accuracy, data.y_train, rec.y_train_pred)]
    sets.append(("test", rec.per_class_accuracy, data.y_test, rec.y_test_pred))
    for part, per_class, y_true, y_pred in sets:
        if y_pred is None:
            continue
        parts.append(f"{label}, per-class {part} accuracy:\n{format_per_class(per_class)}\n")
        report = classification_report(y_true, y_pred, data.class_names)
        parts.append(f"[{part.capitalize()}]\n{report}")
    return "\n".join(parts)
