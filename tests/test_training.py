"""fit_and_record: the experiment record, its reuse, retraining rules and atomic writes.

Tiny models (a few hundred parameters) on 200 training and 100 test images of 32x32x3, one or
two epochs: each fit takes a second or two on a CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings

import keras
import numpy as np
import pytest
from keras import layers

from helpers import training
from helpers.data import DataError
from helpers.training import Record, fit_and_record


def tiny_model(lr: float = 1e-3, loss: str = "sparse_categorical_crossentropy", k: int = 10):
    """Rescale, one small convolution, global pooling, softmax: 162 parameters for 10 classes."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(4, 3, strides=2, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(k, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
    return model


def _files(folder):
    out = []
    for dirpath, _, names in os.walk(folder):
        out += [os.path.join(dirpath, n) for n in names]
    return out


def _weights_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))


@pytest.fixture(scope="module")
def _trained_once(small_data, tmp_path_factory):
    """Train the tiny model once (1 epoch) as experiment ``base`` of notebook ``unit``.

    Returns the suite root it was written under, the trained weights and the returned record.
    """
    import helpers  # noqa: PLC0415
    from helpers import session  # noqa: PLC0415

    root = tmp_path_factory.mktemp("trained-once")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SUITE_ROOT", str(root))
        mp.setattr(session, "_CURRENT", None)
        helpers.setup("unit", profile="smoke", seed=0, verbose=False)
        model = tiny_model()
        rec = fit_and_record(model, small_data, "base", epochs=1, batch_size=32)
    return root, model.get_weights(), rec


@pytest.fixture
def base(_trained_once, suite_root, smoke_session):
    """The record ``base`` (copied into this test's suite root) and a model with its weights."""
    root, weights, _ = _trained_once
    for sub in ("results", "checkpoints", "logs"):
        shutil.copytree(root / sub, suite_root / sub)
    model = tiny_model()
    model.set_weights(weights)
    return Record.load(training.record_path("base")), model


def test_record_fields(_trained_once, base, small_data, suite_root):
    root, _, rec = _trained_once  # the record as fit_and_record returned it
    model = base[1]
    assert isinstance(rec, Record) and not rec.reused
    assert (rec.name, rec.notebook, rec.profile) == ("base", "unit", "smoke")
    n_test = len(small_data.y_test)
    assert rec.epochs_run == 1
    assert set(rec.history) >= {"loss", "accuracy"} and len(rec.history["loss"]) == 1
    assert set(rec.test) >= {"accuracy", "loss", "f1_macro", "auc_macro"}
    assert 0 <= rec.test_accuracy <= 1
    cm = np.array(rec.confusion_matrix)
    assert cm.shape == (10, 10) and cm.sum() == n_test
    assert np.trace(cm) / n_test == pytest.approx(rec.test["accuracy"])
    assert len(rec.y_test_pred) == n_test
    assert [r["class"] for r in rec.per_class_accuracy] == small_data.class_names
    assert sum(r["total"] for r in rec.per_class_accuracy) == n_test
    assert sum(r["correct"] for r in rec.per_class_accuracy) == np.trace(cm)
    assert len(rec.epoch_times_s) == 1 and rec.epoch_times_s[0] > 0
    assert rec.wall_time_s >= rec.epoch_times_s[0]
    assert rec.backend == keras.backend.backend() and rec.devices
    assert {"python", "keras", "numpy"} <= set(rec.versions)
    assert rec.params == model.count_params() == 162
    assert rec.trainable_params == 162 and rec.layers == 4
    assert rec.data["train"] == 200 and rec.data["test"] == 100
    assert rec.config["epochs"] == 1 and rec.config["compile"]["optimizer"]["class"] == "Adam"
    assert "base: test accuracy" in rec.summary() and "[trained]" in rec.summary()

    path = root / "results" / "smoke" / "unit" / "base.json"
    assert rec.path == str(path.resolve()) and path.is_file()
    stored = json.loads(path.read_text())
    assert "reused" not in stored and "path" not in stored
    assert Record.load(path) == rec
    assert (root / "checkpoints" / "smoke" / "unit" / "base.weights.h5").is_file()
    assert (root / "logs" / "smoke" / "unit" / "base.csv").is_file()
    assert not [f for f in _files(root) if f.endswith(".tmp")]
    # the BackupAndRestore folder of a finished run is removed
    assert not list((root / "checkpoints" / "smoke" / "unit").glob("backup-*"))


def test_unchanged_config_reuses_the_record(base, small_data):
    rec, trained = base
    fresh = tiny_model()
    assert not _weights_equal(fresh, trained)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error", UserWarning
        )  # e.g. Keras's "Skipping variable loading for optimizer"
        again = fit_and_record(fresh, small_data, "base", epochs=1, batch_size=32)
    assert time.perf_counter() - start < 5
    assert again.reused and "[reused record]" in again.summary()
    assert again.config_hash == rec.config_hash
    assert again.test == rec.test and again.created == rec.created
    assert _weights_equal(fresh, trained)  # the saved weights were loaded
    assert int(fresh.optimizer.iterations) == 7  # and the optimizer's state: 200 / 32 steps


