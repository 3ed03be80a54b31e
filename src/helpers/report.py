"""Render every experiment record into the suite's comparison table (markdown).

Usage::

    python -m helpers.report                 # print the table of the quick and full records
    python -m helpers.report --readme README.md   # also replace the table in the README

For each experiment the table shows the record of the largest profile that has one
(full, then quick; smoke only with ``--profiles smoke``), with the report's number beside ours.
An experiment trained with several seeds is one row: its test accuracy is the mean ± standard
deviation over the seeds, the other columns are those of its first seed.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

from .files import atomic_write
from .records import Record, load_records
from .session import project_root
from .spread import mean_sd

START = "<!-- results-table:start -->"
END = "<!-- results-table:end -->"
ORDER = ("full", "quick", "smoke")


def pick_records(
    records: list[Record], profiles: tuple[str, ...] = ("full", "quick")
) -> list[Record]:
    """The records of each (notebook, run) in the largest profile among ``profiles`` that has
    one: every seed of that profile (``rec.run`` is the name without the seed suffix)."""
    chosen = [r for r in records if r.profile in profiles]
    best: dict[tuple[str, str], str] = {}
    for rec in chosen:
        key = (rec.notebook, rec.run)
        if key not in best or ORDER.index(rec.profile) < ORDER.index(best[key]):
            best[key] = rec.profile
    picked = [r for r in chosen if best[r.notebook, r.run] == r.profile]
    return sorted(picked, key=lambda r: (r.notebook, r.run, r.seed))


def _fmt(value, spec: str, default: str = "–") -> str:
    return default if value is None else format(value, spec)


def _reported_text(reported: dict) -> str:
    """The report's test accuracy (or, where it only gave one, its validation accuracy)."""
    if reported.get("test_accuracy") is not None:
        text = format(reported["test_accuracy"], ".3f")
    elif reported.get("val_accuracy") is not None:
        text = f"val {reported['val_accuracy']:.3f}"
    else:
        return "–"
    return text + (f" ({reported['epochs']} ep.)" if reported.get("epochs") else "")


def _accuracy_text(group: list[Record]) -> str:
    """Test accuracy of one run, or its mean ± sd over seeds, e.g. ``0.506 ± 0.010 (3 seeds)``."""
    values = [rec.test["accuracy"] for rec in group]
    return mean_sd(values) + (f" ({len(values)} seeds)" if len(values) > 1 else "")


def markdown_table(records: list[Record]) -> str:
    """The comparison table: one row per run (its seeds together), the report's test accuracy
    beside ours.

    The wall time (minutes) of a run resumed after an interruption covers only the epochs timed
    after it, and says so: ``116.3 min (61 of 120 ep.)``. A run whose loss or metrics became
    NaN/inf says ``diverged`` beside its test accuracy.
    """
    if not records:
        return "_No experiment records yet: run `make run` to create them._"
    seeds: dict[tuple, list[Record]] = defaultdict(list)
    for r in records:
        seeds[r.notebook, r.run, r.profile].append(r)
    head = (
        "| notebook | experiment | profile | test acc. | report | epochs | layers | params "
        "| wall time | s/epoch | backend |"
    )
    rows = [head, "|" + "---|" * 11]
    for group in seeds.values():
        r = min(group, key=lambda rec: rec.seed)
        rep_txt = _reported_text(r.reported or {})
        stand_in = " (stand-in data)" if r.provenance.get("stand_in") else ""
        part = f" ({r.timed_epochs} of {r.epochs_run} ep.)" if r.timed_in_part else ""
        diverged = " (diverged)" if r.diverged else ""
        rows.append(
            f"| {r.notebook} | {r.run}{stand_in} | {r.profile} | {_accuracy_text(group)}{diverged} | "
            f"{rep_txt} | {r.epochs_run} | {r.layers} | {r.params:,} | "
            f"{r.wall_time_s / 60:.1f} min{part} | {r.seconds_per_epoch:.1f} | {r.backend} |"
        )
    return "\n".join(rows)


def update_readme(readme: Path, table: str) -> None:
    """Replace the text between the README's table markers with ``table``."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(
            f"{readme} has no {START} ... {END} markers; add them where the table goes."
        )
    if text.index(END) < text.index(START):
        raise ValueError(f"{readme}: the {END} marker comes before {START}; swap them.")
    new = re.sub(
        re.escape(START) + r".*?" + re.escape(END),
        lambda _: f"{START}\n{table}\n{END}",
        text,
        flags=re.S,
    )
    atomic_write(readme, new)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, help="README whose table to replace")
    parser.add_argument(
        "--profiles",
        default="full,quick",
        help="comma-separated profiles to include (default: full,quick)",
    )
    args = parser.parse_args(argv)
    profiles = tuple(p.strip() for p in args.profiles.split(",") if p.strip())
    unknown = [p for p in profiles if p not in ORDER]
    if unknown:
        parser.error(f"unknown profile(s) {unknown}; valid: {', '.join(ORDER)}")
    table = markdown_table(pick_records(load_records(root=project_root()), profiles))
    print(table)
    if args.readme:
        update_readme(args.readme, table)


if __name__ == "__main__":
    main()
