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


def _keras_home() -> Path:
    """Where Keras caches downloads: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when the
    home folder is read-only), as Keras itself decides."""
    try:
        from keras.src.backend.config import keras_home  # noqa: PLC0415

        return Path(keras_home()).expanduser()
    except ImportError:  # a Keras without this private helper
        return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()


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
    file_name = spec.top_file if include_top else spec.notop_file
    if name.lower() == "mobilenet_v2" and not include_top:
        # Keras keeps one MobileNetV2 file per input size (96, 128, 160, 192, 224; else 224)
        rows = input_shape[0] if input_shape[0] in (96, 128, 160, 192, 224) else 224
        file_name = file_name.replace("_224_", f"_{rows}_")
    cache_file = _keras_home() / "models" / file_name

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
    # Assigning ``trainable = True`` to a model that is already True does not reach its
    # sublayers (Keras 3), so layers frozen by an earlier call would stay frozen: flip it.
    model.trainable = False
    model.trainable = True
    if n is None:
        return model
    if n < 0:
        raise ValueError(f"trainable_last must be >= 0 or None, got {n}")
    cut = len(model.layers) - n
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= cut
    return model


def _leaf_layers(model) -> list:
    """The layers of ``model`` with nested models (e.g. a backbone) opened up, in order."""
    out = []
    for layer in model.layers:
        out += _leaf_layers(layer) if getattr(layer, "layers", None) else [layer]
    return out


def trainable_summary(model: keras.Model) -> str:
    """``"3 of 19 layers with weights trainable; 2,359,808 of 14,714,688 parameters"``.

    Layers of nested models (a backbone inside a classifier) are counted one by one.
    """
    leaves = _leaf_layers(model)
    n_tr = sum(1 for layer in leaves if layer.trainable and layer.weights)
    n_w = sum(1 for layer in leaves if layer.weights)
    tr = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    total = model.count_params()
    return f"{n_tr} of {n_w} layers with weights trainable; {tr:,} of {total:,} parameters"


def last_weighted_layers(model: keras.Model, n: int) -> int:
    """The ``trainable_last`` value that makes the last ``n`` layers *with weights* trainable.

    Reports count a network's layers as its weight layers ("VGG16": 13 conv + 3 dense); Keras's
    ``model.layers`` also lists inputs and pooling layers. This returns how many trailing entries
    of ``model.layers`` cover the last ``n`` layers that have weights (pooling layers after them
    included), e.g. 3 for ``n=2`` on VGG16 without its top (block5_conv2, block5_conv3, block5_pool).
    """
    weighted = [i for i, layer in enumerate(model.layers) if layer.weights]
    if not 0 <= n <= len(weighted):
        raise ValueError(
            f"n={n}: {model.name} has {len(weighted)} layers with weights; choose 0..{len(weighted)}."
        )
    return 0 if n == 0 else len(model.layers) - weighted[-n]


# --------------------------------------------------------------------------- ImageNet labels

CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
CLASS_INDEX_FILE = "imagenet_class_index.json"
UNKNOWN = "not able to classify this image"


def imagenet_class_names(class_index: str | os.PathLike | None = None, profile=None) -> list | None:
    """The 1,000 ImageNet class names in output order (``["tench", "goldfish", ...]``).

    Args:
        class_index: a local copy of Keras's ``imagenet_class_index.json``; ``None`` uses Keras's
            cached file (``~/.keras/models``), downloaded when online (as ``decode_predictions``).
        profile: what happens when the file cannot be had (``None``: the current session's
            profile). Smoke: prints a NOTE and returns ``None``; quick/full: raises.

    Raises:
        WeightsUnavailable: the file is missing outside the smoke profile, or is not a class index.
    """
    import json  # noqa: PLC0415

    prof = current().profile if profile is None else get_profile(profile)
    try:
        if class_index is not None:
            path = Path(class_index).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"{path} does not exist")
        else:
            path = Path(
                keras.utils.get_file(CLASS_INDEX_FILE, CLASS_INDEX_URL, cache_subdir="models")
            )
        index = json.loads(path.read_text())
        names = [index[str(i)][1] for i in range(1000)]
    except Exception as err:
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:160]
        how = (
            f"The ImageNet class names could not be loaded ({reason}). Keras keeps them in "
            f"~/.keras/models/{CLASS_INDEX_FILE} and downloads it from {CLASS_INDEX_URL} when "
            "online; or pass CLASS_INDEX='/path/to/imagenet_class_index.json'."
        )
        if prof.requires_pretrained:
            raise WeightsUnavailable(how + f" The {prof.name} profile needs them.") from err
        print(f"NOTE: {how}\nNOTE: the smoke profile continues without class names.")
        return None
    return names


def top_k(probs, class_names: list | None = None, k: int = 3) -> list[dict]:
    """The ``k`` most probable classes of one image's probabilities ``probs`` of shape ``(K,)``.

    Returns rows ``{"rank": 1, "class": 722, "label": "ping-pong_ball", "probability": 0.93}``
    (``label`` is ``None`` without ``class_names``), most probable first.
    """
    import numpy as np  # noqa: PLC0415

    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    order = np.argsort(-p, kind="stable")[:k]  # ties: the lower class index first
    return [
        {
            "rank": r + 1,
            "class": int(c),
            "label": None if class_names is None else class_names[int(c)],
            "probability": float(p[c]),
        }
        for r, c in enumerate(order)
    ]


def classify_or_unknown(probs, class_names: list | None = None, threshold: float = 0.2) -> str:
    """The most probable class name, or ``"not able to classify this image"``.

    Args:
        probs: one image's class probabilities, shape ``(K,)``, summing to 1.
        class_names: ``K`` names (``None``: answer with the class index, ``"class 722"``).
        threshold: the smallest top probability (0-1) that is still answered with a class.
    """
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
    best = top_k(probs, class_names, k=1)[0]
    if best["probability"] < threshold:
        return UNKNOWN
    return best["label"] if best["label"] is not None else f"class {best['class']}"


def inference_seconds_per_image(
    model: keras.Model, batch_size: int = 1, repeats: int = 5, warmup: int = 1, seed: int = 0
) -> float:
    """Median wall time of ``model.predict_on_batch`` on random 0-255 images, per image (s).

    The input is ``(batch_size, *model.input_shape[1:])``; ``warmup`` untimed calls first (the
    first call builds the graph). Timing does not depend on the weights' values.
    """
    import logging  # noqa: PLC0415
    import time  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    if batch_size < 1 or repeats < 1:
        raise ValueError(f"batch_size and repeats must be >= 1, got {batch_size}, {repeats}")
    shape = (batch_size, *model.input_shape[1:])
    x = np.random.default_rng(seed).uniform(0, 255, size=shape).astype("float32")
    tf_log = logging.getLogger("tensorflow")  # quiet "triggered tf.function retracing" warnings
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        for _ in range(warmup):
            model.predict_on_batch(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.predict_on_batch(x)
            times.append(time.perf_counter() - start)
    finally:
        tf_log.setLevel(level)
    return float(np.median(times)) / batch_size
