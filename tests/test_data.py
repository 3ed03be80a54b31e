"""Data loading: image folders and their cache, CIFAR-10 / MNIST sources, subsets and checks."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace

import keras
import numpy as np
import pytest

from helpers import data
from helpers.data import DataError, Dataset, DatasetUnavailable


def _cache_files(cache_dir):
    return sorted(os.listdir(cache_dir)) if cache_dir.exists() else []


# --------------------------------------------------------------------------- image folders


def test_train_test_layout_sorted_classes(tmp_path, make_image):
    root = tmp_path / "ds"
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("zebra", "ant", "mole"):
            for i in range(n):
                make_image(root / split / cls / f"{i}.png", value=i)
    ds = data.load_image_folder(root)
    assert ds.class_names == ["ant", "mole", "zebra"]
    assert ds.x_train.shape == (9, 6, 8, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (6, 6, 8, 3)
    assert ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == [3, 3, 3]
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2]
    assert str(root) in ds.source


def test_labels_follow_the_folders(tmp_path, make_image):
    root = tmp_path / "ds"
    # class "a" is pure black, class "b" pure white: labels must match the pixels
    from PIL import Image  # noqa: PLC0415

    for cls, value in (("a", 0), ("b", 255)):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (4, 4), (value,) * 3).save(root / cls / f"{i}.png")
    ds = data.load_image_folder(root)
    for x, y in zip(ds.x_train, ds.y_train, strict=True):
        assert x.mean() == (0 if y == 0 else 255)


def test_single_class_level_goes_to_train(tmp_path, make_image):
    root = tmp_path / "flat"
    for cls in ("b", "a"):
        for i in range(4):
            make_image(root / cls / f"{i}.jpg", value=i)
    ds = data.load_image_folder(root)
    assert ds.class_names == ["a", "b"]
    assert ds.x_train.shape == (8, 6, 8, 3)
    assert ds.x_test.shape == (0, 6, 8, 3) and len(ds.y_test) == 0
    split = data.train_test_split_dataset(ds, 0.25, seed=0)
    assert len(split.x_train) == 6 and len(split.x_test) == 2
    assert sorted(split.y_test.tolist()) == [0, 1]  # stratified


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "RGB"])
def test_color_modes_become_rgb_uint8(tmp_path, make_image, mode):
    root = tmp_path / "ds"
    make_image(root / "c1" / "x.png", mode=mode, size=(5, 7))
    make_image(root / "c2" / "y.png", mode=mode, size=(5, 7), value=7)
    ds = data.load_image_folder(root)
    assert ds.x_train.shape == (2, 7, 5, 3)
    assert ds.x_train.dtype == np.uint8


def test_grayscale_pixels_are_copied_to_three_channels(tmp_path):
    from PIL import Image  # noqa: PLC0415

    root = tmp_path / "ds"
    (root / "c").mkdir(parents=True)
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, "L").save(root / "c" / "g.png")
    ds = data.load_image_folder(root)
    assert np.array_equal(ds.x_train[0], np.repeat(gray[..., None], 3, axis=-1))


def test_image_size_resizes(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "a" / "1.png", size=(10, 20))
    make_image(root / "a" / "2.png", size=(30, 12))
    make_image(root / "b" / "3.jpg", size=(8, 8))
    ds = data.load_image_folder(root, image_size=16)
    assert ds.x_train.shape == (3, 16, 16, 3)
    ds = data.load_image_folder(root, image_size=(12, 20))
    assert ds.x_train.shape == (3, 12, 20, 3)  # (height, width)


def test_different_sizes_without_image_size_name_the_files(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "a" / "1.png", size=(10, 10))
    make_image(root / "a" / "2.png", size=(12, 10))
    with pytest.raises(DataError) as err:
        data.load_image_folder(root)
    msg = str(err.value)
    assert "1.png" in msg and "2.png" in msg and "image_size" in msg


def test_corrupt_file_names_the_file(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "a" / "good.jpg")
    bad = root / "a" / "broken.jpg"
    bad.write_bytes(b"this is not a JPEG at all" * 10)
    with pytest.raises(DataError, match="broken.jpg") as err:
        data.load_image_folder(root)
    assert str(bad) in str(err.value)


def test_truncated_image_names_the_file(tmp_path, make_image):
    root = tmp_path / "ds"
    good = make_image(root / "a" / "good.png", size=(64, 64))
    cut = root / "a" / "cut.png"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match="cut.png"):
        data.load_image_folder(root)


def test_non_image_file_names_the_file(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "a" / "1.png")
    (root / "a" / "labels.txt").write_text("cat\n")
    with pytest.raises(DataError, match=r"labels\.txt.*not an image"):
        data.load_image_folder(root)


def test_hidden_files_are_ignored(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "a" / "1.png")
    (root / "a" / ".DS_Store").write_bytes(b"\0\0")
    (root / ".hidden_class").mkdir()
    assert data.load_image_folder(root).class_names == ["a"]


def test_empty_class_folder_names_the_folder(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "a" / "1.png")
    (root / "empty_one").mkdir()
    with pytest.raises(DataError, match="empty_one.*empty"):
        data.load_image_folder(root)


def test_folder_without_classes(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "loose.png")
    with pytest.raises(DataError, match="no class sub-folders"):
        data.load_image_folder(root)


def test_missing_path_names_it(tmp_path):
    missing = tmp_path / "nowhere" / "cifar10"
    with pytest.raises(DataError, match="does not exist") as err:
        data.load_image_folder(missing)
    assert str(missing) in str(err.value)


def test_train_and_test_classes_must_match(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "train" / "a" / "1.png")
    make_image(root / "train" / "b" / "1.png")
    make_image(root / "test" / "a" / "1.png")
    with pytest.raises(DataError, match="same class folders"):
        data.load_image_folder(root)


# --------------------------------------------------------------------------- the cache


def _no_decoding(path, image_size):
    raise AssertionError(f"decoded {path}: the cache should have been read")


def test_second_load_reads_the_cache_not_the_images(cifar_small, monkeypatch):
    """Real CIFAR-10 JPEGs (a small copy): the first load writes one cache file per split, the
    second returns the same arrays from it without decoding any image."""
    first = data.load_cifar10("smoke")
    cache = data._cache_dir()
    files = _cache_files(cache)
    assert len(files) == 2, files  # train and test
    assert all(f.endswith(".npz") and "tmp" not in f for f in files)
    assert all(f.startswith(("train-", "test-")) for f in files)

    monkeypatch.setattr(data, "_decode", _no_decoding)
    second = data.load_cifar10("smoke")
    for a, b in ((first.x_train, second.x_train), (first.y_train, second.y_train)):
        assert np.array_equal(a, b)
    assert np.array_equal(first.x_test, second.x_test)
    assert np.array_equal(first.y_test, second.y_test)
    assert first.class_names == second.class_names
    assert first.key() == second.key() and first.provenance() == second.provenance()
    assert _cache_files(cache) == files


def test_cache_hit_decodes_nothing_and_leaves_no_temp_files(tmp_path, make_image, monkeypatch):
    root = tmp_path / "ds"
    for i in range(4):
        make_image(root / "a" / f"{i}.png", value=i)
        make_image(root / "b" / f"{i}.png", value=10 + i)
    data.load_image_folder(root)
    cache = tmp_path / "cache"  # SUITE_CACHE_DIR of the fixture
    files = _cache_files(cache)
    assert len(files) == 1 and files[0].endswith(".npz") and ".tmp" not in files[0]

    calls = []
    real = data._decode
    monkeypatch.setattr(data, "_decode", lambda p, s: calls.append(p) or real(p, s))
    again = data.load_image_folder(root)
    assert calls == [] and len(again.x_train) == 8
    # cache=False always decodes and writes nothing
    data.load_image_folder(root, cache=False)
    assert len(calls) == 8
    assert _cache_files(cache) == files


def test_changed_folder_is_decoded_again(tmp_path, make_image, monkeypatch):
    root = tmp_path / "ds"
    for i in range(3):
        make_image(root / "a" / f"{i}.png", value=i)
    before = data.load_image_folder(root)
    cache = tmp_path / "cache"

    # a file added
    make_image(root / "a" / "3.png", value=3)
    added = data.load_image_folder(root)
    assert len(added.x_train) == 4

    # a file modified in place (same name, same size, new pixels and a new mtime)
    target = root / "a" / "0.png"
    make_image(target, value=99)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    modified = data.load_image_folder(root)
    assert not np.array_equal(modified.x_train[0], before.x_train[0])
    fresh = data.load_image_folder(root, cache=False)
    assert np.array_equal(modified.x_train, fresh.x_train)

    # a file removed
    (root / "a" / "3.png").unlink()
    assert len(data.load_image_folder(root).x_train) == 3

    # stale entries of this folder are replaced, not piled up; no temp files
    files = _cache_files(cache)
    assert len(files) == 1, files
    assert not [f for f in files if "tmp" in f]


def test_failed_load_writes_no_cache(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "a" / "1.png")
    (root / "a" / "2.png").write_bytes(b"garbage")
    with pytest.raises(DataError):
        data.load_image_folder(root)
    assert _cache_files(tmp_path / "cache") == []


@pytest.mark.parametrize(
    "damage",
    [b"", b"not a zip file", "truncated", "other arrays"],
    ids=["empty", "garbage", "truncated", "wrong-content"],
)
def test_damaged_cache_is_rebuilt_saying_so(tmp_path, make_image, capsys, damage):
    root = tmp_path / "ds"
    for i in range(4):
        make_image(root / "a" / f"{i}.png", value=i)
        make_image(root / "b" / f"{i}.png", value=10 + i)
    first = data.load_image_folder(root)
    cache = tmp_path / "cache"
    (name,) = _cache_files(cache)
    path = cache / name
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "other arrays":
        np.savez(path, x=first.x_train[:3], y=first.y_train[:3], classes=np.array(["a", "b"]))
    else:
        path.write_bytes(damage)
    capsys.readouterr()
    again = data.load_image_folder(root)
    out = capsys.readouterr().out
    assert f"decoded-image cache {path} is damaged" in out and "decoding the images again" in out
    assert np.array_equal(again.x_train, first.x_train) and again.class_names == ["a", "b"]
    assert _cache_files(cache) == [name]  # rewritten whole, no temp files
    capsys.readouterr()
    data.load_image_folder(root)
    assert "damaged" not in capsys.readouterr().out  # the rebuilt cache reads


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_name_split_count_and_first_sample(bad):
    x, y = _toy()
    x = x.astype(np.float32)
    x[7, 1] = bad
    x[9, 0] = x[9, 2] = bad
    with pytest.raises(DataError) as err:
        data.check_arrays(x, y, 3, name="fit training data")
    text = str(err.value)
    assert "fit training data" in text and "3 NaN/inf input value(s) in 2 sample(s)" in text
    assert "the first in sample 7" in text and "nan_to_num" in text
    assert data.nonfinite(x, block=4) == (3, 2, 7)  # found across blocks too
    assert data.nonfinite(x.astype(np.float64)[:7]) == (0, 0, None)
    assert data.nonfinite(np.zeros((2, 3), np.uint8)) == (0, 0, None)


# --------------------------------------------------------------------------- named datasets


def test_load_cifar10_reads_the_folder_under_suite_data_dir(cifar_small, monkeypatch):
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", _keras_must_not_be_called)
    ds = data.load_cifar10("quick")
    assert ds.x_train.shape == (450, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (250, 32, 32, 3)
    assert ds.class_names == data.CIFAR10_CLASSES
    assert np.bincount(ds.y_train).tolist() == [45] * 10
    assert np.bincount(ds.y_test).tolist() == [25] * 10
    assert ds.name == "cifar10" and not ds.stand_in and ds.steps == ()
    assert str(cifar_small / "cifar10") in ds.source
    counts = data.class_counts(ds)
    assert counts["train"]["cat"] == 45 and counts["test"]["truck"] == 25


def test_cifar_for_profile_is_a_stratified_subset(cifar_small):
    from helpers.profiles import PROFILES  # noqa: PLC0415

    ds = data.load_cifar10("smoke")
    sub = ds.for_profile(PROFILES["smoke"])
    assert np.bincount(sub.y_train).tolist() == [40] * 10
    assert np.bincount(sub.y_test).tolist() == [20] * 10
    assert sub.steps == ("subset train 40/class test 20/class seed 0",)
    full = ds.for_profile(PROFILES["full"])
    assert full is ds and full.key() == ds.key()  # no subset, no step


def test_real_cifar10_folder_has_5000_and_1000_images_per_class(real_cifar_dir):
    """The CIFAR-10 folder's layout and counts, from the file listing (nothing decoded)."""
    for split, n in (("train", 5000), ("test", 1000)):
        files, labels, classes = data._list_images(real_cifar_dir / "cifar10" / split)
        assert classes == data.CIFAR10_CLASSES
        assert np.bincount(labels).tolist() == [n] * 10
        assert all(p.suffix == ".jpg" for p in files)


