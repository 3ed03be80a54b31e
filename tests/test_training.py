"""fit_and_record: the experiment record, its reuse, retraining rules and atomic writes.

Tiny models (a few hundred parameters) on 200 training and 100 test images of 32x32x3, one or
two epochs: each fit takes a second or two on a CPU. Where a test says a record is reused,
``training.fit`` is replaced by one that raises, so the reuse provably trains nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from helpers import record_key, records, training
from helpers.data import CIFAR10_CLASSES, DataError, load_image_folder
from helpers.files import TEMP_PREFIX
from helpers.records import make_key
from helpers.training import Record, fit_and_record


def tiny_model(
    lr: float = 1e-3,
    loss: str = "sparse_categorical_crossentropy",
    k: int = 10,
    init="glorot_uniform",
    compiled: bool = True,
):
    """Rescale, one small convolution, global pooling, softmax: 162 parameters for 10 classes."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(4, 3, strides=2, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(k, activation="softmax", kernel_initializer=init),
        ]
    )
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
    return model


class _Trains(Exception):
    """Raised by the stand-in for ``training.fit``: the call would have trained."""


def _no_training(*args, **kwargs):
    raise _Trains("training.fit was called")


@pytest.fixture
def no_training(monkeypatch):
    """``training.fit`` raises :class:`_Trains`: reusing a record must not call it."""
    monkeypatch.setattr(training, "fit", _no_training)


def _files(folder):
    out = []
    for dirpath, _, names in os.walk(folder):
        out += [os.path.join(dirpath, n) for n in names]
    return out


def _weights_equal(a, b):
    wa = a if isinstance(a, list) else a.get_weights()
    wb = b if isinstance(b, list) else b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))


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
        rec = fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32)
    return root, rec.model.get_weights(), rec


@pytest.fixture
def base(_trained_once, suite_root, smoke_session):
    """The record ``base`` (copied into this test's suite root) and its trained weights."""
    root, weights, _ = _trained_once
    for sub in ("results", "checkpoints", "logs"):
        shutil.copytree(root / sub, suite_root / sub)
    return Record.load(training.record_path("base")), weights


def test_record_fields(_trained_once, small_data):
    root, weights, rec = _trained_once  # the record as fit_and_record returned it
    assert isinstance(rec, Record) and not rec.reused and rec.record_version == 3
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
    assert rec.train is None and rec.y_train_pred is None  # only with evaluate_train
    assert [r["class"] for r in rec.per_class_accuracy] == small_data.class_names
    assert sum(r["total"] for r in rec.per_class_accuracy) == n_test
    assert sum(r["correct"] for r in rec.per_class_accuracy) == np.trace(cm)
    assert len(rec.epoch_times_s) == 1 and rec.epoch_times_s[0] > 0
    assert rec.wall_time_s >= rec.epoch_times_s[0]
    # the trained model comes with the record
    assert isinstance(rec.model, keras.Model) and _weights_equal(rec.model, weights)
    assert rec.params == rec.model.count_params() == 162
    assert rec.trainable_params == 162 and rec.layers == 4
    # provenance: where, on what and with what it was made
    prov = rec.provenance
    assert rec.backend == prov["backend"] == keras.backend.backend() and prov["devices"]
    assert {"python", "keras", "numpy"} <= set(prov["versions"]) and prov["created"]
    assert prov["data_source"] == small_data.provenance()["data_source"] and not prov["stand_in"]
    assert not [w for w in prov["data_source"].split() if w.startswith("/")]  # no absolute path
    assert len(prov["fingerprint"]) == 16
    # the key: what determines the result
    assert rec.data == small_data.key() == rec.config["data"]
    assert rec.data["train"] == 200 and rec.data["test"] == 100
    assert rec.config["epochs"] == 1 and rec.config["compile"]["optimizer"]["class"] == "Adam"
    assert rec.config["callbacks"] == [] and rec.config["evaluate_train"] is False
    assert rec.config_hash == make_key(rec.config)
    assert "base: test accuracy" in rec.summary() and "[trained]" in rec.summary()

    path = root / "results" / "smoke" / "unit" / "base.json"
    assert rec.path == str(path.resolve()) and path.is_file()
    stored = json.loads(path.read_text())
    assert not {"reused", "path", "model", "trained_model", "model_loader"} & set(stored)
    assert stored["record_version"] == 3 and "backend" not in stored and "data" not in stored
    assert Record.load(path) == rec
    assert (root / "checkpoints" / "smoke" / "unit" / "base.weights.h5").is_file()
    assert (root / "logs" / "smoke" / "unit" / "base.csv").is_file()
    assert (root / "logs" / "smoke" / "unit" / "tensorboard" / "base").is_dir()  # always written
    assert not [f for f in _files(root) if os.path.basename(f).startswith(TEMP_PREFIX)]
    # the BackupAndRestore folder of a finished run is removed
    assert not list((root / "checkpoints" / "smoke" / "unit").glob("backup-*"))


