"""Tests of helpers.diagnostics.layer_statistics: activation spread, silent ReLU units and kernel
gradients, layer by layer."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers  # noqa: E402

from helpers import diagnostics  # noqa: E402

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="gradients need the tensorflow backend"
)


def batch(n=16, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.integers(0, k, size=n)


def test_softmax_layer_gradient_matches_the_closed_form():
    x, y = batch()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), layers.Dense(3, activation="softmax")])
    frame = diagnostics.layer_statistics(model, x, y)
    w, b = (np.asarray(v, dtype=np.float64) for v in model.layers[0].get_weights())
    z = x @ w + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    grad = x.T.astype(np.float64) @ (p - np.eye(3)[y]) / len(x)  # d mean CE / dW
    row = frame.iloc[0]
    assert row["activation"] == "softmax"
    assert np.isclose(row["gradient norm"], np.linalg.norm(grad), rtol=1e-4)
    assert np.isclose(row["weight norm"], np.linalg.norm(w), rtol=1e-6)
    assert np.isclose(row["output sd"], p.std(), rtol=1e-4)
    assert np.isnan(row["dead units"])


def test_silent_relu_layer_has_dead_units_and_no_gradient_below_it():
    x, y = batch()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((5,)),
            layers.Dense(8, activation="relu", name="first"),
            layers.Dense(4, activation="relu", name="silent"),
            layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    silent = model.get_layer("silent")
    silent.set_weights([silent.get_weights()[0], np.full(4, -100.0, "float32")])
    frame = diagnostics.layer_statistics(model, x, y)
    assert list(frame.index) == ["first", "silent", "out"]
    assert frame.loc["silent", "dead units"] == 1.0
    assert frame.loc["silent", "zero outputs"] == 1.0
    assert frame.loc["silent", "output sd"] == 0.0
    assert frame.loc["first", "gradient norm"] == 0.0  # nothing flows back through dead units
    assert frame.loc["silent", "gradient norm"] == 0.0
    assert frame.loc["first", "dead units"] < 1.0
    assert frame.loc["out", "gradient norm"] == 0.0  # its inputs are all zero
    assert frame.loc["first", "units"] == 8


def test_relu_after_batch_normalization_is_the_observed_output():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(8, 8, 8, 3)).astype("uint8")
    y = rng.integers(0, 2, size=8)
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = layers.Rescaling(1 / 255)(inp)
    h = layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(h)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.Activation("relu", name="relu")(h)
    out = layers.Dense(2, activation="softmax", name="out")(layers.Flatten()(h))
    model = keras.Model(inp, out)
    frame = diagnostics.layer_statistics(model, x, y)
    assert frame.loc["conv", "activation"] == "relu"
    assert frame.loc["conv", "units"] == 4
    # batch statistics in a training pass: each channel before the ReLU has mean 0 and sd 1,
    # so about half of the values are zero and none of the channels is silent
    assert 0.3 < frame.loc["conv", "zero outputs"] < 0.7
    assert frame.loc["conv", "dead units"] == 0.0
    assert frame.loc["conv", "gradient norm"] > 0.0
