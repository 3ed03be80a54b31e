"""Mechanics of notebook 12's fast CIFAR-10 recipe, a Keras 3 port of airbench94.

airbench94 (Keller Jordan, https://github.com/KellerJordan/cifar10-airbench) trains a small
three-block network to 94 % test accuracy in under ten epochs. This module holds its pieces as
backend-agnostic Keras 3 code (``keras.ops``, no TensorFlow calls), each small enough to read in
the notebook, which shows their source:

* :func:`build_net`: the layer layout (a whitening conv, three conv/pool/BatchNorm blocks).
* :func:`whitening_kernel`: the first conv's weights from the eigenvectors of image patches.
* :func:`epoch_images`: translate by up to two pixels and flip every other epoch.
* :func:`triangle`: the learning-rate schedule (linear up, then linear down).
* :class:`Lookahead`: an exponential moving average of the weights copied back into the net.
* :func:`tta_logits`: test-time augmentation (mirror and one-pixel translations).
* :func:`fit_recipe`: the epoch loop tying them together; :data:`RECIPE` the hyperparameters.

:func:`conv_flops` counts the network's multiply-adds analytically. A change that can change a
result needs a new :data:`VERSION` (it enters every record's key).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from .files import atomic_write

VERSION = "helpers.fast v1"
CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)  # per channel, images in [0, 1]
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)


@dataclass(frozen=True)
class Recipe:
    """airbench94's hyperparameters and which of its tricks are on.

    Learning rate and weight decay are per 1024 examples as in airbench94; :meth:`keras_lr`
    and :meth:`l2` convert them to a mean-reduced Keras loss. ``epochs`` may be fractional
    (the last epoch is cut short).
    """

    epochs: float = 9.9
    batch_size: int = 1024
    lr: float = 11.5
    momentum: float = 0.85
    weight_decay: float = 0.0153
    bias_scaler: float = 64.0
    label_smoothing: float = 0.2
    widths: tuple = (64, 256, 256)
    batchnorm_momentum: float = 0.6
    whiten_bias_epochs: int = 3
    ema_start_epochs: int = 3
    ema_decay_base: float = 0.95
    ema_decay_pow: float = 3.0
    ema_every_n_steps: int = 5
    whiten: bool = True
    translate: int = 2  # pixels; 0: no translation
    flip: str = "alternating"  # "alternating" | "random" | "none"
    lookahead: bool = True
    tta_level: int = 2  # 0 none, 1 mirror, 2 mirror + translate

    def keras_lr(self) -> float:
        """Peak learning rate of Keras SGD with a mean (not summed) loss: airbench94 sums the
        loss over a batch and divides its rate by 1024 · (1 + 1 / (1 - momentum))."""
        return self.lr / (1 + 1 / (1 - self.momentum)) * self.batch_size / 1024

    def l2(self) -> float:
        """Coefficient of ``keras.regularizers.L2`` equal to airbench94's coupled weight decay."""
        return 0.5 * self.weight_decay / self.lr

    def config(self) -> dict:
        """Everything that determines a run, with :data:`VERSION`: for a record's key."""
        return {"code": VERSION, **asdict(self)}


RECIPE = Recipe()


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 images ``(N, 32, 32, 3)`` to float32 with CIFAR-10's channel mean 0 and std 1."""
    return ((images.astype(np.float32) / 255.0 - CIFAR_MEAN) / CIFAR_STD).astype(np.float32)


