"""Train the runs of notebooks as Ray tasks, bring their files back, then render the notebooks.

    python scripts/train.py 05 06                   # runs without a record, in the profile
    SUITE_PROFILE=full python scripts/train.py 05   # (make train NOTEBOOKS=05 PROFILE=full)
    RAY_ADDRESS=<head>:6379 python scripts/train.py 05   # on an existing Ray cluster

1. Each notebook is executed once with no run trained (:mod:`helpers.runplan`) to list its runs
   and which of them have no record (``helpers.notebook_runs.list_runs``).
2. Each run without a record becomes one Ray task, as soon as the runs it starts from are
   recorded: the task executes the notebook in a temporary suite root with only that run
   enabled and returns the run's record, weights and logs as bytes, which are written into this
   checkout (each file atomically). No shared filesystem is needed; an interrupted run's resume
   backup travels with its task. A worker that dies is retried by Ray (``--retries``).
3. When a notebook's tasks are done (or one that later runs start from), it is listed again:
   runs that appear only after others finish (a retry decided by a result, a continuation) are
   trained in turn. A run is tried once per invocation.
4. The notebooks are rendered from the records (``scripts/run_notebooks.py``); that render must
   train nothing, else this script says which runs it trained and exits with status 1.

Ray is local (``ray.init`` on this machine, ``--cpus`` CPUs) unless ``RAY_ADDRESS`` names a
cluster, whose nodes need the suite installed and the data (``$SUITE_DATA_DIR``, else this
machine's data folder where the same path exists there). GPUs: where the cluster has any, each
task asks for ``--gpus-per-task`` of one (tasks share a card: TensorFlow grows its memory, JAX
does not preallocate); tasks without a GPU see none (``CUDA_VISIBLE_DEVICES=""``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import committed_profile, select  # noqa: E402

from helpers import notebook_runs as nr  # noqa: E402
from helpers.session import data_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]  # the notebooks' checkout
DEST = Path(os.environ.get("SUITE_ROOT") or ROOT).resolve()  # where records, logs, weights go
FORWARDED = ("KERAS_BACKEND", "SUITE_STEPS_PER_EXECUTION", "SUITE_JIT_COMPILE", "SUITE_SEED")


def task_env(cpus: float) -> dict[str, str]:
    """The kernel's environment in a task: GPU sharing, or no GPU, and ``cpus`` threads."""
    import ray  # noqa: PLC0415

    env = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    if not ray.get_gpu_ids():
        env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU task must not take a GPU
    threads = str(max(1, int(cpus)))
    env.update(OMP_NUM_THREADS=threads, TF_NUM_INTRAOP_THREADS=threads)
    return env


def train_task(notebook: bytes, filename: str, run: nr.Run, inputs: dict, env: dict, cpus: float):
    """The body of one Ray task (see :func:`helpers.notebook_runs.train_run`)."""
    return nr.train_run(notebook, filename, run, inputs, **env, **task_env(cpus))


