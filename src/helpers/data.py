"""Datasets: image folders, ``keras.datasets``, bundled stand-ins; stratified subsets and splits.

Every loader returns a :class:`Dataset` of uint8 images ``(N, H, W, 3)`` (or float features for
tabular data) with integer labels ``(N,)`` and the sorted class names. Sources are tried in this order: a
local image folder under ``$SUITE_DATA_DIR``, the library's own loader (which downloads when
online), and only then a stand-in that ships inside a dependency, announced in plain words in the
output.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path

import numpy as np

from .files import atomic_path
from .session import data_dir, portable_paths, project_root

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


class DataError(ValueError):
    """A dataset could not be read; the message names the file or folder and what to do."""


class DatasetUnavailable(DataError):
    """No source of a named dataset works here (no local copy, no download); says where to put it."""


@dataclass
class Dataset:
    """Train and test arrays with their class names and where they came from.

    Attributes:
        x_train, x_test: images ``(N, H, W, C)`` uint8 (or features ``(N, D)``).
        y_train, y_test: integer labels ``(N,)`` in ``[0, len(class_names))``.
        class_names: one name per label, sorted as the folders were.
        source: where the data came from here (a folder, a library loader): provenance,
            never part of an experiment record's key.
        stand_in: True when the data is a bundled stand-in and not the named dataset.
        notes: lines printed by :meth:`describe`.
        name: the dataset's name (``"cifar10"``, ``"digits"``, a folder's name): what a record's
            key says the data is, whichever copy it was read from.
        steps: how this dataset was derived from the named one, in order (subsets with their
            sizes and seeds, class selections, splits, resizes); part of a record's key.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    stand_in: bool = False
    notes: list[str] = field(default_factory=list)
    name: str = ""
    steps: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def origin(self) -> str:
        """:attr:`source` as outputs show it: a path in the data folder relative to it
        (``image folder $SUITE_DATA_DIR/cifar10``), never a folder of one machine."""
        return portable_paths(self.source)

    def subset(
        self, train_per_class: int | None, test_per_class: int | None = None, seed: int = 0
    ) -> Dataset:
        """A stratified subset with at most this many images per class in each split."""
        if train_per_class is None and test_per_class is None:
            return self
        xtr, ytr = stratified_subset(self.x_train, self.y_train, train_per_class, seed)
        xte, yte = stratified_subset(self.x_test, self.y_test, test_per_class, seed)
        step = f"subset train {train_per_class}/class test {test_per_class}/class seed {seed}"
        return replace(
            self, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, steps=(*self.steps, step)
        )

    def for_profile(self, profile, seed: int = 0) -> Dataset:
        """The subset that a :class:`~helpers.profiles.Profile` asks for."""
        return self.subset(profile.train_per_class, profile.test_per_class, seed)

    def select_classes(self, names: Sequence[str]) -> Dataset:
        """Keep only the classes ``names`` (in that order) and relabel them ``0..len(names)-1``."""
        unknown = [n for n in names if n not in self.class_names]
        if unknown:
            raise DataError(
                f"Unknown class name(s) {unknown}; this dataset has {self.class_names}."
            )
        old = [self.class_names.index(n) for n in names]
        remap = np.full(self.num_classes, -1, dtype=np.int64)
        remap[old] = np.arange(len(old))

        def pick(x, y):
            keep = np.isin(y, old)
            return x[keep], remap[y[keep]]

        xtr, ytr = pick(self.x_train, self.y_train)
        xte, yte = pick(self.x_test, self.y_test)
        return replace(
            self,
            x_train=xtr,
            y_train=ytr,
            x_test=xte,
            y_test=yte,
            class_names=list(names),
            steps=(*self.steps, "classes " + ",".join(names)),
        )

    def key(self) -> dict:
        """What identifies this data in an experiment record's key: name, derivation steps,
        classes, split sizes and sample shape. No path, source or content hash."""
        return {
            "dataset": self.name or "unnamed",
            "steps": list(self.steps),
            "classes": list(self.class_names),
            "train": len(self.x_train),
            "test": len(self.x_test),
            "shape": list(self.x_train.shape[1:]),
        }

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of the four arrays, computed once per dataset object (they are not
        changed in place; every derived dataset is a new object)."""
        return fingerprint_arrays(self.x_train, self.y_train, self.x_test, self.y_test)

    def provenance(self) -> dict:
        """Where this copy came from (a path in the data folder relative to it, no absolute
        path: :func:`helpers.session.portable_paths`) and a content hash of its arrays (stored
        in a record, not keyed)."""
        return {
            "data_source": portable_paths(self.source),
            "stand_in": self.stand_in,
            "fingerprint": self.fingerprint,
        }

    def describe(self) -> str:
        """Shapes, dtype, class count and source in a few lines."""
        lines = [
            f"source: {self.origin}",
            f"train: x {self.x_train.shape} {self.x_train.dtype}, y {self.y_train.shape}",
            f"test:  x {self.x_test.shape} {self.x_test.dtype}, y {self.y_test.shape}",
            f"classes ({self.num_classes}): {', '.join(self.class_names)}",
        ]
        return "\n".join(lines + self.notes)


# --------------------------------------------------------------------------- image folders


def _list_images(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """Files and labels of a ``<class>/<image>`` folder; raises on empty classes or stray files."""
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(
            f"{folder} has no class sub-folders; expected <class>/<image> files, "
            "e.g. cifar10/train/cat/0001.jpg."
        )
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(
            (p for p in (folder / name).iterdir() if not p.name.startswith(".")),
            key=lambda p: p.name,  # same order as sorting the paths, several times faster
        )
        if not found:
            raise DataError(f"Class folder {folder / name} is empty; add images or remove it.")
        for p in found:
            if p.is_dir():
                raise DataError(
                    f"{p} is a folder inside a class folder; expected image files only."
                )
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                raise DataError(
                    f"{p} is not an image file (extension {p.suffix!r}); "
                    f"remove it or convert it to one of {sorted(IMAGE_EXTENSIONS)}."
                )
        files += found
        labels += [label] * len(found)
    return files, labels, classes


def _decode(path: Path, image_size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")  # grayscale, palette and RGBA become RGB
            if image_size is not None and img.size != (image_size[1], image_size[0]):
                img = img.resize((image_size[1], image_size[0]), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(
            f"Cannot decode image {path}: {err}. Replace or delete the file and load again."
        ) from err


def _fingerprint(files: list[Path], image_size) -> str:
    h = hashlib.sha1(repr(image_size).encode())
    for p in files:
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _cache_dir() -> Path:
    env = os.environ.get("SUITE_CACHE_DIR")
    return Path(env) if env else project_root() / "data" / ".cache"


def _read_cache(cache_file: Path, n_files: int, classes: list[str]):
    """``(x, y, classes)`` from a decoded-image cache, or ``None`` (saying so) where the file is
    damaged or does not match the folder's ``n_files`` images and ``classes``."""
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            x, y, cached = z["x"], z["y"], [str(c) for c in z["classes"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        problem = f"{type(err).__name__}: {err}"
    else:
        if len(x) == len(y) == n_files and cached == classes:
            return x, y, cached
        problem = f"{len(x)} images and classes {cached}, not {n_files} and {classes}"
    print(
        f"NOTE: decoded-image cache {cache_file} is damaged ({problem}); decoding the images again."
    )
    return None


def _read_class_folder(folder: Path, image_size, cache: bool):
    files, labels, classes = _list_images(folder)
    key = _fingerprint(files, image_size)
    # one cache per folder and image size: <folder>-<path hash>-<size>-<content key>.npz
    size_tag = "native" if image_size is None else f"{image_size[0]}x{image_size[1]}"
    where = hashlib.sha1(str(folder).encode()).hexdigest()[:8]
    cache_file = _cache_dir() / f"{folder.name}-{where}-{size_tag}-{key}.npz"
    if cache and cache_file.is_file():
        found = _read_cache(cache_file, len(files), classes)
        if found is not None:
            return found
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        images = list(pool.map(lambda p: _decode(p, image_size), files))
    first = images[0].shape
    for p, img in zip(files, images, strict=True):
        if img.shape != first:
            raise DataError(
                f"Images differ in size: {files[0]} is {first[1]}x{first[0]} but {p} is "
                f"{img.shape[1]}x{img.shape[0]}; pass image_size=(height, width) to resize them."
            )
    x = np.stack(images)
    y = np.asarray(labels, dtype=np.int64)
    if cache:
        # drop stale caches of the same folder, then write the new one atomically
        for old in cache_file.parent.glob(cache_file.name.rsplit("-", 1)[0] + "-*.npz"):
            old.unlink(missing_ok=True)
        with atomic_path(cache_file) as tmp:
            np.savez(tmp, x=x, y=y, classes=np.asarray(classes))
    return x, y, classes


def load_image_folder(
    path: str | os.PathLike, image_size: int | tuple[int, int] | None = None, cache: bool = True
) -> Dataset:
    """Read an image-folder dataset into uint8 arrays.

    Layouts: ``path/train/<class>/*`` and ``path/test/<class>/*`` (both splits), or a single
    ``path/<class>/*`` level (then everything is in the train split and the test split is empty;
    use :func:`train_test_split_dataset` to split it).

    Args:
        path: the dataset folder.
        image_size: resize every image to ``(height, width)`` (an int means square); ``None``
            keeps the files' own size, which must then be the same for all images.
        cache: keep the decoded arrays in ``data/.cache`` (``$SUITE_CACHE_DIR``), keyed by the
            files' names, sizes and modification times, so an unchanged folder loads from disk and
            a changed one is decoded again.

    Returns:
        A :class:`Dataset` with images ``(N, H, W, 3)`` uint8, labels int64 and sorted class names.

    Raises:
        DataError: missing path, empty class folder, a non-image or undecodable file, images of
            different sizes without ``image_size``, or train/test class folders that differ.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(
            f"Dataset folder {root} does not exist. Put the images there as "
            "train/<class>/*.jpg and test/<class>/*.jpg, or set SUITE_DATA_DIR to the folder "
            "that holds it."
        )
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    if (root / "train").is_dir():
        xtr, ytr, classes = _read_class_folder(root / "train", size, cache)
        if (root / "test").is_dir():
            xte, yte, test_classes = _read_class_folder(root / "test", size, cache)
            if test_classes != classes:
                raise DataError(
                    f"{root / 'test'} has classes {test_classes} but {root / 'train'} has {classes};"
                    " both splits need the same class folders."
                )
        else:
            xte, yte = xtr[:0], ytr[:0]
    else:
        xtr, ytr, classes = _read_class_folder(root, size, cache)
        xte, yte = xtr[:0], ytr[:0]
    return Dataset(xtr, ytr, xte, yte, classes, source=f"image folder {root}", name=root.name)


# --------------------------------------------------------------------------- named datasets


def _announce(message: str) -> None:
    print(f"NOTE: {portable_paths(message)}")


def _digits_as_images(size: int, rgb: bool) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0-16) as uint8 images."""
    from PIL import Image  # noqa: PLC0415
    from sklearn.datasets import load_digits  # noqa: PLC0415

    d = load_digits()
    imgs = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
    if size != 8:
        imgs = np.stack(
            [np.asarray(Image.fromarray(i).resize((size, size), Image.BILINEAR)) for i in imgs]
        )
    if rgb:
        imgs = np.repeat(imgs[..., None], 3, axis=-1)
    return imgs, d.target.astype(np.int64)


def _split_arrays(x, y, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    return train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=seed)


def _first_source(
    folder: Path,
    read_folder: Callable[[Path], Dataset],
    library: Callable[[], Dataset],
    unavailable: Callable[[str], str],
    stand_in: Callable[[str], tuple[Dataset, str]] | None = None,
) -> Dataset:
    """The one source policy of the named datasets: local folder, library loader, stand-in.

    ``read_folder(folder)`` where the local ``folder`` exists; else ``library()``, the library's
    own loader (which downloads when online); else, where a stand-in is allowed, the dataset of
    ``stand_in(reason)`` with its message announced in the output. ``reason`` says why the
    library's loader failed.

    Raises:
        DatasetUnavailable: no source works and no stand-in is allowed (``stand_in`` is None);
            its message is ``unavailable(reason)``, which says where to put the data.
    """
    if folder.is_dir():
        return read_folder(folder)
    try:
        return library()
    except Exception as err:  # not installed, offline, or a broken download
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:200]
        if stand_in is None:
            raise DatasetUnavailable(unavailable(reason)) from err
    ds, message = stand_in(reason)
    _announce(message)
    return ds


def load_cifar10(profile=None, seed: int = 0) -> Dataset:
    """CIFAR-10: 50,000 train and 10,000 test images of 32x32x3, ten classes.

    Sources, in order: the image folder ``$SUITE_DATA_DIR/cifar10``; ``keras.datasets.cifar10``
    (downloads to ``~/.keras/datasets`` when online); and only in the smoke profile a stand-in,
    scikit-learn's bundled digits upscaled to 32x32 RGB, announced in the output.

    Args:
        profile: a profile name or :class:`~helpers.profiles.Profile`; ``None`` uses the current
            session's. Only decides whether the stand-in is allowed; subsets are taken with
            :meth:`Dataset.for_profile`.
        seed: seed of the stand-in's train/test split.

    Raises:
        DataError: when no source works outside the smoke profile; says where to put the data.
    """
    folder = data_dir() / "cifar10"
    return _first_source(
        folder,
        lambda f: replace(load_image_folder(f), name="cifar10"),
        partial(_keras_dataset, "cifar10", CIFAR10_CLASSES),
        lambda reason: (
            f"CIFAR-10 not found: no image folder at {folder} and keras.datasets.cifar10 failed "
            f"({reason}). Put the dataset at {folder} as train/<class>/*.jpg and test/<class>/*.jpg "
            "(or set SUITE_DATA_DIR), or run once with network access so Keras can download it."
        ),
        partial(_cifar10_stand_in, folder, seed) if _profile(profile).name == "smoke" else None,
    )


def _profile(profile):
    """The profile ``profile`` names, or the current session's where it is ``None``."""
    from .profiles import get_profile  # noqa: PLC0415
    from .session import current  # noqa: PLC0415

    return current().profile if profile is None else get_profile(profile)


def _keras_dataset(name: str, class_names: Sequence[str]) -> Dataset:
    """``keras.datasets.<name>`` (downloaded to ``~/.keras/datasets`` when online)."""
    import keras  # noqa: PLC0415

    (xtr, ytr), (xte, yte) = getattr(keras.datasets, name).load_data()
    return Dataset(
        xtr,
        ytr.reshape(-1).astype(np.int64),
        xte,
        yte.reshape(-1).astype(np.int64),
        list(class_names),
        source=f"keras.datasets.{name}",
        name=name,
    )


def _cifar10_stand_in(folder: Path, seed: int, reason: str) -> tuple[Dataset, str]:
    """scikit-learn's digits as 32x32 RGB in place of CIFAR-10, and the message announcing it."""
    x, y = _digits_as_images(32, rgb=True)
    xtr, xte, ytr, yte = _split_arrays(x, y, 1 / 6, seed)
    ds = Dataset(
        xtr,
        ytr,
        xte,
        yte,
        [f"digit {i}" for i in range(10)],
        source="stand-in: scikit-learn digits as 32x32 RGB",
        stand_in=True,
        name="digits-32x32-rgb (stand-in for cifar10)",
        steps=(f"split test 1/6 seed {seed}",),
    )
    return ds, (
        f"CIFAR-10 is not available here (no folder {folder}; keras.datasets failed: {reason}). "
        "The smoke profile uses a STAND-IN: scikit-learn's bundled 8x8 digits upscaled to 32x32 RGB. "
        "Its numbers say nothing about CIFAR-10."
    )


def load_mnist() -> Dataset:
    """MNIST: 60,000 + 10,000 handwritten digits, 28x28 grayscale uint8 ``(N, 28, 28)``.

    Sources, in order: the image folder ``$SUITE_DATA_DIR/mnist``; ``keras.datasets.mnist``
    (downloads to ``~/.keras/datasets`` when online). There is no stand-in: where neither works,
    use :func:`load_digits_dataset`, the bundled default of notebook 02.

    Raises:
        DatasetUnavailable: no local copy and no download; says where to put the images.
    """
    folder = data_dir() / "mnist"
    return _first_source(
        folder,
        _read_mnist_folder,
        partial(_keras_dataset, "mnist", [str(i) for i in range(10)]),
        lambda reason: (
            f"MNIST not found: no image folder at {folder} and keras.datasets.mnist failed "
            f"({reason}). Put it at {folder} as train/<digit>/*.png and test/<digit>/*.png, run "
            "once with network access, or use the bundled digits (DATASET = 'digits')."
        ),
    )


def _read_mnist_folder(folder: Path) -> Dataset:
    ds = load_image_folder(folder)
    return replace(ds, x_train=ds.x_train[..., 0], x_test=ds.x_test[..., 0], name="mnist")


def load_digits_dataset(seed: int = 0, test_fraction: float = 0.3) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images) as uint8 ``(N, 8, 8)``, split stratified
    ``1 - test_fraction`` / ``test_fraction`` with ``seed``. Ships with scikit-learn: no download."""
    x, y = _digits_as_images(8, rgb=False)
    xtr, xte, ytr, yte = _split_arrays(x, y, test_fraction, seed)
    return Dataset(
        xtr,
        ytr,
        xte,
        yte,
        [str(i) for i in range(10)],
        source="scikit-learn bundled digits (sklearn.datasets.load_digits)",
        name="digits",
        steps=(f"split test {test_fraction} seed {seed}",),
    )


def _resize_images(x: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize uint8 images ``(N, H, W, 3)`` to ``size`` (bilinear, PIL); unchanged if equal."""
    from PIL import Image  # noqa: PLC0415

    h, w = (size, size) if isinstance(size, int) else size
    if x.shape[1:3] == (h, w):
        return x
    return np.stack([np.asarray(Image.fromarray(i).resize((w, h), Image.BILINEAR)) for i in x])


