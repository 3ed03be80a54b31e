"""helpers.records: the record key, the one cache mechanism (cached), atomic writes, version-2
records and their upgrade. No model is trained here: ``run()`` makes a record from fixed
predictions, and no deep-learning framework is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import files, records, session
from helpers.data import Dataset
from helpers.profiles import get_profile
from helpers.records import Record, RecordError, cached, make_key, new_record

CLASSES = ["a", "b", "c"]
Y_TEST = [0, 1, 2, 2]
PROVENANCE = {
    "data_source": "image folder /somewhere/toy",
    "stand_in": False,
    "fingerprint": "f" * 16,
    "backend": "numpy",
    "devices": ["cpu:0"],
}
STORED_SOURCE = "image folder toy"  # records store no absolute path: only the folder's name


@pytest.fixture(autouse=True)
def sess(suite_root, monkeypatch):
    """A session of notebook ``unit`` in the smoke profile (no ``setup``: nothing imports Keras)."""
    monkeypatch.setattr(records, "_UPGRADED", {})
    s = session.Session(notebook="unit", profile=get_profile("smoke"), seed=0)
    monkeypatch.setattr(session, "_CURRENT", s)
    return s


def make(
    config: dict, pred=(0, 1, 2, 1), provenance=PROVENANCE, test=None, history=None, **fields
) -> Record:
    """A record of ``config`` from fixed test predictions (``test`` and ``history`` metrics
    given, or made up)."""
    return new_record(
        "toy",
        config,
        y_test=np.array(Y_TEST),
        y_test_pred=np.array(pred),
        class_names=CLASSES,
        test=test or {"accuracy": float(np.mean(np.array(pred) == Y_TEST)), "loss": 0.5},
        history=history or {"loss": [1.0, 0.5]},
        provenance=provenance,
        **{
            "wall_time_s": 1.0,
            "epoch_times_s": [0.5, 0.5],
            "params": 10,
            "trainable_params": 10,
            "layers": 1,
            **fields,
        },
    )


class Runs:
    """A ``run()`` for :func:`cached` that counts its calls."""

    def __init__(self, config, **kw):
        self.config, self.kw, self.calls = config, kw, 0

    def __call__(self):
        self.calls += 1
        return make(self.config, **self.kw)


def _tmp_files(folder: Path) -> list[str]:
    return [n for _, _, names in os.walk(folder) for n in names if n.startswith(files.TEMP_PREFIX)]


CONFIG = {"model": {"units": 4}, "seed": 0, "data": {"dataset": "toy", "train": 6, "test": 4}}


def test_new_record_fields():
    rec = make(CONFIG, y_train=np.array([0, 1, 2]), y_train_pred=np.array([0, 1, 1]))
    assert (rec.name, rec.notebook, rec.profile) == ("toy", "unit", "smoke")
    assert rec.record_version == records.RECORD_VERSION == 3 and rec.diverged is False
    assert rec.config_hash == make_key(CONFIG) and rec.data == CONFIG["data"]
    assert rec.confusion_matrix == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert rec.epochs_run == 2 and rec.y_test_pred == [0, 1, 2, 1]
    assert rec.y_train_pred == [0, 1, 1] and np.array(rec.train["confusion_matrix"]).sum() == 3
    assert (
        rec.backend == "numpy" and rec.provenance["data_source"] == STORED_SOURCE == rec.data_source
    )
    assert {"python", "numpy"} <= set(rec.provenance["versions"]) and rec.provenance["created"]
    assert rec.model is None  # not a Keras model
    stored = json.loads(rec.to_json())
    assert not {"reused", "path", "model", "trained_model", "model_loader"} & set(stored)
    assert Record.from_dict(stored) == rec


def test_make_key_reads_configs_as_json_does():
    a = {"x": (1, 2), "n": np.int64(3), "f": np.float32(0.5), "inner": {"b": 1, "a": 2}}
    b = {"inner": {"a": 2, "b": 1}, "f": 0.5, "n": 3, "x": [1, 2]}
    assert make_key(a) == make_key(b) == make_key(records.normalized(a))
    assert make_key({**b, "n": 4}) != make_key(b)
    assert len(make_key(b)) == 12


def test_cached_runs_once_then_reuses(sess):
    run = Runs(CONFIG)
    rec = cached("toy", CONFIG, run, provenance=PROVENANCE)
    path = sess.results_dir / "toy.json"
    assert not rec.reused and run.calls == 1 and rec.path == str(path) and path.is_file()
    again = cached("toy", CONFIG, run, provenance=PROVENANCE)
    assert again.reused and run.calls == 1 and again == rec and again.path == str(path)


def test_cached_force_runs_again(sess):
    run = Runs(CONFIG)
    cached("toy", CONFIG, run, provenance=PROVENANCE)
    assert not cached("toy", CONFIG, run, provenance=PROVENANCE, force=True).reused
    assert run.calls == 2
    sess.force_retrain = True  # the session's default
    assert not cached("toy", CONFIG, run, provenance=PROVENANCE).reused and run.calls == 3
    assert cached("toy", CONFIG, run, provenance=PROVENANCE, force=False).reused
    assert run.calls == 3


def test_cached_changed_config_runs_again_and_replaces_the_file(sess):
    cached("toy", CONFIG, Runs(CONFIG), provenance=PROVENANCE)
    other = {**CONFIG, "seed": 1}
    run = Runs(other)
    rec = cached("toy", other, run, provenance=PROVENANCE)
    assert not rec.reused and run.calls == 1
    assert Record.load(sess.results_dir / "toy.json").config_hash == make_key(other)


def test_failed_run_leaves_the_old_file_untouched(sess):
    cached("toy", CONFIG, Runs(CONFIG), provenance=PROVENANCE)
    path = sess.results_dir / "toy.json"
    before = path.read_bytes()

    def boom():
        raise RuntimeError("boom in run")

    with pytest.raises(RuntimeError, match="boom in run"):
        cached("toy", CONFIG, boom, provenance=PROVENANCE, force=True)
    assert path.read_bytes() == before and _tmp_files(sess.root) == []
    with pytest.raises(RuntimeError, match="boom in run"):
        cached("other", CONFIG, boom, provenance=PROVENANCE)
    assert not (sess.results_dir / "other.json").exists() and _tmp_files(sess.root) == []


def test_run_for_another_config_is_refused(sess):
    with pytest.raises(RuntimeError, match="another config"):
        cached("toy", CONFIG, Runs({**CONFIG, "seed": 9}), provenance=PROVENANCE)
    assert not (sess.results_dir / "toy.json").exists()


def test_atomic_write_cleans_up_on_error(tmp_path, monkeypatch):
    target = tmp_path / "r" / "x.json"
    records.atomic_write(target, "{}")
    assert target.read_text() == "{}"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        records.atomic_write(target, '{"new": 1}')
    assert target.read_text() == "{}" and os.listdir(target.parent) == ["x.json"]


def test_unreadable_record_says_delete_it(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RecordError, match="bad.json.*delete it to train"):
        Record.load(bad)
    d = json.loads(make(CONFIG).to_json())
    bad.write_text(json.dumps({**d, "surprise": 1}))
    with pytest.raises(RecordError, match="unknown fields.*surprise"):
        Record.load(bad)
    assert issubclass(RecordError, ValueError)


def test_dataset_key_names_the_data_not_where_it_was_read(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (10, 4, 4, 3), dtype=np.uint8), np.arange(10) % 2
    here, there = (
        Dataset(x, y, x[:4], y[:4], ["a", "b"], source=f"image folder {tmp_path / d}", name="toy")
        for d in ("one", "two")
    )
    assert here.key() == there.key()
    assert here.key() == {
        "dataset": "toy",
        "steps": [],
        "classes": ["a", "b"],
        "train": 10,
        "test": 4,
        "shape": [4, 4, 3],
    }
    assert str(tmp_path) not in json.dumps(here.key())
    assert here.provenance()["data_source"] != there.provenance()["data_source"]
    assert here.provenance()["fingerprint"] == there.provenance()["fingerprint"]
    sub = here.subset(2, 1)
    assert sub.key() != here.key() and sub.key()["steps"] == [
        "subset train 2/class test 1/class seed 0"
    ]


def test_record_made_elsewhere_is_reused_here(sess):
    """Another data folder, backend, devices and library versions: provenance, not key."""
    elsewhere = {
        **PROVENANCE,
        "data_source": "image folder /mnt/other/toy",
        "backend": "jax",
        "devices": ["cuda:0"],
    }
    first = cached("toy", CONFIG, Runs(CONFIG, provenance=elsewhere), provenance=elsewhere)
    stored = json.loads(Path(first.path).read_text())
    stored["provenance"]["versions"] = {"python": "3.13.0", "jax": "0.7.0"}
    Path(first.path).write_text(json.dumps(stored))
    run = Runs(CONFIG)
    again = cached("toy", CONFIG, run, provenance=PROVENANCE)
    assert again.reused and run.calls == 0 and again.backend == "jax"
    assert "made with image folder toy on jax/cuda:0" in again.summary()


def _write(sess, name: str, d: dict) -> Path:
    path = sess.results_dir / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d, indent=1))
    return path


def test_load_records(sess, suite_root):
    cached("toy", CONFIG, Runs(CONFIG), provenance=PROVENANCE)
    d = _as_version_2(make(CONFIG))
    other = suite_root / "results" / "full" / "nb" / "old.json"
    other.parent.mkdir(parents=True)
    other.write_text(json.dumps(d))
    assert [r.record_version for r in records.load_records()] == [2, 3]  # full/ before smoke/
    assert [r.name for r in records.load_records(profile="smoke")] == ["toy"]
    assert records.load_records(notebook="nb", root=suite_root)[0].path == str(other)
    assert records.load_records(profile="quick") == []


# --------------------------------------------------------------------------- light imports


def test_records_and_report_import_no_deep_learning_framework(tmp_path):
    code = (
        "import sys, helpers.records, helpers.report\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "heavy: []"


# --------------------------------------------------------------------------- faults


def _raise_on_constant(token):
    raise ValueError(f"non-strict JSON token {token}")


def test_diverged_record_is_strict_json_with_a_flag(sess):
    """NaN and infinities are stored as null with ``diverged: true``; read back as NaN."""
    nan, inf = float("nan"), float("inf")
    rec = make(
        CONFIG,
        history={"loss": [1.0, nan], "val_loss": [inf, -inf]},
        test={"accuracy": 0.25, "loss": np.float32(nan), "auc_macro": nan},
    )
    assert rec.diverged and "DIVERGED" in rec.summary()
    path = sess.results_dir / "toy.json"
    records.atomic_write(path, rec.to_json())
    stored = json.loads(path.read_text(), parse_constant=_raise_on_constant)
    assert stored["diverged"] is True and stored["history"]["loss"] == [1.0, None]
    assert stored["history"]["val_loss"] == [None, None] and stored["test"]["loss"] is None
    back = Record.load(path)
    assert back.diverged and np.isnan(back.history["loss"][1]) and np.isnan(back.test["loss"])
    assert back.test["accuracy"] == 0.25 and not make(CONFIG).diverged


def test_record_with_nan_tokens_reads_as_diverged(sess):
    """A file with bare NaN tokens (not strict JSON) still reads, and says it diverged."""
    text = make(CONFIG).to_json().replace('"loss": 0.5', '"loss": NaN')
    path = sess.results_dir / "toy.json"
    records.atomic_write(path, text)
    assert Record.load(path).diverged


def test_record_of_a_newer_version_is_never_reused_nor_overwritten(sess):
    path = sess.results_dir / "toy.json"
    newer = {**json.loads(make(CONFIG).to_json()), "record_version": 99, "new_field": {"x": 1}}
    records.atomic_write(path, json.dumps(newer))
    before = path.read_bytes()
    run = Runs(CONFIG)
    for force in (False, True):
        with pytest.raises(records.RecordVersionError) as err:
            cached("toy", CONFIG, run, provenance=PROVENANCE, force=force)
        assert str(path) in str(err.value) and "record version 99" in str(err.value)
        assert "up to 3" in str(err.value) and "delete" not in str(err.value).lower()
    with pytest.raises(records.RecordVersionError, match="toy.json"):
        records.load_records()
    assert run.calls == 0 and path.read_bytes() == before
    assert issubclass(records.RecordVersionError, RecordError)


def _broken(d: dict, field: str, value) -> dict:
    """``d`` with ``field`` (dotted: ``test.accuracy``) set to ``value`` (``...``: removed)."""
    d = json.loads(json.dumps(d))
    *parents, last = field.split(".")
    target = d
    for p in parents:
        target = target[p]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return d


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("test.accuracy", ...),
        ("test", "0.9"),
        ("history", None),
        ("history.loss", "1.0, 0.5"),
        ("history.loss", [1.0, "x"]),
        ("config", ...),
        ("params", "ten"),
        ("confusion_matrix", [[1, 0], "row"]),
        ("y_test_pred", [0, 1.5]),
        ("train", "none"),
        ("train.metrics", ...),
        ("provenance", []),
        ("provenance.devices", "cpu:0"),
        ("reported.test_accuracy", "0.9"),
        ("record_version", "3"),
    ],
)
def test_malformed_record_names_file_and_field(sess, field, value):
    base = json.loads(
        make(
            CONFIG, y_train=np.array([0]), y_train_pred=np.array([0]), reported={"epochs": 2}
        ).to_json()
    )
    path = sess.results_dir / "toy.json"
    records.atomic_write(path, json.dumps(_broken(base, field, value)))
    with pytest.raises(RecordError) as err:
        Record.load(path)
    assert str(path) in str(err.value) and f"'{field}" in str(err.value)
    assert type(err.value) is RecordError  # not a KeyError, TypeError or AttributeError
    with pytest.raises(RecordError, match=field.replace(".", r"\.")):
        cached("toy", CONFIG, Runs(CONFIG), provenance=PROVENANCE)
    assert cached("toy", CONFIG, Runs(CONFIG), provenance=PROVENANCE, force=True).path


def test_record_that_is_no_object_names_the_file(sess):
    path = sess.results_dir / "toy.json"
    records.atomic_write(path, "[1, 2]")
    with pytest.raises(RecordError, match=r"toy\.json.*JSON list, not an object"):
        Record.load(path)


_WORKER = """
import json, os, sys, time
import numpy as np
from helpers import records, session
from helpers.profiles import get_profile
session._CURRENT = session.Session(notebook="unit", profile=get_profile("smoke"), seed=0)
config = json.loads(sys.argv[1])
log = sys.argv[2]

