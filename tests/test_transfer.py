"""Backbones: random / ImageNet / file weights, the offline policy per profile, layer freezing.

ImageNet downloads are made to fail on purpose (Keras's ``get_file`` is replaced), so these tests
never touch the network nor write under ``~/.keras``; weights files go to ``tmp_path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src.utils import file_utils

import helpers
from helpers import transfer
from helpers.transfer import WeightsUnavailable, build_backbone, freeze_all_but

SMALL = (32, 32, 3)


@pytest.fixture
def offline(monkeypatch):
    """Keras's downloads fail as they do without network (nothing is read from the cache)."""

    def no_network(fname=None, origin=None, *args, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: [Errno 101] Network is unreachable")

    monkeypatch.setattr(file_utils, "get_file", no_network)


def _same_weights(a, b) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))


def test_random_weights_build():
    bb = build_backbone("vgg16", SMALL, weights=None, pooling="avg")
    assert (bb.weights, bb.pretrained) == ("random", False)
    assert bb.model.output_shape == (None, 512)
    assert bb.model.trainable_weights == []  # trainable_last=0 freezes everything
    assert bb.preprocess is keras.applications.vgg16.preprocess_input


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError, match="'alexnet'.*vgg16, resnet50, mobilenet_v2"):
        build_backbone("alexnet", SMALL, weights=None)


def test_imagenet_offline_in_smoke_falls_back_to_random(offline, capsys):
    bb = build_backbone("vgg16", SMALL, weights="imagenet", profile="smoke")
    out = capsys.readouterr().out
    assert "NOTE:" in out and "RANDOM" in out and "URL fetch failure" in out
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in out
    assert (bb.weights, bb.pretrained) == ("random", False)
    assert bb.model.output_shape == (None, 1, 1, 512)


def test_imagenet_offline_follows_the_session_profile(offline, capsys):
    helpers.setup("unit", profile="smoke", verbose=False)
    assert not build_backbone("vgg16", SMALL).pretrained  # weights="imagenet" by default
    helpers.setup("unit", profile="quick", verbose=False)
    with pytest.raises(WeightsUnavailable):
        build_backbone("vgg16", SMALL)


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_imagenet_offline_outside_smoke_names_the_cache_file(offline, profile):
    with pytest.raises(WeightsUnavailable) as err:
        build_backbone("vgg16", SMALL, weights="imagenet", profile=profile)
    msg = str(err.value)
    cache = transfer._keras_home() / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert str(cache) in msg
    if "KERAS_HOME" not in os.environ and os.access(Path.home(), os.W_OK):
        assert cache.parent == Path.home() / ".keras" / "models"
    assert f"The {profile} profile needs real weights" in msg
    assert "WEIGHTS=" in msg  # says how to pass a local file instead


def test_include_top_names_the_top_file(offline):
    with pytest.raises(WeightsUnavailable, match=r"tf_kernels_1\.0_224\.h5 and downloads"):
        build_backbone("mobilenet_v2", weights="imagenet", include_top=True, profile="quick")


def test_weights_file_round_trip(tmp_path):
    source = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=SMALL)
    path = tmp_path / "mobilenet.weights.h5"
    source.save_weights(path)
    bb = build_backbone("mobilenet_v2", SMALL, weights=path, trainable_last=None, profile="quick")
    assert bb.pretrained and bb.weights == str(path)
    assert _same_weights(bb.model, source)
    # a fresh random build differs, so the equality above is the file's doing
    assert not _same_weights(build_backbone("mobilenet_v2", SMALL, weights=None).model, source)


def test_missing_weights_file(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(WeightsUnavailable, match="nope.weights.h5 does not exist"):
        build_backbone("vgg16", SMALL, weights=missing)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_weights_file_of_another_architecture(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    path = tmp_path / "tiny.weights.h5"
    other.save_weights(path)
    with pytest.raises(WeightsUnavailable, match="tiny.weights.h5 does not fit VGG16"):
        build_backbone("vgg16", SMALL, weights=path)


@pytest.fixture(scope="module")
def vgg():
    return keras.applications.VGG16(weights=None, include_top=False, input_shape=SMALL)


@pytest.mark.parametrize("n", [0, 1, 3, 7, 19])
def test_freeze_all_but_leaves_exactly_the_last_n_trainable(vgg, n):
    assert freeze_all_but(vgg, n) is vgg
    flags = [layer.trainable for layer in vgg.layers]
    assert flags == [False] * (len(flags) - n) + [True] * n
    expected = sum(layer.count_params() for layer in vgg.layers[len(flags) - n :])
    assert sum(int(np.prod(w.shape)) for w in vgg.trainable_weights) == expected


def test_freeze_all_but_can_unfreeze_again(vgg):
    freeze_all_but(vgg, 0)
    freeze_all_but(vgg, None)
    assert all(layer.trainable for layer in vgg.layers)
    assert len(vgg.trainable_weights) == 26  # 13 conv layers, kernel and bias
    freeze_all_but(vgg, 0)
    freeze_all_but(vgg, 2)  # after a full freeze, the last two layers thaw
    assert [layer.name for layer in vgg.layers if layer.trainable] == [
        "block5_conv3",
        "block5_pool",
    ]
    with pytest.raises(ValueError, match="got -1"):
        freeze_all_but(vgg, -1)


def test_build_backbone_trainable_last(vgg):
    bb = build_backbone("vgg16", SMALL, weights=None, trainable_last=4)
    flags = [layer.trainable for layer in bb.model.layers]
    assert flags[-4:] == [True] * 4 and not any(flags[:-4])
    summary = transfer.trainable_summary(bb.model)
    assert summary.startswith("3 of 13 layers with weights trainable")


def test_preprocess_for_maps_pixels_to_the_backbones_range():
    x = np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32")
    out = np.asarray(transfer.preprocess_for("mobilenet_v2")(x.copy()))
    assert np.allclose(out, [[[[-1.0, 0.0, 1.0]]]])
