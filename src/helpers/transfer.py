"""ImageNet backbones from ``keras.applications`` with their preprocessing, and layer freezing.

One function, :func:`build_backbone`, serves every transfer notebook (07-11). Weights policy
(DESIGN.md): ``weights="imagenet"`` uses Keras's cached download (``~/.keras/models``); where it
cannot be had, the smoke profile builds the same architecture with random weights and says so,
while quick and full stop with a message naming the missing file and how to get it. A path to a
weights file (``.h5`` / ``.weights.h5``) saved from the same architecture is accepted as well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras

from .profiles import get_profile
from .session import current


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one ``keras.applications`` model and where Keras caches its weights."""

    constructor: str  # attribute of keras.applications
    module: str  # submodule holding preprocess_input
    notop_file: str  # Keras's cache file name for include_top=False weights
    top_file: str  # ... and for include_top=True


BACKBONES: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec(
        "VGG16",
        "vgg16",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    ),
    "resnet50": BackboneSpec(
        "ResNet50",
        "resnet",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
    ),
    "mobilenet_v2": BackboneSpec(
        "MobileNetV2",
        "mobilenet_v2",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
    ),
    "efficientnet_b0": BackboneSpec(
        "EfficientNetB0", "efficientnet", "efficientnetb0_notop.h5", "efficientnetb0.h5"
    ),
}


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be loaded; the message says which file and how to get it."""


@dataclass
class Backbone:
    """A built backbone and what it was built with.

    Attributes:
        model: the ``keras.applications`` model (inputs ``(None, H, W, 3)`` floats in 0-255).
        preprocess: the backbone's own ``preprocess_input`` (maps 0-255 pixels to its input range).
        weights: ``"imagenet"``, ``"random"`` or the weights file's path.
        pretrained: True when the weights are real pretrained weights.
    """

    model: keras.Model
    preprocess: object
    weights: str
    pretrained: bool


def _spec(name: str) -> BackboneSpec:
    key = name.lower()
    if key not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; available: {', '.join(BACKBONES)}.")
    return BACKBONES[key]


def preprocess_for(name: str):
    """The ``preprocess_input`` function of backbone ``name`` (inputs are 0-255 pixels)."""
    return getattr(keras.applications, _spec(name).module).preprocess_input


def build_backbone(
    name: str,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    weights: str | os.PathLike | None = "imagenet",
    include_top: bool = False,
    pooling: str | None = None,
    trainable_last: int | None = 0,
    profile=None,
) -> Backbone:
    """Build ``keras.applications.<name>`` and freeze all but its last ``trainable_last`` layers.

    Args:
        name: ``vgg16``, ``resnet50``, ``mobilenet_v2`` or ``efficientnet_b0``.
        input_shape: ``(height, width, 3)``; 32x32 works for all four without the top.
        weights: ``"imagenet"``, ``None`` (random initialisation) or a path to a weights file
            saved from the same architecture (``model.save_weights``).
        include_top: keep the ImageNet classifier (then ``input_shape`` must be 224x224x3).
        pooling: ``None``, ``"avg"`` or ``"max"`` (as in ``keras.applications``).
        trainable_last: how many of the last layers stay trainable (0: fully frozen; ``None``:
            everything trainable).
        profile: decides what happens when ImageNet weights cannot be had (``None``: the
            current session's profile). Smoke: random weights, announced; quick/full: error.

    Raises:
        WeightsUnavailable: ImageNet weights missing outside the smoke profile, or a weights file
            that does not exist or does not fit the architecture.
    """
    spec = _spec(name)
    prof = current().profile if profile is None else get_profile(profile)
    build = getattr(keras.applications, spec.constructor)
    kwargs = {
        "include_top": include_top,
        "pooling": pooling,
        "input_shape": None if include_top else tuple(input_shape),
    }
    cache_file = (
        Path.home() / ".keras" / "models" / (spec.top_file if include_top else spec.notop_file)
    )

    if weights is None:
        model, used, pretrained = build(weights=None, **kwargs), "random", False
    elif str(weights) == "imagenet":
        try:
            model, used, pretrained = build(weights="imagenet", **kwargs), "imagenet", True
        except Exception as err:  # no network and nothing in ~/.keras/models
            reason = f"{type(err).__name__}: {err}".splitlines()[0][:160]
            how = (
                f"ImageNet weights for {spec.constructor} could not be loaded ({reason}). "
                f"Keras looks for {cache_file} and downloads it when online. Run this notebook once "
                "on a machine with network access, or copy the file there yourself, or pass "
                "WEIGHTS='/path/to/weights.h5' (a file saved from the same architecture)."
            )
            if prof.requires_pretrained:
                raise WeightsUnavailable(
                    how + f" The {prof.name} profile needs real weights."
                ) from err
            print(
                f"NOTE: {how}\nNOTE: the smoke profile continues with RANDOM weights: the "
                "numbers below test the code path only and are NOT transfer-learning results."
            )
            model, used, pretrained = build(weights=None, **kwargs), "random", False
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(
                f"Weights file {path} does not exist; pass weights='imagenet', None, or the path "
                f"of a file saved from {spec.constructor} with model.save_weights(...)."
            )
        try:
            model = build(weights=str(path), **kwargs)
        except Exception as err:
            raise WeightsUnavailable(
                f"Weights file {path} does not fit {spec.constructor}(include_top={include_top}, "
                f"input_shape={input_shape}): {err}"
            ) from err
        used, pretrained = str(path), True
    freeze_all_but(model, trainable_last)
    return Backbone(model, preprocess_for(name), used, pretrained)


def freeze_all_but(model: keras.Model, n: int | None) -> keras.Model:
    """Make only the last ``n`` layers of ``model`` trainable (``0``: none, ``None``: all).

    Layers are counted in ``model.layers`` order (the input layer included, as in
    ``model.summary()``). Returns the model for chaining. Recompile after changing this.
    """
    model.trainable = True
    if n is None:
        return model
    if n < 0:
        raise ValueError(f"trainable_last must be >= 0 or None, got {n}")
    cut = len(model.layers) - n
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= cut
    return model


def trainable_summary(model: keras.Model) -> str:
    """``"3 of 19 layers trainable; 2,359,808 of 14,714,688 parameters"``."""
    leaves = model.layers
    n_tr = sum(1 for layer in leaves if layer.trainable and layer.weights)
    n_w = sum(1 for layer in leaves if layer.weights)
    tr = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    total = model.count_params()
    return f"{n_tr} of {n_w} layers with weights trainable; {tr:,} of {total:,} parameters"
