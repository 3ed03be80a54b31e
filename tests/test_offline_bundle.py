"""scripts/offline_bundle.py: the image folder split into zip files, the list of wheels."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "offline_bundle.py"


@pytest.fixture
def bundle():
    spec = importlib.util.spec_from_file_location("offline_bundle_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pack_data_puts_every_file_into_exactly_one_part(bundle, tmp_path):
    src = tmp_path / "cifar10"
    files = {}
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            for i in range(5):
                path = src / split / cls / f"{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(bytes([i]) * (100 + i))
                files[f"cifar10/{split}/{cls}/{i}.jpg"] = path.read_bytes()
    zips = bundle.pack_data(src, tmp_path / "out", parts=3)
    assert [z.name for z in zips] == ["cifar10-1.zip", "cifar10-2.zip", "cifar10-3.zip"]
    seen = {}
    for z in zips:
        with zipfile.ZipFile(z) as f:
            for name in f.namelist():
                assert name not in seen, f"{name} in two parts"
                seen[name] = f.read(name)
    assert seen == files
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_requirements_are_the_pinned_dependencies_of_every_extra(bundle):
    specs = bundle.requirements()
    assert "keras==3.15.1" in specs
    assert any(s.startswith("tensorflow==") for s in specs)
    assert any(s.startswith("ray==") for s in specs)
    assert not any(s.startswith("keras-experiment-suite-helpers") for s in specs)