@pytest.mark.slow
def test_load_cifar10_decodes_the_whole_real_folder(real_cifar_dir, monkeypatch):
    """All 60,000 real images through load_cifar10 (about 15 s on two cores, cache included)."""
    monkeypatch.setenv("SUITE_DATA_DIR", str(real_cifar_dir))
    ds = data.load_cifar10("full")
    assert ds.x_train.shape == (50_000, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10_000, 32, 32, 3)
    assert np.bincount(ds.y_train).tolist() == [5000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.class_names == data.CIFAR10_CLASSES
    assert ds.name == "cifar10" and not ds.stand_in
    assert ds.key() == {
        "dataset": "cifar10",
        "steps": [],
        "classes": data.CIFAR10_CLASSES,
        "train": 50_000,
        "test": 10_000,
        "shape": [32, 32, 3],
    }
    assert len(_cache_files(data._cache_dir())) == 2  # train and test


def _keras_must_not_be_called(*args, **kwargs):
    raise AssertionError("keras.datasets was called although a local folder exists")


def _keras_fails(*args, **kwargs):
    raise OSError("URL fetch failure: network is unreachable")


def test_cifar_stand_in_in_smoke_is_announced(monkeypatch, capsys, no_data):
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", _keras_fails)
    ds = data.load_cifar10("smoke")
    out = capsys.readouterr().out
    assert "NOTE:" in out and "STAND-IN" in out and "URL fetch failure" in out
    assert ds.stand_in and "stand-in" in ds.source
    assert "stand-in" in ds.name and "cifar10" in ds.name and ds.name != "cifar10"
    assert ds.key()["dataset"] == ds.name  # a record of the stand-in never keys as cifar10
    assert ds.provenance()["stand_in"] is True
    assert ds.steps == ("split test 1/6 seed 0",)
    assert ds.x_train.shape[1:] == (32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.num_classes == 10
    assert len(ds.x_train) + len(ds.x_test) == 1797
    data.check_arrays(ds.x_train, ds.y_train, 10)


def test_cifar_stand_in_follows_the_session_profile(monkeypatch, no_data, smoke_session):
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", _keras_fails)
    assert data.load_cifar10().stand_in  # profile=None: the session's (smoke)


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_cifar_missing_outside_smoke_says_where_to_put_it(monkeypatch, no_data, profile):
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", _keras_fails)
    with pytest.raises(DatasetUnavailable) as err:
        data.load_cifar10(profile)
    msg = str(err.value)
    assert str(no_data.resolve() / "cifar10") in msg
    assert "train/<class>" in msg and "SUITE_DATA_DIR" in msg


def test_mnist_unavailable_says_where_to_put_it(monkeypatch, capsys, no_data):
    monkeypatch.setattr(keras.datasets.mnist, "load_data", _keras_fails)
    with pytest.raises(DatasetUnavailable) as err:
        data.load_mnist()
    assert isinstance(err.value, DataError)
    msg = str(err.value)
    assert str(no_data.resolve() / "mnist") in msg
    assert "train/<digit>" in msg and "test/<digit>" in msg
    assert "URL fetch failure" in msg  # the reason keras gave
    assert "network" in msg and "digits" in msg  # what to do instead
    assert capsys.readouterr().out == ""  # no stand-in announced: there is none


def test_load_digits_dataset_is_the_bundled_default(capsys):
    ds = data.load_digits_dataset(seed=0, test_fraction=0.3)
    assert capsys.readouterr().out == ""  # no announcement: it is not a stand-in
    assert ds.x_train.shape[1:] == (8, 8) and ds.x_train.dtype == np.uint8
    assert len(ds.x_train) + len(ds.x_test) == 1797
    assert abs(len(ds.x_test) / 1797 - 0.3) < 0.01
    assert ds.x_train.max() == 255
    assert ds.class_names == [str(i) for i in range(10)]
    assert np.bincount(ds.y_test).min() >= 50  # stratified: every digit in the test split
    assert ds.name == "digits" and not ds.stand_in
    assert "scikit-learn" in ds.source
    assert ds.steps == ("split test 0.3 seed 0",)
    again = data.load_digits_dataset(seed=0, test_fraction=0.3)
    assert again.key() == ds.key() and again.provenance() == ds.provenance()
    other_seed = data.load_digits_dataset(seed=1, test_fraction=0.3)
    assert other_seed.key() != ds.key()
    assert other_seed.provenance()["fingerprint"] != ds.provenance()["fingerprint"]
    assert data.load_digits_dataset(seed=0, test_fraction=0.2).key() != ds.key()


def test_mnist_reads_a_local_folder_as_grayscale(monkeypatch, tmp_path, make_image):
    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path / "d"))
    for split in ("train", "test"):
        for c in ("0", "1"):
            make_image(tmp_path / "d" / "mnist" / split / c / "a.png", mode="L", size=(28, 28))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", _keras_must_not_be_called)
    ds = data.load_mnist()
    assert ds.x_train.shape == (2, 28, 28) and ds.x_test.shape == (2, 28, 28)
    assert ds.name == "mnist" and not ds.stand_in and ds.key()["dataset"] == "mnist"