def test_unchanged_config_reuses_the_record(base, small_data, no_training, capsys):
    rec, trained = base
    assert not _weights_equal(tiny_model(), trained)  # a fresh build is untrained
    with warnings.catch_warnings():
        # e.g. Keras's "Skipping variable loading for optimizer"
        warnings.simplefilter("error", UserWarning)
        again = fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32)
    assert again.reused and "[reused record made with" in again.summary()
    assert again.summary() in capsys.readouterr().out  # its summary line is printed
    assert again.config_hash == rec.config_hash
    assert again.test == rec.test and again.provenance == rec.provenance
    assert _weights_equal(again.model, trained)  # the saved weights were loaded
    assert int(again.model.optimizer.iterations) == 7  # and the optimizer's state: 200 / 32 steps

    # a model instead of a builder, and a builder that leaves compiling to compile=: same run
    assert fit_and_record("base", tiny_model(), small_data, epochs=1, batch_size=32).reused
    built = fit_and_record(
        "base",
        lambda: tiny_model(compiled=False),
        small_data,
        epochs=1,
        batch_size=32,
        compile={
            "optimizer": keras.optimizers.Adam(1e-3),
            "loss": "sparse_categorical_crossentropy",
        },
    )
    assert built.reused and _weights_equal(built.model, trained)


def test_reused_record_trains_again_for_its_model_only_where_weights_are_missing(
    base, small_data, suite_root, monkeypatch, capsys
):
    rec, trained = base
    weights = suite_root / "checkpoints" / "smoke" / "unit" / "base.weights.h5"
    weights.unlink()
    real_fit = training.fit
    monkeypatch.setattr(training, "fit", _no_training)
    again = fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32)
    assert again.reused  # the record alone: nothing was trained
    with pytest.raises(_Trains):  # the model is trained on first use: never an untrained one
        _ = again.model
    assert "weights not saved here" in capsys.readouterr().out

    # training allowed again; only ``fit`` is restored (``monkeypatch.undo()`` would also undo
    # the isolated suite root, and the record trained again would land in the checkout)
    monkeypatch.setattr(training, "fit", real_fit)
    model = again.model
    assert isinstance(model, keras.Model) and again.model is model
    assert weights.is_file() and not _weights_equal(model, tiny_model())
    stored = Record.load(rec.path)  # trained again under the same key
    assert stored.config_hash == rec.config_hash
    assert stored.provenance["created"] >= rec.provenance["created"]


def test_init_runs_before_training_and_never_on_reuse(base, small_data, monkeypatch):
    _, trained = base
    stage1 = fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32)
    assert stage1.reused and stage1.trained_model is None  # nothing loaded yet
    started = []

    def init(model):
        model.set_weights(stage1.model.get_weights())
        started.append(model.get_weights())

    def stage2():
        return fit_and_record(
            "stage2",
            tiny_model,
            small_data,
            epochs=1,
            batch_size=32,
            init=init,
            config={"start": stage1.config_hash},
        )

    first = stage2()
    assert not first.reused and len(started) == 1 and _weights_equal(started[0], trained)
    assert first.config["extra"] == {"start": stage1.config_hash}

    monkeypatch.setattr(training, "fit", _no_training)
    stage1 = fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32)
    again = stage2()
    assert again.reused and len(started) == 1  # init not called
    assert stage1.trained_model is None  # so stage 1's weights were never loaded
    assert _weights_equal(again.model, first.model)


