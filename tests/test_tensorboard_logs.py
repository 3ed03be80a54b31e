"""TensorBoard logs without TensorFlow: helpers.training.EpochScalars (used on JAX / PyTorch)."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import training


def _scalars(folder, tag):
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return [(e.step, round(e.value, 6)) for e in acc.Scalars(tag)]


def test_without_tensorflow_epoch_scalars_are_written(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name)
    )
    cb = training.tensorboard_callback(str(tmp_path / "run"))
    assert isinstance(cb, training.EpochScalars)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, validation_split=0.25, epochs=3, callbacks=[cb], verbose=0).history
    for split, prefix in (("train", ""), ("validation", "val_")):
        for metric in ("loss", "accuracy"):
            got = _scalars(tmp_path / "run" / split, f"epoch_{metric}")
            want = [(i, round(v, 6)) for i, v in enumerate(hist[prefix + metric])]
            assert got == want


def test_with_tensorflow_keras_tensorboard_is_used(tmp_path):
    cb = training.tensorboard_callback(str(tmp_path / "run"))
    assert isinstance(cb, keras.callbacks.TensorBoard)