def test_loaders_name_their_datasets(tmp_path, make_image):
    # a folder read directly is named after the folder
    for cls in ("a", "b"):
        for i in range(4):
            make_image(tmp_path / "my-photos" / cls / f"{i}.png", value=i)
    assert data.load_image_folder(tmp_path / "my-photos").name == "my-photos"
    # Flowers 102 keeps its name whatever its folder is called; the split it needs is a step
    flowers = data.load_flowers102(tmp_path / "my-photos", image_size=8, test_fraction=0.25)
    assert flowers.name == "flowers102" and not flowers.stand_in
    assert flowers.steps == ("split test 0.25 seed 0",)
    assert flowers.key()["shape"] == [8, 8, 3]


# --------------------------------------------------------------------------- record keys


def _two_copies(src, tmp_path, monkeypatch):
    """The same small cifar10 folder at two absolute paths, each loaded with load_cifar10."""
    loaded = []
    for where in ("first/place", "second"):
        data_dir = tmp_path / where
        shutil.copytree(src / "cifar10", data_dir / "cifar10")
        monkeypatch.setenv("SUITE_DATA_DIR", str(data_dir))
        loaded.append(data.load_cifar10("quick"))
    return loaded


def test_key_is_the_same_for_the_same_data_at_two_paths(cifar_small_dir, tmp_path, monkeypatch):
    a, b = _two_copies(cifar_small_dir, tmp_path, monkeypatch)
    assert a.key() == b.key()
    assert a.key()["dataset"] == "cifar10"
    pa, pb = a.provenance(), b.provenance()
    assert str(tmp_path / "first" / "place") in a.source  # shown where it was read here
    assert str(tmp_path / "second") in b.source
    # stored without absolute paths: b is in the data folder ($SUITE_DATA_DIR now points at
    # its copy), a is not any more
    assert pb["data_source"] == "image folder $SUITE_DATA_DIR/cifar10"
    assert pa["data_source"] == "image folder cifar10"
    assert pa["fingerprint"] == pb["fingerprint"]
    assert pa["stand_in"] is pb["stand_in"] is False
    # and so are the keys of the same subset taken from each copy
    assert a.subset(40, 20, seed=3).key() == b.subset(40, 20, seed=3).key()
    assert (
        a.subset(40, 20, seed=3).provenance()["fingerprint"]
        == b.subset(40, 20, seed=3).provenance()["fingerprint"]
    )


