"""Fixtures of the helpers' unit tests.

Every test runs with its own suite root (``results/``, ``figures/``, ``logs/``, ``checkpoints/``)
and decoded-image cache under ``tmp_path``, in the smoke profile, with no current session, so no
test writes into the repository or sees another test's records. The real CIFAR-10 image folder is
found through ``$SUITE_DATA_DIR`` only; tests that need it are skipped, with the reason, where
that variable is unset or does not hold it. Unit tests read small copies of it (a few dozen
images per class); only tests marked ``slow`` decode all 60,000 images, and no test asserts a
timing (``benchmarks/data_load.py`` measures the load times).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import session  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The folder holding ``cifar10/train`` and ``cifar10/test``, or None where there is none."""
    if not os.environ.get("SUITE_DATA_DIR"):
        return None
    folder = Path(os.environ["SUITE_DATA_DIR"])
    if (folder / "cifar10" / "train").is_dir() and (folder / "cifar10" / "test").is_dir():
        return folder.resolve()
    return None


SHARED_DATA = shared_data_dir()
NO_CIFAR = (
    "needs the CIFAR-10 image folder: SUITE_DATA_DIR is unset or does not hold "
    "cifar10/train and cifar10/test"
)


@pytest.fixture(scope="session")
def shared_data() -> Path | None:
    """The folder holding the real ``cifar10/`` image folder, or None where it is absent."""
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_cifar_dir() -> Path:
    """The folder holding the real ``cifar10/`` image folder; skips the test where it is absent."""
    if SHARED_DATA is None:
        pytest.skip(NO_CIFAR)
    return SHARED_DATA


@pytest.fixture(autouse=True)
def suite_root(tmp_path, monkeypatch) -> Path:
    """A fresh suite root and cache in ``tmp_path``, smoke profile, no current session.

    ``SUITE_DATA_DIR`` is left as it is (tests of other modules may read the real data); tests
    that need it absent ask for :func:`no_data`.
    """
    root = tmp_path / "suite"
    root.mkdir()
    monkeypatch.setenv("SUITE_ROOT", str(root))
    monkeypatch.setenv("SUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SUITE_PROFILE", "smoke")
    monkeypatch.setattr(session, "_CURRENT", None)
    yield root
    import matplotlib.pyplot as plt  # noqa: PLC0415

    plt.close("all")


@pytest.fixture
def no_data(tmp_path, monkeypatch) -> Path:
    """Point ``SUITE_DATA_DIR`` at an empty folder (no local dataset copies) and return it."""
    folder = tmp_path / "no-data"
    folder.mkdir()
    monkeypatch.setenv("SUITE_DATA_DIR", str(folder))
    return folder


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: reads the whole real CIFAR-10 folder (about 15 s on two cores); "
        'deselect with -m "not slow"',
    )


CIFAR_SMALL_TRAIN, CIFAR_SMALL_TEST = 45, 25  # images per class: enough for the smoke subset


def _copy_cifar(root: Path, n_train: int, n_test: int) -> Path:
    """``root/train/<class>/`` and ``root/test/<class>/`` with the first ``n_train`` / ``n_test``
    images of every class of the real CIFAR-10 folder, or, where it is absent, as many generated
    32x32 JPEGs (random pixels) in the ten CIFAR-10 class folders."""
    from helpers import data  # noqa: PLC0415

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for cls in data.CIFAR10_CLASSES:
            dst = root / split / cls
            dst.mkdir(parents=True)
            if SHARED_DATA is not None:
                for p in sorted((SHARED_DATA / "cifar10" / split / cls).iterdir())[:n]:
                    shutil.copyfile(p, dst / p.name)
                continue
            from PIL import Image  # noqa: PLC0415

            for i in range(n):
                arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(arr).save(dst / f"{i:04d}.jpg")
    return root


@pytest.fixture(scope="session")
def cifar_small_dir(tmp_path_factory) -> Path:
    """A data folder holding a small ``cifar10/`` image folder (45 train and 25 test images per
    class, copied from the real CIFAR-10, or generated where it is absent): point
    ``SUITE_DATA_DIR`` here and :func:`helpers.data.load_cifar10` reads it. Do not modify it."""
    root = tmp_path_factory.mktemp("data-small")
    _copy_cifar(root / "cifar10", CIFAR_SMALL_TRAIN, CIFAR_SMALL_TEST)
    return root


@pytest.fixture
def cifar_small(cifar_small_dir, monkeypatch) -> Path:
    """``SUITE_DATA_DIR`` set to :func:`cifar_small_dir` (with this test's own empty cache)."""
    monkeypatch.setenv("SUITE_DATA_DIR", str(cifar_small_dir))
    return cifar_small_dir


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """A small 10-class image dataset, 20 train and 10 test images per class, 32x32x3 uint8.

    A stratified subset of the real CIFAR-10 where the folder exists (read through
    ``load_image_folder`` from a copy of 30 images per class, so it costs no full decode);
    elsewhere the smoke stand-in (scikit-learn digits as 32x32 RGB), so training tests still run.
    """
    from helpers import data  # noqa: PLC0415

    if SHARED_DATA is not None:
        root = _copy_cifar(tmp_path_factory.mktemp("cifar-small"), 20, 10)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SUITE_CACHE_DIR", str(tmp_path_factory.mktemp("small-cache")))
            return data.load_image_folder(root)
    x, y = data._digits_as_images(32, rgb=True)
    xtr, xte, ytr, yte = data._split_arrays(x, y, 0.3, 0)
    full = data.Dataset(xtr, ytr, xte, yte, [f"digit {i}" for i in range(10)], "stand-in digits")
    return full.subset(20, 10)


@pytest.fixture
def smoke_session():
    """``helpers.setup`` in the smoke profile for a test notebook called ``unit``."""
    import helpers  # noqa: PLC0415

    return helpers.setup("unit", profile="smoke", seed=0, verbose=False)


@pytest.fixture
def make_image():
    """The :func:`write_image` function, for tests that build image folders."""
    return write_image


def write_image(path: Path, mode: str = "RGB", size=(8, 6), value: int = 100) -> Path:
    """Write a small image file (PIL infers the format from the suffix); ``size`` is (W, H)."""
    from PIL import Image  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    w, h = size
    if mode == "RGB":
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        img = Image.fromarray(arr, "RGB")
    elif mode == "L":
        img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
    elif mode == "RGBA":
        img = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA")
    elif mode == "P":
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert(
            "P", palette=Image.Palette.ADAPTIVE, colors=16
        )
    else:
        raise ValueError(mode)
    img.save(path)
    return path


@pytest.fixture
def benchmark_script(monkeypatch):
    """Load ``benchmarks/<name>.py`` as a module (they are scripts, not a package): call the
    returned function with the name. ``benchmarks/`` is put on ``sys.path`` for their imports
    of one another."""
    import importlib.util  # noqa: PLC0415

    folder = REPO / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