def load_flowers102(
    path: str | os.PathLike | None = None,
    image_size: int | tuple[int, int] = 224,
    profile=None,
    seed: int = 0,
    test_fraction: float = 0.25,
    stand_in_per_class: int | None = None,
) -> Dataset:
    """Oxford Flowers 102 (8,189 photos of 102 flower species) as uint8 images resized to ``image_size``.

    Sources, in order:

    1. the image folder ``path`` (default ``$SUITE_DATA_DIR/flowers102``), read with
       :func:`load_image_folder`: ``train/<class>/*`` and ``test/<class>/*``, or a single
       ``<class>/*`` level, which is then split stratified ``1 - test_fraction`` / ``test_fraction``;
    2. ``tensorflow_datasets`` ``oxford_flowers102`` (downloads when online; imported only here):
       its train and validation splits (1,020 + 1,020) as the training split, its test split
       (6,149) as the test split;
    3. a STAND-IN, CIFAR-10 (:func:`load_cifar10`, 10 classes) resized to ``image_size``,
       announced in the output (it says nothing about flowers): in any profile when
       ``stand_in_per_class`` is given (that many training images per class, e.g. 20 like the
       flowers' train + validation splits; the profile's test images per class), else only in
       the smoke profile (the profile's images per class).

    Raises:
        DataError: a ``path`` that does not exist, or no source outside the smoke profile (the
            message says where to put the images and how to install tensorflow-datasets).
    """
    prof = _profile(profile)
    if path is not None and not Path(path).is_dir():
        raise DataError(
            f"Flowers folder {path} does not exist. Give the folder that holds "
            "train/<class>/*.jpg and test/<class>/*.jpg (or <class>/*.jpg), or None to use "
            "$SUITE_DATA_DIR/flowers102 or tensorflow-datasets."
        )
    folder = Path(path) if path is not None else data_dir() / "flowers102"
    allowed = prof.name == "smoke" or stand_in_per_class is not None
    return _first_source(
        folder,
        partial(
            _read_flowers_folder, image_size=image_size, test_fraction=test_fraction, seed=seed
        ),
        partial(_tfds_flowers102, image_size),
        lambda reason: (
            f"Oxford Flowers 102 not found: no image folder at {folder} and tensorflow-datasets "
            f"failed ({reason}). Put the images at {folder} as train/<class>/*.jpg and "
            "test/<class>/*.jpg (or pass the folder), or `pip install tensorflow-datasets` and "
            "run once with network access."
        ),
        partial(_flowers_stand_in, folder, image_size, prof, seed, stand_in_per_class)
        if allowed
        else None,
    )