def test_reuse_without_saved_weights_says_so(base, small_data, suite_root):
    (suite_root / "checkpoints" / "smoke" / "unit" / "base.weights.h5").unlink()
    again = fit_and_record(tiny_model(), small_data, "base", epochs=1, batch_size=32)
    assert again.reused and "untrained" in again.notes


def test_force_retrains(base, small_data):
    rec, _ = base
    again = fit_and_record(tiny_model(), small_data, "base", epochs=1, batch_size=32, force=True)
    assert not again.reused and again.config_hash == rec.config_hash
    assert again.created >= rec.created


def test_session_force_retrain_retrains(base, small_data):
    import helpers  # noqa: PLC0415

    helpers.setup("unit", profile="smoke", force_retrain=True, verbose=False)
    assert not fit_and_record(tiny_model(), small_data, "base", epochs=1, batch_size=32).reused


@pytest.mark.parametrize(
    "change",
    [
        {"epochs": 2},
        {"lr": 1e-2},
        {"config": {"augment": True}},
        {"subset": True},
    ],
    ids=["epochs", "optimizer-lr", "extra-config", "data"],
)
def test_changed_config_retrains(base, small_data, change):
    rec, _ = base
    kwargs = {"epochs": 1, "batch_size": 32}
    kwargs.update({k: v for k, v in change.items() if k in ("epochs", "config")})
    data = small_data.subset(15, 10) if change.get("subset") else small_data
    model = tiny_model(lr=change.get("lr", 1e-3))
    again = fit_and_record(model, data, "base", **kwargs)
    assert not again.reused and again.config_hash != rec.config_hash
    # the new record replaced the old one
    assert Record.load(again.path).config_hash == again.config_hash
    if "epochs" in change:
        assert again.epochs_run == 2 and len(again.epoch_times_s) == 2


