"""Tests of the NumPy MLP (helpers.mlp_numpy) and of training.record_predictions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from helpers import data, mlp_numpy, session
from helpers.mlp_numpy import MLP, cross_entropy
from helpers.profiles import get_profile


def _digits():
    """scikit-learn's 8x8 digits, 70/30 split, as ``(N, 64)`` floats in [0, 1]."""
    ds = data.load_digits_dataset(seed=0)
    flat = lambda x: x.reshape(len(x), -1) / 255.0  # noqa: E731
    return ds, flat(ds.x_train), ds.y_train, flat(ds.x_test), ds.y_test


def _numeric_gradient(net: MLP, x, y, param: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(param)
    for idx in np.ndindex(param.shape):
        old = param[idx]
        param[idx] = old + eps
        up = cross_entropy(net.predict_proba(x), y)
        param[idx] = old - eps
        down = cross_entropy(net.predict_proba(x), y)
        param[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("sizes", [[4, 3], [4, 5, 3], [4, 5, 6, 3]])
def test_backprop_matches_finite_differences(sizes, activation):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, sizes[0]))
    y = rng.integers(0, sizes[-1], size=7)
    net = MLP(sizes, hidden_activation=activation, seed=2)
    for b in net.biases:  # non-zero biases, so their gradients are tested too
        b += rng.normal(scale=0.1, size=b.shape)
    grad_w, grad_b = net.backward(net.forward(x), y)
    for analytic, param in [
        *zip(grad_w, net.weights, strict=True),
        *zip(grad_b, net.biases, strict=True),
    ]:
        numeric = _numeric_gradient(net, x, y, param)
        err = np.abs(analytic - numeric).max() / max(1e-8, np.abs(numeric).max())
        assert err < 1e-6, f"relative gradient error {err:.2e} for a {param.shape} parameter"


def test_forward_shapes_and_probabilities():
    net = MLP([64, 20, 10, 10], seed=0)
    acts = net.forward(np.zeros((5, 64)))
    assert [a.shape for a in acts] == [(5, 64), (5, 20), (5, 10), (5, 10)]
    np.testing.assert_allclose(acts[-1].sum(axis=1), 1.0)
    assert net.count_params() == 64 * 20 + 20 + 20 * 10 + 10 + 10 * 10 + 10


@pytest.mark.parametrize(("sizes", "epochs"), [([64, 32, 10], 10), ([64, 32, 16, 10], 20)])
def test_loss_decreases_and_accuracy_on_digits(sizes, epochs):
    """A few epochs of SGD: the loss falls and test accuracy passes 85 % (chance is 10 %)."""
    _, xtr, ytr, xte, yte = _digits()
    net = MLP(sizes, hidden_activation="sigmoid", seed=0)
    before = net.loss(xtr, ytr)
    hist = net.fit(xtr, ytr, epochs=epochs, batch_size=32, lr=0.5, validation_data=(xte, yte))
    assert set(hist) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == epochs for v in hist.values())
    assert len(net.epoch_times_s) == epochs
    assert hist["loss"][-1] < hist["loss"][0] < before
    assert net.loss(xtr, ytr) < 0.5 * before
    assert (net.predict(xte) == yte).mean() > 0.85


def test_same_seed_same_result():
    _, xtr, ytr, _, _ = _digits()
    runs = [MLP([64, 16, 10], seed=3).fit(xtr[:200], ytr[:200], epochs=2) for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layer_sizes": [64]}, "at least input and output"),
        ({"layer_sizes": [64, 0, 10]}, "positive integer"),
        ({"layer_sizes": [64, 10.5, 10]}, "positive integer"),
        ({"layer_sizes": [64, 1]}, "at least 2 classes"),
        ({"layer_sizes": [64, 10], "hidden_activation": "tanh"}, "sigmoid, relu"),
    ],
)
def test_bad_construction_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


