"""Execute notebooks in place, top to bottom, in the current profile ($SUITE_PROFILE).

    python scripts/run_notebooks.py                    # every notebook in notebooks/
    python scripts/run_notebooks.py 03 05              # notebooks whose names start with 03 or 05
    SUITE_PROFILE=smoke python scripts/run_notebooks.py 01

Each notebook is executed into a temporary file and moved over the original only when every
cell ran, so a failing run never leaves a half-executed notebook behind. Records under results/
make a re-run of an unchanged experiment take seconds. A notebook that stops because ImageNet
weights or a dataset cannot be had (quick/full profiles offline: WeightsUnavailable,
DatasetUnavailable) is reported as skipped; any other error is a failure, the remaining notebooks
still run, and the exit status is 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]


def select(prefixes: list[str]) -> list[Path]:
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not prefixes:
        return notebooks
    chosen = [nb for nb in notebooks if any(nb.name.startswith(p) for p in prefixes)]
    if not chosen:
        names = ", ".join(nb.stem for nb in notebooks)
        sys.exit(f"No notebook matches {prefixes}; the notebooks are: {names}")
    return chosen


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".ipynb.tmp")
    os.close(fd)
    try:
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return time.perf_counter() - start


def main() -> None:
    profile = os.environ.get("SUITE_PROFILE", "quick")
    skipped, failed = [], []
    for nb in select(sys.argv[1:]):
        print(f"[{profile}] {nb.name} ...", flush=True)
        try:
            seconds = execute(nb)
        except CellExecutionError as err:
            last = (getattr(err, "evalue", "") or str(err).strip().splitlines()[-1])[:500]
            if getattr(err, "ename", "") in ("WeightsUnavailable", "DatasetUnavailable"):
                skipped.append(nb.name)
                print(f"[{profile}] {nb.name} SKIPPED (left unchanged): {last}", flush=True)
            else:
                failed.append(nb.name)
                print(f"[{profile}] {nb.name} FAILED (left unchanged): {last}", flush=True)
            continue
        print(f"[{profile}] {nb.name} done in {seconds / 60:.1f} min", flush=True)
    if skipped:
        print(f"skipped for lack of ImageNet weights or a dataset: {', '.join(skipped)}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
