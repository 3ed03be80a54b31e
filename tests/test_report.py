"""The comparison table: picking records, the markdown table, the README markers, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import report
from helpers.records import Record


def make_record(notebook="05_cnn", name="base", profile="quick", acc=0.7, reported=None, **kw):
    """A Record with plausible values; no training involved."""
    fields = dict(
        name=name,
        notebook=notebook,
        profile=profile,
        config={},
        config_hash="abc",
        history={"loss": [1.0, 0.8], "accuracy": [0.5, acc]},
        epochs_run=2,
        test={"accuracy": acc, "loss": 0.9},
        confusion_matrix=[[1, 0], [0, 1]],
        per_class_accuracy=[],
        class_names=["a", "b"],
        y_test_pred=[0, 1],
        wall_time_s=180.0,
        epoch_times_s=[80.0, 100.0],
        params=1234567,
        trainable_params=1234567,
        layers=9,
        provenance={
            "data_source": "image folder /data/cifar10",
            "stand_in": kw.pop("stand_in", False),
            "fingerprint": "0123456789abcdef",
            "backend": kw.pop("backend", "tensorflow"),
            "devices": ["cpu:0"],
            "versions": {"keras": "3"},
            "created": "2026-01-01T00:00:00+00:00",
        },
        reported=reported,
    )
    fields.update(kw)
    return Record(**fields)


def write_record(root: Path, rec: Record) -> Path:
    path = root / "results" / rec.profile / rec.notebook / f"{rec.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rec.to_json())
    return path


def test_pick_records_prefers_full_over_quick():
    recs = [
        make_record(profile="quick", acc=0.6),
        make_record(profile="full", acc=0.8),
        make_record(profile="smoke", acc=0.1),
        make_record(name="other", profile="quick", acc=0.5),
        make_record(name="only_smoke", profile="smoke"),
    ]
    picked = report.pick_records(recs)
    assert [(r.name, r.profile) for r in picked] == [("base", "full"), ("other", "quick")]
    # the order of the input does not matter
    assert report.pick_records(recs[::-1]) == picked
    with_smoke = report.pick_records(recs, profiles=("full", "quick", "smoke"))
    assert ("only_smoke", "smoke") in [(r.name, r.profile) for r in with_smoke]
    assert [r.profile for r in report.pick_records(recs, profiles=("smoke",))] == ["smoke"] * 2


def test_pick_records_sorted_by_notebook_then_name():
    recs = [make_record("07_x", "b"), make_record("03_y", "z"), make_record("07_x", "a")]
    assert [(r.notebook, r.name) for r in report.pick_records(recs)] == [
        ("03_y", "z"),
        ("07_x", "a"),
        ("07_x", "b"),
    ]


def test_markdown_table_puts_the_report_beside_ours():
    recs = [
        make_record(acc=0.7123, reported={"test_accuracy": 0.74, "epochs": 15}),
        make_record(name="new", acc=0.5, stand_in=True, backend="jax"),
    ]
    table = report.markdown_table(recs).splitlines()
    assert table[0].startswith("| notebook | experiment | profile | test acc. | report |")
    assert table[1] == "|" + "---|" * 11
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[:5] == ["05_cnn", "base", "quick", "0.712", "0.740 (15 ep.)"]
    assert cells[5:] == ["2", "9", "1,234,567", "3.0 min", "90.0", "tensorflow"]
    cells = [c.strip() for c in table[3].strip("|").split("|")]
    assert cells[1] == "new (stand-in data)" and cells[4] == "–" and cells[-1] == "jax"
    # every row has as many cells as the header
    assert len({line.count("|") for line in table}) == 1


def test_markdown_table_says_when_only_part_of_a_run_was_timed():
    resumed = make_record(epoch_times_s=[100.0], wall_time_s=120.0)  # 2 epochs, 1 timed
    cells = [c.strip() for c in report.markdown_table([resumed]).splitlines()[2].split("|")]
    assert cells[9:11] == ["2.0 min (1 of 2 ep.)", "100.0"]
    assert "120 s for 1 of 2 epochs (100.0 s/epoch)" in resumed.summary()
    whole = make_record()
    cells = [c.strip() for c in report.markdown_table([whole]).splitlines()[2].split("|")]
    assert cells[9] == "3.0 min"
    assert "180 s (90.0 s/epoch)" in whole.summary()


def test_summary_and_table_without_a_reported_number():
    rec = make_record(reported={"test_accuracy": None, "source": "VGG16 assignment 6"})
    assert "report:" not in rec.summary() and "0.700" in rec.summary()
    cells = [c.strip() for c in report.markdown_table([rec]).splitlines()[2].split("|")]
    assert cells[5] == "–"


def test_markdown_table_without_records():
    assert "No experiment records" in report.markdown_table([])


README = """# Suite