def test_changed_architecture_retrains(base, small_data):
    rec, _ = base
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(8, 3, strides=2, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    again = fit_and_record(model, small_data, "base", epochs=1, batch_size=32)
    assert not again.reused and again.config_hash != rec.config_hash


def test_validation_data_arrays_and_bad_values(small_data, smoke_session):
    x, y = small_data.x_test[:50], small_data.y_test[:50]
    rec = fit_and_record(tiny_model(), small_data, "va", epochs=1, validation_data=(x, y))
    assert "val_loss" in rec.history and len(rec.config["validation_data"]) == 16
    with pytest.raises(ValueError, match="'train'"):
        fit_and_record(tiny_model(), small_data, "bad", epochs=1, validation_data="train")
    with pytest.raises(ValueError, match="not both"):
        fit_and_record(
            tiny_model(), small_data, "bad", epochs=1, validation_split=0.2, validation_data="test"
        )
    with pytest.raises(DataError, match="validation data.*label 12"):
        fit_and_record(
            tiny_model(), small_data, "bad", epochs=1, validation_data=(x, np.full(50, 12))
        )


def test_validation_split_and_early_stopping(small_data, smoke_session):
    # min_delta=1 makes every epoch after the first "no improvement": stops after epoch 2
    es = {"monitor": "val_loss", "patience": 1, "min_delta": 1.0}
    rec = fit_and_record(
        tiny_model(), small_data, "es", epochs=6, validation_split=0.2, early_stopping=es
    )
    assert rec.epochs_run == 2 and len(rec.epoch_times_s) == 2
    assert len(rec.history["val_loss"]) == 2 and len(rec.history["val_accuracy"]) == 2
    assert rec.config["early_stopping"] == es and rec.config["validation_split"] == 0.2
    assert rec.data["train"] == 200  # the record counts the whole training split


def test_one_hot_labels_and_validation_on_test(small_data, smoke_session):
    model = tiny_model(loss="categorical_crossentropy")
    rec = fit_and_record(model, small_data, "oh", epochs=1, one_hot=True, validation_data="test")
    assert rec.config["one_hot"] is True and np.isfinite(rec.test["loss"])
    assert np.array(rec.confusion_matrix).sum() == len(small_data.y_test)
    assert rec.config["validation_data"] == "test"
    # validating on the test split gives the same loss as the final test evaluation
    assert rec.history["val_loss"][-1] == pytest.approx(rec.test["loss"], rel=1e-4)


def test_evaluate_train_reported_and_notes(base, small_data):
    assert base[0].train is None  # only on request
    rep = {"test_accuracy": 0.74, "epochs": 15, "source": "seed 002"}
    rec = fit_and_record(
        tiny_model(), small_data, "et", epochs=1, evaluate_train=True, reported=rep, notes="n"
    )
    assert rec.train is not None
    assert np.array(rec.train["confusion_matrix"]).sum() == len(small_data.y_train)
    assert sum(r["total"] for r in rec.train["per_class_accuracy"]) == len(small_data.y_train)
    assert 0 <= rec.train["metrics"]["accuracy"] <= 1
    assert Record.load(rec.path).reported == rep and rec.notes == "n"
    assert "(report: 0.740)" in rec.summary()


def test_uncompiled_model_raises(small_data, smoke_session):
    model = keras.Sequential([keras.Input((32, 32, 3)), layers.Flatten(), layers.Dense(10)])
    with pytest.raises(ValueError, match="not compiled"):
        fit_and_record(model, small_data, "uc", epochs=1)


def test_bad_labels_raise(small_data, smoke_session):
    from dataclasses import replace  # noqa: PLC0415

    bad = replace(small_data, y_train=small_data.y_train + 5)
    with pytest.raises(DataError, match="training data.*outside the class range"):
        fit_and_record(tiny_model(), bad, "bl", epochs=1)
    onehot = replace(small_data, y_test=np.eye(10, dtype=np.int64)[small_data.y_test])
    with pytest.raises(DataError, match="test data.*1-D integer"):
        fit_and_record(tiny_model(), onehot, "bl", epochs=1)


def test_wrong_output_width_raises_before_training(small_data, smoke_session):
    model = tiny_model(k=3)  # 3 outputs for a 10-class dataset
    with pytest.raises(ValueError, match=r"\(None, 3\).*10 classes"):
        fit_and_record(model, small_data, "w3", epochs=1)


class _Boom(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("boom in epoch end")


def test_failure_during_training_leaves_no_record(small_data, smoke_session, suite_root):
    with pytest.raises(RuntimeError, match="boom"):
        fit_and_record(tiny_model(), small_data, "fail", epochs=1, callbacks=[_Boom()])
    assert not [f for f in _files(suite_root / "results") if f.endswith(".json")]
    assert not [f for f in _files(suite_root) if f.endswith(".tmp")]
    assert not training.record_path("fail").exists()


def test_failed_retrain_keeps_the_old_record(base, small_data):
    rec, _ = base
    with pytest.raises(RuntimeError, match="boom"):
        fit_and_record(tiny_model(), small_data, "base", epochs=2, callbacks=[_Boom()])
    assert Record.load(rec.path).config_hash == rec.config_hash


class _BoomAt(keras.callbacks.Callback):
    """Interrupts training at the end of epoch ``epoch`` (after its backup was written)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"interrupted after epoch {epoch}")


def test_interrupted_run_resumes_and_records_every_epoch(small_data, smoke_session, suite_root):
    with pytest.raises(RuntimeError, match="interrupted after epoch 1"):
        fit_and_record(tiny_model(), small_data, "resume", epochs=3, callbacks=[_BoomAt(1)])
    ckpt = suite_root / "checkpoints" / "smoke" / "unit"
    assert len(list(ckpt.glob("backup-resume-*"))) == 2  # the backup and its epoch log
    assert not training.record_path("resume").exists()

    rec = fit_and_record(tiny_model(), small_data, "resume", epochs=3)
    assert rec.epochs_run == 3 and len(rec.history["loss"]) == 3
    assert set(rec.history) == {"loss", "accuracy"}  # no all-NA validation columns
    assert len(rec.epoch_times_s) == 1 and "Resumed from a backup" in rec.notes
    assert not list(ckpt.glob("backup-*"))  # cleaned up after the record is written
    csv_rows = (suite_root / "logs" / "smoke" / "unit" / "resume.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in csv_rows[1:]] == ["0", "1", "2"]


def test_atomic_write_cleans_up_on_error(tmp_path, monkeypatch):
    target = tmp_path / "r" / "x.json"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(training.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        training._atomic_write(target, "{}")
    assert not target.exists() and os.listdir(target.parent) == []


def test_unreadable_record_says_delete_it(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="Delete it"):
        Record.load(bad)


def test_load_records(base, suite_root):
    second = suite_root / "results" / "smoke" / "unit" / "second.json"
    shutil.copyfile(base[0].path, second)
    names = [r.path for r in training.load_records(notebook="unit", profile="smoke")]
    assert names == [base[0].path, str(second)]
    assert training.load_records(profile="full") == []


def test_numpy_input_path_of_other_backends(small_data, smoke_session, monkeypatch):
    """JAX and PyTorch get float32 NumPy arrays instead of a tf.data pipeline; exercise that
    branch on this backend by making the helpers believe they run on another one."""
    monkeypatch.setattr(training.keras.backend, "backend", lambda: "jax")
    x, y = training._pipeline(small_data.x_test, small_data.y_test, 32, False, 0, 10, True)
    assert x.dtype == np.float32 and x.shape == small_data.x_test.shape
    assert y.shape == (100, 10) and np.array_equal(y.argmax(1), small_data.y_test)
    model = tiny_model(loss="categorical_crossentropy")
    rec = fit_and_record(model, small_data, "np", epochs=1, one_hot=True, validation_split=0.2)
    assert rec.backend == "jax" and "val_loss" in rec.history
    assert np.array(rec.confusion_matrix).sum() == 100
