"""No number in a notebook's conclusion is printed nowhere.

Every decimal number in the Markdown of a notebook's conclusion (from the heading that contains
"Conclusion" to the end) must appear in that notebook's stored outputs or in its records
(``results/*/<notebook>/*.json``), as printed or as a value that rounds to it. Only the .ipynb and
JSON files are read: nothing is executed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# a decimal number, with thousands commas, not part of a version such as 3.11.7
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)\.(\d+)(?!\.?\d)(\s*%)?")
IGNORED = re.compile(
    r"\$\$.*?\$\$|\$[^$]*\$"  # LaTeX
    r"|\]\([^)]*\)"  # a Markdown link's target (its text stays)
    r"|<[^>]*>"  # HTML tags
    r"|\w+://\S+",  # bare URLs
    re.DOTALL,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*_(\"'])|\n\s*\n|\n(?=\s*[-*|#] )")


def conclusion_sentences(cells: list[dict]) -> list[str]:
    """The sentences of the Markdown cells from the "Conclusion" heading on, LaTeX and links cut."""
    text, started = [], False
    for cell in cells:
        source = "".join(cell["source"])
        heading = re.search(r"^#+ .*Conclusion.*$", source, re.MULTILINE | re.IGNORECASE)
        if cell["cell_type"] == "markdown" and (started or heading):
            text.append(source[heading.start() :] if heading and not started else source)
            started = True
    return [s.strip() for s in SENTENCE_END.split(IGNORED.sub(" ", "\n\n".join(text)))]


def printed_text(cells: list[dict]) -> str:
    """The text of every stored output: streams, text/plain, text/markdown, text/html."""
    parts = []
    for cell in cells:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            for mime in ("text/plain", "text/markdown", "text/html"):
                parts.append("".join(out.get("data", {}).get(mime, "")))
    return "\n".join(parts)


def record_values(obj) -> list[float]:
    """Every number in a record's JSON."""
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in record_values(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in record_values(x)]
    return [float(obj)] if isinstance(obj, int | float) and not isinstance(obj, bool) else []


def evidence(notebook: Path, cells: list[dict]) -> tuple[set[str], list[float]]:
    """Numbers as printed in the outputs and records, and their values."""
    texts = [printed_text(cells)]
    values = []
    for path in sorted(REPO.glob(f"results/*/{notebook.stem}/*.json")):
        texts.append(path.read_text())
        values += record_values(json.loads(texts[-1]))
    printed = {m.group(0).replace(",", "") for t in texts for m in NUMBER.finditer(t)}
    printed = {re.sub(r"\s*%$", "", p) for p in printed}
    values += [float(p) for p in printed]
    return printed, values


def is_printed(match: re.Match, printed: set[str], values: list[float]) -> bool:
    """The number as printed, or a value that rounds to it (a percentage also as a fraction)."""
    whole, decimals, percent = match.groups()
    shown = f"{whole.replace(',', '')}.{decimals}"
    if shown in printed:
        return True
    targets = [(float(shown), len(decimals))]
    if percent:
        targets.append((float(shown) / 100, len(decimals) + 2))
    return any(abs(round(v, d) - x) < 1e-9 for x, d in targets for v in values)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_of_the_conclusion_is_printed(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    printed, values = evidence(notebook, cells)
    missing = [
        f"{notebook.name}: {m.group(0).strip()} in: {sentence}"
        for sentence in conclusion_sentences(cells)
        for m in NUMBER.finditer(sentence)
        if not is_printed(m, printed, values)
    ]
    assert not missing, "numbers printed by no output or record:\n" + "\n".join(missing)


def test_the_numbers_of_a_conclusion_are_found_as_written():
    cells = [
        {"cell_type": "markdown", "source": "## Data\nNot checked: 0.5."},
        {"cell_type": "code", "source": "print(0.25)"},
        {
            "cell_type": "markdown",
            "source": "## Conclusion\nAccuracy 0.751, 56.86 % and 1,234.5 s (Python 3.11.7).\n"
            "Not these: $p = 0.75$, [notes](https://x.org/v1.5/a#2.5).",
        },
    ]
    found = [m for s in conclusion_sentences(cells) for m in NUMBER.finditer(s)]
    assert [m.group(0).strip() for m in found] == ["0.751", "56.86 %", "1,234.5"]
    printed, values = {"0.751"}, [0.56861, 1234.46]
    assert [is_printed(m, printed, values) for m in found] == [True, True, True]
    assert not is_printed(found[0], set(), [0.7504])
