"""Render every experiment record into the suite's comparison table (markdown).

Usage::

    python -m helpers.report                 # print the table of the quick and full records
    python -m helpers.report --readme README.md   # also replace the table in the README

For each experiment the table shows the record of the largest profile that has one
(full, then quick; smoke only with ``--profiles smoke``), with the report's number beside ours.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .files import atomic_write
from .records import Record, load_records
from .session import project_root

START = "<!-- results-table:start -->"
END = "<!-- results-table:end -->"
ORDER = ("full", "quick", "smoke")


def pick_records(
    records: list[Record], profiles: tuple[str, ...] = ("full", "quick")
) -> list[Record]:
    """One record per (notebook, name): the one of the largest profile among ``profiles``."""
    best: dict[tuple[str, str], Record] = {}
    for rec in records:
        if rec.profile not in profiles:
            continue
        key = (rec.notebook, rec.name)
        old = best.get(key)
        if old is None or ORDER.index(rec.profile) < ORDER.index(old.profile):
            best[key] = rec
    return [best[k] for k in sorted(best)]


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


def markdown_table(records: list[Record]) -> str:
    """The comparison table: one row per record, the report's test accuracy beside ours.

    The wall time (minutes) of a run resumed after an interruption covers only the epochs timed
    after it, and says so: ``116.3 min (61 of 120 ep.)``. A run whose loss or metrics became
    NaN/inf says ``diverged`` beside its test accuracy.
    """
    if not records:
        return "_No experiment records yet: run `make run` to create them._"
    head = (
        "| notebook | experiment | profile | test acc. | report | epochs | layers | params "
        "| wall time | s/epoch | backend |"
    )
    rows = [head, "|" + "---|" * 11]
    for r in records:
        rep_txt = _reported_text(r.reported or {})
        stand_in = " (stand-in data)" if r.provenance.get("stand_in") else ""
        part = f" ({r.timed_epochs} of {r.epochs_run} ep.)" if r.timed_in_part else ""
        diverged = " (diverged)" if r.diverged else ""
        rows.append(
            f"| {r.notebook} | {r.name}{stand_in} | {r.profile} | {r.test['accuracy']:.3f}{diverged} | "
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