Intro text.

<!-- results-table:start -->
old table
with two lines
<!-- results-table:end -->

## After
Text after $1 \\1 the table.
"""


def test_update_readme_replaces_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    report.update_readme(readme, "| new | table \\1 |")
    text = readme.read_text()
    before, rest = text.split(report.START)
    inner, after = rest.split(report.END)
    assert before == README.split(report.START)[0]
    assert after == README.split(report.END)[1]
    assert inner == "\n| new | table \\1 |\n"
    # idempotent
    report.update_readme(readme, "| new | table \\1 |")
    assert readme.read_text() == text


def test_update_readme_without_markers_errors_clearly(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    with pytest.raises(ValueError, match="README.md has no .*results-table:start.*markers"):
        report.update_readme(readme, "x")
    assert readme.read_text() == "# no markers here\n"
    swapped = f"a\n{report.END}\nold\n{report.START}\nb\n"
    readme.write_text(swapped)
    with pytest.raises(ValueError, match="comes before"):
        report.update_readme(readme, "x")
    assert readme.read_text() == swapped


def _run_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUITE_ROOT": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "helpers.report", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
    )


def test_cli_prints_the_table_and_updates_the_readme(suite_root, capsys):
    """``python -m helpers.report --readme README.md`` in a fresh process, then in-process."""
    write_record(suite_root, make_record(profile="quick", acc=0.61))
    write_record(suite_root, make_record(profile="full", acc=0.83, reported={"test_accuracy": 0.8}))
    write_record(suite_root, make_record(name="smoky", profile="smoke", acc=0.2))
    write_record(suite_root, make_record("03_mlp", "old", profile="quick", acc=0.5))
    readme = suite_root / "README.md"
    readme.write_text(README)
    proc = _run_cli(suite_root, "--readme", str(readme))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("| notebook | experiment |") and len(lines) == 4
    assert lines[2].startswith("| 03_mlp | old | quick | 0.500 |")
    assert "| 05_cnn | base | full | 0.830 | 0.800 |" in lines[3]
    assert "smoky" not in proc.stdout and "0.610" not in proc.stdout
    assert "| 05_cnn | base | full | 0.830 |" in readme.read_text()
    assert readme.read_text().startswith("# Suite\n\nIntro text.\n")

    report.main(["--profiles", "smoke"])
    assert "smoky" in capsys.readouterr().out


def test_cli_rejects_unknown_profiles(suite_root, capsys):
    with pytest.raises(SystemExit) as exit_:
        report.main(["--profiles", "huge"])
    assert exit_.value.code == 2
    assert "unknown profile(s) ['huge']" in capsys.readouterr().err


def test_cli_in_process_without_records(suite_root, capsys):
    report.main([])
    assert "No experiment records" in capsys.readouterr().out


def test_seeds_of_a_run_are_one_row_with_mean_and_sd():
    seeds = [
        make_record(name=n, acc=a, config={"seed": s})
        for n, a, s in (("mlp", 0.50, 0), ("mlp_seed1", 0.52, 1), ("mlp_seed2", 0.54, 2))
    ]
    full_seed0 = make_record(name="cnn", profile="full", acc=0.8, config={"seed": 0})
    quick_seed1 = make_record(name="cnn_seed1", acc=0.4, config={"seed": 1})
    picked = report.pick_records([*seeds, full_seed0, quick_seed1])
    assert [r.name for r in picked] == ["cnn", "mlp", "mlp_seed1", "mlp_seed2"]
    table = report.markdown_table(picked)
    assert "| 05_cnn | mlp | quick | 0.520 ± 0.020 (3 seeds) |" in table
    assert "| 05_cnn | cnn | full | 0.800 |" in table
    assert "mlp_seed1" not in table