def test_force_retrains(base, small_data):
    rec, _ = base
    again = fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32, force=True)
    assert not again.reused and again.config_hash == rec.config_hash
    assert again.provenance["created"] >= rec.provenance["created"]


def test_session_force_retrain_retrains(base, small_data):
    import helpers  # noqa: PLC0415

    helpers.setup("unit", profile="smoke", force_retrain=True, verbose=False)
    assert not fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32).reused


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
    again = fit_and_record("base", lambda: tiny_model(lr=change.get("lr", 1e-3)), data, **kwargs)
    assert not again.reused and again.config_hash != rec.config_hash
    # the new record replaced the old one
    assert Record.load(again.path).config_hash == again.config_hash
    if "epochs" in change:
        assert again.epochs_run == 2 and len(again.epoch_times_s) == 2
    if "subset" in change:
        assert again.data["train"] == 150 and again.data["steps"][-1].startswith("subset")


def test_changed_architecture_retrains(base, small_data):
    rec, _ = base

    def wider():
        keras.utils.set_random_seed(0)
        return keras.Sequential(
            [
                keras.Input((32, 32, 3)),
                layers.Rescaling(1 / 255),
                layers.Conv2D(8, 3, strides=2, activation="relu"),
                layers.GlobalAveragePooling2D(),
                layers.Dense(10, activation="softmax"),
            ]
        )

    again = fit_and_record(
        "base",
        wider,
        small_data,
        epochs=1,
        batch_size=32,
        compile={"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
    )
    assert not again.reused and again.config_hash != rec.config_hash
    assert "accuracy" in again.history  # compile= adds the accuracy metric by default


def test_callbacks_enter_the_key(base, small_data, monkeypatch):
    rec, _ = base

    def run(callback):
        return fit_and_record(
            "base", tiny_model, small_data, epochs=1, batch_size=32, callbacks=[callback]
        )

    one = run(keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=1))
    assert not one.reused and one.config_hash != rec.config_hash
    assert one.config["callbacks"][0]["class"] == "ReduceLROnPlateau"
    assert one.config["callbacks"][0]["patience"] == 1
    two_cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=2)
    two = run(two_cb)
    assert not two.reused and two.config_hash not in (one.config_hash, rec.config_hash)

    monkeypatch.setattr(training, "fit", _no_training)
    # training changed the callback's counters (and Keras flipped min_delta's sign): the same
    # object, and a fresh one with the same settings, still name the same run
    assert run(two_cb).reused
    assert run(keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=2)).reused


def test_validation_arrays_and_bad_values(small_data, smoke_session):
    x, y = small_data.x_test[:50], small_data.y_test[:50]
    rec = fit_and_record("va", tiny_model, small_data, epochs=1, validation=(x, y))
    assert "val_loss" in rec.history and len(rec.config["validation_data"]) == 16
    assert rec.config["validation_split"] is None
    with pytest.raises(ValueError, match="'train'"):
        fit_and_record("bad", tiny_model, small_data, epochs=1, validation="train")
    with pytest.raises(DataError, match="validation fraction"):
        fit_and_record("bad", tiny_model, small_data, epochs=1, validation=1.5)
    with pytest.raises(DataError, match="validation data.*label 12"):
        fit_and_record("bad", tiny_model, small_data, epochs=1, validation=(x, np.full(50, 12)))
    assert not training.record_path("bad").exists()


def test_validation_split_and_early_stopping(small_data, smoke_session):
    # min_delta=1 makes every epoch after the first "no improvement": stops after epoch 2
    es = {"monitor": "val_loss", "patience": 1, "min_delta": 1.0}
    rec = fit_and_record("es", tiny_model, small_data, epochs=6, validation=0.2, early_stopping=es)
    assert rec.epochs_run == 2 and len(rec.epoch_times_s) == 2
    assert len(rec.history["val_loss"]) == 2 and len(rec.history["val_accuracy"]) == 2
    assert rec.config["early_stopping"] == es and rec.config["validation_split"] == 0.2
    assert rec.data["train"] == 200  # the record counts the whole training split


