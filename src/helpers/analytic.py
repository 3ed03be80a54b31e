"""Reference implementation that checks the hand-derived backpropagation of notebook 01, in NumPy.

The small MLP of Intelligent Systems HW4, question 1 (docs/assignments.md).

The network is 3 → 2 → 3 → 2 → 1 with column vectors (one sample at a time)::

    A1 = W1 X + B1    Z    = tanh(A1)       X (3,1)   W1 (2,3)  B1 (2,1)  A1, Z (2,1)
    A2 = W2 Z + B2    K    = sigmoid(A2)              W2 (3,2)  B2 (3,1)  A2, K (3,1)
    A3 = W3 K + B3    P    = tanh(A3)                 W3 (2,3)  B3 (2,1)  A3, P (2,1)
    A4 = W4 P + B4    yhat = ReLU(A4)                 W4 (1,2)  B4 (1,1)  A4, yhat (1,1)

with the loss ``E = 1/2 (yhat - y)^2`` and the report's convention ReLU'(z) = u(z) = 1 for
z >= 0 (so ReLU'(0) = 1). Parameters are a dict ``{"W1": ..., "B1": ..., ..., "B4": ...}`` of
float64 arrays with the shapes above. Nothing here imports Keras at module level; only
:func:`autodiff_gradients` does, inside the function, to check the hand-written gradients
against the backend's automatic differentiation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

LAYERS = (1, 2, 3, 4)
SHAPES: dict[str, tuple[int, int]] = {
    "W1": (2, 3),
    "B1": (2, 1),
    "W2": (3, 2),
    "B2": (3, 1),
    "W3": (2, 3),
    "B3": (2, 1),
    "W4": (1, 2),
    "B4": (1, 1),
}
KEYS = tuple(SHAPES)

REPORT_PARAMS: dict[str, np.ndarray] = {
    "W1": np.array([[0.17, 0.37, 0.57], [0.27, 0.47, 0.47]]),
    "B1": np.array([[0.71], [0.72]]),
    "W2": np.array([[7.15, 7.45], [7.25, 7.55], [7.35, 7.65]]),
    "B2": np.array([[7.15], [7.25], [7.35]]),
    "W3": np.array([[49.12, 49.32, 49.52], [49.22, 49.42, 49.62]]),
    "B3": np.array([[0.995], [1.095]]),
    "W4": np.array([[0.16, 0.36]]),
    "B4": np.array([[0.26]]),
}
"""The report's initial parameters (float64, shapes as in :data:`SHAPES`)."""

REPORT_X = np.array([[7.0], [7.0], [7.0]])
"""The report's input, X1 = X2 = (7, 7, 7) as a (3, 1) column."""

REPORT_Y = 7.0
"""The report's target, Y1 = Y2 = 7."""

REPORT_LR = 0.35
"""The report's learning rate alpha."""


def check_params(params: Mapping[str, object]) -> dict[str, np.ndarray]:
    """Return ``params`` as float64 arrays after checking keys and shapes.

    Raises:
        ValueError: naming the missing or unexpected key, or the key with the wrong shape and
            the shape it must have.
    """
    if not isinstance(params, Mapping):
        raise ValueError(
            f"params must be a dict with keys {', '.join(KEYS)}; got {type(params).__name__}"
        )
    missing = [k for k in KEYS if k not in params]
    if missing:
        raise ValueError(
            f"params is missing key(s) {', '.join(missing)}; expected "
            + ", ".join(f"{k} with shape {SHAPES[k]}" for k in missing)
        )
    extra = sorted(set(params) - set(KEYS))
    if extra:
        raise ValueError(
            f"params has unexpected key(s) {', '.join(map(str, extra))}; valid keys: {', '.join(KEYS)}"
        )
    out = {}
    for k in KEYS:
        arr = np.asarray(params[k], dtype=np.float64)
        if arr.shape != SHAPES[k]:
            raise ValueError(f"params[{k!r}] has shape {arr.shape}; expected shape {SHAPES[k]}")
        out[k] = arr
    return out