class Trainer:
    """The runs of some notebooks in one profile each, trained as Ray tasks."""

    def __init__(self, notebooks: list[Path], profile: str | None, args):
        self.args, self.start = args, time.time()
        self.profiles = {nb: profile or committed_profile(_read(nb)) for nb in notebooks}
        self.queue: list[tuple[Path, nr.Run]] = []
        self.running: dict = {}  # ObjectRef -> (notebook, run, start time)
        self.listed: dict[Path, list[nr.Run]] = {}
        self.tried: set[tuple[str, str, str]] = set()
        self.done: list[str] = []
        self.failed: list[str] = []
        import ray  # noqa: PLC0415

        self.remote = ray.remote(train_task)

    def relist(self, nb: Path) -> None:
        """List ``nb``'s runs and queue those without a record whose starting runs have one."""
        t0 = time.time()
        runs = nr.list_runs(DEST, nb, self.profiles[nb])
        self.listed[nb] = runs
        missing = {r.name for r in runs if not r.recorded}
        new = []
        for r in runs:
            ident = (r.notebook, r.name, r.key)
            if r.recorded or ident in self.tried or missing & set(r.refs):
                continue
            self.tried.add(ident)
            self.queue.append((nb, r))
            new.append(r.name)
        waiting = [r.name for r in runs if not r.recorded and missing & set(r.refs)]
        print(
            f"{self._clock()} {nb.stem} [{self.profiles[nb]}]: {len(runs)} runs, "
            f"{len(runs) - len(missing)} recorded; to train: {', '.join(new) or 'none'}"
            + (f"; after the runs they start from: {', '.join(waiting)}" if waiting else "")
            + f" (listed in {time.time() - t0:.0f} s)",
            flush=True,
        )

    def submit(self) -> None:
        """Start queued runs while the cluster has room for them."""
        while self.queue and len(self.running) < self.slots():
            nb, run = self.queue.pop(0)
            inputs = nr.run_inputs(DEST, run, self.listed[nb])
            env = {v: os.environ[v] for v in FORWARDED if v in os.environ}
            env.update(data_dir=str(data_dir()), cache_dir=os.environ.get("SUITE_CACHE_DIR", ""))
            options = {"num_cpus": self.args.cpus_per_task, "max_retries": self.args.retries,
                       "num_gpus": self.gpus_per_task(), "name": run.label}  # fmt: skip
            ref = self.remote.options(**options).remote(
                nb.read_bytes(), nb.name, run, inputs, env, self.args.cpus_per_task
            )
            self.running[ref] = (nb, run, time.time())

    def gpus_per_task(self) -> float:
        import ray  # noqa: PLC0415

        return self.args.gpus_per_task if ray.cluster_resources().get("GPU", 0) else 0

    def slots(self) -> int:
        """How many tasks the cluster runs at once (as it is now)."""
        import ray  # noqa: PLC0415

        res = ray.cluster_resources()
        n = int(res.get("CPU", 1) // self.args.cpus_per_task)
        if self.gpus_per_task():
            n = min(n, int(res.get("GPU", 0) / self.gpus_per_task()))
        return max(1, n)

    def collect(self, ref) -> None:
        """Write a finished task's files into the checkout; relist its notebook where due."""
        import ray  # noqa: PLC0415

        nb, run, began = self.running.pop(ref)
        try:
            out = ray.get(ref)
        except Exception as err:  # the task failed even after Ray's retries
            out = {"ok": False, "files": {}, "errors": [f"{type(err).__name__}: {err}"[:500]]}
        nr.write_files(DEST, out["files"])
        took = _minutes(time.time() - began)
        if out["ok"]:
            self.done.append(run.label)
            print(f"{self._clock()} done {run.label} in {took} on {out['host']}", flush=True)
        else:
            self.failed.append(run.label)
            why = out["errors"][-1] if out["errors"] else "the notebook did not reach this run"
            print(f"{self._clock()} FAILED {run.label} after {took}: {why}", flush=True)
        if self.due(nb, run):
            self.relist(nb)

    def due(self, nb: Path, run: nr.Run) -> bool:
        """Whether ``nb`` is listed again now: none of its runs is queued or running, or a run
        listed as waiting starts from ``run``."""
        busy = any(n == nb for n, _ in self.queue) or any(
            n == nb for n, _, _ in self.running.values()
        )
        waiting = any(run.name in r.refs and not r.recorded for r in self.listed[nb])
        return not busy or (waiting and run.label in self.done)

    def progress(self) -> None:
        now = time.time()
        running = ", ".join(f"{r.label} {_minutes(now - t)}" for _, r, t in self.running.values())
        print(
            f"{self._clock()} done {len(self.done)}, failed {len(self.failed)}, running "
            f"{len(self.running)} ({running}), left {len(self.queue)}",
            flush=True,
        )

    def _clock(self) -> str:
        return f"[{_minutes(time.time() - self.start)}]"

    def train(self) -> None:
        import ray  # noqa: PLC0415

        for nb in self.profiles:
            self.relist(nb)
        shown = 0.0
        while self.queue or self.running:
            self.submit()
            ready, _ = ray.wait(list(self.running), num_returns=1, timeout=5)
            for ref in ready:
                self.collect(ref)
            if ready or time.time() - shown >= self.args.every:
                self.progress()
                shown = time.time()


def _read(nb: Path):
    import nbformat  # noqa: PLC0415

    return nbformat.read(nb, as_version=4)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def init_ray(cpus: int) -> str:
    """Connect to ``$RAY_ADDRESS``'s cluster, or start a local Ray of ``cpus`` CPUs."""
    import ray  # noqa: PLC0415

    address = os.environ.get("RAY_ADDRESS", "").strip()
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")  # a busy machine starts slowly
    if address:
        ray.init(address=address, log_to_driver=False)
    else:  # never a cluster left running on this machine by `ray start`
        for attempt in (1, 2):  # on a loaded machine a first start can time out
            try:
                ray.init(address="local", num_cpus=cpus, include_dashboard=False,
                         log_to_driver=False)  # fmt: skip
                break
            except Exception as err:
                ray.shutdown()
                if attempt == 2:
                    raise
                print(f"local Ray did not start ({str(err)[:120]}); trying again", flush=True)
    res = ray.cluster_resources()
    where = f"cluster {address}" if address else "local Ray"
    return f"{where}: {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs"


def render(notebooks: list[Path], profiles: dict[Path, str]) -> list[str]:
    """Render the notebooks from their records; the runs that render trained (none expected)."""
    trained = []
    for nb in notebooks:
        with tempfile.TemporaryDirectory(prefix="suite-render-") as tmp:
            log = Path(tmp) / "runs.jsonl"
            env = {**os.environ, "SUITE_PROFILE": profiles[nb], nr.RUNS_LOG: str(log)}
            script = [sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), nb.name[:2]]
            rc = subprocess.run(script, env=env, cwd=ROOT).returncode
            lines = log.read_text().splitlines() if log.is_file() else []
            runs = nr.runs_from_log([json.loads(t) for t in lines])
            trained += [r.label for r in runs if not r.recorded]
            if rc:
                trained.append(f"{nb.stem} (render failed)")
    return trained


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("notebooks", nargs="*", help="notebook name prefixes, e.g. 05 06 (default all)")
    p.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of a local Ray")
    p.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs of each run (1)")
    p.add_argument(
        "--gpus-per-task", type=float, default=0.5, help="share of a GPU per run, where the "
        "cluster has GPUs (0.5: two runs per card)"
    )  # fmt: skip
    p.add_argument(
        "--retries", type=int, default=2, help="Ray's retries of a task whose worker died"
    )
    p.add_argument("--every", type=float, default=60, help="seconds between progress lines")
    p.add_argument("--no-render", action="store_true", help="train only, do not render")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import ray  # noqa: PLC0415

    notebooks = select(args.notebooks)
    profile = os.environ.get("SUITE_PROFILE", "").strip() or None
    print(init_ray(args.cpus), flush=True)
    try:
        trainer = Trainer(notebooks, profile, args)
        trainer.train()
    finally:
        ray.shutdown()
    print(
        f"trained {len(trainer.done)} run(s) in {_minutes(time.time() - trainer.start)}"
        + (f"; FAILED: {', '.join(trainer.failed)}" if trainer.failed else "")
    )
    if trainer.failed:
        print("not rendered: train the failed runs first (their errors are above)")
        return 1
    if args.no_render:
        return 0
    trained = render(notebooks, trainer.profiles)
    if trained:
        print(f"the render trained {', '.join(trained)}: these runs were not listed")
        return 1
    print(f"rendered {len(notebooks)} notebook(s) from the records; nothing trained there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
