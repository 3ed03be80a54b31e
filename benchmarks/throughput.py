"""Training throughput of the suite's CIFAR-10 models on this machine.

For every model and batch size: build and compile the model as its notebook does, run one
warm-up epoch (graph tracing, memory allocation), then time ``--epochs`` epochs over the same
``--images`` images and print images per second and seconds per epoch. Last, for each model, the
ratio between the fastest batch size and the notebooks' default (batch 32).

    python benchmarks/throughput.py                                   # all models, batch 32 and 128
    python benchmarks/throughput.py --models mlp,vgg --batch-sizes 32,64,256 --images 10000
    KERAS_BACKEND=jax python benchmarks/throughput.py --models vgg      # any Keras backend
    python benchmarks/throughput.py --list                            # the model names

Images are CIFAR-10 training images from ``$SUITE_DATA_DIR/cifar10`` (or ``keras.datasets``);
where neither can be had, random uint8 images of the same shape are used and the output says so
(the speed of these models does not depend on the pixel values). Batches are fed the way
``helpers.training.fit_and_record`` feeds them: a ``tf.data`` pipeline on the TensorFlow backend,
NumPy arrays on the others. Run it on a quiet machine: other processes on the same cores change
the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

DEFAULT_BATCH = 32  # what the notebooks use unless an experiment says otherwise


def _models() -> dict:
    """Model name -> (notebooks, description, builder, optimizer factory, loss, one-hot labels)."""
    import keras  # noqa: PLC0415

    from helpers import models  # noqa: PLC0415

    def vgg(**kw):
        if not hasattr(models, "vgg_style"):
            raise LookupError("helpers.models.vgg_style is not available in this checkout")
        return models.vgg_style(**kw)

    def conv_mlp(**kw):
        return models.mlp((32, 32, 3), hidden=(512, 256), front=models.conv_front(**kw))

    def conv_mlp_reg():
        front = models.conv_front(batch_norm=True, pooling="avg", dropout=0.25)
        return models.mlp((32, 32, 3), hidden=(512, 256), dropout=0.25, front=front)

    return {
        "mlp": (
            "03, 06",
            "MLP 3072-512-256-10 (SGD, CCE)",
            lambda: models.mlp((32, 32, 3), hidden=(512, 256)),
            lambda: keras.optimizers.SGD(0.01),
            "categorical_crossentropy",
            True,
        ),
        "conv_mlp": (
            "04",
            "3 conv layers + MLP (Adagrad, CCE)",
            conv_mlp,
            lambda: keras.optimizers.Adagrad(0.001),
            "categorical_crossentropy",
            True,
        ),
        "conv_mlp_reg": (
            "04",
            "3 conv + BN + avg pool + dropout + MLP (Adagrad, CCE)",
            conv_mlp_reg,
            lambda: keras.optimizers.Adagrad(0.001),
            "categorical_crossentropy",
            True,
        ),
        "vgg": (
            "05, 06",
            "VGG-style base model of Neural Networks HW3 (Adam, sparse CCE)",
            lambda: vgg(),
            lambda: keras.optimizers.Adam(),
            "sparse_categorical_crossentropy",
            False,
        ),
        "vgg_bn_do": (
            "06",
            "VGG-style with batch norm and dropout 0.2 (Adam, sparse CCE)",
            lambda: vgg(batch_norm=True, dropout=0.2),
            lambda: keras.optimizers.Adam(),
            "sparse_categorical_crossentropy",
            False,
        ),
    }


MODEL_NAMES = ("mlp", "conv_mlp", "conv_mlp_reg", "vgg", "vgg_bn_do")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. 32,128"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers, e.g. 32,128")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--models",
        default=",".join(MODEL_NAMES),
        help=f"comma-separated model names (default: all): {', '.join(MODEL_NAMES)}",
    )
    p.add_argument("--batch-sizes", type=_int_list, default=[32, 128], help="default: 32,128")
    p.add_argument(
        "--images", type=int, default=5000, help="training images per epoch (default 5000)"
    )
    p.add_argument(
        "--epochs", type=int, default=1, help="timed epochs after the warm-up (default 1)"
    )
    p.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)",
    )
    p.add_argument(
        "--jit",
        choices=("auto", "on", "off"),
        help="XLA compilation of the train step (default: as training.fit: $SUITE_JIT_COMPILE, "
        "else auto)",
    )
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--list", action="store_true", help="list the models and exit")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODEL_NAMES]
    if unknown or not args.models:
        p.error(f"unknown model(s) {unknown or args.models}; choose from {', '.join(MODEL_NAMES)}")
    if args.images < 1 or args.epochs < 1:
        p.error(f"--images ({args.images}) and --epochs ({args.epochs}) must be at least 1")
    return args


def use_backend(backend: str | None):
    """Import Keras on ``backend`` (default ``$KERAS_BACKEND``, else TensorFlow); the module."""
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415  (after KERAS_BACKEND is set)

    return keras


def load_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` CIFAR-10 training images ``(n, 32, 32, 3)`` uint8 and labels ``(n,)``, and their source.

    Falls back to random images (announced) where CIFAR-10 cannot be had.
    """
    from helpers import data  # noqa: PLC0415

    try:
        ds = data.load_cifar10(profile="quick", seed=seed)
        per_class = -(-n // ds.num_classes)
        ds = ds.subset(per_class, 1, seed)
        x, y = ds.x_train[:n], ds.y_train[:n]
        source = ds.source
    except data.DataError as err:
        print(f"NOTE: CIFAR-10 not available ({str(err).splitlines()[0][:120]}...);")
        print("      timing random uint8 images of the same shape instead.")
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.int64)
        source = "random uint8 images"
    if len(x) < n:
        print(f"NOTE: only {len(x)} images available; timing those.")
    return x, y, source