def _column(x) -> np.ndarray:
    """``x`` as a float64 (3, 1) column; a flat vector of 3 values is accepted too."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size != 3 or arr.ndim > 2:
        raise ValueError(f"x must hold 3 inputs with shape (3, 1); got shape {arr.shape}")
    return arr.reshape(3, 1)


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function, elementwise, without overflow warnings for large ``|a|``."""
    a = np.asarray(a, dtype=np.float64)
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def relu_derivative(a: np.ndarray) -> np.ndarray:
    """u(a): 1 where ``a >= 0`` and 0 elsewhere (the report's convention ReLU'(0) = 1)."""
    return (np.asarray(a) >= 0).astype(np.float64)


def forward(params: Mapping[str, object], x) -> dict[str, np.ndarray]:
    """Forward pass of one sample.

    Args:
        params: the eight parameter arrays (see :data:`SHAPES`).
        x: the input, shape (3, 1) (a flat vector of 3 values is accepted).

    Returns:
        ``{"A1", "Z", "A2", "K", "A3", "P", "A4", "yhat"}``: pre-activations ``A1`` (2,1),
        ``A2`` (3,1), ``A3`` (2,1), ``A4`` (1,1) and activations ``Z`` (2,1), ``K`` (3,1),
        ``P`` (2,1), ``yhat`` (1,1).
    """
    p = check_params(params)
    x = _column(x)
    a1 = p["W1"] @ x + p["B1"]
    z = np.tanh(a1)
    a2 = p["W2"] @ z + p["B2"]
    k = sigmoid(a2)
    a3 = p["W3"] @ k + p["B3"]
    pp = np.tanh(a3)
    a4 = p["W4"] @ pp + p["B4"]
    yhat = np.maximum(a4, 0.0)
    return {"A1": a1, "Z": z, "A2": a2, "K": k, "A3": a3, "P": pp, "A4": a4, "yhat": yhat}


def loss(params: Mapping[str, object], x, y: float) -> float:
    """E = 1/2 (yhat - y)^2 for one sample (a float)."""
    yhat = forward(params, x)["yhat"]
    return float(0.5 * (yhat[0, 0] - float(y)) ** 2)


