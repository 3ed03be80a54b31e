"""A notebook's runs outside the notebook: list them, train one, move its files as bytes.

The pieces of ``scripts/train.py`` that need no cluster (so they are tested without one):

- :func:`list_runs` executes a notebook with no run trained (``SUITE_ONLY_RUN=""``, see
  :mod:`helpers.runplan`) in a temporary suite root holding a copy of the profile's records,
  and returns its runs: name, key, whether the record exists, which runs it starts from.
- :func:`train_run` executes a notebook in a fresh temporary suite root with only one run
  enabled, stops once that run's record is written, and returns the files the run made
  (record, weights, logs, and the resume backup of an unfinished run) as ``{path: bytes}``.
- :func:`run_inputs` gathers what a run needs from the checkout (the profile's records, the
  weights of the runs it starts from, its own backup), :func:`write_files` writes what comes
  back, each file atomically.

Notebooks are executed cell by cell in a Jupyter kernel (nbclient, as ``make run`` does); a cell
that fails is passed over, since a run that is not trained in that execution has NaN metrics
and no model, which later cells may not expect.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .files import TEMP_PREFIX, atomic_write
from .runplan import ONLY_RUN, RUNS_LOG

TOPS = ("results", "logs", "checkpoints")  # what a run writes, under <top>/<profile>/<notebook>/


@dataclass
class Run:
    """One run of a notebook as listed: ``refs`` are the names of the runs it starts from."""

    notebook: str
    profile: str
    name: str
    key: str
    recorded: bool
    refs: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.notebook[:2]}/{self.name}"


def execute(path: Path, env: dict[str, str], done=None, kernel: str = "python3") -> list[str]:
    """Execute the notebook at ``path`` (cwd: its folder) in a kernel with environment ``env``,
    cell by cell, passing over failing cells, until every cell ran or ``done()`` is true.
    Returns the errors, one line each (cell number, exception, message)."""
    import nbformat  # noqa: PLC0415  (Jupyter: only where notebooks are executed)
    from nbclient import NotebookClient  # noqa: PLC0415

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=None, kernel_name=kernel, allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )  # fmt: skip
    errors = []
    with client.setup_kernel(env={**os.environ, **env}):
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, i)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    errors.append(f"cell {i + 1}: {out['ename']}: {str(out['evalue'])[:300]}")
            if done is not None and done():
                break
    return errors


def read_tree(root: Path, tops=TOPS) -> dict[str, bytes]:
    """Every file under ``root/<top>/`` as ``{relative path: bytes}``, without lock and
    temporary files."""
    files = {}
    for top in tops:
        for p in sorted((root / top).rglob("*")) if (root / top).is_dir() else []:
            if p.is_file() and not p.name.endswith(".lock") and not p.name.startswith(TEMP_PREFIX):
                files[p.relative_to(root).as_posix()] = p.read_bytes()
    return files


def write_files(root: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` (``{relative path: bytes}``) under ``root``, each one atomically. Every
    path must lie under results/, logs/ or checkpoints/; returns the paths written."""
    bad = [p for p in files if Path(p).parts[0] not in TOPS or ".." in Path(p).parts]
    if bad or any(Path(p).is_absolute() for p in files):
        raise ValueError(f"refusing to write outside {', '.join(TOPS)}: {bad or list(files)}")
    written = []
    for rel, content in sorted(files.items()):
        atomic_write(root / rel, content)
        written.append(root / rel)
    return written


