"""scripts/train.py: a notebook's runs trained as Ray tasks, the files brought back, the render
reusing them; on a local Ray and on a head node started with ``ray start``.

The notebook is a small one on scikit-learn's digits: run ``b`` starts from ``a``'s weights
(so it waits for ``a``), run ``c`` appears only once ``a``'s accuracy is known.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import notebook_runs, runplan

pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")

REPO = Path(__file__).resolve().parents[1]
CELLS = [
    'import helpers\nsession = helpers.setup("99_unit", seed=0, verbose=False)',
    "from functools import partial\nimport keras\nfrom helpers import data, training\n"
    "ds = data.load_digits_dataset(0, 0.3)\n"
    "def build():\n"
    "    return keras.Sequential([keras.Input(ds.x_train.shape[1:]), keras.layers.Flatten(),\n"
    '        keras.layers.Dense(ds.num_classes, activation="softmax")])\n'
    "fit = partial(training.fit_and_record, data=ds, epochs=1,\n"
    '    compile={"optimizer": "adam", "loss": "sparse_categorical_crossentropy"})',
    'a = fit("a", build)',
    'print("a:", a.test_accuracy, a.model.count_params())',  # fails where "a" is a placeholder
    'b = fit("b", build, init=lambda m: m.set_weights(a.model.get_weights()),\n'
    '    config={"starts_from": a.config_hash})',
    'if a.test_accuracy >= 0:  # NaN while "a" is not trained\n    c = fit("c", build, epochs=2)',
]


def _checkout(tmp_path: Path, cells: list[str]) -> Path:
    """A checkout holding the two scripts and one notebook ``99_unit.ipynb``."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "pyproject.toml").write_text("")
    for script in ("train.py", "run_notebooks.py"):
        shutil.copy(REPO / "scripts" / script, root / "scripts" / script)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, root / "notebooks" / "99_unit.ipynb")
    return root


def _env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **extra}
    env.pop("RAY_ADDRESS", None)
    return {**env, **extra}


def _train(checkout: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    script = [sys.executable, str(checkout / "scripts" / "train.py"), "99", *args]
    out = subprocess.run(script, env=env, cwd=checkout, capture_output=True, text=True)
    print(out.stdout[-4000:])
    return out


def _records(suite_root: Path) -> list[str]:
    return sorted(p.stem for p in (suite_root / "results" / "smoke" / "99_unit").glob("*.json"))


def test_runs_are_listed_without_training(tmp_path, suite_root):
    checkout = _checkout(tmp_path, CELLS)
    os.environ.pop(runplan.ONLY_RUN, None)
    runs = notebook_runs.list_runs(suite_root, checkout / "notebooks" / "99_unit.ipynb", "smoke")
    assert [(r.name, r.recorded, r.refs) for r in runs] == [("a", False, []), ("b", False, ["a"])]
    assert _records(suite_root) == []


def test_make_train_on_local_ray_then_the_render_reuses_every_run(tmp_path, suite_root):
    checkout = _checkout(tmp_path, CELLS)
    out = _train(checkout, _env(), "--cpus", "2", "--every", "5")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "local Ray: 2 CPUs, 0 GPUs" in out.stdout
    assert "after the runs they start from: b" in out.stdout  # b waited for a
    assert "trained 3 run(s)" in out.stdout
    assert "nothing trained there" in out.stdout
    assert _records(suite_root) == ["a", "b", "c"]
    b = json.loads((suite_root / "results/smoke/99_unit/b.json").read_text())
    a = json.loads((suite_root / "results/smoke/99_unit/a.json").read_text())
    assert b["config"]["extra"]["starts_from"] == a["config_hash"]
    for name in "abc":  # weights and logs came back too
        assert (suite_root / f"checkpoints/smoke/99_unit/{name}.weights.h5").is_file()
        assert (suite_root / f"logs/smoke/99_unit/{name}.csv").is_file()
        assert list((suite_root / f"logs/smoke/99_unit/tensorboard/{name}").rglob("*.v2"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_train_on_a_head_node_named_by_ray_address(tmp_path, suite_root):
    checkout = _checkout(tmp_path, CELLS[:3])
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    port = _free_port()
    # Ray starts clusters with token authentication; head node and driver share this token
    env = _env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    start = [ray, "start", "--head", "--num-cpus=1", f"--port={port}", "--include-dashboard=false"]
    try:
        for _ in range(2):  # on a loaded machine a first start can time out
            started = subprocess.run(start, env=env, capture_output=True, text=True)
            if started.returncode == 0:
                break
            subprocess.run([ray, "stop", "--force"], env=env, capture_output=True)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        out = _train(checkout, {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}, "--no-render")
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True)
    assert out.returncode == 0
    assert f"cluster 127.0.0.1:{port}: 1 CPUs" in out.stdout
    assert "done 99/a" in out.stdout
    assert _records(suite_root) == ["a"]
