"""bench on several runtimes: a row per (model, runtime), each naming the runtime it measured, in
bench.json and bench.csv; speeds are never asserted, only that each row measured something."""

import csv
import json
import os

import pytest

from topfive import bench
from topfive.bench.loading import load

MODEL = "squeezenet1_1"  # small; its weights are kept out of reach, so it is timed on its architecture


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    saved = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(tmp_path_factory.mktemp("torch_home"))  # no weights: architecture only
    lines = []
    try:
        environment, rows = bench.run_bench(
            [MODEL, f"{MODEL}@litert"], runtimes=["torch", "onnxruntime"], batch_sizes=[1, 2], threads=1,
            quick=True, repeats=1, progress=lines.append,
        )
    finally:
        os.environ.pop("TORCH_HOME") if saved is None else os.environ.__setitem__("TORCH_HOME", saved)
    return environment, rows, lines


def test_a_row_per_model_and_runtime(measured):
    _, rows, lines = measured
    assert [(r["model"], r["runtime"]) for r in rows] == [(MODEL, "torch"), (MODEL, "onnxruntime"), (MODEL, "litert")]
    torch_row, ort_row, _ = rows
    for r in (torch_row, ort_row):
        assert r["error"] == "" and r["weights"] == "architecture only"
        assert r["latency_ms_median"] > 0 and r["throughput_img_s"]["2"] > 0
    assert torch_row["params"] == 1_235_496 and torch_row["gmacs"] > 0  # counted on the module torch runs
    assert ort_row["params"] is None and ort_row["gmacs"] is None  # not known from the graph runtime here
    assert ort_row["precision"] == "fp32" and ort_row["runs"][0]["runtime"] == "onnxruntime"
    assert len(lines) == 3 and lines[1].startswith(f"[2/3] {MODEL} on onnxruntime (architecture only)")


def test_a_runtime_that_cannot_run_the_model_is_that_rows_error(measured):
    _, rows, lines = measured
    r = rows[2]
    assert "runtime 'litert' cannot run it" in r["error"] and r["runtime"] == "litert"
    assert f"{MODEL}: FAILED on litert" in lines[2]


def test_result_files_carry_the_runtime(measured, tmp_path):
    environment, rows, _ = measured
    json_path, csv_path = bench.write_results(tmp_path, environment, rows, [1, 2], fingerprint={})
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        table = list(reader)
    assert reader.fieldnames[-3:] == ["runtime", "latency_ms_ci_low", "latency_ms_ci_high"]  # new columns come last
    assert [(r["model"], r["runtime"]) for r in table] == [(MODEL, "torch"), (MODEL, "onnxruntime"), (MODEL, "litert")]
    assert table[1]["params"] == "" and float(table[1]["throughput_bs2"]) > 0
    data = json.loads(json_path.read_text())
    assert [r["runtime"] for r in data["results"]] == ["torch", "onnxruntime", "litert"]


def test_torch_options_belong_to_the_torch_runtime():
    with pytest.raises(ValueError, match="options of the torch runtime, not of onnxruntime"):
        load("python:bench_hook_models:layout_recorder", runtime="onnxruntime", channels_last=True)


def test_cli_takes_several_runtimes(monkeypatch, capsys):
    from topfive.cli import main

    seen = {}

    def fake(models, **kwargs):
        seen.update(kwargs, models=models)
        return {"cpu": "x", "threads": 1, "device": "cpu", "dtype": "float32", "memory_format": "contiguous",
                "torch": "t", "torchvision": "v", "python": "p"}, []

    monkeypatch.setattr(bench, "run_bench", fake)
    assert main(["bench", "--models", "a,b@int8", "--runtime", "torch,openvino", "--calibration", "photos"]) == 0
    assert seen["models"] == ["a", "b@int8"] and seen["runtimes"] == ["torch", "openvino"]
    assert seen["calibration"] == "photos"
    assert main(["bench", "--models", "a"]) == 0 and seen["runtimes"] == ["auto"]