def test_one_hot_labels_and_validation_on_test(small_data, smoke_session):
    rec = fit_and_record(
        "oh",
        lambda: tiny_model(loss="categorical_crossentropy"),
        small_data,
        epochs=1,
        one_hot=True,
        validation="test",
    )
    assert rec.config["one_hot"] is True and np.isfinite(rec.test["loss"])
    assert np.array(rec.confusion_matrix).sum() == len(small_data.y_test)
    assert rec.config["validation_data"] == "test"
    # validating on the test split gives the same loss as the final test evaluation
    assert rec.history["val_loss"][-1] == pytest.approx(rec.test["loss"], rel=1e-4)


def test_evaluate_train_reported_and_notes(small_data, smoke_session):
    rep = {"test_accuracy": 0.74, "epochs": 15, "source": "Neural Networks HW3"}
    rec = fit_and_record(
        "et", tiny_model, small_data, epochs=1, evaluate_train=True, reported=rep, notes="n"
    )
    n_train = len(small_data.y_train)
    assert rec.config["evaluate_train"] is True
    assert len(rec.y_train_pred) == n_train and set(rec.y_train_pred) <= set(range(10))
    cm = np.array(rec.train["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == n_train
    assert cm.sum(axis=1).tolist() == np.bincount(small_data.y_train, minlength=10).tolist()
    assert np.trace(cm) == np.sum(np.array(rec.y_train_pred) == small_data.y_train)
    assert sum(r["total"] for r in rec.train["per_class_accuracy"]) == n_train
    assert rec.train["metrics"]["accuracy"] == pytest.approx(np.trace(cm) / n_train)
    stored = Record.load(rec.path)
    assert stored.reported == rep and stored.y_train_pred == rec.y_train_pred
    assert rec.notes == "n" and "(report: 0.740)" in rec.summary()


def test_diverged_run_is_recorded_with_a_note(small_data, smoke_session):
    """Weights of +inf make every output NaN: TerminateOnNaN stops in the first epoch and the
    run is still recorded (AUC undefined), saying why it stopped."""
    rec = fit_and_record(
        "nan", lambda: tiny_model(init=keras.initializers.Constant(np.inf)), small_data, epochs=3
    )
    assert rec.epochs_run == 1 and np.isnan(rec.history["loss"][-1])
    assert "loss became NaN/inf (TerminateOnNaN)" in rec.notes
    assert np.isnan(rec.test["loss"]) and np.isnan(rec.test["auc_macro"])
    assert 0 <= rec.test["accuracy"] <= 1
    assert np.array(rec.confusion_matrix).sum() == len(small_data.y_test)
    assert Record.load(rec.path).notes == rec.notes

    # strict JSON on disk (null, never NaN), flagged; the table and the curves show it
    def refuse(token):
        raise ValueError(f"{token} in a record")

    stored = json.loads(Path(rec.path).read_text(), parse_constant=refuse)
    assert stored["diverged"] is True and stored["test"]["loss"] is None
    assert stored["history"]["loss"][-1] is None
    back = Record.load(rec.path)
    assert rec.diverged and back.diverged and np.isnan(back.history["loss"][-1])
    assert "DIVERGED" in back.summary()
    from helpers import plotting, report  # noqa: PLC0415

    assert " (diverged) |" in report.markdown_table([back])
    fig = plotting.plot_history({"nan": back})
    assert "nan (diverged) train" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_uncompiled_model_raises(small_data, smoke_session):
    def uncompiled():
        return keras.Sequential([keras.Input((32, 32, 3)), layers.Flatten(), layers.Dense(10)])

    with pytest.raises(ValueError, match="not compiled.*compile="):
        fit_and_record("uc", uncompiled, small_data, epochs=1)
    assert not training.record_path("uc").exists()


def test_bad_labels_raise(small_data, smoke_session):
    from dataclasses import replace  # noqa: PLC0415

    bad = replace(small_data, y_train=small_data.y_train + 5)
    with pytest.raises(DataError, match="training data.*outside the class range"):
        fit_and_record("bl", tiny_model, bad, epochs=1)
    onehot = replace(small_data, y_test=np.eye(10, dtype=np.int64)[small_data.y_test])
    with pytest.raises(DataError, match="test data.*1-D integer"):
        fit_and_record("bl", tiny_model, onehot, epochs=1)


def test_wrong_output_width_raises_before_training(small_data, smoke_session, no_training):
    with pytest.raises(ValueError, match=r"\(None, 3\).*10 classes"):
        fit_and_record("w3", lambda: tiny_model(k=3), small_data, epochs=1)  # 3 outputs, 10 classes


def test_fit_and_evaluate_on_their_own(small_data, smoke_session, suite_root):
    data = small_data.subset(5, 3)
    model = tiny_model()
    out = training.fit(
        model,
        (data.x_train, data.y_train),
        (data.x_test, data.y_test),
        name="direct",
        key="k",
        epochs=1,
        batch_size=16,
        num_classes=10,
    )
    assert set(out) == {"history", "epoch_times_s", "wall_time_s", "notes"}
    assert set(out["history"]) >= {"loss", "val_loss"} and len(out["epoch_times_s"]) == 1
    assert (suite_root / "logs" / "smoke" / "unit" / "direct.csv").is_file()
    metrics, pred = training.evaluate(
        model, data.x_test, data.y_test, batch_size=16, num_classes=10, one_hot=False
    )
    assert metrics["loss"] == pytest.approx(out["history"]["val_loss"][-1], rel=1e-4)
    assert pred.shape == (30,) and metrics["accuracy"] == pytest.approx(
        np.mean(pred == data.y_test)
    )
    four = tiny_model(k=4)  # 4 scores for 3 classes: caught after predicting
    y3 = data.y_test % 3
    with pytest.raises(ValueError, match=r"expected \(N, 3\) class scores"):
        training.evaluate(four, data.x_test, y3, batch_size=16, num_classes=3, one_hot=False)


class _Boom(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("boom in epoch end")


def test_failure_during_training_leaves_no_record(small_data, smoke_session, suite_root):
    with pytest.raises(RuntimeError, match="boom"):
        fit_and_record("fail", tiny_model, small_data, epochs=1, callbacks=[_Boom()])
    assert not [f for f in _files(suite_root / "results") if f.endswith(".json")]
    assert not [f for f in _files(suite_root) if os.path.basename(f).startswith(TEMP_PREFIX)]
    assert not training.record_path("fail").exists()


def test_failed_retrain_keeps_the_old_record(base, small_data, suite_root):
    rec, _ = base
    before = Path(rec.path).read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        fit_and_record("base", tiny_model, small_data, epochs=2, callbacks=[_Boom()])
    assert Path(rec.path).read_bytes() == before
    assert not [f for f in _files(suite_root) if os.path.basename(f).startswith(TEMP_PREFIX)]


class _InterruptOnce(keras.callbacks.Callback):
    """Interrupts training once, at the end of epoch ``epoch`` (after its backup was written).

    Whether it has fired is private state, so it does not change the run's key."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
        self._fired = False

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch and not self._fired:
            self._fired = True
            raise RuntimeError(f"interrupted after epoch {epoch}")


def test_interrupted_run_resumes_and_records_every_epoch(small_data, smoke_session, suite_root):
    interrupt = _InterruptOnce(1)
    with pytest.raises(RuntimeError, match="interrupted after epoch 1"):
        fit_and_record("resume", tiny_model, small_data, epochs=3, callbacks=[interrupt])
    ckpt = suite_root / "checkpoints" / "smoke" / "unit"
    assert len(list(ckpt.glob("backup-resume-*"))) == 2  # the backup and its epoch log
    assert not training.record_path("resume").exists()

    rec = fit_and_record("resume", tiny_model, small_data, epochs=3, callbacks=[interrupt])
    assert not rec.reused and rec.epochs_run == 3 and len(rec.history["loss"]) == 3
    assert set(rec.history) == {"loss", "accuracy"}  # no all-NA validation columns
    assert len(rec.epoch_times_s) == 1 and "Resumed from a backup" in rec.notes
    assert not list(ckpt.glob("backup-*"))  # cleaned up after the record is written
    csv_rows = (suite_root / "logs" / "smoke" / "unit" / "resume.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in csv_rows[1:]] == ["0", "1", "2"]


def test_load_records(base, suite_root):
    assert training.Record is records.Record and training.load_records is records.load_records
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
    rec = fit_and_record(
        "np",
        lambda: tiny_model(loss="categorical_crossentropy"),
        small_data,
        epochs=1,
        one_hot=True,
        validation=0.2,
    )
    assert rec.backend == "jax" and "val_loss" in rec.history
    assert "jax" not in json.dumps(rec.config)  # the backend is provenance, not key
    assert np.array(rec.confusion_matrix).sum() == 100


# --------------------------------------------------------------------------- portability


@pytest.fixture
def two_copies(tmp_path, shared_data, make_image):
    """The same small image folder (3 train and 2 test images per class) at two absolute paths:
    real CIFAR-10 images where $SUITE_DATA_DIR holds them, random 32x32 images elsewhere."""
    first = tmp_path / "first" / "cifar10"
    for split, n in (("train", 3), ("test", 2)):
        for c, cls in enumerate(CIFAR10_CLASSES):
            dst = first / split / cls
            dst.mkdir(parents=True)
            if shared_data is not None:
                for p in sorted((shared_data / "cifar10" / split / cls).iterdir())[:n]:
                    shutil.copyfile(p, dst / p.name)
            else:
                for i in range(n):
                    make_image(dst / f"{i}.png", size=(32, 32), value=100 * c + 10 * n + i)
    second = tmp_path / "second" / "cifar10"
    shutil.copytree(first, second)
    return first, second


def test_record_is_reused_from_another_copy_and_backend(
    two_copies, smoke_session, monkeypatch, tmp_path
):
    first, second = (load_image_folder(p) for p in two_copies)
    assert first.source != second.source and first.key() == second.key()
    assert first.provenance()["fingerprint"] == second.provenance()["fingerprint"]
    rec = fit_and_record("port", tiny_model, first, epochs=1)
    assert not rec.reused and rec.provenance["data_source"] == "image folder cifar10"
    assert str(tmp_path) not in Path(rec.path).read_text()  # no absolute path in the record
    assert str(tmp_path) not in json.dumps(rec.config)  # no absolute path in the key

    monkeypatch.setattr(training, "fit", _no_training)
    again = fit_and_record("port", tiny_model, second, epochs=1)
    assert again.reused and again.config_hash == rec.config_hash
    assert again.provenance["data_source"] == rec.provenance["data_source"]  # where it was made

    # a record made on another machine: another backend, devices, versions and data folder
    path = Path(rec.path)
    stored = json.loads(path.read_text())
    stored["provenance"].update(
        backend="jax",
        devices=["cuda:0"],
        versions={"python": "3.12.0", "jax": "0.6.0"},
        data_source="image folder /elsewhere/cifar10",
    )
    path.write_text(json.dumps(stored))
    monkeypatch.setattr(training, "devices", lambda: ["cpu:0", "gpu:0"])  # and here a GPU
    third = fit_and_record("port", tiny_model, second, epochs=1)
    assert third.reused and third.backend == "jax" and third.config_hash == rec.config_hash
    assert "reused record made with image folder /elsewhere/cifar10 on jax/cuda:0" in (
        third.summary()
    )


# --------------------------------------------------------------------------- version 1 records


def test_steps_per_execution_is_speed_only(small_data, smoke_session, monkeypatch):
    """More batches per compiled call: the same record key and the same training."""
    plain = fit_and_record("spe", tiny_model, small_data, epochs=2, batch_size=16)
    monkeypatch.setenv("SUITE_STEPS_PER_EXECUTION", "4")
    again = fit_and_record("spe", tiny_model, small_data, epochs=2, batch_size=16, force=True)
    assert again.trained_model.steps_per_execution == 4
    assert again.config_hash == plain.config_hash
    for metric in ("loss", "accuracy"):
        np.testing.assert_allclose(again.history[metric], plain.history[metric], rtol=1e-4)
    np.testing.assert_array_equal(again.y_test_pred, plain.y_test_pred)


@pytest.mark.parametrize("bad", ["0", "many", "-3"])
def test_bad_steps_per_execution_names_the_variable(bad, monkeypatch):
    monkeypatch.setenv("SUITE_STEPS_PER_EXECUTION", bad)
    with pytest.raises(ValueError, match=f"SUITE_STEPS_PER_EXECUTION='{bad}'"):
        training.steps_per_execution()


# --------------------------------------------------------------------------- faults


def test_non_finite_inputs_are_refused_before_training(small_data, smoke_session, suite_root):
    from dataclasses import replace  # noqa: PLC0415

    x_test = small_data.x_test.astype(np.float32)
    x_test[4, 0, 0, 0] = np.nan
    x_test[6, 1, 2, 0] = np.inf
    bad = replace(small_data, x_test=x_test, x_train=small_data.x_train.astype(np.float32))
    with pytest.raises(DataError) as err:
        fit_and_record("nf", tiny_model, bad, epochs=1)
    text = str(err.value)
    assert "nf test data" in text and "2 NaN/inf input value(s)" in text
    assert "first in sample 4" in text
    val = (x_test[:10], small_data.y_test[:10])
    with pytest.raises(DataError, match="nf validation data.*first in sample 4"):
        fit_and_record("nf", tiny_model, replace(bad, x_test=bad.x_train[:100]), epochs=1,
                       validation=val)  # fmt: skip
    assert not [f for f in _files(suite_root) if f.endswith((".json", ".h5"))]


def test_damaged_backup_restarts_from_epoch_one_saying_so(
    small_data, smoke_session, suite_root, capsys
):
    interrupt = _InterruptOnce(0)
    with pytest.raises(RuntimeError, match="interrupted after epoch 0"):
        fit_and_record("dmg", tiny_model, small_data, epochs=2, callbacks=[interrupt])
    (backup,) = (suite_root / "checkpoints" / "smoke" / "unit").glob("backup-dmg-*[!v]")
    weights = backup / "latest.weights.h5"
    assert training.backup_problem(backup) is None
    weights.write_bytes(weights.read_bytes()[:300])  # truncated
    assert "latest.weights.h5" in training.backup_problem(backup) or training.backup_problem(backup)
    rec = fit_and_record("dmg", tiny_model, small_data, epochs=2, callbacks=[interrupt])
    out = capsys.readouterr().out
    assert f"resume backup {backup} cannot be restored" in out
    assert "training starts again from epoch 1" in out
    assert rec.epochs_run == 2 and len(rec.epoch_times_s) == 2  # all epochs trained here
    assert "Resumed" not in rec.notes and not backup.exists()


def test_backup_is_written_whole(small_data, smoke_session, suite_root, monkeypatch):
    """A save of the backup that fails half-way leaves the previous backup as it was."""
    interrupt = _InterruptOnce(0)
    with pytest.raises(RuntimeError, match="interrupted after epoch 0"):
        fit_and_record("whole", tiny_model, small_data, epochs=3, callbacks=[interrupt])
    (backup,) = (suite_root / "checkpoints" / "smoke" / "unit").glob("backup-whole-*[!v]")
    before = {p.name: p.read_bytes() for p in backup.iterdir()}

    def half_then_fail(self, filepath, overwrite=True):
        Path(filepath).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save_weights", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        fit_and_record("whole", tiny_model, small_data, epochs=3, callbacks=[interrupt])
    assert {p.name: p.read_bytes() for p in backup.iterdir()} == before
    assert training.backup_problem(backup) is None
    assert not [f for f in _files(suite_root) if os.path.basename(f).startswith(TEMP_PREFIX)]


def test_damaged_saved_weights_name_the_file(base, small_data, no_training):
    weights = Path(training.current().checkpoints_dir) / "base.weights.h5"
    weights.write_bytes(weights.read_bytes()[:200])
    rec = fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32)
    assert rec.reused
    with pytest.raises(records.RecordError) as err:
        rec.model  # noqa: B018
    assert str(weights) in str(err.value) and "Delete that file" in str(err.value)


def test_saved_weights_are_written_whole(base, small_data, suite_root, monkeypatch):
    weights = Path(training.current().checkpoints_dir) / "base.weights.h5"
    before, record_before = weights.read_bytes(), Path(base[0].path).read_bytes()

    def half_then_fail(self, filepath, overwrite=True):
        Path(filepath).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save_weights", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32, force=True)
    assert weights.read_bytes() == before and Path(base[0].path).read_bytes() == record_before
    assert not [f for f in _files(suite_root) if os.path.basename(f).startswith(TEMP_PREFIX)]


def test_training_code_version_is_in_the_key(base, small_data, monkeypatch):
    rec, _ = base
    assert rec.config["implementation"] == training.IMPLEMENTATION
    monkeypatch.setattr(record_key, "IMPLEMENTATION", "helpers.training v2")
    again = fit_and_record("base", tiny_model, small_data, epochs=1, batch_size=32)
    assert not again.reused and again.config_hash != rec.config_hash
    assert again.config["implementation"] == "helpers.training v2"


_KERAS_WORKER = """
import os, sys, time
import keras
import helpers
from helpers import data, training
sys.path.insert(0, sys.argv[1])
from test_training import tiny_model
helpers.setup("unit", profile="smoke", seed=0, verbose=False)
x, y = data._digits_as_images(32, rgb=True)
ds = data.Dataset(x[:300], y[:300], x[300:400], y[300:400], [str(i) for i in range(10)], "digits")

class Slow(keras.callbacks.Callback):  # long enough for the other process to arrive
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(1.5)

rec = training.fit_and_record("shared", tiny_model, ds, epochs=3, batch_size=16, callbacks=[Slow()])
assert rec.model.count_params() == 162
print("REUSED" if rec.reused else "TRAINED")
"""


def test_two_kernels_on_one_keras_run(suite_root, tmp_path):
    """Two real processes fit the same run: one trains, the other waits for its lock and
    reuses its record and weights; no HDF5 lock error, no damaged file."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    env["SUITE_ROOT"] = str(suite_root)
    args = [sys.executable, "-c", _KERAS_WORKER, str(Path(__file__).parent)]
    procs = []
    for _ in range(2):
        procs.append(
            subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
        time.sleep(1.0)
    outs = [p.communicate(timeout=600) for p in procs]
    texts = [o.decode() + e.decode()[-2000:] for o, e in outs]
    assert [p.returncode for p in procs] == [0, 0], texts
    lasts = sorted(o.decode().strip().splitlines()[-1] for o, _ in outs)
    assert lasts == ["REUSED", "TRAINED"], texts
    assert any("another process is training this run" in t for t in texts), texts
    rec = Record.load(suite_root / "results" / "smoke" / "unit" / "shared.json")
    assert rec.epochs_run == 3
    assert not [f for f in _files(suite_root) if os.path.basename(f).startswith(TEMP_PREFIX)]


def test_fit_settings_object_gives_the_keywords_key(base, small_data, no_training):
    """``FitSettings`` in place of the fit keywords: the same run, reused."""
    rec, _ = base
    again = fit_and_record("base", tiny_model, small_data, training.FitSettings(epochs=1))
    assert again.reused and again.config_hash == rec.config_hash
    assert fit_and_record(
        "base", tiny_model, small_data, training.FitSettings(epochs=5), epochs=1
    ).reused  # a keyword overrides the object's field


def test_unknown_or_missing_fit_keyword_is_a_type_error(small_data, smoke_session):
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        fit_and_record("typo", tiny_model, small_data, epoch=1)
    with pytest.raises(TypeError, match="'epochs'"):
        fit_and_record("typo", tiny_model, small_data, batch_size=8)