def test_key_holds_no_path(cifar_small_dir, tmp_path, monkeypatch):
    a, _ = _two_copies(cifar_small_dir, tmp_path, monkeypatch)
    for ds in (a, a.subset(40, 20, seed=1).select_classes(["cat", "dog"])):
        text = json.dumps(ds.key())  # plain JSON: no NumPy scalars either
        assert str(tmp_path) not in text and str(cifar_small_dir) not in text
        assert not re.search(r'(^|["\s])/', text), text  # nothing that starts like a path
        assert str(tmp_path) in ds.source  # the path is shown, and stored only as a name
        assert ds.provenance()["data_source"] == "image folder cifar10"


def _named_toy() -> Dataset:
    return replace(_dataset(), name="toy")


def test_key_changes_with_subset_sizes_seed_and_classes():
    ds = _named_toy()
    base = ds.subset(5, 2, seed=0)
    assert base.key() == ds.subset(5, 2, seed=0).key()  # deterministic
    others = [
        ds.subset(6, 2, seed=0),  # train size
        ds.subset(5, 3, seed=0),  # test size
        ds.subset(5, None, seed=0),  # whole test split
        ds.subset(5, 2, seed=1),  # seed: same sizes, other images
        base.select_classes(["ant", "bee"]),  # fewer classes
        base.select_classes(["bee", "ant", "cow"]),  # same classes, other label order
        ds,  # no subset at all
    ]
    keys = [json.dumps(o.key(), sort_keys=True) for o in [base, *others]]
    assert len(set(keys)) == len(keys), keys
    # the seed alone changes only the steps in the key (and the content hash)
    seed1 = ds.subset(5, 2, seed=1)
    differs = {k for k in base.key() if base.key()[k] != seed1.key()[k]}
    assert differs == {"steps"}
    assert base.provenance()["fingerprint"] != seed1.provenance()["fingerprint"]