def _read_flowers_folder(folder: Path, image_size, test_fraction: float, seed: int) -> Dataset:
    """The flowers' image folder; a single ``<class>/*`` level is split stratified."""
    ds = replace(load_image_folder(folder, image_size=image_size), name="flowers102")
    if len(ds.x_test) == 0:
        ds = train_test_split_dataset(ds, test_fraction, seed)
        ds.notes.append(f"split stratified {1 - test_fraction:.0%} / {test_fraction:.0%}")
    return ds


def _tfds_flowers102(image_size) -> Dataset:
    """``tensorflow_datasets``' oxford_flowers102: train + validation for training, test."""
    import tensorflow_datasets as tfds  # noqa: PLC0415

    splits, info = tfds.load(
        "oxford_flowers102",
        split=["train", "validation", "test"],
        as_supervised=True,
        with_info=True,
    )
    arrays = []
    for split in splits:
        pairs = list(tfds.as_numpy(split))
        x = np.stack([_resize_images(img[None], image_size)[0] for img, _ in pairs])
        arrays.append((x, np.asarray([lab for _, lab in pairs], dtype=np.int64)))
    (x1, y1), (x2, y2), (xte, yte) = arrays
    return Dataset(
        np.concatenate([x1, x2]),
        np.concatenate([y1, y2]),
        xte,
        yte,
        list(info.features["label"].names),
        source="tensorflow_datasets oxford_flowers102 (train+validation / test)",
        name="flowers102",
    )


