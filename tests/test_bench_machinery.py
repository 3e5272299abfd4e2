"""The bench machinery: fresh processes, fields, weights marking, RSS accuracy, error rows.

Speeds are never asserted (a shared machine makes them meaningless); the figures' presence,
sign and the memory accounting are.
"""

import csv
import json
import os
from pathlib import Path

import pytest

from conftest import SHARED
from topfive.bench import runner as bench
from topfive.bench.worker import PeakRSS

TESTS = Path(__file__).resolve().parent
MIB = 1024 * 1024
BUFFER_MIB = 200_000_000 / MIB  # tests/bench_hook_models.py: BigBuffer holds 200 MB
SIZES = [1, 2]
MODELS = [
    "squeezenet1_1",
    "python:bench_hook_models:big_buffer",
    "python:bench_hook_models:broken",
    "python:bench_hook_models:card_like",
]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    empty_torch_home = tmp_path_factory.mktemp("torch_home")  # no cached weights: squeezenet is architecture only
    saved = {k: os.environ.get(k) for k in ("TORCH_HOME", "PYTHONPATH")}
    os.environ["TORCH_HOME"] = str(empty_torch_home)
    os.environ["PYTHONPATH"] = str(TESTS)  # the worker finds bench_hook_models here
    lines = []
    try:
        common = dict(batch_sizes=SIZES, threads=1, photos=SHARED / "eval", quick=True, progress=lines.append)
        # Two repeats (the spread) where it matters; one for the rest, to keep this file short.
        environment, rows = bench.run_bench(MODELS[:1], repeats=2, **common)
        rows += bench.run_bench(MODELS[1:], repeats=1, **common)[1]
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return environment, {r["model"]: r for r in rows}, lines


def test_each_model_and_repeat_runs_in_its_own_fresh_process(measured):
    _, rows, _ = measured
    pids = [pid for r in rows.values() for pid in r["pids"]]
    assert os.getpid() not in pids
    assert len(set(pids)) == len(pids) == 5  # squeezenet twice, the three others once each


def test_torchvision_model_has_every_figure_positive_and_is_marked_architecture_only(measured):
    environment, rows, _ = measured
    r = rows["squeezenet1_1"]
    assert r["error"] == ""
    assert r["weights"] == "architecture only" and "not here" in r["weights_note"]
    assert r["params"] == 1_235_496 and isinstance(r["params"], int) and r["weight_bytes"] >= 4 * r["params"]
    assert isinstance(r["latency_runs"], int)
    assert 0.2 < r["gmacs"] < 0.5 and r["gmacs_counter"] == "torch.utils.flop_counter"
    for key in ("latency_ms_median", "latency_ms_p90", "latency_ms_min", "latency_ms_max", "decode_ms",
                "preprocess_ms", "end_to_end_img_s", "rss_baseline_mib", "rss_load_mib", "rss_run_mib"):
        assert r[key] > 0, key
    assert r["latency_ms_min"] <= r["latency_ms_median"] <= r["latency_ms_p90"] <= r["latency_ms_max"]
    assert r["latency_runs"] >= 6
    assert set(r["throughput_img_s"]) == {"1", "2"} and all(v > 0 for v in r["throughput_img_s"].values())
    assert r["cuda_peak_mib"] is None and r["threads"] == 1
    assert r["spread_pct"] >= 0 and isinstance(r["spread_note"], str)
    assert len(r["runs"]) == 2
    assert set(environment) == {"cpu", "threads", "device", "dtype", "memory_format", "torch", "torchvision",
                                "python", "platform"}


def test_rss_growth_of_a_known_buffer_is_within_ten_percent(measured):
    _, rows, _ = measured
    r = rows["python:bench_hook_models:big_buffer"]
    assert r["error"] == ""
    assert abs(r["rss_load_mib"] - BUFFER_MIB) < 0.10 * BUFFER_MIB, r["rss_load_mib"]
    # Running keeps the buffer and adds only tiny activations.
    assert abs(r["rss_run_mib"] - BUFFER_MIB) < 0.10 * BUFFER_MIB, r["rss_run_mib"]
    assert r["weight_bytes"] >= 200_000_000


