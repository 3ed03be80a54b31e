"""Put the Colab badge and the Colab install cell into every notebook (idempotent).

    python scripts/colab.py            # update notebooks/NN_*.ipynb in place and the README's list

The badge goes under the title in the first markdown cell; the install cell is the first code
cell and does nothing outside Colab. The README's notebook list (between its notebooks markers)
is rebuilt from the notebooks' titles and the profile their outputs come from (their metadata).
The repository is named in one place, ``[project.urls] Repository`` of pyproject.toml.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from run_notebooks import committed_profile  # noqa: E402

BRANCH = "main"


def repository_url() -> str:
    """``https://github.com/OWNER/NAME``, from pyproject.toml's ``[project.urls] Repository``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["urls"]["Repository"].rstrip("/")


REPO_URL = repository_url()
REPO = REPO_URL.removeprefix("https://github.com/")
MARK = "# Colab only: fetch the suite and install its helpers"


def badge(name: str) -> str:
    url = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/{name}"
    img = "https://colab.research.google.com/assets/colab-badge.svg"
    return f"[![Open In Colab]({img})]({url})"


def install_cell() -> nbformat.NotebookNode:
    """The first code cell: in Colab, clone the suite and install it; elsewhere, nothing.

    Plain Python, no ``!``/``%`` magics, so it runs (and is tested) in any interpreter. The
    install is not editable: an editable install is a ``.pth`` file that Python reads only at
    start-up, so ``import helpers`` in the same kernel would fail. A regular install lands in
    site-packages, already on ``sys.path``, and brings the pinned keras of pyproject.toml.
    ``SUITE_CLONE`` moves the clone (the tests point it at a copy of the suite).
    """
    source = "\n".join(
        [
            MARK,
            "import importlib",
            "import os",
            "import subprocess",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            '    SUITE = os.environ.get("SUITE_CLONE", "/content/suite")',
            "    if not os.path.isdir(SUITE):",
            f'        url = "{REPO_URL}"',
            '        subprocess.run(["git", "clone", "-q", "--depth", "1", url, SUITE], check=True)',
            '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", SUITE], check=True)',
            "    importlib.invalidate_caches()",
            '    os.chdir(SUITE + "/notebooks")',
        ]
    )
    return nbformat.v4.new_code_cell(source)


def apply(path: Path) -> bool:
    """Add or refresh the badge and install cell of one notebook; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    first_md = next(c for c in nb.cells if c.cell_type == "markdown")
    lines = [ln for ln in first_md.source.splitlines() if "colab-badge.svg" not in ln]
    first_md.source = "\n".join([lines[0], "", badge(path.name), *lines[1:]]).replace(
        "\n\n\n", "\n\n"
    )
    code = [c for c in nb.cells if c.cell_type == "code"]
    if code and code[0].source.startswith(MARK):
        code[0].source = install_cell().source
    else:
        idx = nb.cells.index(first_md) + 1
        nb.cells.insert(idx, install_cell())
    changed = nbformat.writes(nb) != before
    if changed:
        nbformat.write(nb, path)
    return changed


def readme_list(paths: list[Path]) -> str:
    """A markdown table: notebook link, its title, the profile of its outputs, its Colab badge."""
    rows = ["| notebook | what it does | outputs | Colab |", "|---|---|---|---|"]
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        first_md = next(c for c in nb.cells if c.cell_type == "markdown")
        title = first_md.source.splitlines()[0].lstrip("# ").strip()
        outputs = f"`{committed_profile(nb)}`"
        rows.append(f"| [{p.stem}](notebooks/{p.name}) | {title} | {outputs} | {badge(p.name)} |")
    return "\n".join(rows)


def update_readme(paths: list[Path]) -> None:
    """Rebuild the README's notebook list between its notebooks markers."""
    readme = ROOT / "README.md"
    start, end = "<!-- notebooks:start -->", "<!-- notebooks:end -->"
    text = readme.read_text()
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{readme_list(paths)}\n{end}{tail}")


def main() -> None:
    every = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    paths = [Path(p) for p in sys.argv[1:]] or every
    for p in paths:
        print(f"{p.name}: {'updated' if apply(p) else 'unchanged'}")
    update_readme(every)


if __name__ == "__main__":
    main()
