"""What enters a record's key: the settings of a run that can change its result.

A Keras run's key config holds the model's architecture, its compile settings, the fit settings,
the validation data, the callbacks' settings, the seed, the data's key (:meth:`Dataset.key`) and
:data:`IMPLEMENTATION`; :func:`helpers.records.make_key` hashes it. Whatever changes here
changes every key, and every notebook trains again.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import keras

from .data import Dataset, check_arrays, fingerprint_arrays, split_validation
from .models import leaf_layers

if TYPE_CHECKING:
    from .fitting import FitSettings

# The version of the code that trains and evaluates (the fit loop and its default callbacks, the
# input pipeline, the evaluation: helpers.fitting). It enters every record's key: bump it when
# that code changes a result, and every run trains again.
IMPLEMENTATION = "helpers.training v1"


def _strip_names(obj):
    if isinstance(obj, dict):
        return {k: _strip_names(v) for k, v in obj.items() if k not in ("name", "seed")}
    if isinstance(obj, list | tuple):
        return [_strip_names(v) for v in obj]
    return obj


def architecture(model) -> list[dict]:
    """Layer-by-layer description without auto-generated names: class, config, trainable, params."""
    rows = []
    for layer in leaf_layers(model):
        try:
            cfg = _strip_names(layer.get_config())
        except Exception:  # a layer without get_config
            cfg = {}
        rows.append(
            {
                "class": type(layer).__name__,
                "config": cfg,
                "trainable": bool(layer.trainable),
                "params": int(layer.count_params()),
            }
        )
    return rows


def compile_config(model) -> dict:
    """The optimizer (class and settings) and the loss ``model`` was compiled with."""
    opt = model.optimizer
    cfg = {"optimizer": None, "loss": None}
    if opt is not None:
        cfg["optimizer"] = {"class": type(opt).__name__, **_strip_names(opt.get_config())}
    loss = getattr(model, "loss", None)
    if loss is not None:
        cfg["loss"] = loss if isinstance(loss, str) else keras.losses.serialize(loss)
    return cfg


_CALLBACK_CONFIGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def callback_config(cb) -> dict:
    """A callback's class and its plain settings (numbers, strings, flags).

    Taken the first time a callback object is seen, before it trains: training changes its
    attributes (counters such as ``wait`` and ``best``; Keras even flips the sign of
    ``min_delta``), and the same object passed again must give the same key.
    """
    try:
        return _CALLBACK_CONFIGS[cb]
    except (KeyError, TypeError):  # not seen yet, or not weakly referenceable
        pass
    plain = (int, float, str, bool, type(None))
    settings = {k: v for k, v in vars(cb).items() if not k.startswith("_") and isinstance(v, plain)}
    cfg = {"class": type(cb).__name__, **settings}
    try:
        _CALLBACK_CONFIGS[cb] = cfg
    except TypeError:
        pass
    return cfg


def validation_split(data: Dataset, validation, seed: int, name: str):
    """``(train, val, key part)`` for ``validation``: a fraction, ``"test"``, ``(x, y)`` or None.

    ``train`` and ``val`` are ``(x, y)`` pairs (``val`` may be None); the key part says which
    validation data it was (``validation_split`` and ``validation_data``).
    """
    train = (data.x_train, data.y_train)
    if validation is None:
        return train, None, {"validation_split": None, "validation_data": None}
    if isinstance(validation, int | float) and not isinstance(validation, bool):
        train, val = split_validation(*train, validation, seed)
        return train, val, {"validation_split": validation, "validation_data": None}
    if isinstance(validation, str):
        if validation != "test":
            raise ValueError(
                f"validation={validation!r}: use a fraction, 'test' or (x_val, y_val)."
            )
        return (
            train,
            (data.x_test, data.y_test),
            {"validation_split": None, "validation_data": "test"},
        )
    check_arrays(validation[0], validation[1], data.num_classes, f"{name} validation data")
    return (
        train,
        validation,
        {"validation_split": None, "validation_data": fingerprint_arrays(*validation)},
    )


def keras_config(
    model, data: Dataset, settings: FitSettings, validation: dict, seed: int, extra: dict | None
) -> dict:
    """The key config of a Keras run: ``model`` (built and compiled) trained on ``data`` with
    ``settings``; ``validation`` is the key part of :func:`validation_split`, ``extra`` the
    notebook's own distinguishing settings."""
    return {
        "architecture": architecture(model),
        "input_shape": list(data.x_train.shape[1:]),
        "compile": compile_config(model),
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        **validation,
        "early_stopping": settings.early_stopping,
        "one_hot": settings.one_hot,
        "callbacks": [callback_config(cb) for cb in settings.callbacks or []],
        "evaluate_train": settings.evaluate_train,
        "seed": seed,
        "data": data.key(),
        "extra": extra or {},
        "implementation": IMPLEMENTATION,
    }


def predictions_config(config: dict, data: Dataset, seed: int) -> dict:
    """The key config of a model that is not a Keras model: its own ``config``, the seed, the
    data's key and :data:`IMPLEMENTATION`."""
    return {"model": config, "seed": seed, "data": data.key(), "implementation": IMPLEMENTATION}
