"""Load times of the CIFAR-10 image folder: the first decode and the cached second load.

Reads ``<data dir>/cifar10`` (``train/<class>/*.jpg``, ``test/<class>/*.jpg``) with
``helpers.data.load_image_folder`` into a fresh, empty temporary cache (``$SUITE_CACHE_DIR``),
twice: the first load decodes every JPEG and writes the cache, the later ones read the cache.
Prints seconds and images per second for each, the ratio between them and the cache's size.
The temporary cache is removed at the end.

    python benchmarks/data_load.py                            # the folder in $SUITE_DATA_DIR
    python benchmarks/data_load.py --data-dir /path/to/data --repeats 5 --json results/load.json

Run it on a quiet machine: other processes on the same cores change the numbers (the output
gives the load average before and after, so a busy run can be told apart).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path | None:
    """``$SUITE_DATA_DIR``, or None where it is unset."""
    env = os.environ.get("SUITE_DATA_DIR")
    return Path(env) if env else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder holding cifar10/ (default: $SUITE_DATA_DIR)",
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="cached loads; the fastest is reported (default 3)"
    )
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be at least 1, got {args.repeats}")
    folder = args.data_dir or default_data_dir()
    if folder is None:
        p.error(
            "no data folder: pass --data-dir or set SUITE_DATA_DIR to the folder holding cifar10/"
        )
    args.data_dir = folder.resolve()
    return args


def _load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def time_loads(folder: Path, repeats: int, cache: Path) -> tuple[int, float, list[float], int]:
    """Load ``folder`` once into the empty ``cache``, then ``repeats`` times from it.

    Returns the number of images, the first load's seconds, each cached load's seconds and the
    cache's size in bytes."""
    from helpers import data  # noqa: PLC0415  (after SUITE_CACHE_DIR is set)

    start = time.perf_counter()
    ds = data.load_image_folder(folder)
    first = time.perf_counter() - start
    n = len(ds.x_train) + len(ds.x_test)
    cache_bytes = sum(f.stat().st_size for f in cache.glob("*.npz"))
    cached = []
    for _ in range(repeats):
        start = time.perf_counter()
        again = data.load_image_folder(folder)
        cached.append(time.perf_counter() - start)
        assert len(again.x_train) + len(again.x_test) == n
    return n, first, cached, cache_bytes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.data_dir / "cifar10"
    if not (folder / "train").is_dir() or not (folder / "test").is_dir():
        print(
            f"No CIFAR-10 image folder at {folder} (expected train/<class>/*.jpg and "
            "test/<class>/*.jpg). Pass --data-dir or set SUITE_DATA_DIR.",
            file=sys.stderr,
        )
        return 2

    cache = Path(tempfile.mkdtemp(prefix="suite-cache-bench-"))
    os.environ["SUITE_CACHE_DIR"] = str(cache)  # read by helpers.data at every load
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}"
    )
    print(f"load average (1, 5, 15 min) before: {_load_average()}")
    print(f"folder: {folder}")
    print(f"cache:  {cache} (fresh, empty)")
    try:
        n, first, cached, cache_bytes = time_loads(folder, args.repeats, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    second = min(cached)

    print(f"images: {n:,} ({len(os.listdir(folder / 'train'))} classes)")
    print()
    print(f"{'load':28s} {'seconds':>8s} {'images/s':>10s}")
    print(f"{'first (decode + write cache)':28s} {first:8.2f} {n / first:10,.0f}")
    print(f"{'cached (best of ' + str(args.repeats) + ')':28s} {second:8.2f} {n / second:10,.0f}")
    print()
    print(f"cached load {first / second:.0f}x faster; cache {cache_bytes / 2**20:.0f} MiB on disk")
    print(f"all cached loads (s): {', '.join(f'{t:.2f}' for t in cached)}")
    print(f"load average (1, 5, 15 min) after:  {_load_average()}")

    if args.json:
        from helpers.files import atomic_write  # noqa: PLC0415

        info = {"machine": platform.platform(), "cpus": os.cpu_count(), "folder": str(folder),
                "images": n, "first_load_s": first, "cached_load_s": cached,
                "cache_bytes": cache_bytes, "load_average_after": _load_average()}  # fmt: skip
        atomic_write(args.json, json.dumps(info, indent=1))
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
