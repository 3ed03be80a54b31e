"""Tests behind notebook 11 (transfer study): freezing nested blocks with ``freeze_all_but``."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from helpers.transfer import freeze_all_but  # noqa: E402


def _base():
    """A conv base like notebook 11's: ``[Rescaling, block1, block2]``, blocks are Sequentials."""

    def block(name):
        return keras.Sequential(
            [layers.Conv2D(4, 3, padding="same"), layers.BatchNormalization()], name=name
        )

    return keras.Sequential(
        [keras.Input((8, 8, 3)), layers.Rescaling(1 / 255), block("b1"), block("b2")]
    )


def _trainable_params(model) -> int:
    return sum(int(keras.ops.size(w)) for w in model.trainable_weights)


def test_freeze_all_but_unfreezes_nested_blocks_frozen_before():
    base = _base()
    per_block = 3 * 3 * 3 * 4 + 4  # conv kernel and bias (BatchNorm stays frozen)
    all_params = per_block + (3 * 3 * 4 * 4 + 4)
    freeze_all_but(base, 0)
    assert _trainable_params(base) == 0
    freeze_all_but(base, 1)
    assert [layer.trainable for layer in base.layers] == [False, False, True]
    assert _trainable_params(base) == all_params - per_block
    freeze_all_but(base, None)  # after a freeze, None must reach the sublayers of every block
    conv, bn = base.layers[1].layers
    assert conv.trainable and not bn.trainable  # fine-tuning keeps BatchNorm's statistics
    assert _trainable_params(base) == all_params
    freeze_all_but(base, 1)  # and back again
    assert not any(layer.trainable for layer in base.layers[1].layers)


def test_freeze_all_but_on_a_clone_of_a_frozen_model():
    base = freeze_all_but(_base(), 0)
    clone = keras.models.clone_model(base)  # carries trainable=False in every layer's config
    freeze_all_but(clone, None)
    assert _trainable_params(clone) == _trainable_params(freeze_all_but(_base(), None))
