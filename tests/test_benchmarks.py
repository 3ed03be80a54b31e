"""The benchmark scripts run end to end on a small real CIFAR-10 folder and write their figures
as JSON (their numbers depend on the machine; only their presence and sense are checked)."""

from __future__ import annotations

import json


def test_throughput_times_a_model_and_writes_json(benchmark_script, cifar_small, tmp_path, capsys):
    bench = benchmark_script("throughput")
    out = tmp_path / "figures" / "throughput.json"
    args = ["--models", "mlp", "--batch-sizes", "16,32", "--images", "64", "--json", str(out)]
    assert bench.main(args) == 0
    result = json.loads(out.read_text())
    assert [(r["model"], r["batch_size"]) for r in result["results"]] == [("mlp", 16), ("mlp", 32)]
    assert all(r["images_per_second"] > 0 for r in result["results"])
    assert result["images"] == 64 and "image folder" in result["image_source"]
    assert "mlp: fastest at batch" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["throughput.json"]  # no temporary left


def test_data_load_times_first_and_cached_loads(benchmark_script, cifar_small, tmp_path, capsys):
    bench = benchmark_script("data_load")
    out = tmp_path / "data_load.json"
    assert bench.main(["--data-dir", str(cifar_small), "--repeats", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["images"] == 10 * (45 + 25)  # the small folder: 45 train, 25 test per class
    assert len(result["cached_load_s"]) == 2 and result["first_load_s"] > 0
    assert "cached load" in capsys.readouterr().out


def test_data_load_names_a_missing_folder(benchmark_script, tmp_path, capsys):
    bench = benchmark_script("data_load")
    assert bench.main(["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "cifar10") in err and "SUITE_DATA_DIR" in err


def test_fast_cifar10_prints_throughput_and_flops(benchmark_script, cifar_small, tmp_path):
    bench = benchmark_script("fast_cifar10")
    out = tmp_path / "fast.json"
    args = ["--batch-size", "16", "--steps", "1", "--jit", "off", "--json", str(out)]
    assert bench.main(args) == 0
    result = json.loads(out.read_text())
    assert result["flops_per_image_forward"] > 2e8  # airbench94's net: ~236 MFLOP per image
    (row,) = result["results"]
    assert row["jit_compile"] is False and row["train_images_per_s"] > 0 and row["train_gflops"] > 0
