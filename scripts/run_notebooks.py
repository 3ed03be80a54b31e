"""Execute notebooks in place, top to bottom, each in its profile.

    python scripts/run_notebooks.py                    # every notebook in notebooks/
    python scripts/run_notebooks.py 03 05              # notebooks whose names start with 03 or 05
    SUITE_PROFILE=smoke python scripts/run_notebooks.py 01

The profile is ``$SUITE_PROFILE`` where it is set; otherwise each notebook runs in the profile its
committed outputs were made with (``metadata.suite.profile``, written here after every run; quick
for a notebook without it), so a plain run re-renders every notebook from its committed records.

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


def committed_profile(nb) -> str:
    """The profile a notebook's stored outputs come from (``quick`` if it does not say)."""
    return nb.metadata.get("suite", {}).get("profile") or "quick"


def execute(path: Path, profile: str | None = None) -> tuple[str, float]:
    """Run the notebook at ``path`` in ``profile`` (default: its committed one) and write it back
    only if every cell ran. Returns the profile and the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    profile = profile or committed_profile(nb)
    os.environ["SUITE_PROFILE"] = profile  # the kernel inherits it
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=None,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # What C++ libraries write to the kernel's stderr (TensorFlow's absl and oneDNN lines)
        # goes to this terminal, not into the notebook's outputs.
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )
    client.execute()
    nb.metadata["suite"] = {"profile": profile}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".ipynb.tmp")
    os.close(fd)
    try:
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return profile, time.perf_counter() - start


def main() -> None:
    # imported here, not at the top, so that select() works where Jupyter is not installed
    import nbformat
    from nbclient.exceptions import CellExecutionError

    chosen = os.environ.get("SUITE_PROFILE", "").strip() or None
    skipped, failed = [], []
    for nb in select(sys.argv[1:]):
        profile = chosen or committed_profile(nbformat.read(nb, as_version=4))
        print(f"[{profile}] {nb.name} ...", flush=True)
        try:
            profile, seconds = execute(nb, profile)
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
