"""Model builders for architectures that several notebooks share.

Only what notebooks really share lives here; each notebook still shows the layers it trains
(a notebook that uses a builder prints ``model.summary()`` and explains the knobs it turns).
Builders return *uncompiled* models: the notebook compiles them, so the optimizer and loss are
visible where the experiment is described.
"""

from __future__ import annotations

from dataclasses import dataclass


def leaf_layers(model) -> list:
    """The layers of ``model`` with nested models (a backbone, a ``Sequential`` block) opened up,
    in order, input layers left out."""
    import keras  # noqa: PLC0415

    out = []
    for layer in model.layers:
        if getattr(layer, "layers", None):
            out += leaf_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            out.append(layer)
    return out


# ---- MLP (03, 04, 06) -------------------------------------------------------------------------


def conv_front(
    filters=(32, 32, 16),
    kernel_sizes=(5, 5, 2),
    strides=(2, 2, 1),
    padding: str = "same",
    batch_norm: bool = False,
    pooling: str | None = None,
    pool_size: int = 2,
    dropout: float = 0.0,
) -> list:
    """The convolutional layers that 04 puts in front of the MLP, as a list of Keras layers.

    Every conv layer is ``Conv2D(f, k, strides=s, padding=padding)`` followed by ReLU; with
    ``batch_norm`` a ``BatchNormalization`` sits between the convolution and its ReLU. After the
    last conv layer come, when asked for, one pooling layer (``"avg"`` or ``"max"``, window and
    stride ``pool_size``) and one ``Dropout(dropout)``.

    With the defaults, a 32x32x3 image becomes 16x16x32, 8x8x32, then 8x8x16 (1,024 values);
    2x2 pooling halves the last to 4x4x16 (256 values).

    Args:
        filters, kernel_sizes, strides: one entry per conv layer (same length); kernel sizes and
            strides in pixels (square).
        padding: ``"same"`` or ``"valid"``.
        batch_norm: add batch normalization after every convolution (before the ReLU).
        pooling: ``None``, ``"avg"`` or ``"max"``.
        pool_size: pooling window and stride in pixels.
        dropout: dropout rate after the last conv layer (0 = none), a fraction in [0, 1).

    Returns:
        A list of layers without an input layer; pass it as ``front=`` to :func:`mlp`.
    """
    from keras import layers  # noqa: PLC0415  (keras only once the backend is settled)

    poolings = {"avg": layers.AveragePooling2D, "max": layers.MaxPooling2D}
    _check_conv_front(filters, kernel_sizes, strides, padding, pooling, dropout)
    out = []
    for f, k, s in zip(filters, kernel_sizes, strides, strict=True):
        if batch_norm:
            out += [
                layers.Conv2D(f, k, strides=s, padding=padding),
                layers.BatchNormalization(),
                layers.Activation("relu"),
            ]
        else:
            out.append(layers.Conv2D(f, k, strides=s, padding=padding, activation="relu"))
    if pooling is not None:
        out.append(poolings[pooling](pool_size))
    if dropout:
        out.append(layers.Dropout(dropout))
    return out


