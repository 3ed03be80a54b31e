"""The fast CIFAR-10 recipe's mechanics (helpers.fast) on small real CIFAR-10 samples."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest

from helpers import data, fast


@pytest.fixture(scope="module")
def images():
    """400 normalized CIFAR-10 training images (N, 32, 32, 3) and their labels."""
    cifar = data.load_cifar10(profile="smoke")
    sub = cifar.subset(40, 10, seed=0)
    return fast.normalize(sub.x_train), sub.y_train


def test_normalize_gives_standardized_channels(images):
    x, _ = images
    assert x.dtype == np.float32 and x.shape[1:] == (32, 32, 3)
    assert np.all(np.abs(x.mean(axis=(0, 1, 2))) < 0.25)
    assert np.all(np.abs(x.std(axis=(0, 1, 2)) - 1) < 0.25)


def test_whitening_kernel_whitens_real_patches(images):
    x, _ = images
    kernel = fast.whitening_kernel(x, eps=5e-4)
    assert kernel.shape == (2, 2, 3, 24)
    p = fast.patches(x)
    assert p.shape == (len(x) * 31 * 31, 12)
    z = p @ kernel.reshape(12, 24)
    cov = z.T @ z / len(z)
    lam = np.linalg.eigvalsh(p.T @ p / len(p))[::-1]
    np.testing.assert_allclose(np.diag(cov)[:12], lam / (lam + 5e-4), atol=1e-5)
    assert np.abs(cov[:12, :12] - np.diag(np.diag(cov)[:12])).max() < 1e-5
    assert np.all(np.diag(cov)[:6] > 0.95)  # the strong directions have unit variance
    np.testing.assert_allclose(kernel[..., 12:], -kernel[..., :12])


def test_patches_follow_the_keras_kernel_layout(images):
    x = images[0][:3]
    kernel = fast.whitening_kernel(images[0])
    conv = keras.layers.Conv2D(24, 2, use_bias=False)
    conv.build((None, 32, 32, 3))
    conv.kernel.assign(kernel)
    out = keras.ops.convert_to_numpy(conv(x)).reshape(-1, 24)
    np.testing.assert_allclose(out, fast.patches(x) @ kernel.reshape(12, 24), atol=1e-4)


def test_triangle_schedule_values():
    s = fast.Triangle(1.5, 100)  # peak at step 23
    values = [float(s(k)) for k in (0, 23, 100, 500)]
    np.testing.assert_allclose(values, [0.3, 1.5, 0.105, 0.105], rtol=1e-6)
    assert float(s(10)) == pytest.approx(1.5 * (0.2 + 0.8 * 10 / 23))
    again = fast.Triangle.from_config(s.get_config())
    assert [float(again(k)) for k in (0, 23, 100)] == pytest.approx(values[:3])


def test_recipe_converts_airbench_units():
    r = fast.RECIPE
    assert r.keras_lr() == pytest.approx(11.5 / (1 + 1 / 0.15))
    assert 2 * r.l2() * r.keras_lr() == pytest.approx(0.0153 * 1024 / (1024 * (1 + 1 / 0.15)))
    assert r.config()["code"] == fast.VERSION
    # airbench94 sums the loss over a batch: on a mean loss the rate scales with the batch size
    half = replace(r, batch_size=512)
    assert half.keras_lr() == pytest.approx(r.keras_lr() / 2)
    assert 2 * half.l2() * half.keras_lr() == pytest.approx(0.0153 * 512 / (1024 * (1 + 1 / 0.15)))


def test_epoch_images_alternate_flips(images):
    x = images[0][:8]
    recipe = replace(fast.RECIPE, translate=0)
    mask = np.array([True, False] * 4)
    rng = np.random.default_rng(0)
    for epoch in (0, 1, 2):
        out = fast.epoch_images(x, epoch, recipe, mask, rng)
        flipped = mask ^ bool(epoch % 2)
        np.testing.assert_array_equal(out[flipped], x[flipped, :, ::-1])
        np.testing.assert_array_equal(out[~flipped], x[~flipped])


def test_epoch_images_translate_within_two_pixels(images):
    x = images[0][:50]
    recipe = replace(fast.RECIPE, flip="none")
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    out = fast.epoch_images(padded, 0, recipe, None, np.random.default_rng(1))
    assert out.shape == x.shape
    for img, pad in zip(out, padded, strict=True):
        shifts = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(img, pad[dy : dy + 32, dx : dx + 32])
        ]
        assert shifts


def test_dirac_init_passes_inputs_through():
    w = keras.ops.convert_to_numpy(fast.DiracInit(seed=0)((3, 3, 4, 8)))
    assert np.array_equal(w[1, 1, :, :4], np.eye(4)) and np.count_nonzero(w[..., :4]) == 4
    assert np.abs(w[..., 4:]).max() <= 1 / 6 + 1e-6  # 1 / sqrt(3 * 3 * 4)


def test_network_shape_and_flops():
    net = fast.build_net(seed=0)
    assert net.output_shape == (None, 10)
    macs = (
        31 * 31 * 4 * 3 * 24
        + 31 * 31 * 9 * 24 * 64
        + 15 * 15 * 9 * 64 * 64
        + 15 * 15 * 9 * 64 * 256
        + 7 * 7 * 9 * 256 * 256 * 2
        + 3 * 3 * 9 * 256 * 256
        + 256 * 10
    )
    assert fast.conv_flops(net) == 2 * macs
    assert not net.get_layer("whiten").trainable


def test_tta_levels(images):
    x = images[0][:20]
    net = fast.build_net(seed=0)
    levels = fast.tta_logits(net, x, batch_size=8)
    assert [a.shape for a in levels] == [(20, 10)] * 3
    plain = keras.ops.convert_to_numpy(net(x, training=False))
    np.testing.assert_allclose(levels[0], plain, atol=1e-4)
    mirror = keras.ops.convert_to_numpy(net(x[:, :, ::-1], training=False))
    np.testing.assert_allclose(levels[1], (plain + mirror) / 2, atol=1e-4)


def test_lookahead_update_averages_and_copies_back():
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    cb = fast.Lookahead(total_steps=10, start_epoch=0, base=0.5, power=1.0, every=1)
    cb.set_model(net)
    cb.on_epoch_begin(0)
    cb.on_train_batch_end(0)  # step 1: the average starts at the weights
    start = [keras.ops.convert_to_numpy(w) for w in net.weights]
    for w in net.weights:
        w.assign(keras.ops.convert_to_numpy(w) + 1.0)
    cb.on_train_batch_end(1)  # step 2: rho = 0.5 * 2 / 10 = 0.1
    for w, s in zip(net.weights, start, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(w), s + 0.9, atol=1e-6)


def test_fit_recipe_trains_a_short_run(images):
    x, y = images
    recipe = replace(fast.RECIPE, epochs=1.5, batch_size=100, ema_start_epochs=0)
    net = fast.build_net(recipe, seed=0)
    history, times = fast.fit_recipe(net, x, y, recipe, seed=0, jit_compile=False)
    assert len(history["loss"]) == 2 and len(times) == 2
    assert np.all(np.isfinite(history["loss"]))
    assert float(net.get_layer("whiten_bias").gate) == 1.0  # epochs 0 and 1 < 3
    assert int(net.optimizer.iterations) == 6  # 4 steps, then half an epoch


def test_fit_recipe_resumes_from_its_epoch_backup(images, tmp_path):
    x, y = images
    recipe = replace(fast.RECIPE, epochs=3, batch_size=100, ema_start_epochs=1, ema_every_n_steps=2)
    whole = fast.build_net(recipe, seed=0)
    h_whole, _ = fast.fit_recipe(whole, x, y, recipe, seed=0, jit_compile=False)

    class Stop(Exception):
        pass

    first = fast.build_net(recipe, seed=0)
    backup = tmp_path / "backup"
    save = fast.EpochBackup.save

    def save_then_stop(self, epoch, history, times):  # interrupted after the second epoch
        save(self, epoch, history, times)
        if epoch == 1:
            raise Stop

    fast.EpochBackup.save = save_then_stop
    try:
        with pytest.raises(Stop):
            fast.fit_recipe(first, x, y, recipe, seed=0, jit_compile=False, backup=backup)
    finally:
        fast.EpochBackup.save = save
    assert (backup / "state.json").is_file()
    again = fast.build_net(recipe, seed=0)
    h, times = fast.fit_recipe(again, x, y, recipe, seed=0, jit_compile=False, backup=backup)
    assert len(h["loss"]) == 3 and len(times) == 3 and not backup.exists()
    assert h.pop("resumed_after_epoch") == [2]
    np.testing.assert_allclose(h["loss"], h_whole["loss"], rtol=1e-4)
    for a, b in zip(again.weights, whole.weights, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-4
        )


def test_benchmark_parses_its_jit_settings(benchmark_script):
    bench = benchmark_script("fast_cifar10")
    assert bench.parse_args([]).jits == [False, True]
    assert bench.parse_args(["--jit", "on", "--steps", "2"]).jits == [True]
    with pytest.raises(SystemExit):
        bench.parse_args(["--jit", "fast"])
