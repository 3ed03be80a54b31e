"""Tests of helpers.models.mlp and conv_front: the models of notebooks 03 and 04."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers  # noqa: E402

from helpers.models import conv_front, mlp  # noqa: E402


def explicit_mlp_03():
    """Notebook 03's base model, written out layer by layer as in the notebook."""
    return keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3)),
            layers.Rescaling(1 / 255),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dense(256, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def explicit_cnn_04():
    """Notebook 04's first model (three conv layers before the MLP), as written in the notebook."""
    return keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(32, 5, strides=2, padding="same", activation="relu"),
            layers.Conv2D(32, 5, strides=2, padding="same", activation="relu"),
            layers.Conv2D(16, 2, strides=1, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dense(256, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def signature(model):
    """(class, output shape, parameters) of every layer."""
    return [
        (type(lay).__name__, tuple(lay.output.shape), lay.count_params()) for lay in model.layers
    ]


def test_mlp_matches_notebook_03_model():
    built = mlp((32, 32, 3), hidden=(512, 256))
    explicit = explicit_mlp_03()
    assert built.count_params() == explicit.count_params() == 1_707_274
    assert signature(built) == signature(explicit)
    assert isinstance(built.layers[0], layers.Rescaling)
    assert isinstance(built.layers[1], layers.Flatten)
    assert getattr(built, "optimizer", None) is None  # uncompiled


def test_cnn_matches_notebook_04_model():
    built = mlp((32, 32, 3), hidden=(512, 256), front=conv_front())
    explicit = explicit_cnn_04()
    assert built.count_params() == explicit.count_params()
    assert signature(built) == signature(explicit)
    assert built.layers[3].output.shape[1:] == (8, 8, 16)


def test_activations_and_output():
    model = mlp((32, 32, 3), hidden=(8, 4), activations=("relu", "tanh"), output_activation="relu")
    dense = [lay for lay in model.layers if isinstance(lay, layers.Dense)]
    assert [d.get_config()["activation"] for d in dense] == ["relu", "tanh", "relu"]
    assert [d.units for d in dense] == [8, 4, 10]


def test_uint8_images_give_probabilities():
    model = mlp((32, 32, 3), hidden=(16,), activations=("relu",))
    x = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    proba = np.asarray(model.predict(x.astype("float32"), verbose=0))
    assert proba.shape == (5, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_grayscale_input_and_num_classes():
    model = mlp((28, 28), hidden=(32,), activations=("relu",), num_classes=3)
    assert model.output_shape == (None, 3)
    assert model.count_params() == 28 * 28 * 32 + 32 + 32 * 3 + 3


def test_conv_front_knobs():
    plain = conv_front()
    assert [type(lay).__name__ for lay in plain] == ["Conv2D"] * 3
    full = conv_front(batch_norm=True, pooling="avg", dropout=0.25)
    names = [type(lay).__name__ for lay in full]
    assert names == ["Conv2D", "BatchNormalization", "Activation"] * 3 + [
        "AveragePooling2D",
        "Dropout",
    ]
    model = mlp((32, 32, 3), hidden=(512, 256), dropout=0.25, front=full)
    flat = next(lay for lay in model.layers if isinstance(lay, layers.Flatten))
    assert flat.output.shape[1:] == (4 * 4 * 16,)
    assert sum(isinstance(lay, layers.Dropout) for lay in model.layers) == 3
    assert isinstance(conv_front(pooling="max")[-1], layers.MaxPooling2D)
    valid = mlp((32, 32, 3), hidden=(8,), activations=("relu",), front=conv_front(padding="valid"))
    assert valid.layers[3].output.shape[1:] == (4, 4, 16)  # 32 -> 14 -> 5 -> 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mlp(hidden=(8, 4), activations=("relu",)), "one activation per hidden layer"),
        (lambda: mlp(hidden=(0,), activations=("relu",)), "units must be positive"),
        (lambda: mlp(dropout=1.0), "dropout"),
        (lambda: conv_front(filters=(8, 8), kernel_sizes=(3,), strides=(1, 1)), "same length"),
        (lambda: conv_front(pooling="mean"), "'avg' or 'max'"),
        (lambda: conv_front(padding="full"), "'same' or 'valid'"),
        (lambda: conv_front(dropout=-0.1), "dropout"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