def _check_conv_front(filters, kernel_sizes, strides, padding, pooling, dropout) -> None:
    """Raise a ValueError naming the :func:`conv_front` argument that cannot build its layers."""
    if not len(filters) == len(kernel_sizes) == len(strides):
        raise ValueError(
            f"conv_front: filters {tuple(filters)}, kernel_sizes {tuple(kernel_sizes)} and "
            f"strides {tuple(strides)} need one entry per conv layer (the same length)."
        )
    if padding not in ("same", "valid"):
        raise ValueError(f"conv_front: padding {padding!r} must be 'same' or 'valid'.")
    if pooling is not None and pooling not in ("avg", "max"):
        raise ValueError(f"conv_front: pooling {pooling!r} must be None, 'avg' or 'max'.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"conv_front: dropout {dropout} must be a rate in [0, 1).")


def mlp(
    input_shape=(32, 32, 3),
    hidden=(512, 256),
    activations=("relu", "relu"),
    output_activation: str = "softmax",
    num_classes: int = 10,
    dropout: float = 0.0,
    front: list | None = None,
):
    """A dense classifier on raw uint8 images: ``Rescaling(1/255)``, [front], ``Flatten``, dense.

    Layers: ``Input(input_shape)``, ``Rescaling(1/255)`` (pixels 0-255 become 0-1), the optional
    ``front`` layers (e.g. :func:`conv_front`), ``Flatten``, one ``Dense(units, activation)`` per
    entry of ``hidden`` (each followed by ``Dropout(dropout)`` when ``dropout > 0``), and
    ``Dense(num_classes, output_activation)``.

    Args:
        input_shape: one image, e.g. ``(32, 32, 3)`` for CIFAR-10 or ``(28, 28)`` for MNIST.
        hidden: units of the hidden layers.
        activations: one Keras activation name per hidden layer.
        output_activation: ``"softmax"`` (class probabilities) or e.g. ``"sigmoid"``.
        num_classes: output units.
        dropout: dropout rate after every hidden layer (0 = none).
        front: layers placed between the rescaling and the flattening.

    Returns:
        An uncompiled ``keras.Sequential`` whose output is ``(N, num_classes)``.
    """
    import keras  # noqa: PLC0415  (keras only once the backend is settled)
    from keras import layers  # noqa: PLC0415

    hidden, activations = tuple(hidden), tuple(activations)
    if len(hidden) != len(activations):
        raise ValueError(
            f"mlp: {len(hidden)} hidden layers {hidden} but {len(activations)} activations "
            f"{activations}; give one activation per hidden layer (the output layer's is "
            "output_activation)."
        )
    if num_classes < 1 or any(u < 1 for u in hidden):
        raise ValueError(
            f"mlp: units must be positive; got hidden={hidden}, num_classes={num_classes}."
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"mlp: dropout {dropout} must be a rate in [0, 1).")
    stack = [keras.Input(shape=tuple(input_shape)), layers.Rescaling(1.0 / 255), *(front or [])]
    stack.append(layers.Flatten())
    for units, act in zip(hidden, activations, strict=True):
        stack.append(layers.Dense(units, activation=act))
        if dropout:
            stack.append(layers.Dropout(dropout))
    stack.append(layers.Dense(num_classes, activation=output_activation))
    return keras.Sequential(stack)


# ---- VGG-style convolutional blocks (05, 06, 11) ----------------------------------------------


def vgg_style(
    input_shape=(32, 32, 3),
    filters=(32, 64, 128),
    convs_per_block=2,
    kernel_size=3,
    padding="same",
    dense=(256, 64),
    dropout=0.0,
    l1=0.0,
    l2=0.0,
    extra_pool=True,
    batch_norm=False,
    num_classes=10,
    *,
    last_conv_padding=None,
    bn_momentum=0.99,
    kernel_initializer="glorot_uniform",
    name="vgg_style",
):
    """A VGG-style CNN: blocks of ``convs_per_block`` ReLU convolutions and a 2x2 max pooling,
    then Flatten, ReLU dense layers and a softmax output. Returns an *uncompiled* ``keras.Model``.

    With the defaults it is the base model of Neural Networks HW3 (9 weight layers, 435,434
    parameters)::

        Rescaling(1/255)
        [Conv32-Conv32-MaxPool] [Conv64-Conv64-MaxPool] [Conv128-Conv128-MaxPool-MaxPool]
        Flatten Dense256 Dense64 Dense10-softmax          (3x3 kernels, ReLU, 'same' padding)

    ``input_shape`` is one uint8 image (values 0-255, rescaled to [0, 1] first); ``filters``
    the filters of each block (its length: the number of blocks); ``kernel_size`` the side of
    the square kernels; ``dense`` the hidden dense units (may be empty); ``num_classes`` the
    softmax units; ``name`` the model's name. :class:`_Vgg` explains the layer settings
    (``padding``, ``last_conv_padding``, ``dropout``, ``l1``, ``l2``, ``batch_norm``,
    ``bn_momentum``, ``kernel_initializer``); ``extra_pool`` adds a second 2x2 max pooling
    after the last block (as in the HW3 base model).

    Raises:
        ValueError: a value that cannot build a model (unknown padding, no blocks, a rate
            outside [0, 1), negative regularization, or feature maps that shrink below 1x1).
    """
    import keras  # noqa: PLC0415  (helpers must not import keras before setup())
    from keras import layers  # noqa: PLC0415

    knobs = (kernel_size, padding, last_conv_padding, dropout, l1, l2, batch_norm, bn_momentum)
    spec = _Vgg(*knobs, kernel_initializer)
    filters = spec.check(tuple(filters), convs_per_block)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for b, n_filters in enumerate(filters, start=1):
        last = b == len(filters)
        pools = 2 if (extra_pool and last) else 1
        x = spec.block(x, b, n_filters, convs_per_block, last=last, pools=pools)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense, start=1):
        x = spec.dense(x, i, units)
    outputs = layers.Dense(num_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


@dataclass(frozen=True)
class _Vgg:
    """The layer settings of :func:`vgg_style`, and the blocks and dense layers built with them.

    Attributes:
        kernel_size: side of the square convolution kernels, in pixels.
        padding: ``"same"`` or ``"valid"`` for every convolution.
        last_conv_padding: padding of the very last convolution only (``None``: ``padding``);
            the report's 'valid' variant keeps its last convolution 'same' so the 32x32 input
            does not shrink to nothing.
        dropout: rate of a ``Dropout`` layer after every block and every hidden dense layer
            (0 = none).
        l1, l2: ``keras.regularizers.L1L2`` factors on the kernels of every convolution and
            hidden dense layer (0 and 0 = no regularizer).
        batch_norm: ``Conv -> BatchNormalization -> ReLU`` (convolutions without bias) instead
            of ``Conv(ReLU)``.
        bn_momentum: momentum of the batch normalization's moving mean and variance (Keras's
            default 0.99; PyTorch's default ``momentum=0.1`` corresponds to 0.9 here).
        kernel_initializer: initializer of the kernels of every convolution and hidden dense
            layer (the softmax layer keeps Keras's default); Keras's default
            ``"glorot_uniform"``, or e.g. ``"he_normal"``, which keeps the variance of the
            activations through ReLU layers.
    """

    kernel_size: int
    padding: str
    last_conv_padding: str | None
    dropout: float
    l1: float
    l2: float
    batch_norm: bool
    bn_momentum: float
    kernel_initializer: str = "glorot_uniform"

    def check(self, filters: tuple, convs_per_block: int) -> tuple:
        """``filters``, once every setting is known to build a model (else a ValueError)."""
        pads = (("padding", self.padding), ("last_conv_padding", self.last_conv_padding))
        for label, value in pads:
            if value not in ("same", "valid") and not (
                label == "last_conv_padding" and value is None
            ):
                raise ValueError(f"vgg_style: {label}={value!r}; use 'same' or 'valid'.")
        if not filters or min(filters) < 1 or convs_per_block < 1 or self.kernel_size < 1:
            raise ValueError(
                f"vgg_style: need at least one block with positive sizes; got filters={filters}, "
                f"convs_per_block={convs_per_block}, kernel_size={self.kernel_size}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"vgg_style: dropout={self.dropout} must be in [0, 1).")
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"vgg_style: l1={self.l1} and l2={self.l2} must not be negative.")
        return filters

    def regularizer(self):
        import keras  # noqa: PLC0415

        return keras.regularizers.L1L2(l1=self.l1, l2=self.l2) if (self.l1 or self.l2) else None

    def block(self, x, b: int, n_filters: int, convs: int, *, last: bool, pools: int):
        """Block ``b``: ``convs`` convolutions, ``pools`` 2x2 max poolings, dropout."""
        from keras import layers  # noqa: PLC0415

        for c in range(1, convs + 1):
            pad = self.padding
            if last and c == convs and self.last_conv_padding:
                pad = self.last_conv_padding
            x = layers.Conv2D(
                n_filters,
                self.kernel_size,
                padding=pad,
                activation=None if self.batch_norm else "relu",
                use_bias=not self.batch_norm,
                kernel_regularizer=self.regularizer(),
                kernel_initializer=self.kernel_initializer,
                name=f"block{b}_conv{c}",
            )(x)
            if self.batch_norm:
                x = layers.BatchNormalization(momentum=self.bn_momentum, name=f"block{b}_bn{c}")(x)
                x = layers.Activation("relu", name=f"block{b}_relu{c}")(x)
        for p in range(1, pools + 1):
            if x.shape[1] < 2 or x.shape[2] < 2:
                raise ValueError(
                    f"vgg_style: the feature map is {x.shape[1]}x{x.shape[2]} before pooling "
                    f"{p} of block {b}; use fewer blocks, 'same' padding or a larger input."
                )
            x = layers.MaxPooling2D(2, name=f"block{b}_pool{p}")(x)
        if self.dropout:
            x = layers.Dropout(self.dropout, name=f"block{b}_dropout")(x)
        return x

    def dense(self, x, i: int, units: int):
        """Hidden dense layer ``i`` (ReLU), and its dropout."""
        from keras import layers  # noqa: PLC0415

        x = layers.Dense(
            units,
            activation="relu",
            kernel_regularizer=self.regularizer(),
            kernel_initializer=self.kernel_initializer,
            name=f"dense{i}",
        )(x)
        if self.dropout:
            x = layers.Dropout(self.dropout, name=f"dense{i}_dropout")(x)
        return x


def describe(model) -> str:
    """A one-line layer list such as ``Conv32(3x3,same) Conv32(3x3,same) MaxPool ... Dense10-softmax``.

    Nested models (e.g. an augmentation ``Sequential``) are expanded; input, rescaling and
    plain activation layers are left out. Meant for tables and titles; ``model.summary()``
    remains the full description.
    """
    import keras  # noqa: PLC0415

    parts = []
    for layer in model.layers:
        cfg = layer.get_config()
        kind = type(layer).__name__
        if isinstance(layer, keras.Model):
            parts.append(describe(layer))
        elif kind == "Conv2D":
            k = cfg["kernel_size"]
            act = "" if cfg["activation"] in ("relu", "linear") else f",{cfg['activation']}"
            parts.append(f"Conv{cfg['filters']}({k[0]}x{k[1]},{cfg['padding']}{act})")
        elif kind == "Dense":
            act = "" if cfg["activation"] == "relu" else f"-{cfg['activation']}"
            parts.append(f"Dense{cfg['units']}{act}")
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            parts.append(kind[:3] + "Pool")
        elif kind == "Dropout":
            parts.append(f"Dropout{cfg['rate']:g}")
        elif kind == "BatchNormalization":
            parts.append("BN")
        elif kind in ("InputLayer", "Rescaling", "Activation"):
            continue
        else:
            parts.append(kind)
    return " ".join(parts)