def test_a_failing_model_gets_an_error_row_and_the_others_go_on(measured):
    _, rows, lines = measured
    r = rows["python:bench_hook_models:broken"]
    assert "deliberately broken" in r["error"]
    assert r.get("latency_ms_median") is None and r["throughput_img_s"] == {}
    assert list(rows) == MODELS  # the models after it were measured, in order
    assert rows["python:bench_hook_models:card_like"]["error"] == ""
    assert len(lines) == 4 and "FAILED" in lines[2] and "[2/3]" in lines[2]


def test_a_backend_without_nn_module_is_timed_and_params_are_unknown(measured):
    _, rows, _ = measured
    r = rows["python:bench_hook_models:card_like"]
    assert r["params"] is None and r["gmacs"] is None and r["weight_bytes"] is None and r["gmacs_counter"] == ""
    assert r["latency_ms_median"] > 0 and r["throughput_img_s"]["2"] > 0 and r["end_to_end_img_s"] > 0
    assert r["dtype"] == "uint8"


def test_result_files_follow_the_contract(measured, tmp_path):
    environment, rows, _ = measured
    json_path, csv_path = bench.write_results(tmp_path, environment, list(rows.values()), SIZES)
    with open(csv_path) as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == [
            "model", "weights", "params", "gmacs", "gmacs_counter", "weight_bytes", "device", "dtype", "threads",
            "latency_ms_median", "latency_ms_p90", "latency_ms_min", "latency_ms_max", "latency_runs",
            "throughput_bs1", "throughput_bs2", "decode_ms", "preprocess_ms", "end_to_end_img_s",
            "rss_baseline_mib", "rss_load_mib", "rss_run_mib", "cuda_peak_mib", "spread_pct", "spread_note", "error",
        ]
        table = {row["model"]: row for row in reader}
    assert table["squeezenet1_1"]["weights"] == "architecture only"
    assert float(table["squeezenet1_1"]["throughput_bs2"]) > 0
    broken = table["python:bench_hook_models:broken"]
    assert broken["error"] and broken["latency_ms_median"] == "" and broken["throughput_bs1"] == ""
    data = json.loads(json_path.read_text())
    assert set(data["environment"]) >= {"cpu", "threads", "device", "torch", "torchvision", "python"}
    first = data["results"][0]
    assert set(reader.fieldnames) <= set(first) and set(first["throughput_img_s"]) == {"1", "2"}


def test_spread_is_reported_and_called_wide_above_ten_percent():
    def run(latency, rss):
        return {
            "model": "m", "canonical": "m", "weights": "real", "weights_note": "", "gmacs_counter": "", "device": "cpu",
            "dtype": "float32", "threads": 1, "rss_method": "x", "latency_ms_median": latency, "rss_load_mib": rss,
            "rss_run_mib": rss, "rss_loaded_mib": rss, "throughput_img_s": {"1": 1000 / latency}, "pid": 1, "error": "",
        }

    narrow = bench.combine("m", [run(10.0, 100.0), run(10.2, 101.0)])
    assert narrow["spread_pct"] == pytest.approx(0.2 / 10.1 * 100, rel=0.01) and narrow["spread_note"] == ""
    wide = bench.combine("m", [run(10.0, 100.0), run(13.0, 100.0)])
    assert wide["spread_pct"] > 10 and "wide" in wide["spread_note"] and "latency_ms_median" in wide["spread_note"]
    assert wide["latency_ms_median"] == pytest.approx(11.5)
    assert bench.combine("m", [run(10.0, 100.0)])["spread_note"] == "single run, no spread"


def test_peak_rss_sees_a_transient_allocation_after_reset():
    peak = PeakRSS()
    peak.reset()
    before = peak.read()
    block = bytearray(64 * MIB)
    block[::4096] = b"\x01" * len(block[::4096])  # touch every page
    del block
    assert peak.read() - before > 0.9 * 64 * MIB
    peak.stop()


def test_cli_writes_both_files_and_exits_1_when_a_model_fails(tmp_path, monkeypatch, capsys):
    from topfive.cli import main

    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    code = main(["bench", "--models", "python:bench_hook_models:broken", "--quick", "--repeats", "1",
                 "--batch-sizes", "1,4", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "[1/1] python:bench_hook_models:broken: FAILED" in captured.err
    assert "error" in captured.out  # the table row
    header = (tmp_path / "bench.csv").read_text().splitlines()[0]
    assert "throughput_bs1,throughput_bs4" in header
    assert json.loads((tmp_path / "bench.json").read_text())["results"][0]["error"]