def test_key_records_the_order_of_the_steps():
    ds = _named_toy()
    classes_first = ds.select_classes(["ant", "bee"]).subset(5, 2, seed=0)
    subset_first = ds.subset(5, 2, seed=0).select_classes(["ant", "bee"])
    a, b = classes_first.key(), subset_first.key()
    assert {k: v for k, v in a.items() if k != "steps"} == {
        k: v for k, v in b.items() if k != "steps"
    }
    assert a["steps"] == ["classes ant,bee", "subset train 5/class test 2/class seed 0"]
    assert b["steps"] == list(reversed(a["steps"]))
    assert a != b


def test_subset_of_none_adds_no_step():
    ds = _named_toy()
    assert ds.subset(None, None) is ds
    assert ds.subset(None).key() == ds.key()
    assert ds.key() == {
        "dataset": "toy",
        "steps": [],
        "classes": ["ant", "bee", "cow"],
        "train": 36,
        "test": 18,
        "shape": [4],
    }


def test_key_ignores_where_the_data_came_from():
    ds = _named_toy()
    moved = replace(ds, source="image folder /somewhere/else", notes=["copied"])
    assert moved.key() == ds.key()
    assert moved.provenance()["fingerprint"] == ds.provenance()["fingerprint"]
    assert moved.provenance()["data_source"] != ds.provenance()["data_source"]
    renamed = replace(ds, name="other")
    assert renamed.key() != ds.key()


