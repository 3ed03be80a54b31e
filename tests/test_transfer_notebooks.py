"""Tests of the helpers behind the transfer notebooks 07-10 (no network, no pretrained weights)."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from helpers import data, transfer  # noqa: E402


def test_last_conv_layers_counts_convolutions_of_vgg16():
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    # block5_conv2, block5_conv3, block5_pool
    assert transfer.last_conv_layers(model, 2) == 3
    assert transfer.last_conv_layers(model, 0) == 0
    transfer.freeze_all_but(model, transfer.last_conv_layers(model, 5))
    trained = [layer.name for layer in model.layers if layer.trainable and layer.weights]
    assert trained == [
        "block4_conv2",
        "block4_conv3",
        "block5_conv1",
        "block5_conv2",
        "block5_conv3",
    ]
    with pytest.raises(ValueError, match="13 convolution/dense layers"):
        transfer.last_conv_layers(model, 14)


def test_top_k_and_unknown_rule():
    names = ["a", "b", "c", "d"]
    p = np.array([0.1, 0.6, 0.05, 0.25])
    rows = transfer.top_k(p, names, k=3)
    assert [r["label"] for r in rows] == ["b", "d", "a"]
    assert rows[0]["probability"] == pytest.approx(0.6)
    assert transfer.classify_or_unknown(p, names, threshold=0.5) == "b"
    assert transfer.classify_or_unknown(p, names, threshold=0.7) == transfer.UNKNOWN
    assert transfer.classify_or_unknown(np.full(4, 0.25), None, 0.2) == "class 0"
    with pytest.raises(ValueError, match="threshold"):
        transfer.classify_or_unknown(p, names, threshold=1.5)


def test_imagenet_class_names_ship_with_a_package():
    names = transfer.imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) > 990
    assert names[0] == "tench" and names[652] == "military uniform"


def test_load_photo_crops_the_centre_instead_of_squashing(tmp_path):
    # a 200x100 photo: left half black, right half white, a red square in the centre
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    img[:, 100:] = 255
    img[40:60, 90:110] = (255, 0, 0)
    Image.fromarray(img).save(tmp_path / "wide.png")
    x = transfer.load_photo(tmp_path / "wide.png", size=64, crop_fraction=1.0)
    assert x.shape == (64, 64, 3) and x.dtype == np.float32
    assert tuple(x[32, 32].round()) == (255.0, 0.0, 0.0)  # the centre stays in the centre
    assert (
        x[5, 2].max() < 10 and x[5, 61].min() > 245
    )  # a square cut of the middle: 50 px each side


def test_inference_time_is_positive():
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inp))
    s = transfer.inference_seconds_per_image(model, batch_size=4, repeats=2)
    assert s > 0


def _image_folder(root, classes=("daisy", "rose"), per_class=4, size=(20, 30)):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{i}.png")


def test_load_flowers102_from_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SUITE_CACHE_DIR", str(tmp_path / "cache"))
    _image_folder(tmp_path / "flowers")
    ds = data.load_flowers102(tmp_path / "flowers", image_size=16, profile="quick")
    assert ds.x_train.shape == (8, 16, 16, 3) and ds.x_test.shape == (8, 16, 16, 3)
    assert ds.class_names == ["daisy", "rose"] and not ds.stand_in


def test_load_flowers102_bad_path_names_it(tmp_path):
    with pytest.raises(data.DataError, match="does-not-exist"):
        data.load_flowers102(tmp_path / "does-not-exist", profile="smoke")


def test_resize_images():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    assert data._resize_images(x, 48).shape == (2, 48, 48, 3)
    assert data._resize_images(x, 32) is x


def test_trainable_summary_counts_layers_inside_a_backbone():
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    transfer.freeze_all_but(base, transfer.last_conv_layers(base, 2))
    inp = keras.Input((32, 32, 3))
    model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(base(inp))))
    assert transfer.trainable_summary(model).startswith("3 of 14 layers with weights trainable")


def test_load_flowers102_without_source(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path))  # no flowers102/ and no cifar10/ here
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails: not installed
    with pytest.raises(data.DataError, match="flowers102"):
        data.load_flowers102(profile="quick")
    _image_folder(tmp_path / "cifar10", classes=("cat", "dog"), size=(32, 32))
    monkeypatch.setenv("SUITE_CACHE_DIR", str(tmp_path / "cache"))
    ds = data.load_flowers102(image_size=24, profile="smoke")
    assert ds.stand_in and ds.x_train.shape[1:] == (24, 24, 3)
    assert "STAND-IN" in capsys.readouterr().out
    ds = data.load_flowers102(image_size=24, profile="quick", stand_in_per_class=2)
    assert ds.stand_in and ds.x_train.shape == (4, 24, 24, 3)  # 2 per class in any profile
    assert "2 training images per class" in capsys.readouterr().out
