"""A multilayer perceptron written out in NumPy: forward pass, backpropagation, mini-batch SGD.

The point is to see every step that Keras hides: affine layers, a hidden non-linearity, a
softmax output with cross-entropy loss, the chain rule applied layer by layer, and plain
stochastic gradient descent. Shapes: inputs ``x`` are ``(N, D)`` floats (scale pixels to [0, 1]
first), labels ``y`` are ``(N,)`` integer class indices in ``[0, K)``, class probabilities are
``(N, K)``.

Example::

    net = MLP([64, 100, 10], hidden_activation="sigmoid", seed=0)  # one hidden layer of 100
    history = net.fit(x_train, y_train, epochs=50, batch_size=32, lr=0.5)
    proba = net.predict_proba(x_test)  # (N, 10), rows sum to 1
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

ACTIVATIONS = ("sigmoid", "relu")
IMPLEMENTATION = "helpers.mlp_numpy v1"  # enters get_config(), so a changed algorithm retrains


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of scores ``(N, K)``, shifted by the row maximum for stability."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the true class (nats); ``proba`` ``(N, K)``, ``y`` ``(N,)``."""
    p = proba[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


class MLP:
    """Fully connected network: ``D -> H1 -> ... -> K`` with a softmax output.

    Args:
        layer_sizes: units per layer including input and output, e.g. ``[64, 100, 10]`` (one
            hidden layer of 100) or ``[64, 100, 50, 10]`` (two hidden layers).
        hidden_activation: ``"sigmoid"`` (Glorot-uniform initial weights) or ``"relu"``
            (He-normal initial weights). Biases start at zero.
        seed: seed of the initial weights and of the mini-batch order in :meth:`fit`.

    Attributes:
        weights: ``weights[l]`` has shape ``(layer_sizes[l], layer_sizes[l + 1])``.
        biases: ``biases[l]`` has shape ``(layer_sizes[l + 1],)``.
        epoch_times_s: wall time of every epoch of the last :meth:`fit`, in seconds.
    """

    def __init__(
        self, layer_sizes: Sequence[int], hidden_activation: str = "sigmoid", seed: int = 0
    ):
        sizes = list(layer_sizes)
        if len(sizes) < 2:
            raise ValueError(
                f"layer_sizes={sizes}: give at least input and output sizes, e.g. [64, 100, 10]."
            )
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1:
                raise ValueError(f"layer_sizes={sizes}: every size must be a positive integer.")
        if sizes[-1] < 2:
            raise ValueError(f"layer_sizes={sizes}: the output layer needs at least 2 classes.")
        if hidden_activation not in ACTIVATIONS:
            raise ValueError(
                f"hidden_activation={hidden_activation!r}: use one of {', '.join(ACTIVATIONS)}."
            )
        self.layer_sizes = [int(s) for s in sizes]
        self.hidden_activation = hidden_activation
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            if hidden_activation == "relu":
                w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                w = rng.uniform(-limit, limit, size=(fan_in, fan_out))
            self.weights.append(w)
            self.biases.append(np.zeros(fan_out))
        self.epoch_times_s: list[float] = []

    # ------------------------------------------------------------------ description

    @property
    def num_inputs(self) -> int:
        return self.layer_sizes[0]

    @property
    def num_classes(self) -> int:
        return self.layer_sizes[-1]

    def count_params(self) -> int:
        """Number of weights and biases."""
        return int(sum(w.size + b.size for w, b in zip(self.weights, self.biases, strict=True)))

    def get_config(self) -> dict:
        """Layer sizes, activation, initialisation and seed (for an experiment record's key)."""
        return {
            "implementation": IMPLEMENTATION,
            "layer_sizes": list(self.layer_sizes),
            "hidden_activation": self.hidden_activation,
            "init": "he_normal" if self.hidden_activation == "relu" else "glorot_uniform",
            "output": "softmax + cross-entropy",
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        arrows = " -> ".join(map(str, self.layer_sizes))
        return f"MLP({arrows}, hidden={self.hidden_activation}, params={self.count_params():,})"

    # ------------------------------------------------------------------ checks

    def _check_x(self, x, name: str = "x") -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(
                f"{name} has shape {x.shape}; expected (N, {self.num_inputs}) rows of features. "
                "Flatten images first, e.g. x.reshape(len(x), -1) / 255.0."
            )
        if x.shape[1] != self.num_inputs:
            raise ValueError(
                f"{name} has {x.shape[1]} features per row but the network's input layer has "
                f"{self.num_inputs}; build MLP([{x.shape[1]}, ...]) or reshape the data."
            )
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise ValueError(f"{name} has dtype {x.dtype}; expected numbers.")
        x = x.astype(np.float64, copy=False)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or infinite values; clean the data first.")
        return x

    def _check_y(self, y, n: int, name: str = "y") -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"{name} has shape {y.shape} and dtype {y.dtype}; expected (N,) integer class "
                "indices (not one-hot rows)."
            )
        if len(y) != n:
            raise ValueError(f"{n} inputs but {len(y)} labels in {name}; they must match.")
        bad = y[(y < 0) | (y >= self.num_classes)]
        if bad.size:
            raise ValueError(
                f"{name} contains label {int(bad[0])}, outside the class range "
                f"0..{self.num_classes - 1} of this network's {self.num_classes} outputs."
            )
        return y.astype(np.int64, copy=False)

    # ------------------------------------------------------------------ forward and backward

    def _activate(self, z: np.ndarray) -> np.ndarray:
        if self.hidden_activation == "relu":
            return np.maximum(z, 0.0)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))

    def _activation_derivative(self, a: np.ndarray) -> np.ndarray:
        """Derivative of the hidden activation, written in terms of its output ``a``."""
        if self.hidden_activation == "relu":
            return (a > 0).astype(a.dtype)
        return a * (1.0 - a)

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations of every layer: ``[x (N, D), a1 (N, H1), ..., proba (N, K)]``."""
        x = self._check_x(x)
        acts = [x]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = acts[-1] @ w + b
            acts.append(softmax(z) if i == last else self._activate(z))
        return acts

    def backward(
        self, activations: list[np.ndarray], y: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradients of the mean cross-entropy with respect to every weight and bias.

        Args:
            activations: the output of :meth:`forward` for a batch of ``N`` rows.
            y: ``(N,)`` integer labels of that batch.

        Returns:
            ``(grad_weights, grad_biases)``, shaped like :attr:`weights` and :attr:`biases`.

        With softmax outputs ``p`` and one-hot targets ``t`` the error at the output scores is
        ``delta = (p - t) / N``. For each layer ``l`` from the top: ``dW_l = a_l.T @ delta``,
        ``db_l = sum(delta)``, and the error passed down is ``(delta @ W_l.T) * f'(a_l)``.
        """
        proba = activations[-1]
        y = self._check_y(y, len(proba))
        n = len(y)
        delta = proba.copy()
        delta[np.arange(n), y] -= 1.0
        delta /= n
        grad_w: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        grad_b: list[np.ndarray] = [np.empty(0)] * len(self.biases)
        for layer in range(len(self.weights) - 1, -1, -1):
            a_in = activations[layer]
            grad_w[layer] = a_in.T @ delta
            grad_b[layer] = delta.sum(axis=0)
            if layer > 0:
                delta = (delta @ self.weights[layer].T) * self._activation_derivative(a_in)
        return grad_w, grad_b

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy (nats) of the network on ``x`` ``(N, D)`` with labels ``y`` ``(N,)``."""
        proba = self.predict_proba(x)
        return cross_entropy(proba, self._check_y(y, len(proba)))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, K)`` for inputs ``(N, D)``."""
        return self.forward(x)[-1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class indices ``(N,)``."""
        return self.predict_proba(x).argmax(axis=1)

    # ------------------------------------------------------------------ training

    def _check_fit_args(self, epochs, batch_size, lr, validation_data):
        """Raise a clear error for a bad fit argument; the checked validation pair (or None)."""
        if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
            raise ValueError(f"epochs={epochs!r}: use a positive integer.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise ValueError(f"batch_size={batch_size!r}: use a positive integer.")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: use a positive integer.")
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr={lr!r}: the learning rate must be a positive number.")
        if validation_data is None:
            return None
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val).")
        xv = self._check_x(validation_data[0], "validation x")
        return xv, self._check_y(validation_data[1], len(xv), "validation y")

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 0.1,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        forward=None,
        backward=None,
    ) -> dict[str, list[float]]:
        """Mini-batch stochastic gradient descent on the mean cross-entropy.

        Every epoch visits the rows of ``x`` once in a new random order (seeded by ``seed``)
        and takes one step ``param -= lr * gradient`` per batch.

        Args:
            x: ``(N, D)`` float inputs.
            y: ``(N,)`` integer labels.
            epochs: passes over the data.
            batch_size: rows per gradient step (the last batch may be smaller).
            lr: learning rate.
            validation_data: optional ``(x_val, y_val)`` evaluated after every epoch.
            forward, backward: the passes to train with, written elsewhere (notebook 02):
                ``forward(weights, biases, x) -> activations`` and
                ``backward(weights, activations, y) -> (grad_weights, grad_biases)``, with the
                shapes of :meth:`forward` and :meth:`backward` (default: those methods).

        Returns:
            History with one value per epoch, like Keras's: ``loss`` and ``accuracy`` are the
            averages over the epoch's batches (weights changing as it goes), ``val_loss`` and
            ``val_accuracy`` (with ``validation_data``) are measured at the epoch's end.
        """
        x = self._check_x(x)
        y = self._check_y(y, len(x))
        val = self._check_fit_args(epochs, batch_size, lr, validation_data)
        fwd = forward or (lambda w, b, xb: self.forward(xb))
        bwd = backward or (lambda w, acts, yb: self.backward(acts, yb))
        rng = np.random.default_rng(self.seed)
        history: dict[str, list[float]] = {"loss": [], "accuracy": []}
        if val is not None:
            history.update(val_loss=[], val_accuracy=[])
        self.epoch_times_s = []
        for _ in range(int(epochs)):
            start = time.perf_counter()
            loss, accuracy = self._train_epoch(
                x, y, rng.permutation(len(x)), batch_size, lr, fwd, bwd
            )
            history["loss"].append(loss)
            history["accuracy"].append(accuracy)
            if val is not None:
                proba = fwd(self.weights, self.biases, val[0])[-1]
                history["val_loss"].append(cross_entropy(proba, val[1]))
                history["val_accuracy"].append(float((proba.argmax(axis=1) == val[1]).mean()))
            self.epoch_times_s.append(time.perf_counter() - start)
            if not np.isfinite(history["loss"][-1]):
                break
        return history

    def _train_epoch(
        self, x, y, order, batch_size: int, lr: float, fwd, bwd
    ) -> tuple[float, float]:
        """One epoch of SGD over the rows of ``x`` in ``order``: the mean loss and the accuracy
        over its batches (weights changing as it goes)."""
        n = len(x)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            acts = fwd(self.weights, self.biases, x[idx])
            loss_sum += cross_entropy(acts[-1], y[idx]) * len(idx)
            correct += int((acts[-1].argmax(axis=1) == y[idx]).sum())
            grad_w, grad_b = bwd(self.weights, acts, y[idx])
            for layer in range(len(self.weights)):
                self.weights[layer] -= lr * grad_w[layer]
                self.biases[layer] -= lr * grad_b[layer]
        return loss_sum / n, correct / n


def numeric_gradients(net: MLP, x: np.ndarray, y: np.ndarray, eps: float = 1e-6):
    """Central finite differences of the mean cross-entropy for every weight and bias of ``net``
    (nudged by ``+-eps`` in turn), shaped like ``(net.weights, net.biases)``."""
    out = []
    for params in (net.weights, net.biases):
        grads = []
        for param in params:
            numeric = np.zeros_like(param)
            for idx in np.ndindex(param.shape):
                old = param[idx]
                param[idx] = old + eps
                up = net.loss(x, y)
                param[idx] = old - eps
                down = net.loss(x, y)
                param[idx] = old
                numeric[idx] = (up - down) / (2 * eps)
            grads.append(numeric)
        out.append(grads)
    return tuple(out)


def _largest_relative_difference(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """Largest ``|got - want|`` relative to each array's largest ``|want|``."""
    return max(
        float(np.abs(g - w).max() / max(np.abs(w).max(), 1e-8))
        for g, w in zip(got, want, strict=True)
    )


def gradient_check(net: MLP, x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> float:
    """Largest relative difference between backprop and central finite differences.

    Every weight and bias of ``net`` is nudged by ``+-eps`` in turn and the change of the mean
    cross-entropy on ``x`` ``(N, D)``, ``y`` ``(N,)`` is compared with :meth:`MLP.backward`.
    Meant for tiny networks (two loss evaluations per parameter). Values around 1e-9 mean the
    gradients are right; 1e-2 or more means a bug. Relative to each parameter array's largest
    numerical gradient.
    """
    grad_w, grad_b = net.backward(net.forward(x), y)
    num_w, num_b = numeric_gradients(net, x, y, eps)
    return _largest_relative_difference([*grad_w, *grad_b], [*num_w, *num_b])


def check_passes(forward, backward, sizes=(6, 5, 4, 3), seed: int = 0) -> dict[str, float]:
    """Check a forward and a backward pass written elsewhere (notebook 02) on a tiny sigmoid
    network with random inputs, labels and biases.

    Args:
        forward: ``forward(weights, biases, x) -> [x, a1, ..., proba]``.
        backward: ``backward(weights, activations, y) -> (grad_weights, grad_biases)``.

    Returns:
        The largest relative difference of the forward pass from :meth:`MLP.forward` and of the
        backward pass from :meth:`MLP.backward` and from central finite differences.
    """
    rng = np.random.default_rng(seed)
    net = MLP(list(sizes), hidden_activation="sigmoid", seed=seed)
    for b in net.biases:
        b += rng.normal(scale=0.1, size=b.shape)
    x, y = rng.normal(size=(8, sizes[0])), rng.integers(0, sizes[-1], size=8)
    acts = forward(net.weights, net.biases, x)
    grad_w, grad_b = backward(net.weights, acts, y)
    ref_w, ref_b = net.backward(net.forward(x), y)
    num_w, num_b = numeric_gradients(net, x, y)
    return {
        "forward vs MLP.forward": _largest_relative_difference(acts, net.forward(x)),
        "backward vs MLP.backward": _largest_relative_difference(
            [*grad_w, *grad_b], [*ref_w, *ref_b]
        ),
        "backward vs finite differences": _largest_relative_difference(
            [*grad_w, *grad_b], [*num_w, *num_b]
        ),
    }
