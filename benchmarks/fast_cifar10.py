"""Speed of notebook 12's airbench94 network on this machine: images/s and GFLOP/s, jit on and off.

For ``jit_compile`` off and on: build the network (``helpers.fast.build_net``), compile it as the
recipe does (Nesterov SGD, label-smoothed cross-entropy), train one untimed batch (tracing and,
with jit, XLA compilation), then time ``--steps`` training batches of ``--batch-size`` images and
``--steps`` inference batches of the same size (``model.predict``, no augmentation).

    python benchmarks/fast_cifar10.py                          # batch 1024, 3 steps, jit off and on
    python benchmarks/fast_cifar10.py --steps 10 --jit off --json results/fast_cifar10.json
    KERAS_BACKEND=jax python benchmarks/fast_cifar10.py         # any Keras backend

FLOPs are counted analytically (``helpers.fast.conv_flops``): two per multiply-add of every
convolution and of the linear layer, from their kernel and output shapes, per image and forward
pass; a training step is counted as three forward passes (forward, and the gradients with
respect to activations and to weights). BatchNorm, GELU and pooling are not counted. Run it on a
quiet machine: other processes on the same cores change the numbers a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import load_images, use_backend  # noqa: E402  (the same images, fallback)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=1024, help="images per step (1024)")
    p.add_argument("--steps", type=int, default=3, help="timed steps of each kind (3)")
    p.add_argument("--jit", default="off,on", help="comma-separated: off, on (both)")
    p.add_argument("--backend", default=None, help="Keras backend (default $KERAS_BACKEND)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    jits = [j.strip() for j in args.jit.split(",") if j.strip()]
    if not jits or any(j not in ("off", "on") for j in jits):
        p.error(f"--jit takes off, on or off,on; got {args.jit!r}")
    if args.batch_size < 1 or args.steps < 1:
        p.error("--batch-size and --steps must be at least 1")
    args.jits = [j == "on" for j in jits]
    return args


def time_inference(model, x: np.ndarray, batch_size: int) -> float:
    """Images per second of ``model.predict`` over ``x`` (after one untimed batch)."""
    model.predict(x[:batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    model.predict(x, batch_size=batch_size, verbose=0)
    return len(x) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keras = use_backend(args.backend)

    from helpers import fast  # noqa: PLC0415
    from helpers.files import atomic_write  # noqa: PLC0415
    from helpers.session import devices, library_versions, portable_paths  # noqa: PLC0415

    n = args.steps * args.batch_size
    x8, y, source = load_images(n)
    x = fast.normalize(x8)
    idx = np.arange(n) % len(x)
    x, y = x[idx], y[idx]
    flops = fast.conv_flops(fast.build_net())
    print(f"backend: {keras.backend.backend()}   devices: {', '.join(devices())}")
    print(f"versions: {', '.join(f'{k} {v}' for k, v in library_versions().items())}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"load average before: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(
        f"images: {len(x)} from {portable_paths(source)}; batch {args.batch_size}, {args.steps} timed steps"
    )
    print(f"network: {flops / 1e6:.1f} MFLOP per image forward (analytic: convolutions + linear)")
    print(f"{'jit':>4s} {'train img/s':>12s} {'train GFLOP/s':>14s} {'infer img/s':>12s} "
          f"{'infer GFLOP/s':>14s}")  # fmt: skip
    results = []
    for jit in args.jits:
        keras.utils.set_random_seed(0)
        model = fast.build_net()
        recipe = fast.Recipe(batch_size=args.batch_size)
        train = fast.train_throughput(model, x, y, recipe, args.steps, jit)
        infer = time_inference(model, x, args.batch_size)
        row = {"jit_compile": jit, "train_images_per_s": train, "infer_images_per_s": infer,
               "train_gflops": 3 * flops * train / 1e9, "infer_gflops": flops * infer / 1e9}  # fmt: skip
        results.append(row)
        print(f"{'on' if jit else 'off':>4s} {train:12.0f} {row['train_gflops']:14.1f} "
              f"{infer:12.0f} {row['infer_gflops']:14.1f}")  # fmt: skip
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if len(results) == 2:
        faster = max(results, key=lambda r: r["train_images_per_s"])["jit_compile"]
        print(f"faster training step here: jit_compile={faster}")
    if args.json:
        info = {"backend": keras.backend.backend(), "devices": devices(),
                "machine": platform.platform(), "cpus": os.cpu_count(),
                "flops_per_image_forward": flops, "batch_size": args.batch_size,
                "steps": args.steps, "results": results}  # fmt: skip
        atomic_write(args.json, json.dumps(info, indent=2))
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
