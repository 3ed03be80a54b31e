"""scripts/colab.py: the Colab cell installs the helpers so that the same kernel imports them."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "colab.py"

# Run in the fresh interpreter: no helpers yet; "in Colab"; the cell; then import the helpers.
CHILD = """
import importlib.util, json, os, sys, types
before = importlib.util.find_spec("helpers")
sys.modules["google.colab"] = types.ModuleType("google.colab")
exec(sys.argv[1], {"__name__": "__main__"})
import helpers
print(json.dumps({"before": before is not None, "file": helpers.__file__, "cwd": os.getcwd()}))
"""


def _colab():
    spec = importlib.util.spec_from_file_location("colab_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cell_source() -> str:
    return _colab().install_cell().source


def _base_python() -> str | None:
    """An interpreter outside the project's venv: the venv's base, else python3 on PATH."""
    here = Path(sys.prefix)
    for candidate in (getattr(sys, "_base_executable", None), shutil.which("python3")):
        if candidate and Path(candidate).parent.parent != here:
            return candidate
    return None


@pytest.fixture
def fresh_venv(tmp_path) -> Path:
    """A new venv (with pip, without the helpers or any other package) under ``tmp_path``."""
    python = _base_python()
    if python is None:
        pytest.skip("no Python interpreter outside the project venv to build a fresh venv with")
    venv = tmp_path / "venv"
    made = subprocess.run([python, "-m", "venv", str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a venv with {python}: {made.stderr.strip()[-300:]}")
    return venv


def _suite_copy(dest: Path) -> Path:
    """The least of the project that pip can install: pyproject.toml, README.md, src/."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", dest / "src", ignore=ignore)
    (dest / "notebooks").mkdir()
    return dest


def test_cell_installs_helpers_importable_in_the_same_interpreter(fresh_venv, tmp_path):
    suite = _suite_copy(tmp_path / "clone" / "suite")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "SUITE_ROOT"}
    }
    # No dependencies: pip would fetch TensorFlow and keras, and `import helpers` needs only the
    # standard library. Build isolation still fetches setuptools from the package index.
    env.update(SUITE_CLONE=str(suite), PIP_NO_DEPS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-c", CHILD, _cell_source()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["before"] is False  # the fresh venv had no helpers before the cell ran
    installed = Path(out["file"]).resolve()
    assert installed.is_relative_to(fresh_venv.resolve())
    assert "site-packages" in installed.parts
    assert not installed.is_relative_to(ROOT.resolve())
    assert not installed.is_relative_to(suite.resolve())
    assert Path(out["cwd"]).resolve() == (suite / "notebooks").resolve()


def test_cell_does_nothing_outside_colab(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError(f"the cell ran {args} outside Colab")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(os, "chdir", refuse)
    monkeypatch.setenv("SUITE_CLONE", str(tmp_path / "never"))
    cwd = os.getcwd()
    namespace = {"__name__": "__main__"}
    exec(_cell_source(), namespace)
    assert os.getcwd() == cwd
    assert "SUITE" not in namespace
    assert not (tmp_path / "never").exists()


def test_cell_clones_when_the_folder_is_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    suite = tmp_path / "suite-clone"
    monkeypatch.setenv("SUITE_CLONE", str(suite))
    monkeypatch.chdir(tmp_path)  # restored after the test; the cell changes directory
    calls = []

    def record(cmd, **kwargs):
        calls.append(cmd)
        if cmd[0] == "git":
            (Path(cmd[-1]) / "notebooks").mkdir(parents=True)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", record)
    exec(_cell_source(), {"__name__": "__main__"})
    url = f"https://github.com/{_colab().REPO}"
    assert calls == [
        ["git", "clone", "-q", "--depth", "1", url, str(suite)],
        [sys.executable, "-m", "pip", "install", "-q", str(suite)],
    ]
    assert Path.cwd() == suite / "notebooks"

    calls.clear()  # run again: the clone is there, so only the install runs
    exec(_cell_source(), {"__name__": "__main__"})
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", str(suite)]]


def test_repository_is_named_once_in_pyproject():
    colab = _colab()
    url = colab.repository_url()
    assert url.startswith("https://github.com/") and url.endswith(colab.REPO)
    assert url in colab.install_cell().source
    assert f"github/{colab.REPO}/blob/" in colab.badge("01_analytic_mlp.ipynb")


def test_readme_list_gives_the_profile_of_each_notebooks_outputs(tmp_path):
    import nbformat

    paths = []
    for name, profile in (("01_a.ipynb", "full"), ("02_b.ipynb", None)):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name[:2]} · T")])
        if profile:
            nb.metadata["suite"] = {"profile": profile}
        nbformat.write(nb, tmp_path / name)
        paths.append(tmp_path / name)
    rows = _colab().readme_list(paths).splitlines()
    assert rows[0] == "| notebook | what it does | outputs | Colab |"
    assert "| 01 · T | `full` |" in rows[2]
    assert "| 02 · T | `quick` |" in rows[3]  # no metadata: the default profile
