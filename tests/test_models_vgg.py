"""Tests of helpers.models.vgg_style: the Neural Networks HW3 base model and the knobs 05/06 turn."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers  # noqa: E402

from helpers.models import vgg_style  # noqa: E402


def report_base_model():
    """The Neural Networks HW3 base model, written out layer by layer as in the report (and notebook 05)."""
    inp = keras.Input(shape=(32, 32, 3))
    x = layers.Rescaling(1.0 / 255)(inp)
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(x)
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2))(x)
    x = layers.Conv2D(64, (3, 3), activation="relu", padding="same")(x)
    x = layers.Conv2D(64, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2))(x)
    x = layers.Conv2D(128, (3, 3), activation="relu", padding="same")(x)
    x = layers.Conv2D(128, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2))(x)
    x = layers.MaxPooling2D((2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dense(64, activation="relu")(x)
    out = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inp, out)


def layer_signature(model):
    """(class, output shape, parameters, key settings) of every layer after the input."""
    rows = []
    for layer in model.layers[1:]:
        cfg = layer.get_config()
        keys = ("filters", "kernel_size", "padding", "activation", "units", "pool_size", "rate")
        rows.append(
            (
                type(layer).__name__,
                tuple(layer.output.shape),
                layer.count_params(),
                tuple((k, str(cfg[k])) for k in keys if k in cfg),
            )
        )
    return rows


def kinds(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


def test_defaults_equal_the_reports_base_model():
    built, written = vgg_style(), report_base_model()
    assert layer_signature(built) == layer_signature(written)
    assert built.count_params() == written.count_params() == 435_434
    assert built.input_shape == (None, 32, 32, 3)
    assert built.output_shape == (None, 10)
    assert isinstance(built.layers[1], layers.Rescaling)
    assert len(kinds(built, layers.Conv2D)) == 6
    assert len(kinds(built, layers.MaxPooling2D)) == 4
    assert [d.units for d in kinds(built, layers.Dense)] == [256, 64, 10]
    assert kinds(built, layers.Dense)[-1].get_config()["activation"] == "softmax"


def test_blocks_filters_and_dense_layers():
    two = vgg_style(filters=(32, 16), dense=(64,), extra_pool=False)
    assert [c.filters for c in kinds(two, layers.Conv2D)] == [32, 32, 16, 16]
    assert [d.units for d in kinds(two, layers.Dense)] == [64, 10]
    assert two.get_layer("flatten").output.shape[1] == 8 * 8 * 16
    four = vgg_style(filters=(32, 64, 128, 256), dense=(512, 128, 32), extra_pool=False)
    assert len(kinds(four, layers.Conv2D)) == 8
    assert four.get_layer("flatten").output.shape[1] == 2 * 2 * 256
    three_convs = vgg_style(convs_per_block=3)
    assert len(kinds(three_convs, layers.Conv2D)) == 9


def test_kernel_size_and_valid_padding():
    k5 = vgg_style(kernel_size=5)
    assert all(c.kernel_size == (5, 5) for c in kinds(k5, layers.Conv2D))
    assert k5.count_params() > vgg_style().count_params()
    valid = vgg_style(padding="valid", last_conv_padding="same", extra_pool=False)
    pads = [c.padding for c in kinds(valid, layers.Conv2D)]
    assert pads == ["valid"] * 5 + ["same"]
    # 32 -> 30 -> 28 -> 14 -> 12 -> 10 -> 5 -> 3 -> 3 (same) -> 1
    assert valid.get_layer("flatten").output.shape[1] == 128
    with pytest.raises(ValueError, match="feature map"):
        vgg_style(padding="valid")  # with the extra pooling the map shrinks below 1x1


def test_dropout_after_every_block_and_dense_layer():
    model = vgg_style(dropout=0.2)
    drops = kinds(model, layers.Dropout)
    assert len(drops) == 3 + 2
    assert all(d.rate == 0.2 for d in drops)
    assert not kinds(vgg_style(), layers.Dropout)
    assert model.count_params() == vgg_style().count_params()


def test_l1_l2_regularizers_on_hidden_layers_only():
    model = vgg_style(l1=1e-5, l2=1e-4)
    hidden = kinds(model, layers.Conv2D) + kinds(model, layers.Dense)[:-1]
    for layer in hidden:
        reg = layer.kernel_regularizer
        assert isinstance(reg, keras.regularizers.L1L2)
        assert np.isclose(reg.l1, 1e-5) and np.isclose(reg.l2, 1e-4)
    assert kinds(model, layers.Dense)[-1].kernel_regularizer is None
    assert all(layer.kernel_regularizer is None for layer in kinds(vgg_style(), layers.Conv2D))
    # the penalty enters the loss: one term per regularized layer
    model(np.zeros((1, 32, 32, 3), "float32"))
    assert len(model.losses) == len(hidden)


def test_batch_norm_and_forward_pass():
    model = vgg_style(batch_norm=True, dropout=0.2, num_classes=4, input_shape=(16, 16, 3))
    assert len(kinds(model, layers.BatchNormalization)) == 6
    assert all(not c.use_bias for c in kinds(model, layers.Conv2D))
    proba = np.asarray(model(np.full((2, 16, 16, 3), 255, "uint8"), training=False))
    assert proba.shape == (2, 4)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"padding": "full"}, "padding"),
        ({"filters": ()}, "at least one block"),
        ({"dropout": 1.0}, "dropout"),
        ({"l1": -1.0}, "negative"),
    ],
)
def test_bad_values_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vgg_style(**kwargs)


def test_kernel_initializer_of_hidden_layers_only():
    def initializers(model):
        return [
            layer.get_config()["kernel_initializer"]["class_name"]
            for layer in kinds(model, layers.Conv2D) + kinds(model, layers.Dense)
        ]

    assert set(initializers(vgg_style())) == {"GlorotUniform"}  # Keras's default, unchanged
    he = initializers(vgg_style(kernel_initializer="he_normal"))
    assert he == ["HeNormal"] * 8 + ["GlorotUniform"]  # 6 convolutions, 2 hidden dense, output