def run():
    with open(log, "a") as fh:
        fh.write(f"train {os.getpid()}\\n")
    time.sleep(2.0)
    return records.new_record(
        "toy", config, y_test=np.array([0, 1]), y_test_pred=np.array([0, 1]),
        class_names=["a", "b"], test={"accuracy": 1.0}, history={"loss": [0.1]},
        provenance={"data_source": "x"}, wall_time_s=2.0, epoch_times_s=[2.0], params=1,
        trainable_params=1, layers=1,
    )

try:
    rec = records.cached("toy", config, run, provenance={})
except records.RunBusy as err:
    print("BUSY", err)
    sys.exit(3)
print("REUSED" if rec.reused else "TRAINED")
"""


def _workers(suite_root, tmp_path, n=2, **env):
    log = tmp_path / "runs.log"
    env = {**os.environ, "SUITE_ROOT": str(suite_root), **env}
    env.pop("PYTHONSTARTUP", None)
    args = [sys.executable, "-c", _WORKER, json.dumps(CONFIG), str(log)]
    procs = []
    for _ in range(n):
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True))
        time.sleep(0.3)
    outs = [p.communicate(timeout=120)[0] for p in procs]
    return [p.returncode for p in procs], outs, log.read_text().splitlines()


def test_two_processes_on_one_run_take_turns(sess, suite_root, tmp_path):
    """Two real processes: one trains, the other waits and reuses its record."""
    codes, outs, trained = _workers(suite_root, tmp_path)
    assert codes == [0, 0] and len(trained) == 1, outs
    assert sorted(o.strip().splitlines()[-1] for o in outs) == ["REUSED", "TRAINED"]
    assert any("another process is training this run" in o for o in outs)
    assert Record.load(sess.results_dir / "toy.json").test["accuracy"] == 1.0
    assert _tmp_files(suite_root) == []


def test_second_process_stops_with_a_message_after_the_lock_timeout(sess, suite_root, tmp_path):
    codes, outs, trained = _workers(suite_root, tmp_path, SUITE_LOCK_TIMEOUT="0.5")
    assert sorted(codes) == [0, 3] and len(trained) == 1, outs
    busy = next(o for o in outs if "BUSY" in o)
    assert "another process is still training" in busy and "toy.lock" in busy
    assert Record.load(sess.results_dir / "toy.json").test["accuracy"] == 1.0


def test_atomic_writer_is_the_one_for_the_package(tmp_path):
    """Records, weights and caches share one writer, whose temporary file keeps the suffix."""
    assert records.atomic_write is files.atomic_write
    tmp_path = tmp_path / "w"
    with files.atomic_path(tmp_path / "m.weights.h5") as tmp:
        assert tmp.name.endswith("-m.weights.h5") and tmp.name.startswith(files.TEMP_PREFIX)
        tmp.write_bytes(b"w")
    with pytest.raises(KeyboardInterrupt), files.atomic_path(tmp_path / "m.weights.h5") as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["m.weights.h5"]
    assert (tmp_path / "m.weights.h5").read_bytes() == b"w"


# --------------------------------------------------------------------------- version 2


def _as_version_2(rec: Record, source="image folder /home/someone/data/toy") -> dict:
    """``rec`` as version 2 wrote it: no code version in the key, absolute data paths."""
    d = json.loads(rec.to_json())
    d.pop("diverged")
    d["config"].pop("implementation", None)
    d["config_hash"] = make_key(d["config"])
    d["provenance"]["data_source"] = source
    d["record_version"] = 2
    return d


IMPL_CONFIG = {**CONFIG, "implementation": records.LEGACY_IMPLEMENTATION}


def test_version_2_record_is_upgraded_in_place_not_run(sess, monkeypatch, tmp_path):
    monkeypatch.setenv("SUITE_DATA_DIR", "/home/someone/data")
    old = _as_version_2(make(IMPL_CONFIG))
    path = _write(sess, "toy", old)
    run = Runs(IMPL_CONFIG)
    rec = cached("toy", IMPL_CONFIG, run, provenance=PROVENANCE)
    assert rec.reused and run.calls == 0 and rec.config_hash == make_key(IMPL_CONFIG)
    stored = json.loads(path.read_text(), parse_constant=_raise_on_constant)
    assert stored["record_version"] == 3 and stored["config"] == IMPL_CONFIG
    assert stored["provenance"]["upgraded_from_key"] == old["config_hash"]
    assert stored["provenance"]["data_source"] == "image folder $SUITE_DATA_DIR/toy"
    assert "made with image folder $SUITE_DATA_DIR/toy on numpy" in rec.summary()  # no local path
    assert stored["test"] == old["test"] and stored["diverged"] is False
    # another code version: the same settings train again
    newer = {**CONFIG, "implementation": "helpers.training v2"}
    run2 = Runs(newer)
    assert not cached("toy", newer, run2, provenance=PROVENANCE).reused and run2.calls == 1


def test_upgrade_files_rewrites_every_version_2_record_whatever_the_order(sess, suite_root):
    """``b`` starts from ``a`` (its settings name a's key): after the upgrade they name a's new
    key, although ``b`` sorts before ``a``'s folder."""
    a_v2 = _as_version_2(make(IMPL_CONFIG))
    a_path = suite_root / "results" / "smoke" / "zz" / "a.json"
    records.atomic_write(a_path, json.dumps({**a_v2, "name": "a"}))
    b_cfg = {**CONFIG, "extra": {"starts_from": f"a {a_v2['config_hash']}"}}
    b_v2 = _as_version_2(make(b_cfg))
    b_path = suite_root / "results" / "smoke" / "aa" / "b.json"
    records.atomic_write(b_path, json.dumps({**b_v2, "name": "b"}))
    newest = suite_root / "results" / "smoke" / "aa" / "c.json"
    records.atomic_write(newest, make(IMPL_CONFIG).to_json())
    before = newest.read_bytes()

    assert sorted(records.upgrade_files(suite_root)) == sorted([a_path, b_path])
    a, b = Record.load(a_path), Record.load(b_path)
    assert a.record_version == b.record_version == 3 and newest.read_bytes() == before
    assert a.config_hash == make_key(IMPL_CONFIG)
    assert b.config["extra"]["starts_from"] == f"a {a.config_hash}"
    b_new = {**b_cfg, "extra": {"starts_from": f"a {a.config_hash}"}}
    assert b.config_hash == make_key({**b_new, "implementation": records.LEGACY_IMPLEMENTATION})
    assert records.upgrade_files(suite_root) == []  # nothing left to do


@pytest.mark.parametrize("version", [1, None])
def test_version_1_record_is_no_longer_read(sess, version):
    """No record needs version 1 any more: reading one names the file and says what to do."""
    d = _as_version_2(make(CONFIG))
    del d["record_version"]
    if version is not None:
        d["record_version"] = version
    path = _write(sess, "toy", d)
    with pytest.raises(RecordError, match="record version 1.*delete the file") as err:
        Record.load(path)
    assert str(path) in str(err.value)