class DiracInit(keras.initializers.Initializer):
    """A conv kernel ``(kh, kw, c_in, c_out)`` whose first ``c_in`` filters are the identity
    (an implicit residual); the others uniform in ``±1/sqrt(fan_in)`` like PyTorch's default."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        kh, kw, c_in, c_out = shape
        rand = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=self.seed)
        w = rand(shape, dtype=dtype)
        eye = np.zeros((kh, kw, c_in, min(c_in, c_out)), dtype="float32")
        eye[kh // 2, kw // 2] = np.eye(c_in, min(c_in, c_out))
        return ops.concatenate([ops.cast(eye, w.dtype), w[..., c_in:]], axis=-1)


class Shift(layers.Layer):
    """Adds a learned bias per channel, stored divided by ``scale``: plain SGD then moves it
    ``scale**2`` times faster than a bias stored as is (airbench94's larger learning rate for
    BatchNorm biases, ``bias_scaler = scale**2``). ``gate`` (0 or 1, set by a callback) stops
    its gradient when 0: how the whitening conv's bias is trained for the first epochs only."""

    def __init__(self, scale: float = 1.0, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.l2 = scale, l2

    def build(self, input_shape):
        reg = keras.regularizers.L2(self.l2) if self.l2 else None
        self.bias = self.add_weight((input_shape[-1],), "zeros", regularizer=reg, name="bias")
        self.gate = self.add_weight((), "ones", trainable=False, name="gate")

    def call(self, x):
        b = self.gate * self.bias + (1 - self.gate) * ops.stop_gradient(self.bias)
        return x + self.scale * b


def conv_block(x, width: int, recipe: Recipe, seed: int):
    """airbench94's ConvGroup: conv 3x3, max-pool 2, BatchNorm, GELU, conv 3x3, BatchNorm, GELU.
    BatchNorm has no scale and a bias with a 64x learning rate (:class:`Shift`)."""
    l2 = keras.regularizers.L2(recipe.l2())
    for i in range(2):
        x = layers.Conv2D(
            width, 3, padding="same", use_bias=False, kernel_initializer=DiracInit(seed + i),
            kernel_regularizer=l2,
        )(x)  # fmt: skip
        if i == 0:
            x = layers.MaxPooling2D(2)(x)
        x = layers.BatchNormalization(
            momentum=recipe.batchnorm_momentum, epsilon=1e-12, center=False, scale=False
        )(x)
        x = Shift(math.sqrt(recipe.bias_scaler), recipe.l2())(x)
        x = layers.Activation("gelu")(x)
    return x


def build_net(recipe: Recipe = RECIPE, seed: int = 0) -> keras.Model:
    """The airbench94 network: input ``(32, 32, 3)`` normalized images, output ``(N, 10)`` logits.

    A 2x2 conv with 24 filters (set by :func:`whitening_kernel` and never trained; a random
    trainable conv if ``recipe.whiten`` is off; its bias trained for ``whiten_bias_epochs``),
    GELU, three :func:`conv_block` of ``recipe.widths``, a 3x3 max-pool to 1x1, a linear layer
    without bias scaled by 1/9.
    """
    inputs = keras.Input((32, 32, 3))
    init = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=seed + 98)
    x = layers.Conv2D(24, 2, use_bias=False, kernel_initializer=init, trainable=not recipe.whiten,
                      name="whiten")(inputs)  # fmt: skip
    x = Shift(name="whiten_bias")(x)
    x = layers.Activation("gelu")(x)
    for i, width in enumerate(recipe.widths):
        x = conv_block(x, width, recipe, seed + 10 * i)
    x = layers.Flatten()(layers.MaxPooling2D(3)(x))
    init = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=seed + 99)
    x = layers.Dense(10, use_bias=False, kernel_initializer=init,
                     kernel_regularizer=keras.regularizers.L2(recipe.l2()))(x)  # fmt: skip
    return keras.Model(inputs, layers.Rescaling(1 / 9)(x), name="airbench94")


def patches(images: np.ndarray, size: int = 2) -> np.ndarray:
    """All ``size x size`` patches of ``images (N, H, W, C)``, flattened in Keras kernel order
    ``(kh, kw, C)``: ``(N * (H-size+1) * (W-size+1), size*size*C)`` float64."""
    n, h, w, c = images.shape
    cols = [images[:, i : h - size + 1 + i, j : w - size + 1 + j] for i in range(size)
            for j in range(size)]  # fmt: skip
    return np.stack(cols, axis=3).reshape(-1, size * size * c).astype(np.float64)


