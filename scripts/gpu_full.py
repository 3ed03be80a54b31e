"""Train notebooks' experiments outside the notebooks, here or on a machine with JAX only, and
bring the records back, so that the notebook's render reuses them.

On any machine with the suite installed, one run per process (each resumable from its backup)::

    SUITE_PROFILE=full python scripts/gpu_full.py list 05                 # runs without a record
    SUITE_PROFILE=full python scripts/gpu_full.py train 05 dropout_0.3    # train these runs

For an accelerator machine that has JAX but neither Keras nor TensorFlow and receives a copy of
the working tree per command (the data and wheels travel as files of at most 64 MiB), the work is
split into steps. Here, once::

    python scripts/gpu_full.py pack            # .gpu/: CIFAR-10 JPEGs as two zip files, wheels

There, two commands back to back (the first with ``.gpu/whl`` and ``.gpu/cifar10-1.zip``, the
second with ``.gpu/cifar10-2.zip``)::

    python3 scripts/gpu_full.py stage          # install the wheels, unpack part 1, benchmark
    python3 scripts/gpu_full.py start 06 05 --wait 500   # unpack part 2, train, collect

``start`` lists every run the notebooks train (``training.fit_and_record`` calls, in the
profile), starts a scheduler with ``setsid`` that trains them in parallel worker processes (one
run per process, ``KERAS_BACKEND=jax``, the notebook's own code with every other run skipped), and
waits. ``wait`` waits again. Each command ends by packing whatever finished (records, logs, the
backups of unfinished runs) into ``$OUT/gpu-results.tar.gz`` (split into parts of at most
15 MiB). Back here::

    python scripts/gpu_full.py unpack <folder the files came back to>   # into results/, logs/, ...
    make run NOTEBOOKS="05 06" PROFILE=full    # render from the records, nothing trained

Records are keyed by what determines the result, never by backend or machine, so the render
reuses these records; their provenance says they were made with JAX on the accelerator.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import select  # noqa: E402  (notebooks by name prefix, as `make run` picks them)

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / ".gpu"  # what travels (ignored by git)
WORK = Path(os.environ.get("SUITE_GPU_WORK", "/tmp/suite-gpu"))  # on the GPU machine
WHEELS = ("keras", "namex", "optree")  # what the GPU machine lacks, at this venv's versions
PART_LIMIT = 15 * 2**20  # bytes per returned file (the device returns files of <= 16 MiB)
ARCHIVE = "gpu-results.tar.gz"
PROFILE = os.environ.get("SUITE_GPU_PROFILE", "full")  # smoke: try the whole path on a CPU


# --------------------------------------------------------------------------- here: pack


def pack_data(src: Path, out: Path, parts: int = 2) -> list[Path]:
    """Write the JPEG files of the image folder ``src`` (``train/<class>/*.jpg``,
    ``test/<class>/*.jpg``) into ``parts`` uncompressed zip files of about equal size
    (``cifar10-1.zip``, ...), each file whole in one of them. Returns the zip paths."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    if not files:
        sys.exit(f"no files under {src}: set SUITE_DATA_DIR to the folder holding cifar10/")
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{src.name}-{i + 1}.zip" for i in range(parts)]
    tmp = [p.with_suffix(".zip.tmp") for p in paths]
    zips = [zipfile.ZipFile(t, "w", zipfile.ZIP_STORED) for t in tmp]
    for i, f in enumerate(files):
        zips[i % parts].write(f, f"{src.name}/{f.relative_to(src)}")
    for z, t, p in zip(zips, tmp, paths, strict=True):
        z.close()
        os.replace(t, p)
    return paths


def pack_wheels(out: Path) -> list[Path]:
    """Download the wheels the GPU machine lacks (keras, namex, optree, at the versions installed
    here, so keras is the suite's pin) for CPython 3.12 on x86-64 Linux into ``out``."""
    from importlib.metadata import version  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    for name in WHEELS:
        spec = f"{name}=={version(name)}"
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", "3.12", "--implementation", "cp", "-d", str(out), spec]
        cmd += [arg for p in platforms for arg in ("--platform", p)]
        subprocess.run(cmd, check=True)
    return sorted(out.glob("*.whl"))


def tree_bytes() -> int:
    """Bytes of what every device call sends: tracked and untracked-not-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    names = [n for n in out.decode().split("\0") if n]
    return sum((ROOT / n).stat().st_size for n in names if (ROOT / n).is_file())


def cmd_pack(args) -> None:
    data = Path(args.data or os.environ.get("SUITE_DATA_DIR") or ROOT / "data") / "cifar10"
    if not data.is_dir():
        sys.exit(f"no CIFAR-10 image folder at {data}: set SUITE_DATA_DIR or pass --data")
    zips = pack_data(data, PACK)
    wheels = pack_wheels(PACK / "whl")
    mib = 2**20
    tree = tree_bytes()
    calls = {
        "stage": [PACK / "whl", zips[0]],
        "start": [zips[1]],
    }
    for name, carried in calls.items():
        size = tree + sum(_size(p) for p in carried)
        paths = [str(p.relative_to(ROOT)) for p in carried]
        print(f"{name}: carry {paths}: {size / mib:.1f} MiB with the tree (limit 64)")
        if size > 64 * mib:
            sys.exit(f"{name} would send {size / mib:.1f} MiB, over the device's 64 MiB")
    print(f"wheels: {', '.join(w.name for w in wheels)}")


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*")) if p.is_dir() else p.stat().st_size


# --------------------------------------------------------------------------- there: stage


def _env() -> dict:
    env = dict(os.environ)
    site = str(WORK / "site")
    env["PYTHONPATH"] = os.pathsep.join([site, str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env.update(
        KERAS_BACKEND="jax",
        SUITE_PROFILE=PROFILE,
        SUITE_DATA_DIR=str(WORK / "data"),
        SUITE_CACHE_DIR=str(WORK / "cache"),
        XLA_PYTHON_CLIENT_PREALLOCATE="false",  # several processes share the GPU
        SUITE_STEPS_PER_EXECUTION=os.environ.get("SUITE_STEPS_PER_EXECUTION", "50"),
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
    )
    return env


def _unzip(path: Path) -> None:
    if not path.is_file():
        sys.exit(f"{path} is not here: carry it in this call (see `pack`)")
    with zipfile.ZipFile(path) as z:
        z.extractall(WORK / "data")
    print(f"unpacked {path.name} into {WORK / 'data'}")


def cmd_stage(args) -> None:
    """Install the wheels, unpack the first data part, time the models on the GPU."""
    WORK.mkdir(parents=True, exist_ok=True)
    wheels = sorted((PACK / "whl").glob("*.whl"))
    if not wheels:
        sys.exit(f"no wheels in {PACK / 'whl'}: carry .gpu/whl (run `pack` here first)")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    pip += ["--no-cache-dir", "--upgrade", "--target", str(WORK / "site")]
    subprocess.run(pip + [str(w) for w in wheels], check=True)
    _unzip(PACK / "cifar10-1.zip")
    show = "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
    subprocess.run([sys.executable, "-c", show], env=_env(), check=True)
    if args.benchmark:
        out = Path(os.environ.get("OUT", WORK))
        bench = [sys.executable, str(ROOT / "benchmarks" / "throughput.py")]
        bench += ["--models", args.models, "--images", str(args.images)]
        bench += ["--batch-sizes", args.batch_sizes]
        bench += ["--json", str(out / "throughput-gpu.json")]
        subprocess.run(bench, env=_env(), check=False, timeout=args.benchmark_timeout)


# --------------------------------------------------------------------------- the runs of a notebook


class SkipRun(Exception):
    """Raised in place of training while runs are only listed."""


def exec_notebook(path: Path, train: set[str] | None) -> dict:
    """Execute the code cells of the notebook at ``path`` statement by statement in one
    namespace, training with ``helpers.training.fit_and_record`` only the runs named in ``train``
    (``None``: none, only list them; a run whose record exists is listed as ``done``). A
    skipped run's ``fit_and_record`` returns its record where one exists (so a statement that
    decides from it runs as in the notebook) and ``None`` where not (so every run of a loop is
    reached); a statement that fails (it needed a run without a record) is passed over. Returns
    ``{"runs": [{name, epochs, images, done}], "trained": {name: record}}``."""
    from helpers import training  # noqa: PLC0415

    real, real_fit = training.fit_and_record, training.fit
    runs, trained, failed = [], {}, {}

    def no_fit(*args, **kwargs):
        raise SkipRun("listing only")

    def reuse(name, model, data, **kwargs):
        """The run's record where one exists, loaded without training; ``None`` where not."""
        training.fit = no_fit
        try:
            return real(name, model, data, **kwargs)
        except SkipRun:
            return None  # no record yet
        finally:
            training.fit = real_fit

    def gated(name, model, data, **kwargs):
        run = {"name": name, "epochs": kwargs.get("epochs"), "images": len(data.x_train)}
        runs.append(run)
        run["done"] = False
        if train is None or name not in train:
            # a loop of runs goes on; a statement that uses a missing record is passed over
            rec = reuse(name, model, data, **kwargs)
            run["done"] = rec is not None
            return rec
        try:
            trained[name] = real(name, model, data, **kwargs)
        except Exception as err:
            failed[name] = err
            raise
        return trained[name]

    training.fit_and_record = gated
    nb = json.loads(path.read_text())
    namespace = {"__name__": "__main__"}
    cwd = Path.cwd()
    os.chdir(path.parent)
    try:
        for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            source = "".join(cell["source"])
            for stmt in ast.parse(source).body:
                code = compile(ast.Module([stmt], []), f"{path.name}, code cell {i + 1}", "exec")
                try:
                    exec(code, namespace)  # noqa: S102 - the suite's own notebook
                except Exception as err:
                    if failed:
                        raise  # a run this process trains failed: not to be passed over
                    print(f"(passed over: {path.name} cell {i + 1}: {type(err).__name__}: {err})")
                if train and set(train) <= set(trained):
                    return {"runs": runs, "trained": trained}  # nothing left to train here
    finally:
        os.chdir(cwd)
        training.fit_and_record = real
    return {"runs": runs, "trained": trained}


def cmd_list(args) -> None:
    for nb in select(args.notebooks):
        runs = exec_notebook(nb, None)["runs"]
        todo = [r["name"] for r in runs if not r["done"]]
        print(
            f"{nb.name}: {len(runs) - len(todo)} of {len(runs)} runs have a record; to train: "
            f"{', '.join(todo) or 'none'}"
        )
        print(json.dumps({"notebook": nb.name, "runs": runs}))


def cmd_train(args) -> None:
    nb = select([args.notebook])[0]
    out = exec_notebook(nb, set(args.runs))
    missing = [r for r in args.runs if r not in out["trained"]]
    if missing:
        names = [r["name"] for r in out["runs"]]
        sys.exit(f"{nb.name}: no run named {', '.join(map(repr, missing))} (runs: {names})")
    for run in args.runs:
        rec = out["trained"][run]
        print(json.dumps({"run": run, "test_accuracy": rec.test_accuracy, "reused": rec.reused}))


# --------------------------------------------------------------------------- there: schedule


def _status_path() -> Path:
    return WORK / "status.json"


def cmd_schedule(args) -> None:
    """Train every (notebook, run) in ``WORK/tasks.json`` with ``--jobs`` worker processes,
    longest first (epochs x images), writing ``WORK/status.json`` after every change."""
    tasks = json.loads((WORK / "tasks.json").read_text())
    tasks.sort(key=lambda t: -(t["epochs"] or 1) * t["images"])
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pending, running, done = list(tasks), {}, []
    start = time.time()

    def write_status():
        status = {
            "started": start,
            "pending": [t["task"] for t in pending],
            "running": list(running),
            "done": done,
        }
        tmp = _status_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=1))
        os.replace(tmp, _status_path())

    while pending or running:
        while pending and len(running) < args.jobs:
            t = pending.pop(0)
            cmd = [sys.executable, str(Path(__file__)), "train", t["notebook"], t["run"]]
            log = open(logs / f"{t['task']}.log", "w")  # noqa: SIM115 - closed when it ends
            proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            running[t["task"]] = (proc, log, time.time())
        for task, (proc, log, began) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                done.append({"task": task, "rc": proc.returncode, "s": round(time.time() - began)})
                del running[task]
        write_status()
        time.sleep(2)
    write_status()


def cmd_start(args) -> None:
    _unzip(PACK / "cifar10-2.zip")
    if not (WORK / "site" / "keras").is_dir():
        sys.exit("keras is not installed here: run `stage` first, in a call right before this one")
    env = _env()
    decode = "from helpers import data; print(data.load_cifar10().describe())"
    subprocess.run([sys.executable, "-c", decode], env=env, check=True)
    tasks = []
    for nb in select(args.notebooks):
        listed = subprocess.run(
            [sys.executable, str(Path(__file__)), "list", nb.name[:2]],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if listed.returncode:
            sys.exit(f"listing the runs of {nb.name} failed:\n{listed.stdout}\n{listed.stderr}")
        line = [ln for ln in listed.stdout.splitlines() if ln.startswith('{"notebook"')][-1]
        for r in json.loads(line)["runs"]:
            if r["done"]:
                print(f"{nb.name[:2]}-{r['name']}: record already here, not trained again")
                continue
            tasks.append({"notebook": nb.name[:2], "run": r["name"], **r})
            tasks[-1]["task"] = f"{nb.name[:2]}-{r['name']}"
    _status_path().unlink(missing_ok=True)  # a status left by an earlier start is not this one's
    shutil.rmtree(WORK / "logs", ignore_errors=True)
    (WORK / "tasks.json").write_text(json.dumps(tasks, indent=1))
    print(f"{len(tasks)} runs: {', '.join(t['task'] for t in tasks)}")
    if not tasks:
        cmd_collect(args)
        return
    with open(WORK / "scheduler.log", "w") as log:
        subprocess.Popen(
            [sys.executable, str(Path(__file__)), "schedule", "--jobs", str(args.jobs)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # keeps training between the device calls
        )
    cmd_wait(args)


def _progress(task: dict) -> str:
    nb = select([task["notebook"]])[0].stem
    csv = ROOT / "logs" / PROFILE / nb / f"{task['run']}.csv"
    rows = csv.read_text().splitlines()[1:] if csv.is_file() else []
    return f"{task['task']}: {len(rows)}/{task['epochs']} epochs"


def cmd_wait(args) -> None:
    """Wait up to ``--wait`` seconds (or until every run finished), printing progress each
    minute, then pack what finished into $OUT."""
    if not (WORK / "tasks.json").is_file():
        sys.exit(
            f"nothing was started here ({WORK / 'tasks.json'} is missing: the machine was "
            "given back since `start`?); run `stage` and `start` again"
        )
    tasks = {t["task"]: t for t in json.loads((WORK / "tasks.json").read_text())}
    deadline = time.time() + args.wait
    shown = time.time()
    while True:
        status = json.loads(_status_path().read_text()) if _status_path().is_file() else {}
        finished = not status.get("pending", 1) and not status.get("running", 1)
        if finished or time.time() >= deadline:
            break
        time.sleep(min(5, max(0.1, deadline - time.time())))
        if time.time() - shown >= 60:  # progress once a minute
            shown = time.time()
            elapsed = time.time() - status.get("started", time.time())
            print(f"--- {elapsed / 60:.1f} min: {len(status.get('done', []))} done")
            for task in status.get("running", []):
                print("   ", _progress(tasks[task]))
    for d in status.get("done", []):
        tail = (WORK / "logs" / f"{d['task']}.log").read_text().strip().splitlines()[-1:]
        print(f"{d['task']}: rc {d['rc']}, {d['s']} s: {tail[0] if tail else ''}")
    cmd_collect(args)


def _archive(notebooks: list[Path], backups: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for nb in notebooks:
            for top in ("results", "logs"):
                folder = ROOT / top / PROFILE / nb.stem
                if folder.is_dir():
                    tar.add(folder, arcname=str(folder.relative_to(ROOT)))
            # unfinished runs' BackupAndRestore folders (a finished run's is deleted); not the
            # final weights, which the notebooks' render does not need
            ckpt = ROOT / "checkpoints" / PROFILE / nb.stem
            for path in sorted(ckpt.glob("backup-*")) if backups else []:
                tar.add(path, arcname=str(path.relative_to(ROOT)))
        for extra in (WORK / "status.json", WORK / "tasks.json", WORK / "logs"):
            if extra.exists():
                tar.add(extra, arcname=f"gpu/{extra.name}")
    return buf.getvalue()


def cmd_collect(args) -> None:
    """Pack the chosen notebooks' records and logs, the backups of their unfinished runs, and the
    workers' logs into ``$OUT/gpu-results.tar.gz`` (parts ``.000``, ``.001``, ... of at most
    15 MiB where it is larger; without the backups where all would pass 60 MiB)."""
    out = Path(os.environ.get("OUT") or WORK / "out")
    out.mkdir(parents=True, exist_ok=True)
    notebooks = select(args.notebooks)
    blob = _archive(notebooks, backups=True)
    if len(blob) > 4 * PART_LIMIT:
        print(f"with the backups of unfinished runs: {len(blob) / 2**20:.1f} MiB; leaving them out")
        blob = _archive(notebooks, backups=False)
    for old in out.glob(ARCHIVE + "*"):
        old.unlink()
    if len(blob) <= PART_LIMIT:
        (out / ARCHIVE).write_bytes(blob)
    else:
        for i in range(0, len(blob), PART_LIMIT):
            (out / f"{ARCHIVE}.{i // PART_LIMIT:03d}").write_bytes(blob[i : i + PART_LIMIT])
    print(f"packed {len(blob) / 2**20:.1f} MiB into {out}/{ARCHIVE}*")


# --------------------------------------------------------------------------- here: unpack

ALLOWED = tuple(
    f"{top}/{p}/" for top in ("results", "logs", "checkpoints") for p in ("smoke", "quick", "full")
)


def cmd_unpack(args) -> None:
    """Put the records, logs and backups from the GPU's archive into this checkout. Every member
    must lie under results/, logs/ or checkpoints/ (a profile's folder); each file is written
    whole (a temporary file renamed over it)."""
    src = Path(args.path)
    parts = sorted(src.glob(ARCHIVE + "*")) if src.is_dir() else [src]
    if not parts:
        sys.exit(f"no {ARCHIVE} (or its parts) in {src}")
    blob = b"".join(p.read_bytes() for p in parts)
    arrived = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for m in tar.getmembers():
            if m.name.startswith("gpu/") or m.isdir():
                continue
            if not m.isfile() or ".." in Path(m.name).parts or not m.name.startswith(ALLOWED):
                sys.exit(f"{m.name}: not a file under {', '.join(ALLOWED)}; nothing unpacked")
        for m in tar.getmembers():
            if m.isfile() and m.name.startswith(ALLOWED):
                target = ROOT / m.name
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                with tar.extractfile(m) as f, open(tmp, "wb") as g:
                    shutil.copyfileobj(f, g)
                os.replace(tmp, target)
                if m.name.startswith("results/") and m.name.endswith(".json"):
                    arrived.append(target)
        status = [m for m in tar.getmembers() if m.name == "gpu/status.json"]
        if status:
            s = json.load(tar.extractfile(status[0]))
            print(
                f"on the GPU: {len(s['done'])} runs done, {len(s['running'])} still running, "
                f"{len(s['pending'])} not started"
            )
    for path in sorted(arrived):
        rec = json.loads(path.read_text())
        prov = rec.get("provenance", {})
        print(
            f"{path.relative_to(ROOT)}: test accuracy {rec['test']['accuracy']:.4f}, "
            f"{rec['epochs_run']} epochs, {prov.get('backend')} "
            f"on {prov.get('devices')}"
        )


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("pack", help="here: data zips and wheels into .gpu/")
    s.add_argument("--data", help="folder holding cifar10/ (default $SUITE_DATA_DIR)")
    s = sub.add_parser("stage", help="there: install wheels, unpack part 1, benchmark")
    s.add_argument("--no-benchmark", dest="benchmark", action="store_false")
    s.add_argument("--models", default="mlp,vgg,vgg_bn_do", help="benchmark: models of 05, 06")
    s.add_argument("--images", type=int, default=10000, help="benchmark: images per epoch")
    s.add_argument("--batch-sizes", default="32,64", help="benchmark: 05 trains at 32, 06 at 64")
    s.add_argument("--benchmark-timeout", type=int, default=240, help="seconds")
    for name in ("start", "wait", "collect"):
        s = sub.add_parser(name)
        s.add_argument("notebooks", nargs="+", help="notebook prefixes, e.g. 06 05")
        s.add_argument("--wait", type=int, default=480, help="seconds to wait before packing")
        s.add_argument("--jobs", type=int, default=8, help="worker processes on the GPU")
    s = sub.add_parser("schedule")
    s.add_argument("--jobs", type=int, default=8)
    s = sub.add_parser("list", help="the runs a notebook trains")
    s.add_argument("notebooks", nargs="+")
    s = sub.add_parser("train", help="train runs of a notebook (the others skipped)")
    s.add_argument("notebook")
    s.add_argument("runs", nargs="+", metavar="run")
    s = sub.add_parser("unpack", help="here: the GPU's archive into results/, logs/, checkpoints/")
    s.add_argument("path", help="the folder the device's files came back to, or the archive")
    args = p.parse_args(argv)
    globals()[f"cmd_{args.command}"](args)


if __name__ == "__main__":
    main()
