"""One call at the top of every notebook: profile, seed, backend, paths, environment printout.

``setup()`` records the notebook's name and profile as the *current session*, so later helper
calls (saving a figure, writing an experiment record) know where their files go without the
notebook passing them around, much like matplotlib's current figure.
"""

from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .profiles import Profile, get_profile

_CURRENT: Session | None = None


def project_root() -> Path:
    """The suite's root folder: ``$SUITE_ROOT``, else the nearest parent with ``pyproject.toml``
    and a ``notebooks/`` folder, else the current directory."""
    env = os.environ.get("SUITE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder
    return here


def data_dir() -> Path:
    """Where local dataset copies live: ``$SUITE_DATA_DIR`` or ``<root>/data``."""
    env = os.environ.get("SUITE_DATA_DIR")
    return Path(env).resolve() if env else project_root() / "data"


def keras_home() -> Path:
    """Where Keras caches downloads (``models/``, ``datasets/``): ``$KERAS_HOME``, else
    ``~/.keras`` (``/tmp/.keras`` when the home folder is read-only), as Keras itself decides."""
    try:
        from keras.src.backend.config import keras_home as home  # noqa: PLC0415

        return Path(home()).expanduser()
    except ImportError:  # a Keras without this private helper
        return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()


DATA_DIR_TOKEN = "$SUITE_DATA_DIR"  # stands for the data folder in stored paths
_ABSOLUTE_PATH = re.compile(r"(?<![\w$.])/[^\s:,;()\[\]]+")  # a POSIX absolute path in a text


def portable_paths(text: str) -> str:
    """``text`` without absolute paths of this machine, for files that travel (records).

    A path in the data folder (:func:`data_dir`) becomes ``$SUITE_DATA_DIR/<relative path>``;
    any other absolute path keeps only its last component (a folder's name), e.g.
    ``image folder /home/me/cifar10`` becomes ``image folder cifar10``.
    """
    base = str(data_dir())

    def portable(match: re.Match) -> str:
        path = match.group(0)
        if path == base or path.startswith(base.rstrip("/") + "/"):
            return DATA_DIR_TOKEN + path[len(base.rstrip("/")) :]
        return Path(path).name or path

    return _ABSOLUTE_PATH.sub(portable, text)


def shown_data_dir() -> str:
    """The data folder as outputs show it: ``$SUITE_DATA_DIR`` where that is set, else ``data/``
    in the project (outputs are committed, so they name no folder of one machine)."""
    return DATA_DIR_TOKEN if os.environ.get("SUITE_DATA_DIR") else "data/ (in the project)"


@dataclass
class Session:
    """What the helpers need to know about the running notebook."""

    notebook: str
    profile: Profile
    seed: int = 0
    force_retrain: bool = False

    @property
    def root(self) -> Path:
        return project_root()

    @property
    def figures_dir(self) -> Path:
        """``figures/<notebook>``; smoke runs (CI) write to the git-ignored ``figures/smoke/``."""
        if self.profile.name == "smoke":
            return self.root / "figures" / "smoke" / self.notebook
        return self.root / "figures" / self.notebook

    @property
    def results_dir(self) -> Path:
        return self.root / "results" / self.profile.name / self.notebook

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs" / self.profile.name / self.notebook

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints" / self.profile.name / self.notebook


def current() -> Session:
    """The session set by the last ``setup()`` call, or a default one for scripts and tests."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = Session(notebook="scratch", profile=get_profile())
    return _CURRENT


def setup(
    notebook: str,
    profile: str | Profile | None = None,
    seed: int = 0,
    force_retrain: bool = False,
    verbose: bool = True,
) -> Session:
    """Start a notebook: choose the profile, fix the seed, quiet TensorFlow, print the environment.

    Args:
        notebook: the notebook's name, e.g. ``"03_mlp_hyperparameters"``; names the folders
            under ``figures/``, ``results/<profile>/`` and ``logs/``.
        profile: ``"smoke"``, ``"quick"``, ``"full"``, or ``None`` for ``$SUITE_PROFILE``.
        seed: passed to ``keras.utils.set_random_seed`` (Python, NumPy and backend RNGs).
        force_retrain: train again even where an experiment record with the same config exists.
        verbose: print backend, versions, devices, profile and data folder.

    Returns:
        The new current :class:`Session`.
    """
    global _CURRENT
    prof = get_profile(profile)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415  (after KERAS_BACKEND is set)

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no retracing warnings in outputs

    keras.utils.set_random_seed(seed)
    _CURRENT = Session(notebook=notebook, profile=prof, seed=seed, force_retrain=force_retrain)
    if verbose:
        print(environment_summary())
    return _CURRENT


@contextmanager
def seeded(seed: int | None = None) -> Iterator[Session]:
    """Within the block the current session's seed is ``seed`` (``None``: the session's own) and
    the Python, NumPy and backend RNGs start from it, so a run built and trained inside depends
    on its seed only, not on the runs before it. The session's seed is restored after the block.
    """
    global _CURRENT
    outer = current()
    seed = outer.seed if seed is None else int(seed)
    import keras  # noqa: PLC0415

    keras.utils.set_random_seed(seed)
    _CURRENT = replace(outer, seed=seed)
    try:
        yield _CURRENT
    finally:
        _CURRENT = outer


def devices() -> list[str]:
    """The backend's devices, e.g. ``['cpu:0']`` or ``['cpu:0', 'gpu:0']``."""
    import keras  # noqa: PLC0415

    try:
        return [str(d).lower() for d in keras.distribution.list_devices()]
    except Exception:  # a backend without distribution support
        return ["cpu:0"]


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape the results."""
    import importlib.metadata as md  # noqa: PLC0415

    versions = {"python": platform.python_version()}
    for dist in ("keras", "tensorflow", "jax", "torch", "numpy", "scikit-learn"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return versions


def environment_summary() -> str:
    """A few lines describing backend, devices, versions, profile and data folder."""
    import keras  # noqa: PLC0415

    sess = current()
    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    return "\n".join(
        [
            f"notebook: {sess.notebook}   profile: {sess.profile.name}   seed: {sess.seed}",
            f"keras backend: {keras.backend.backend()}   devices: {', '.join(devices())}",
            f"versions: {versions}",
            f"platform: {platform.platform()} ({os.cpu_count()} CPUs)",
            f"data folder: {shown_data_dir()}",
        ]
    )