def sample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of the rows of ``x`` drawn at random without replacement (all of them if fewer)."""
    return x[np.random.default_rng(seed).permutation(len(x))[:n]]


def whitening_kernel(images: np.ndarray, size: int = 2, eps: float = 5e-4) -> np.ndarray:
    """The whitening conv's kernel ``(size, size, C, 2*size*size*C)`` from normalized images.

    The eigenvectors of the patches' (uncentred) covariance, each divided by the square root of
    its eigenvalue plus ``eps``, largest first, then the same filters negated (so that GELU
    keeps both signs). Its outputs on these patches have covariance ``diag(λ / (λ + eps))``.
    """
    p = patches(images, size)
    lam, vec = np.linalg.eigh(p.T @ p / len(p))
    lam, vec = lam[::-1], vec[:, ::-1]
    filters = vec / np.sqrt(lam + eps)
    c = images.shape[-1]
    kernel = np.concatenate([filters, -filters], axis=1).reshape(size, size, c, -1)
    return kernel.astype(np.float32)


def epoch_images(padded: np.ndarray, epoch: int, recipe: Recipe, flip_mask, rng) -> np.ndarray:
    """One epoch's training images ``(N, 32, 32, C)`` from ``padded`` ``(N, 32+2t, 32+2t, C)``.

    Each image is cut at a random offset of up to ``t = recipe.translate`` pixels each way
    (the padding is a reflection). ``flip="alternating"``: the images ``flip_mask (N,)`` marks
    (half of them, drawn once) are mirrored in even epochs, the others in odd epochs, so every
    image is seen both ways in any two epochs; ``"random"``: a fresh coin per image per epoch.
    """
    t = recipe.translate
    n, side = len(padded), padded.shape[1] - 2 * t
    shifts = rng.integers(0, 2 * t + 1, size=(n, 2))
    out = np.empty((n, side, side, padded.shape[-1]), dtype=padded.dtype)
    for dy in range(2 * t + 1):
        for dx in range(2 * t + 1):
            m = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            out[m] = padded[m, dy : dy + side, dx : dx + side]
    if recipe.flip == "alternating":
        flip = flip_mask ^ bool(epoch % 2)
    elif recipe.flip == "random":
        flip = rng.random(n) < 0.5
    else:
        return out
    out[flip] = out[flip, :, ::-1]
    return out


class Triangle(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate at step ``k`` (0-based): ``peak_lr`` times a factor that rises linearly
    from ``start`` to 1 at step ``int(peak * total_steps)`` and falls linearly to ``end`` at
    ``total_steps`` (airbench94's ``triangle``: 0.2, 1, 0.07 with the peak at 23 %)."""

    def __init__(self, peak_lr, total_steps, start=0.2, end=0.07, peak=0.23):
        self.peak_lr, self.total_steps = float(peak_lr), int(total_steps)
        self.start, self.end, self.peak = float(start), float(end), float(peak)
        self.top = int(peak * total_steps)

    def __call__(self, step):
        k = ops.minimum(ops.cast(step, "float32"), float(self.total_steps))
        up = self.start + (1 - self.start) * k / max(self.top, 1)
        down = 1 + (self.end - 1) * (k - self.top) / max(self.total_steps - self.top, 1)
        return self.peak_lr * ops.where(k < self.top, up, down)

    def get_config(self):
        return {
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "start": self.start,
            "end": self.end,
            "peak": self.peak,
        }


