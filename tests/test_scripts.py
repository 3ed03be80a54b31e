"""scripts/run_notebooks.py: choosing notebooks by prefix."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "run_notebooks.py"


@pytest.fixture
def run_notebooks(tmp_path, monkeypatch):
    """The script as a module, its ROOT pointed at a tmp folder with three empty notebooks."""
    spec = importlib.util.spec_from_file_location("run_notebooks_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "notebooks").mkdir()
    for name in ("01_analytic_mlp", "03_mlp_hyperparameters", "10_flowers", "README"):
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text("{}")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    return module


def _names(paths):
    return [p.name for p in paths]


def test_select_all_in_order(run_notebooks):
    assert _names(run_notebooks.select([])) == [
        "01_analytic_mlp.ipynb",
        "03_mlp_hyperparameters.ipynb",
        "10_flowers.ipynb",
    ]


def test_select_by_prefixes(run_notebooks):
    assert _names(run_notebooks.select(["03"])) == ["03_mlp_hyperparameters.ipynb"]
    assert _names(run_notebooks.select(["10", "01"])) == [
        "01_analytic_mlp.ipynb",
        "10_flowers.ipynb",
    ]
    assert _names(run_notebooks.select(["0"])) == [
        "01_analytic_mlp.ipynb",
        "03_mlp_hyperparameters.ipynb",
    ]


def test_unknown_prefix_errors_clearly(run_notebooks):
    with pytest.raises(SystemExit) as exit_:
        run_notebooks.select(["99"])
    msg = str(exit_.value.code)
    assert "No notebook matches ['99']" in msg
    assert "01_analytic_mlp, 03_mlp_hyperparameters, 10_flowers" in msg


def test_main_with_unknown_prefix_exits_before_running_anything(run_notebooks, monkeypatch):
    ran = []
    monkeypatch.setattr(run_notebooks, "execute", lambda path: ran.append(path) or 0.0)
    monkeypatch.setattr("sys.argv", ["run_notebooks.py", "42"])
    with pytest.raises(SystemExit, match="No notebook matches"):
        run_notebooks.main()
    assert ran == []


def test_the_real_notebooks_folder_is_found():
    spec = importlib.util.spec_from_file_location("run_notebooks_real", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.ROOT == SCRIPT.parents[1]
    assert all(p.parent == module.ROOT / "notebooks" for p in module.select([]))


def test_each_notebook_runs_in_the_profile_of_its_committed_outputs(run_notebooks, monkeypatch):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["suite"] = {"profile": "full"}
    nbformat.write(nb, run_notebooks.ROOT / "notebooks" / "03_mlp_hyperparameters.ipynb")
    ran = []
    monkeypatch.setattr(
        run_notebooks, "execute", lambda path, profile: ran.append(profile) or (profile, 0.0)
    )
    monkeypatch.setattr("sys.argv", ["run_notebooks.py", "03"])
    monkeypatch.delenv("SUITE_PROFILE", raising=False)
    run_notebooks.main()
    monkeypatch.setenv("SUITE_PROFILE", "smoke")
    run_notebooks.main()
    assert ran == ["full", "smoke"]
    assert run_notebooks.committed_profile(nbformat.v4.new_notebook()) == "quick"