# --------------------------------------------------------------------------- subsets and splits


def _toy(n_per_class=(30, 20, 10), features=4) -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)]).astype(np.int64)
    x = np.arange(len(y) * features, dtype=np.float32).reshape(len(y), features)
    return x, y


def test_stratified_subset_counts_and_seed():
    x, y = _toy()
    xs, ys = data.stratified_subset(x, y, 15, seed=1)
    assert np.bincount(ys).tolist() == [15, 15, 10]  # class 2 has only 10
    # rows stay paired with their labels
    for row, label in zip(xs, ys, strict=True):
        assert y[int(row[0]) // 4] == label
    again = data.stratified_subset(x, y, 15, seed=1)
    assert np.array_equal(again[0], xs)
    other = data.stratified_subset(x, y, 15, seed=2)
    assert not np.array_equal(other[0], xs)
    # the order is shuffled, not grouped by class
    assert not np.all(np.diff(ys) >= 0)


def test_stratified_subset_none_and_bad_values():
    x, y = _toy()
    xs, ys = data.stratified_subset(x, y, None)
    assert xs is x and ys is y
    with pytest.raises(DataError, match="at least 1, got 0"):
        data.stratified_subset(x, y, 0)


def _dataset() -> Dataset:
    x, y = _toy((12, 12, 12))
    xt, yt = _toy((6, 6, 6))
    return Dataset(x, y, xt, yt, ["ant", "bee", "cow"], source="toy")


def test_dataset_subset():
    ds = _dataset()
    sub = ds.subset(5, 2, seed=0)
    assert np.bincount(sub.y_train).tolist() == [5, 5, 5]
    assert np.bincount(sub.y_test).tolist() == [2, 2, 2]
    assert sub.class_names == ds.class_names and sub.source == "toy"
    assert len(ds.x_train) == 36  # the original is untouched
    only_train = ds.subset(5)
    assert len(only_train.x_test) == 18


def test_select_classes_relabels_in_the_given_order():
    ds = _dataset()
    two = ds.select_classes(["cow", "ant"])
    assert two.class_names == ["cow", "ant"]
    assert sorted(set(two.y_train.tolist())) == [0, 1]
    assert len(two.x_train) == 24 and len(two.x_test) == 12
    # every cow (old label 2) is now label 0
    old_cow_rows = {tuple(r) for r in ds.x_train[ds.y_train == 2]}
    new_cow_rows = {tuple(r) for r in two.x_train[two.y_train == 0]}
    assert old_cow_rows == new_cow_rows
    with pytest.raises(DataError, match="'dog'.*ant"):
        ds.select_classes(["dog"])


def test_split_validation_is_stratified():
    x, y = _toy((40, 40, 20))
    (xtr, ytr), (xva, yva) = data.split_validation(x, y, 0.25, seed=0)
    assert len(xva) == 25 and len(xtr) == 75
    assert np.bincount(yva).tolist() == [10, 10, 5]
    assert not set(map(tuple, xtr)) & set(map(tuple, xva))
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(DataError, match="between 0 and 1"):
            data.split_validation(x, y, bad)


def test_train_test_split_dataset_merges_and_splits():
    ds = _dataset()
    split = data.train_test_split_dataset(ds, 0.5, seed=0)
    assert len(split.x_train) + len(split.x_test) == 54
    assert np.bincount(split.y_test).tolist() == [9, 9, 9]


def test_check_arrays_accepts_good_data():
    x, y = _toy()
    data.check_arrays(x, y, 3)
    data.check_arrays(x.astype(np.uint8), y.astype(np.int32), 3)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((3, 2)), np.array([0, 1, 3]), r"label 3 is outside the class range 0\.\.2"),
        (np.zeros((3, 2)), np.array([0, -1, 2]), r"label -1 is outside"),
        (np.zeros((3, 2)), np.eye(3, dtype=np.int64), r"1-D integer.*shape \(3, 3\)"),
        (np.zeros((3, 2)), np.array([0.0, 1.0, 2.0]), r"dtype float64"),
        (np.zeros((4, 2)), np.array([0, 1, 2]), r"4 inputs but 3 labels"),
        (np.zeros((0, 2)), np.zeros(0, dtype=np.int64), r"no samples"),
        (np.array([["a"], ["b"], ["c"]]), np.array([0, 1, 2]), r"dtype <U1"),
    ],
)
def test_check_arrays_names_the_bad_value(x, y, match):
    with pytest.raises(DataError, match=match) as err:
        data.check_arrays(x, y, 3, name="my split")
    assert "my split" in str(err.value)


def test_fingerprint_arrays_changes_with_content():
    x, y = _toy()
    a = data.fingerprint_arrays(x, y)
    assert a == data.fingerprint_arrays(x.copy(), y.copy())
    x2 = x.copy()
    x2[0, 0] += 1
    assert a != data.fingerprint_arrays(x2, y)
    assert a != data.fingerprint_arrays(x.astype(np.float64), y)


def test_provenance_holds_no_absolute_path(tmp_path, monkeypatch):
    """A folder in the data folder is stored relative to it; any other by its name only."""
    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path / "data"))
    x, y = _toy()
    inside = Dataset(x, y, x, y, ["a", "b", "c"], source=f"image folder {tmp_path}/data/cifar10")
    outside = replace(inside, source=f"stand-in for X: image folder {tmp_path}/elsewhere/toy")
    assert inside.provenance()["data_source"] == "image folder $SUITE_DATA_DIR/cifar10"
    assert outside.provenance()["data_source"] == "stand-in for X: image folder toy"
    assert inside.source.endswith("/data/cifar10")  # shown here as it is


def test_describe_mentions_shapes_and_classes():
    text = _dataset().describe()
    assert "(36, 4)" in text and "ant, bee, cow" in text and "toy" in text