def _flowers_stand_in(
    folder: Path, image_size, prof, seed: int, per_class: int | None, reason: str
) -> tuple[Dataset, str]:
    """CIFAR-10 resized to ``image_size`` in place of the flowers, and the message announcing it."""
    cifar = load_cifar10(profile=prof, seed=seed).for_profile(prof, seed)
    if per_class is not None:
        cifar = cifar.subset(per_class, prof.test_per_class, seed=seed)
    message = (
        f"Oxford Flowers 102 is not available here (no folder {folder}; tensorflow-datasets: "
        f"{reason}). Used instead: a STAND-IN, CIFAR-10 ({cifar.source}, "
        f"{cifar.num_classes} classes, {len(cifar.x_train) // cifar.num_classes} training "
        f"images per class) resized to {image_size} px. Its numbers say nothing about flowers."
    )
    ds = replace(
        cifar,
        x_train=_resize_images(cifar.x_train, image_size),
        x_test=_resize_images(cifar.x_test, image_size),
        source=f"stand-in for Oxford Flowers 102: {cifar.source}",
        stand_in=True,
        name=f"{cifar.name} (stand-in for flowers102)",
    )
    return ds, message


# --------------------------------------------------------------------------- subsets and splits


def stratified_subset(x: np.ndarray, y: np.ndarray, per_class: int | None, seed: int = 0):
    """At most ``per_class`` samples of every class, drawn with ``seed``, in a shuffled order.

    ``per_class=None`` returns the arrays unchanged. Raises if a class has no samples at all.
    """
    if per_class is None or len(y) == 0:
        return x, y
    if per_class < 1:
        raise DataError(f"per_class must be at least 1, got {per_class}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.append(rng.choice(idx, size=min(per_class, idx.size), replace=False))
    order = rng.permutation(np.concatenate(keep))
    return x[order], y[order]


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0):
    """Stratified train/validation split: returns ``(x_train, y_train), (x_val, y_val)``."""
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be between 0 and 1, got {fraction}")
    xtr, xva, ytr, yva = _split_arrays(x, y, fraction, seed)
    return (xtr, ytr), (xva, yva)