def time_model(spec, x, y, batch_size: int, epochs: int) -> dict:
    """Warm-up epoch, then ``epochs`` timed epochs; returns images/s and seconds per epoch."""
    import keras  # noqa: PLC0415

    from helpers import training  # noqa: PLC0415

    _, _, build, optimizer, loss, one_hot = spec
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer=optimizer(), loss=loss, metrics=["accuracy"])
    model.steps_per_execution = training.steps_per_execution()  # as training.fit sets it
    if (jit := training.jit_compile()) != "auto":  # as training.fit sets it
        model.jit_compile = jit
    feed = training._pipeline(x, y, batch_size, True, 0, 10, one_hot)

    def fit(n_epochs, callbacks=()):
        if isinstance(feed, tuple):  # NumPy arrays (non-TensorFlow backends)
            return model.fit(
                *feed, batch_size=batch_size, epochs=n_epochs, callbacks=list(callbacks), verbose=0
            )
        return model.fit(
            feed, epochs=n_epochs, callbacks=list(callbacks), shuffle=False, verbose=0
        )  # the pipeline shuffles already

    fit(1)  # warm-up: tracing / compilation, memory
    timer = training.EpochTimer()
    fit(epochs, [timer])
    seconds = float(np.median(timer.times))
    return {
        "jit_compile": bool(model.jit_compile),
        "params": int(model.count_params()),
        "seconds_per_epoch": seconds,
        "images_per_second": len(x) / seconds,
    }


def time_models(specs: dict, args: argparse.Namespace, x, y) -> tuple[list[dict], list[str]]:
    """Time every model of ``args.models`` at every batch size; print a row per run.

    Returns the rows (model, batch_size, params, images_per_second, seconds_per_epoch,
    jit_compile) and the models skipped because their weights could not be had."""
    print(f"{'model':13s} {'batch':>5s} {'params':>10s} {'images/s':>9s} {'s/epoch':>8s}")
    results, skipped = [], []
    for name in args.models:
        for batch in args.batch_sizes:
            try:
                r = time_model(specs[name], x, y, batch, args.epochs)
            except LookupError as err:
                print(f"{name:13s} skipped: {err}")
                skipped.append(name)
                break
            results.append({"model": name, "batch_size": batch, **r})
            print(
                f"{name:13s} {batch:5d} {r['params']:10,d} {r['images_per_second']:9.0f} "
                f"{r['seconds_per_epoch']:8.2f}  jit {'on' if r['jit_compile'] else 'off'}",
                flush=True,
            )
    return results, skipped


def print_fastest(models: list[str], results: list[dict]) -> None:
    """For each model, its fastest batch size and its speed-up over DEFAULT_BATCH."""
    for name in models:
        rows = [r for r in results if r["model"] == name]
        if not rows:
            continue
        fastest = max(rows, key=lambda r: r["images_per_second"])
        default = next((r for r in rows if r["batch_size"] == DEFAULT_BATCH), None)
        if default is None:
            print(
                f"{name}: fastest at batch {fastest['batch_size']} (batch {DEFAULT_BATCH} not run)"
            )
        else:
            ratio = fastest["images_per_second"] / default["images_per_second"]
            print(
                f"{name}: fastest at batch {fastest['batch_size']}, "
                f"{ratio:.2f}x the images/s of the default batch {DEFAULT_BATCH}"
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.jit:
        os.environ["SUITE_JIT_COMPILE"] = args.jit
    keras = use_backend(args.backend)

    from helpers.files import atomic_write  # noqa: PLC0415
    from helpers.session import devices, library_versions  # noqa: PLC0415

    specs = _models()
    if args.list:
        for name in MODEL_NAMES:
            print(f"{name:13s} notebooks {specs[name][0]:7s} {specs[name][1]}")
        return 0

    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    print(f"backend: {keras.backend.backend()}   devices: {', '.join(devices())}")
    print(f"versions: {versions}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs")
    x, y, source = load_images(args.images)
    print(f"images: {len(x)} from {source}; 1 warm-up epoch, then {args.epochs} timed")
    print(f"jit_compile: {os.environ.get('SUITE_JIT_COMPILE') or 'auto'} (XLA train step)")
    print()
    results, skipped = time_models(specs, args, x, y)
    print()
    print_fastest(args.models, results)
    if args.json:
        info = {"backend": keras.backend.backend(), "devices": devices(),
                "versions": library_versions(), "machine": platform.platform(),
                "cpus": os.cpu_count(), "images": len(x), "image_source": source,
                "timed_epochs": args.epochs, "results": results, "skipped": skipped}  # fmt: skip
        atomic_write(args.json, json.dumps(info, indent=1))
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
