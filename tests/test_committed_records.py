"""The records committed under ``results/``: every one loads through the suite's loader, is of
the current version, strict JSON, holds no absolute path, and carries the key that the notebooks
compute today (the training code's current version; keys of the runs it starts from that exist),
so a re-render reuses every one of them and trains nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import records, training
from helpers.records import RECORD_VERSION, make_key

REPO = Path(__file__).resolve().parents[1]
PATHS = sorted((REPO / "results").glob("*/*/*.json"))
KEY = re.compile(r"(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])")  # a record key inside settings


def _refuse(token):
    raise ValueError(f"{token} is not strict JSON")


def test_there_are_committed_records():
    assert len(PATHS) >= 100


def test_every_committed_record_loads_through_the_suite():
    loaded = records.load_records(root=REPO)
    assert [r.path for r in loaded] == [str(p) for p in PATHS]
    assert {r.record_version for r in loaded} == {RECORD_VERSION}


@pytest.mark.parametrize("path", PATHS, ids=[str(p.relative_to(REPO / "results")) for p in PATHS])
def test_committed_record_is_current_strict_and_portable(path):
    text = path.read_text()
    stored = json.loads(text, parse_constant=_refuse)
    assert stored["record_version"] == RECORD_VERSION, (
        f"{path}: python -m helpers.records --upgrade"
    )
    assert isinstance(stored["diverged"], bool)
    assert stored["config_hash"] == make_key(stored["config"])
    assert stored["config"]["implementation"] == training.IMPLEMENTATION, (
        f"{path} was made by {stored['config']['implementation']}: train it again"
    )
    absolute = re.findall(r'"(/[^"]*)"|[\s:](/(?:work|home|tmp|root|mnt|Users)/[^\s"]*)', text)
    assert not absolute, f"{path} stores absolute paths {absolute[:3]}"
    assert (path.parent.name, path.stem) == (stored["notebook"], stored["name"])
    assert path.parent.parent.name == stored["profile"]


def test_keys_named_in_settings_are_keys_of_committed_records():
    """Runs that start from another run name its key: after the upgrade, its current one."""
    loaded = {r.config_hash: r for r in records.load_records(root=REPO)}
    named = 0
    for rec in loaded.values():
        for key in KEY.findall(json.dumps(rec.config)):
            named += 1
            assert key in loaded, f"{rec.path} names the key {key}, which no record has"
    assert named >= 19