def test_bad_inputs_raise_clear_errors():
    net = MLP([64, 8, 10], seed=0)
    x, y = np.zeros((4, 64)), np.array([0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"Flatten images first"):
        net.predict_proba(np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match=r"63 features per row .* 64"):
        net.predict_proba(np.zeros((4, 63)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        net.predict_proba(np.full((4, 64), np.nan))
    with pytest.raises(ValueError, match="not one-hot"):
        net.fit(x, np.eye(10)[y])
    with pytest.raises(ValueError, match="not one-hot"):
        net.fit(x, y.astype(float))
    with pytest.raises(ValueError, match="label 10, outside the class range 0..9"):
        net.fit(x, np.array([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="label -1"):
        net.fit(x, np.array([0, 1, 2, -1]))
    with pytest.raises(ValueError, match="4 inputs but 3 labels"):
        net.fit(x, y[:3])
    with pytest.raises(ValueError, match="epochs=0"):
        net.fit(x, y, epochs=0)
    with pytest.raises(ValueError, match="batch_size=0"):
        net.fit(x, y, batch_size=0)
    with pytest.raises(ValueError, match="learning rate"):
        net.fit(x, y, lr=-0.1)
    with pytest.raises(ValueError, match="validation x"):
        net.fit(x, y, validation_data=(np.zeros((2, 5)), y[:2]))


@pytest.fixture
def scratch_session(tmp_path, monkeypatch):
    """A session whose results/ folder is under a temporary root."""
    monkeypatch.setenv("SUITE_ROOT", str(tmp_path))
    sess = session.Session(notebook="test_mlp_numpy", profile=get_profile("smoke"), seed=0)
    monkeypatch.setattr(session, "_CURRENT", sess)
    return sess


def test_record_predictions_writes_and_reuses(scratch_session):
    from helpers import training

    ds, xtr, ytr, xte, _ = _digits()
    calls = []

    def train():
        calls.append(1)
        net = MLP([64, 16, 10], seed=0)
        hist = net.fit(xtr, ytr, epochs=3, batch_size=32, lr=0.5)
        return net.predict_proba(xte), hist, net.epoch_times_s

    config = {"layer_sizes": [64, 16, 10], "epochs": 3, "lr": 0.5}
    rec = training.record_predictions(
        "mlp", ds, train, config=config, params=64 * 16 + 16 + 16 * 10 + 10, layers=2
    )
    path = scratch_session.results_dir / "mlp.json"
    assert path.is_file() and rec.path == str(path)
    assert not rec.reused and len(calls) == 1
    assert rec.epochs_run == 3 and len(rec.epoch_times_s) == 3
    assert rec.params == 1210 and rec.backend == "numpy"
    assert 0 <= rec.test["accuracy"] <= 1 and 0 <= rec.test["auc_macro"] <= 1
    assert np.asarray(rec.confusion_matrix).sum() == len(ds.y_test)
    assert training.Record.load(path).test == rec.test

    assert rec.data == ds.key() and rec.config["model"] == config and rec.model is None
    assert rec.provenance["data_source"] == ds.source and not rec.provenance["stand_in"]

    again = training.record_predictions("mlp", ds, train, config=config, params=1210, layers=2)
    assert again.reused and len(calls) == 1 and again.test == rec.test
    # the same data read elsewhere, computed by another backend: provenance, not key
    copy = replace(ds, source="scikit-learn digits, another copy")
    moved = training.record_predictions(
        "mlp", copy, train, config=config, params=1210, layers=2, backend="numpy-float32"
    )
    assert moved.reused and len(calls) == 1 and moved.backend == "numpy"

    changed = training.record_predictions(
        "mlp", ds, train, config={**config, "lr": 0.4}, params=1210
    )
    assert not changed.reused and len(calls) == 2
    forced = training.record_predictions(
        "mlp", ds, train, config={**config, "lr": 0.4}, params=1210, force=True
    )
    assert not forced.reused and len(calls) == 3


def test_record_predictions_rejects_bad_probabilities(scratch_session):
    from helpers import training

    ds = data.load_digits_dataset(seed=0)
    with pytest.raises(ValueError, match=r"expected \(540, 10\)"):
        training.record_predictions("bad", ds, lambda: (np.zeros((3, 10)), {}), config={}, params=1)
    with pytest.raises(ValueError, match="must return"):
        training.record_predictions("bad", ds, lambda: np.zeros((540, 10)), config={}, params=1)
    nan = np.full((540, 10), np.nan)
    with pytest.raises(ValueError, match="NaN/inf"):
        training.record_predictions("bad", ds, lambda: (nan, {}), config={}, params=1)
    assert not (scratch_session.results_dir / "bad.json").exists()


def test_gradient_check_helper_detects_a_wrong_gradient(monkeypatch):
    from helpers import mlp_numpy

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)
    net = MLP([4, 5, 3], seed=0)
    assert mlp_numpy.gradient_check(net, x, y) < 1e-6
    monkeypatch.setattr(MLP, "_activation_derivative", lambda self, a: np.ones_like(a))
    assert mlp_numpy.gradient_check(net, x, y) > 1e-2


def _passes():
    """A forward and a backward pass written outside the class, as notebook 02 writes them."""

    def forward(weights, biases, x):
        acts = [x]
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            z = acts[-1] @ w + b
            last = i == len(weights) - 1
            acts.append(mlp_numpy.softmax(z) if last else 1.0 / (1.0 + np.exp(-z)))
        return acts

    def backward(weights, acts, y):
        delta = acts[-1].copy()
        delta[np.arange(len(y)), y] -= 1.0
        delta /= len(y)
        grad_w, grad_b = [None] * len(weights), [None] * len(weights)
        for layer in reversed(range(len(weights))):
            grad_w[layer] = acts[layer].T @ delta
            grad_b[layer] = delta.sum(axis=0)
            if layer > 0:
                delta = (delta @ weights[layer].T) * (acts[layer] * (1.0 - acts[layer]))
        return grad_w, grad_b

    return forward, backward


def test_check_passes_accepts_right_passes_and_catches_a_wrong_one():
    forward, backward = _passes()
    errors = mlp_numpy.check_passes(forward, backward)
    assert set(errors) == {
        "forward vs MLP.forward",
        "backward vs MLP.backward",
        "backward vs finite differences",
    }
    assert max(errors.values()) < 1e-6

    def wrong_backward(weights, acts, y):
        grad_w, grad_b = backward(weights, acts, y)
        return [2 * g for g in grad_w], grad_b

    wrong = mlp_numpy.check_passes(forward, wrong_backward)
    assert wrong["backward vs finite differences"] > 0.5


def test_fit_with_passes_written_elsewhere_matches_the_methods():
    forward, backward = _passes()
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 6)), rng.integers(0, 3, size=40)
    a, b = MLP([6, 5, 3], seed=1), MLP([6, 5, 3], seed=1)
    h_a = a.fit(x, y, epochs=3, batch_size=8, lr=0.3, validation_data=(x[:10], y[:10]))
    h_b = b.fit(
        x, y, epochs=3, batch_size=8, lr=0.3, validation_data=(x[:10], y[:10]),
        forward=forward, backward=backward,
    )  # fmt: skip
    for key in h_a:
        np.testing.assert_allclose(h_a[key], h_b[key], rtol=1e-12)
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-12)
