"""Pack what a machine without internet needs to run the suite: CIFAR-10 and the wheels.

    python scripts/offline_bundle.py bundle/                       # for a machine like this one
    python scripts/offline_bundle.py bundle/ --parts 3 --python-version 3.12 \\
        --platform manylinux_2_28_x86_64                           # for another Python / OS

writes ``bundle/cifar10-<i>.zip`` (the JPEG image folder ``$SUITE_DATA_DIR/cifar10`` in
``--parts`` uncompressed zip files of about equal size, each image whole in one of them) and
``bundle/wheels/`` (every dependency of the suite with all extras, at the pinned versions). On
the other machine, from a checkout::

    for z in bundle/cifar10-*.zip; do unzip -q "$z" -d data/; done
    python -m pip install --no-index --find-links bundle/wheels -e ".[all]"
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pack_data(src: Path, out: Path, parts: int = 2) -> list[Path]:
    """Write the files of the image folder ``src`` into ``parts`` uncompressed zip files of about
    equal size (``<name>-1.zip``, ...), each file whole in one of them; returns their paths."""
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


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The suite's dependencies and those of every extra (without the suite itself)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += [s for s in extra if not s.startswith(project["name"])]
    return list(dict.fromkeys(specs))


def pack_wheels(out: Path, python_version: str | None, platforms: list[str]) -> None:
    """Download the wheels of :func:`requirements` (and their dependencies) into ``out``."""
    cmd = [sys.executable, "-m", "pip", "download", "-q", "-d", str(out), *requirements()]
    if python_version or platforms:
        cmd += ["--only-binary=:all:", "--python-version", python_version or "3.11"]
        cmd += [arg for p in platforms for arg in ("--platform", p)]
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder to write the bundle to")
    p.add_argument("--data", type=Path, help="folder holding cifar10/ (default $SUITE_DATA_DIR)")
    p.add_argument("--parts", type=int, default=2, help="zip files of the images (default 2)")
    p.add_argument("--python-version", help="the other machine's Python, e.g. 3.12")
    p.add_argument("--platform", action="append", default=[], help="its wheel platform tags")
    p.add_argument("--no-wheels", action="store_true", help="the images only")
    args = p.parse_args(argv)
    data = args.data or Path(os.environ.get("SUITE_DATA_DIR") or ROOT / "data")
    zips = pack_data(data / "cifar10", args.out, args.parts)
    print(f"images: {', '.join(f'{z.name} ({z.stat().st_size / 2**20:.0f} MiB)' for z in zips)}")
    if not args.no_wheels:
        pack_wheels(args.out / "wheels", args.python_version, args.platform)
        print(f"wheels: {len(list((args.out / 'wheels').glob('*.whl')))} in {args.out / 'wheels'}")


if __name__ == "__main__":
    main()