def local_derivatives(cache: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The activation derivatives that multiply the backpropagated error, from a forward cache.

    Returns:
        ``{"1-Z^2": (2,1), "K(1-K)": (3,1), "1-P^2": (2,1), "u(A4)": (1,1)}``: tanh'(A1),
        sigmoid'(A2), tanh'(A3) and ReLU'(A4), written with the activations as in the report.
    """
    z, k, p = cache["Z"], cache["K"], cache["P"]
    return {
        "1-Z^2": 1.0 - z**2,
        "K(1-K)": k * (1.0 - k),
        "1-P^2": 1.0 - p**2,
        "u(A4)": relu_derivative(cache["A4"]),
    }


def gradients(params: Mapping[str, object], x, y: float) -> dict[str, np.ndarray]:
    """Hand-derived gradients of E = 1/2 (yhat - y)^2 for one sample.

    With deltas ``d_l = dE/dA_l``::

        d4 = (yhat - y) * u(A4)                 D(W4) = d4 P^T    D(B4) = d4
        d3 = (W4^T d4) * (1 - P^2)              D(W3) = d3 K^T    D(B3) = d3
        d2 = (W3^T d3) * K(1 - K)               D(W2) = d2 Z^T    D(B2) = d2
        d1 = (W2^T d2) * (1 - Z^2)              D(W1) = d1 X^T    D(B1) = d1

    Args:
        params: the eight parameter arrays (see :data:`SHAPES`).
        x: the input, shape (3, 1).
        y: the target (a scalar).

    Returns:
        A dict with the keys and shapes of ``params`` (W1 (2,3), B1 (2,1), ..., B4 (1,1)).

    Raises:
        ValueError: for a missing/unexpected key or a wrong shape in ``params``, or a bad ``x``.
    """
    p = check_params(params)
    x = _column(x)
    c = forward(p, x)
    f = local_derivatives(c)
    d4 = (c["yhat"] - float(y)) * f["u(A4)"]
    d3 = (p["W4"].T @ d4) * f["1-P^2"]
    d2 = (p["W3"].T @ d3) * f["K(1-K)"]
    d1 = (p["W2"].T @ d2) * f["1-Z^2"]
    return {
        "W1": d1 @ x.T,
        "B1": d1,
        "W2": d2 @ c["Z"].T,
        "B2": d2,
        "W3": d3 @ c["K"].T,
        "B3": d3,
        "W4": d4 @ c["P"].T,
        "B4": d4,
    }


def sgd_step(
    params: Mapping[str, object], grads: Mapping[str, object], lr: float
) -> dict[str, np.ndarray]:
    """One gradient-descent update ``theta - lr * dE/dtheta`` for every key; returns new arrays."""
    p = check_params(params)
    g = check_params(grads)
    return {k: p[k] - lr * g[k] for k in KEYS}


def train(
    params: Mapping[str, object], samples: Iterable[tuple[object, float]], lr: float
) -> tuple[list[dict[str, np.ndarray]], list[float]]:
    """Plain SGD with one update per sample, in the order given.

    Args:
        params: initial parameters (not modified).
        samples: ``(x, y)`` pairs, ``x`` of shape (3, 1) and ``y`` a scalar.
        lr: learning rate alpha.

    Returns:
        ``(history, losses)``: ``history[i]`` are the parameters after the update on sample
        ``i``; ``losses[i]`` is the loss of sample ``i`` seen by its forward pass, i.e. *before*
        its own update.
    """
    current = check_params(params)
    history, losses = [], []
    for x, y in samples:
        losses.append(loss(current, x, y))
        current = sgd_step(current, gradients(current, x, y), lr)
        history.append(current)
    return history, losses


def finite_difference_gradients(
    params: Mapping[str, object], x, y: float, eps: float = 1e-5
) -> dict[str, np.ndarray]:
    """Central differences ``(E(theta + eps) - E(theta - eps)) / (2 eps)``, one entry at a time.

    Returns a dict with the keys and shapes of ``params``. ``eps`` is an absolute step.
    """
    p = check_params(params)
    out = {}
    for k in KEYS:
        g = np.zeros(SHAPES[k])
        for idx in np.ndindex(*SHAPES[k]):
            plus = {**p, k: p[k].copy()}
            minus = {**p, k: p[k].copy()}
            plus[k][idx] += eps
            minus[k][idx] -= eps
            g[idx] = (loss(plus, x, y) - loss(minus, x, y)) / (2.0 * eps)
        out[k] = g
    return out


def _keras_loss(ops, tensors: Mapping[str, object], x, y: float):
    """E written with ``keras.ops`` (the same network), differentiable by the active backend.

    ReLU is written as ``where(A4 >= 0, A4, 0)`` so that its autodiff derivative at 0 is 1, the
    report's convention (``keras.ops.relu`` has derivative 0 there on TensorFlow).
    """
    t = tensors
    a1 = ops.matmul(t["W1"], x) + t["B1"]
    z = ops.tanh(a1)
    a2 = ops.matmul(t["W2"], z) + t["B2"]
    k = ops.sigmoid(a2)
    a3 = ops.matmul(t["W3"], k) + t["B3"]
    p = ops.tanh(a3)
    a4 = ops.matmul(t["W4"], p) + t["B4"]
    yhat = ops.where(a4 >= 0, a4, ops.zeros_like(a4))
    return 0.5 * ops.sum(ops.square(yhat - y))


def autodiff_gradients(params: Mapping[str, object], x, y: float) -> dict[str, np.ndarray]:
    """Gradients of E from the Keras backend's automatic differentiation (float64 where possible).

    The forward pass is written with ``keras.ops``; the gradient is taken with
    ``tf.GradientTape`` (backend ``tensorflow``), ``jax.grad`` (``jax``; float64 only when
    ``jax_enable_x64`` is on, else float32) or ``torch.autograd`` (``torch``).

    Returns:
        NumPy float64 arrays with the keys and shapes of ``params``.
    """
    import keras  # noqa: PLC0415  (after KERAS_BACKEND is settled)

    p = check_params(params)
    x = _column(x)
    backend = keras.backend.backend()
    ops = keras.ops
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        tensors = {k: tf.Variable(v, dtype=tf.float64) for k, v in p.items()}
        with tf.GradientTape() as tape:
            e = _keras_loss(ops, tensors, tf.constant(x, dtype=tf.float64), float(y))
        grads = tape.gradient(e, tensors)
        return {k: np.asarray(grads[k].numpy(), dtype=np.float64) for k in KEYS}
    if backend == "jax":
        import jax  # noqa: PLC0415
        import jax.numpy as jnp  # noqa: PLC0415

        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        tensors = {k: jnp.asarray(v, dtype=dtype) for k, v in p.items()}
        xj = jnp.asarray(x, dtype=dtype)
        grads = jax.grad(lambda t: _keras_loss(ops, t, xj, float(y)))(tensors)
        return {k: np.asarray(grads[k], dtype=np.float64) for k in KEYS}
    if backend == "torch":
        import torch  # noqa: PLC0415

        tensors = {
            k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()
        }
        e = _keras_loss(ops, tensors, torch.tensor(x, dtype=torch.float64), float(y))
        e.backward()
        return {k: tensors[k].grad.detach().cpu().numpy().astype(np.float64) for k in KEYS}
    raise ValueError(
        f"autodiff_gradients supports the tensorflow, jax and torch backends; "
        f"KERAS_BACKEND is {backend!r}"
    )


def random_params(seed: int = 0, scale: float = 0.1, output_bias: float = 1.0):
    """Small random parameters where no unit saturates (for checking gradients).

    Every entry is drawn from N(0, scale^2) with ``numpy.random.default_rng(seed)``, except B4,
    which is set to ``output_bias`` so the ReLU output unit is active (A4 > 0): a dead ReLU
    would zero every gradient, a different failure than saturation.
    """
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, scale, size=SHAPES[k]) for k in KEYS}
    params["B4"] = np.full(SHAPES["B4"], float(output_bias))
    return params


def gradient_differences(
    reference: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray]
) -> list[dict[str, float]]:
    """Per key: the largest |reference|, the largest absolute difference and the largest
    relative difference ``|a - b| / max(|a|, |b|)`` (0 where both are exactly 0)."""
    rows = []
    for k in KEYS:
        a = np.asarray(reference[k], dtype=np.float64)
        b = np.asarray(other[k], dtype=np.float64)
        diff = np.abs(a - b)
        scale = np.maximum(np.abs(a), np.abs(b))
        rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
        rows.append(
            {
                "param": k,
                "max |grad|": float(np.abs(a).max()),
                "max abs diff": float(diff.max()),
                "max rel diff": float(rel.max()),
            }
        )
    return rows


def layer_gradient_norms(grads: Mapping[str, np.ndarray]) -> dict[int, float]:
    """Euclidean norm of each layer's gradient (W and B together), ``{1: ..., 4: ...}``."""
    return {
        layer: float(np.sqrt(np.sum(grads[f"W{layer}"] ** 2) + np.sum(grads[f"B{layer}"] ** 2)))
        for layer in LAYERS
    }


def fmt(a, precision: int = 5, scientific: bool = False) -> str:
    """Fixed-precision text of an array, identical on every machine (no ``-0``).

    ``scientific=True`` prints ``precision - 1`` digits after the point in e-notation, for
    values far below 1 (saturated derivatives).
    """
    arr = np.asarray(a, dtype=np.float64) + 0.0  # turns -0.0 into 0.0
    if scientific:
        return np.array2string(
            arr, formatter={"float_kind": lambda v: f"{v + 0.0:.{precision - 1}e}"}
        )
    return np.array2string(arr, precision=precision, suppress_small=True, floatmode="maxprec")