class WhitenBiasGate(keras.callbacks.Callback):
    """Trains the whitening conv's bias in the first ``epochs`` epochs only (sets its gate)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.model.get_layer("whiten_bias").gate.assign(1.0 if epoch < self.epochs else 0.0)


class Lookahead(keras.callbacks.Callback):
    """airbench94's lookahead: every ``every`` steps from epoch ``start_epoch`` on, an
    exponential moving average of all weights (BatchNorm statistics included) moves towards the
    net with decay ``rho = base**every * (step / total_steps)**power`` and is copied back into
    the net; at the end of every epoch the net is set to the average. Steps count across
    ``fit`` calls (one per epoch)."""

    def __init__(self, total_steps, start_epoch=3, base=0.95, power=3.0, every=5):
        super().__init__()
        self.total, self.start, self.every = total_steps, start_epoch, every
        self.base, self.power = base, power
        self.step, self.epoch, self.ema = 0, 0, None

    def _weights(self):
        return [w for w in self.model.weights if w.name != "gate"]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.epoch < self.start or self.step % self.every:
            return
        weights = self._weights()
        if self.ema is None:
            self.ema = [ops.convert_to_numpy(w) for w in weights]
            return
        rho = self.base**self.every * (self.step / self.total) ** self.power
        for avg, w in zip(self.ema, weights, strict=True):
            avg += (1 - rho) * (ops.convert_to_numpy(w) - avg)
            w.assign(avg)

    def on_epoch_end(self, epoch, logs=None):
        if self.ema is not None:
            for avg, w in zip(self.ema, self._weights(), strict=True):
                w.assign(avg)


def tta_logits(model, x: np.ndarray, batch_size: int = 2000) -> list[np.ndarray]:
    """Class scores ``(N, K)`` of normalized images ``x (N, 32, 32, C)`` at the three levels of
    test-time augmentation, ``[level 0, level 1, level 2]``.

    Level 0: the image; 1: the mean with its mirror image; 2: half of level 1, plus a quarter
    each of the same for the image moved one pixel up-left and one down-right (reflected borders).
    """

    def scores(v):
        return np.asarray(model.predict(v, batch_size=batch_size, verbose=0), dtype=np.float64)

    plain = scores(x)
    mirror = 0.5 * (plain + scores(x[:, :, ::-1]))
    p, side = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect"), x.shape[1]
    moved = [p[:, :side, :side], p[:, 2 : side + 2, 2 : side + 2]]
    moved = sum(0.5 * (scores(v) + scores(v[:, :, ::-1])) for v in moved) / 2
    return [plain, mirror, 0.5 * mirror + 0.5 * moved]


def train_throughput(model, x, y, recipe: Recipe, steps: int, jit_compile) -> float:
    """Training images per second of ``model`` over ``steps`` batches of ``recipe.batch_size``
    (after one untimed batch that compiles the step). ``x (N, 32, 32, C)`` float32, ``y (N,)``."""
    compile_net(model, recipe, 100 * steps, jit_compile)
    bs, onehot = recipe.batch_size, np.eye(10, dtype="float32")[y]
    model.fit(x[:bs], onehot[:bs], batch_size=bs, epochs=1, verbose=0)  # compiles the step
    idx = np.arange(steps * bs) % len(x)  # repeats a small x
    start = time.perf_counter()
    model.fit(x[idx], onehot[idx], batch_size=bs, epochs=1, shuffle=False, verbose=0)
    return len(idx) / (time.perf_counter() - start)


def compile_net(model, recipe: Recipe, total_steps: int, jit_compile="auto") -> keras.Model:
    """Compile with airbench94's optimiser: Nesterov SGD with the :class:`Triangle` schedule and
    cross-entropy on label-smoothed one-hot targets (the model outputs logits)."""
    sgd = keras.optimizers.SGD(
        Triangle(recipe.keras_lr(), total_steps), momentum=recipe.momentum, nesterov=True
    )
    loss = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=recipe.label_smoothing
    )
    model.compile(optimizer=sgd, loss=loss, metrics=["accuracy"], jit_compile=jit_compile)
    return model


def fit_recipe(model, x, y, recipe: Recipe, seed: int, jit_compile="auto", log=None, backup=None):
    """Train ``model`` on normalized images ``x (N, 32, 32, C)`` with labels ``y (N,)``.

    Sets the whitening kernel (from 5,000 of the images drawn at random), compiles (:func:`compile_net`),
    then runs one ``fit`` call per epoch on that epoch's :func:`epoch_images`, shuffled, whole
    batches only, the last epoch cut to ``recipe.epochs``. ``log``: a CSV file that gets one
    line per epoch (loss, accuracy). ``backup``: a folder where the state is saved after every
    epoch (:class:`EpochBackup`), so that an interrupted run goes on from its last epoch
    (``history["resumed_after_epoch"]`` then says after which). Returns
    ``(history, epoch_times_s)``, the times of all epochs.
    """
    rng = np.random.default_rng(seed)
    if recipe.whiten:
        model.get_layer("whiten").kernel.assign(whitening_kernel(sample(x, 5000, seed)))
    per_epoch = len(x) // recipe.batch_size
    total = math.ceil(per_epoch * recipe.epochs)
    compile_net(model, recipe, total, jit_compile)
    cbs = [WhitenBiasGate(recipe.whiten_bias_epochs)]
    if log is not None:
        cbs.append(keras.callbacks.CSVLogger(str(log), append=True))
    lookahead = None
    if recipe.lookahead:
        lookahead = Lookahead(total, recipe.ema_start_epochs, recipe.ema_decay_base,
                              recipe.ema_decay_pow, recipe.ema_every_n_steps)  # fmt: skip
        cbs.append(lookahead)
    t = recipe.translate
    padded = np.pad(x, ((0, 0), (t, t), (t, t), (0, 0)), mode="reflect") if t else x
    flip_mask, onehot = rng.random(len(x)) < 0.5, np.eye(10, dtype="float32")[y]
    saved = EpochBackup(backup, model, lookahead, rng) if backup else None
    history, times, first = saved.restore() if saved else ({}, [], 0)
    if first:  # the wall time of this call covers only the epochs after ``first``
        history["resumed_after_epoch"] = [first]
    for epoch in range(first, math.ceil(recipe.epochs)):
        start = time.perf_counter()
        steps = min(per_epoch, total - epoch * per_epoch)
        idx = rng.permutation(len(x))[: steps * recipe.batch_size]
        xe = epoch_images(padded, epoch, recipe, flip_mask, rng)[idx]
        h = model.fit(xe, onehot[idx], batch_size=recipe.batch_size, epochs=epoch + 1,
                      initial_epoch=epoch, shuffle=False, callbacks=cbs, verbose=0)  # fmt: skip
        for k, v in h.history.items():
            history.setdefault(k, []).extend(float(a) for a in v)
        times.append(time.perf_counter() - start)
        if saved:
            saved.save(epoch, history, times)
    if saved:
        saved.remove()
    return history, times


class EpochBackup:
    """The state of :func:`fit_recipe` after an epoch, in ``folder``: the model's weights (with
    BatchNorm statistics), the optimiser's variables, the lookahead average and step count,
    the random generator, the history so far. ``state.json`` is written last and names the
    epoch, so an interruption while saving leaves the previous epoch's state usable."""

    def __init__(self, folder, model, lookahead, rng):
        self.folder, self.model, self.lookahead, self.rng = Path(folder), model, lookahead, rng

    def save(self, epoch: int, history: dict, times: list) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(str(self.folder / f"model-{epoch}.weights.h5"))
        arrays = {f"opt{i}": ops.convert_to_numpy(v) for i, v in
                  enumerate(self.model.optimizer.variables)}  # fmt: skip
        ema = (self.lookahead.ema if self.lookahead else None) or []
        arrays.update({f"ema{i}": a for i, a in enumerate(ema)})
        np.savez(self.folder / f"arrays-{epoch}.npz", **arrays)
        step = self.lookahead.step if self.lookahead else 0
        state = {"epoch": epoch, "history": history, "times": times, "step": step,
                 "ema": len(ema), "rng": self.rng.bit_generator.state}  # fmt: skip
        atomic_write(self.folder / "state.json", json.dumps(state))
        for old in self.folder.glob(f"*-{epoch - 1}.*"):
            old.unlink()

    def restore(self) -> tuple[dict, list, int]:
        """``(history, epoch_times_s, next epoch)`` of the saved state, or a fresh start."""
        path = self.folder / "state.json"
        if not path.is_file():
            return {}, [], 0
        state = json.loads(path.read_text())
        e = state["epoch"]
        self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(self.folder / f"model-{e}.weights.h5"))
        arrays = np.load(self.folder / f"arrays-{e}.npz")
        for i, v in enumerate(self.model.optimizer.variables):
            v.assign(arrays[f"opt{i}"])
        if self.lookahead is not None:
            self.lookahead.step = state["step"]
            self.lookahead.ema = [arrays[f"ema{i}"] for i in range(state["ema"])] or None
        self.rng.bit_generator.state = state["rng"]
        print(f"resumed after epoch {e + 1} from a backup")
        return state["history"], state["times"], e + 1

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def conv_flops(model) -> int:
    """Floating-point operations of one forward pass of one image: 2 per multiply-add of every
    Conv2D and Dense layer (counted from their kernel and output shapes; BatchNorm, GELU and
    pooling, a few per cent more, are left out)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kh, kw, c_in, c_out = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2 * h * w * kh * kw * c_in * c_out
        elif isinstance(layer, layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return int(total)
