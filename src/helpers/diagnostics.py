"""What a model does with one batch, layer by layer: the spread of each layer's activations, the
share of its ReLU units that are silent, and the norm of the loss gradient on its kernel.

Meant for the state at initialisation (or after a few steps), to see why a model trains or does
not: activations that shrink from layer to layer, units that never fire, gradients that vanish
before they reach the first layers::

    frame = diagnostics.layer_statistics(model, x_batch, y_batch)
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _kernel_layers(model) -> list:
    """The layers with a ``kernel`` (convolutions, dense layers), in order."""
    from .models import leaf_layers  # noqa: PLC0415

    return [layer for layer in leaf_layers(model) if getattr(layer, "kernel", None) is not None]


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", str(act)) if act is not None else "linear"


def _observed_outputs(model) -> list[tuple]:
    """``(kernel layer, layer whose output is observed, activation name)``: the layer itself when
    it applies its own activation, else the first ``Activation`` layer after it and before the
    next kernel layer (as in ``Conv -> BatchNormalization -> ReLU``)."""
    import keras  # noqa: PLC0415

    from .models import leaf_layers  # noqa: PLC0415

    layers = leaf_layers(model)
    kernels = _kernel_layers(model)
    out = []
    for layer in kernels:
        observed, act = layer, _activation_name(layer)
        if act == "linear":
            for later in layers[layers.index(layer) + 1 :]:
                if later in kernels:
                    break
                if isinstance(later, keras.layers.Activation):
                    observed, act = later, _activation_name(later)
                    break
        out.append((layer, observed, act))
    return out


def _kernel_gradients(model, x, y, loss, training: bool) -> list[np.ndarray]:
    """Gradient of the mean ``loss`` on ``(x, y)`` with respect to every kernel."""
    import keras  # noqa: PLC0415

    kernels = [layer.kernel for layer in _kernel_layers(model)]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        with tf.GradientTape() as tape:
            value = keras.ops.mean(loss(y, model(x, training=training)))
        grads = tape.gradient(value, [k.value for k in kernels])
        return [
            np.zeros(k.shape) if g is None else np.asarray(g)
            for k, g in zip(kernels, grads, strict=True)
        ]
    raise ValueError(
        f"layer_statistics computes gradients with the tensorflow backend; "
        f"KERAS_BACKEND is {backend!r}"
    )


def layer_statistics(
    model, x, y, loss="sparse_categorical_crossentropy", training: bool = True
) -> pd.DataFrame:
    """One row per convolution and dense layer of ``model`` on the batch ``(x, y)``.

    Columns:
        ``activation``: the nonlinearity whose output is observed (the layer's own, or the
        ``Activation`` layer that follows it); ``output sd``: standard deviation of that output
        over the batch, positions and units; ``zero outputs``: the share of those values that are
        exactly 0; ``dead units``: for a ReLU, the share of its units (channels of a convolution)
        that are 0 for every image and position of the batch (NaN for other activations);
        ``gradient norm``: L2 norm of the gradient of the mean loss with respect to the layer's
        kernel; ``weight norm``: L2 norm of the kernel itself.

    ``training=True`` (the default) passes the batch as a training step does: batch
    normalization uses the batch's own statistics (and dropout, if any, is active); no weight
    changes. ``loss`` is a Keras loss (name or object) of ``(y, model(x))``; the gradient needs
    the tensorflow backend.
    """
    import keras  # noqa: PLC0415

    loss = keras.losses.get(loss)
    observed = _observed_outputs(model)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    probe = keras.Model(inputs, [layer.output for _, layer, _ in observed])
    outputs = probe(x, training=training)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    grads = _kernel_gradients(model, x, y, loss, training)
    rows = []
    for (layer, _, act), out, grad in zip(observed, outputs, grads, strict=True):
        a = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64)
        units = a.reshape(-1, a.shape[-1])
        dead = float(np.mean(np.all(units <= 0.0, axis=0))) if act == "relu" else float("nan")
        rows.append(
            {
                "layer": layer.name,
                "units": a.shape[-1],
                "activation": act,
                "output sd": float(a.std()),
                "zero outputs": float(np.mean(a == 0.0)),
                "dead units": dead,
                "gradient norm": float(np.linalg.norm(grad)),
                "weight norm": float(np.linalg.norm(keras.ops.convert_to_numpy(layer.kernel))),
            }
        )
    return pd.DataFrame(rows).set_index("layer")