def train_test_split_dataset(ds: Dataset, test_fraction: float, seed: int = 0) -> Dataset:
    """Split a dataset that came without a test split (single-level folder) stratified by class."""
    x = np.concatenate([ds.x_train, ds.x_test]) if len(ds.x_test) else ds.x_train
    y = np.concatenate([ds.y_train, ds.y_test]) if len(ds.y_test) else ds.y_train
    xtr, xte, ytr, yte = _split_arrays(x, y, test_fraction, seed)
    step = f"split test {test_fraction} seed {seed}"
    return replace(ds, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, steps=(*ds.steps, step))


def check_arrays(x: np.ndarray, y: np.ndarray, num_classes: int, name: str = "data") -> None:
    """Raise :class:`DataError` when ``x``/``y`` do not fit a classifier of ``num_classes``."""
    if len(x) != len(y):
        raise DataError(f"{name}: {len(x)} inputs but {len(y)} labels; they must match.")
    if len(x) == 0:
        raise DataError(f"{name}: no samples.")
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"{name}: labels must be a 1-D integer array, got shape {y.shape} dtype {y.dtype}; "
            "pass class indices, not one-hot rows (the helpers one-hot encode where a loss needs it)."
        )
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.size:
        raise DataError(
            f"{name}: label {int(bad[0])} is outside the class range 0..{num_classes - 1}; "
            "check the class list or the labels."
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{name}: inputs have dtype {x.dtype}; expected numbers (uint8 or float).")
    count, rows, first = nonfinite(x)
    if count:
        raise DataError(
            f"{name}: {count} NaN/inf input value(s) in {rows} sample(s), the first in sample "
            f"{first}; drop those samples or replace the values (e.g. np.nan_to_num) before "
            "training."
        )


def nonfinite(x: np.ndarray, block: int = 4096) -> tuple[int, int, int | None]:
    """NaN and infinite values in inputs ``x`` ``(N, ...)``: ``(values, samples, first sample
    index)``; ``(0, 0, None)`` for integer inputs. Reads ``block`` samples at a time."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.inexact) or x.size == 0:
        return 0, 0, None
    flat = x.reshape(len(x), -1)
    count = rows = 0
    first = None
    for start in range(0, len(flat), block):
        bad = ~np.isfinite(flat[start : start + block])
        per_row = bad.sum(axis=1)
        if first is None and per_row.any():
            first = start + int(np.flatnonzero(per_row)[0])
        count += int(per_row.sum())
        rows += int(np.count_nonzero(per_row))
    return count, rows, first


def class_counts(ds: Dataset) -> dict[str, dict[str, int]]:
    """Images per class per split: ``{"train": {"cat": 5000, ...}, "test": {...}}``."""
    out = {}
    for split, y in (("train", ds.y_train), ("test", ds.y_test)):
        counts = (
            np.bincount(y, minlength=ds.num_classes) if len(y) else np.zeros(ds.num_classes, int)
        )
        out[split] = {n: int(c) for n, c in zip(ds.class_names, counts, strict=True)}
    return out


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """A short content hash of arrays (shape, dtype and bytes), for experiment-record keys."""
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(json.dumps([list(a.shape), str(a.dtype)]).encode())
        h.update(a.data)
    return h.hexdigest()
