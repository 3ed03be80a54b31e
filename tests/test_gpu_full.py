"""scripts/gpu_full.py: the data packing, one-run-per-process notebook execution, and unpacking of
what comes back from the GPU machine."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import nbformat
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_full.py"


@pytest.fixture
def gpu_full():
    spec = importlib.util.spec_from_file_location("gpu_full_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pack_data_splits_every_file_into_exactly_one_part(gpu_full, tmp_path):
    src = tmp_path / "cifar10"
    files = {}
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            for i in range(5):
                path = src / split / cls / f"{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(bytes([i]) * (100 + i))
                files[f"cifar10/{split}/{cls}/{i}.jpg"] = path.read_bytes()
    zips = gpu_full.pack_data(src, tmp_path / "out")
    assert [z.name for z in zips] == ["cifar10-1.zip", "cifar10-2.zip"]
    seen = {}
    for z in zips:
        with zipfile.ZipFile(z) as f:
            for name in f.namelist():
                assert name not in seen, f"{name} in two parts"
                seen[name] = f.read(name)
    assert seen == files
    sizes = [z.stat().st_size for z in zips]
    assert abs(sizes[0] - sizes[1]) < 0.2 * max(sizes)
    assert not list((tmp_path / "out").glob("*.tmp"))


NOTEBOOK_CELLS = [
    'import helpers\nsession = helpers.setup("unit_gpu", profile="smoke", seed=0, verbose=False)',
    "from functools import partial\nimport keras\nfrom helpers import data, training\n"
    "ds = data.load_digits_dataset(0, 0.3)",
    "def build(units=None):\n"
    "    return keras.Sequential([keras.Input(ds.x_train.shape[1:]), keras.layers.Flatten(),\n"
    '        keras.layers.Dense(units or ds.num_classes, activation="softmax")])\n'
    "fit = partial(training.fit_and_record, data=ds, epochs=1,\n"
    '    compile={"optimizer": "adam", "loss": "sparse_categorical_crossentropy"})\n'
    "records = {}",
    'records["a"] = fit("a", build)\nrecords["b"] = fit("b", build, epochs=2)',
    'print("a:", records["a"].test_accuracy)',
    'records["bad"] = fit("bad", lambda: build(3))',
    'records["c"] = fit("c", build)',
    'for n in ("d", "e"):\n    records[n] = fit(n, build)',
]


@pytest.fixture
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    path = tmp_path / "nbs" / "99_unit.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


def _records(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "results" / "smoke" / "unit_gpu").glob("*.json"))


def test_listing_trains_nothing(gpu_full, notebook, suite_root):
    from helpers import training

    real = training.fit_and_record
    out = gpu_full.exec_notebook(notebook, None)
    listed = [(r["name"], r["epochs"], r["done"]) for r in out["runs"]]
    assert listed == [
        ("a", 1, False),
        ("b", 2, False),
        ("bad", 1, False),
        ("c", 1, False),
        ("d", 1, False),
        ("e", 1, False),
    ]
    assert out["runs"][0]["images"] > 0
    assert out["trained"] == {}
    assert _records(suite_root) == []
    assert training.fit_and_record is real  # restored


def test_one_run_is_trained_the_others_skipped(gpu_full, notebook, suite_root, capsys):
    out = gpu_full.exec_notebook(notebook, {"b"})
    assert list(out["trained"]) == ["b"]
    assert out["trained"]["b"].epochs_run == 2
    assert _records(suite_root) == ["b"]
    # the statement after the skipped "a" still ran; execution stopped once "b" was trained
    assert "passed over" not in capsys.readouterr().out
    listed = gpu_full.exec_notebook(notebook, None)["runs"]
    assert {r["name"]: r["done"] for r in listed} == {
        "a": False,
        "b": True,
        "bad": False,
        "c": False,
        "d": False,
        "e": False,
    }
    assert _records(suite_root) == ["b"]  # listing trained nothing


def test_statements_needing_a_skipped_run_are_passed_over(gpu_full, notebook, suite_root, capsys):
    out = gpu_full.exec_notebook(notebook, {"c"})
    assert list(out["trained"]) == ["c"]
    assert _records(suite_root) == ["c"]
    assert "passed over: 99_unit.ipynb cell 5: AttributeError" in capsys.readouterr().out


def test_a_skipped_run_with_a_record_gives_its_record(gpu_full, notebook, suite_root, capsys):
    gpu_full.exec_notebook(notebook, {"a"})
    capsys.readouterr()
    out = gpu_full.exec_notebook(notebook, {"c"})  # "a" is skipped, its record loaded
    assert list(out["trained"]) == ["c"]
    printed = capsys.readouterr().out
    assert "a: 0." in printed  # the statement using records["a"] ran, not passed over
    assert "cell 5" not in printed
    assert _records(suite_root) == ["a", "c"]


def test_a_run_inside_a_loop_is_reached(gpu_full, notebook, suite_root):
    out = gpu_full.exec_notebook(notebook, {"e"})  # "d" comes first in the same loop
    assert list(out["trained"]) == ["e"]
    assert _records(suite_root) == ["e"]


def test_a_failing_run_is_not_passed_over(gpu_full, notebook, suite_root):
    with pytest.raises(Exception, match="bad"):
        gpu_full.exec_notebook(notebook, {"bad"})
    assert _records(suite_root) == []


def _archive(tmp_path: Path, members: dict[str, bytes]) -> Path:
    folder = tmp_path / "back"
    folder.mkdir()
    with tarfile.open(folder / "gpu-results.tar.gz", "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return folder


def _record_json() -> bytes:
    rec = {
        "test": {"accuracy": 0.5},
        "epochs_run": 3,
        "provenance": {"backend": "jax", "devices": ["cuda:0"]},
    }
    return json.dumps(rec).encode()


def test_unpack_puts_records_and_logs_in_place(gpu_full, tmp_path, monkeypatch, capsys):
    root = tmp_path / "checkout"
    monkeypatch.setattr(gpu_full, "ROOT", root)
    back = _archive(
        tmp_path,
        {
            "results/full/06_x/cnn.json": _record_json(),
            "logs/full/06_x/cnn.csv": b"epoch,loss\n0,1.0\n",
            "gpu/status.json": json.dumps({"done": [1], "running": [], "pending": []}).encode(),
        },
    )
    gpu_full.main(["unpack", str(back)])
    assert json.loads((root / "results/full/06_x/cnn.json").read_text())["epochs_run"] == 3
    assert (root / "logs/full/06_x/cnn.csv").is_file()
    assert not (root / "gpu").exists()
    out = capsys.readouterr().out
    assert "test accuracy 0.5000, 3 epochs, jax on ['cuda:0']" in out
    assert "1 runs done" in out


def test_unpack_joins_parts(gpu_full, tmp_path, monkeypatch):
    root = tmp_path / "checkout"
    monkeypatch.setattr(gpu_full, "ROOT", root)
    back = _archive(tmp_path, {"results/full/06_x/cnn.json": _record_json()})
    blob = (back / "gpu-results.tar.gz").read_bytes()
    (back / "gpu-results.tar.gz").unlink()
    (back / "gpu-results.tar.gz.000").write_bytes(blob[:50])
    (back / "gpu-results.tar.gz.001").write_bytes(blob[50:])
    gpu_full.main(["unpack", str(back)])
    assert (root / "results/full/06_x/cnn.json").is_file()


@pytest.mark.parametrize("bad", ["src/helpers/training.py", "results/full/../../evil.json"])
def test_unpack_refuses_files_outside_the_profile_folders(gpu_full, tmp_path, monkeypatch, bad):
    root = tmp_path / "checkout"
    monkeypatch.setattr(gpu_full, "ROOT", root)
    back = _archive(tmp_path, {"results/full/06_x/cnn.json": _record_json(), bad: b"x"})
    with pytest.raises(SystemExit, match="nothing unpacked"):
        gpu_full.main(["unpack", str(back)])
    assert not root.exists()


def test_wait_without_a_start_says_what_to_do(gpu_full, tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_full, "WORK", tmp_path / "work")
    with pytest.raises(SystemExit, match="run `stage` and `start` again"):
        gpu_full.main(["wait", "06", "--wait", "1"])


def test_runs_where_jupyter_is_not_installed():
    """The GPU machine has no nbformat or nbclient: the script must still start and pick notebooks."""
    code = (
        "import sys; sys.modules['nbformat'] = None; sys.modules['nbclient'] = None; "
        f"sys.argv = ['gpu_full.py']; import runpy; g = runpy.run_path({str(SCRIPT)!r}); "
        "print([p.name for p in g['select'](['06'])])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['06_cifar10_mlp_vs_cnn.ipynb']"