def _digest(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()


def suite_env(root: Path, profile: str, only: str, data_dir: str = "", cache_dir: str = ""):
    """The environment of a kernel that executes a notebook in suite root ``root``."""
    env = {"SUITE_ROOT": str(root), "SUITE_PROFILE": profile, ONLY_RUN: only,
           "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    for var, value in (("SUITE_DATA_DIR", data_dir), ("SUITE_CACHE_DIR", cache_dir)):
        value = os.environ.get(var) or value  # the machine's own folder first
        if value and Path(value).is_dir():
            env[var] = value
    return env


def list_runs(checkout: Path, notebook: Path, profile: str) -> list[Run]:
    """The runs of ``notebook`` in ``profile``, in order, with nothing trained (the notebook
    executes in a temporary suite root with a copy of the checkout's records of ``profile``)."""
    with tempfile.TemporaryDirectory(prefix="suite-list-") as tmp:
        root = Path(tmp)
        src = checkout / "results" / profile
        if src.is_dir():
            shutil.copytree(src, root / "results" / profile)
        nb = root / "notebooks" / notebook.name
        nb.parent.mkdir(parents=True)
        shutil.copy(notebook, nb)
        log = root / "runs.jsonl"
        env = {**suite_env(root, profile, ""), RUNS_LOG: str(log)}
        errors = execute(nb, env)
        lines = [json.loads(t) for t in log.read_text().splitlines()] if log.is_file() else []
    if not lines and errors:
        raise RuntimeError(f"{notebook.name}: listing its runs failed: {errors[0]}")
    return runs_from_log(lines)


def runs_from_log(lines: list[dict]) -> list[Run]:
    """The runs of ``$SUITE_RUNS_LOG`` lines: one per name (recorded if any line says so), with
    ``refs`` turned from keys into the names of the runs listed with those keys."""
    runs: dict[str, Run] = {}
    refs: dict[str, set[str]] = {}
    for line in lines:
        run = runs.setdefault(line["name"], Run(line["notebook"], line["profile"],
                                                line["name"], line["key"], False))  # fmt: skip
        run.recorded = run.recorded or (line["recorded"] and line["key"] == run.key)
        refs.setdefault(line["name"], set()).update(line["refs"])
    by_key = {r.key: r.name for r in runs.values()}
    for run in runs.values():
        run.refs = sorted(by_key[k] for k in refs[run.name] if k in by_key)
    return list(runs.values())


def run_inputs(checkout: Path, run: Run, listed: list[Run]) -> dict[str, bytes]:
    """What a task needs from the checkout to train ``run``: the records of its profile, the
    weights of the runs it starts from, its resume backup and epoch log where one exists."""
    files = read_tree(checkout, (f"results/{run.profile}",))
    ckpt = f"checkpoints/{run.profile}/{run.notebook}"
    wanted = [f"{ckpt}/{r.name}.weights.h5" for r in listed if r.name in run.refs]
    backup = f"{ckpt}/backup-{run.name}-{run.key}"
    if (checkout / backup).is_dir():
        files.update(read_tree(checkout, (backup,)))
        wanted += [f"{backup}.csv", f"logs/{run.profile}/{run.notebook}/{run.name}.csv"]
    files.update({w: (checkout / w).read_bytes() for w in wanted if (checkout / w).is_file()})
    return files


def train_run(notebook: bytes, filename: str, run: Run, inputs: dict[str, bytes], **env) -> dict:
    """Execute the notebook (its bytes; ``filename`` its name) with only ``run`` enabled in a
    fresh temporary suite root holding ``inputs``, until ``run``'s record is written.

    ``env``: more environment for the kernel (``data_dir`` and ``cache_dir`` are the caller's
    data folders, used where this machine sets none). Returns ``{"ok", "files", "seconds",
    "errors", "host"}``: ``files`` are the files the execution wrote or changed (the record,
    weights and logs; the backup of an unfinished run) as ``{relative path: bytes}``.
    """
    import socket  # noqa: PLC0415

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="suite-run-") as tmp:
        root = Path(tmp)
        write_files(root, inputs)
        nb = root / "notebooks" / filename
        nb.parent.mkdir(parents=True)
        nb.write_bytes(notebook)
        record = root / "results" / run.profile / run.notebook / f"{run.name}.json"
        dirs = {k: env.pop(k, "") for k in ("data_dir", "cache_dir")}
        kernel_env = {**suite_env(root, run.profile, run.name, **dirs), **env}
        errors = execute(nb, kernel_env, done=record.is_file)
        sent = {p: _digest(c) for p, c in inputs.items()}
        files = {p: c for p, c in read_tree(root).items() if sent.get(p) != _digest(c)}
        ok = record.is_file()
    seconds = time.perf_counter() - start
    return {"ok": ok, "files": files, "seconds": seconds, "errors": errors,
            "host": socket.gethostname()}  # fmt: skip
