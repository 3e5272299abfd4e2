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
from topfive import bench
from topfive.bench.memory import PeakRSS

TESTS = Path(__file__).resolve().parent
MIB = 1024 * 1024
BUFFER_MIB = 200_000_000 / MIB  # tests/bench_hook_models.py: BigBuffer holds 200 MB
SIZES = [1, 2]
CARD = str(SHARED / "models" / "mobilenet_v1_0.25_128_quant.tflite.json")  # a real TFLite card, 128 px
RECORDER = "python:bench_hook_models:layout_recorder"
MODELS = [
    "squeezenet1_1",
    "python:bench_hook_models:big_buffer",
    "python:bench_hook_models:broken",
    CARD,
    RECORDER,
    "python:bench_hook_models:buggy_build",
]


def layouts(log: Path) -> list[str]:
    """The memory format of every input the layout recorder saw, in order."""
    return [line.split()[1] for line in log.read_text().splitlines()]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    empty_torch_home = tmp_path_factory.mktemp("torch_home")  # no cached weights: squeezenet is architecture only
    logs = tmp_path_factory.mktemp("layouts")
    saved = {k: os.environ.get(k) for k in ("TORCH_HOME", "PYTHONPATH", "TOPFIVE_TEST_LAYOUT_LOG")}
    os.environ["TORCH_HOME"] = str(empty_torch_home)
    os.environ["PYTHONPATH"] = str(TESTS)  # the worker finds bench_hook_models here
    lines = []
    try:
        common = dict(batch_sizes=SIZES, threads=1, photos=SHARED / "eval", quick=True, progress=lines.append)
        # Two repeats (the spread) where it matters; one for the rest, to keep this file short.
        environment, rows = bench.run_bench(MODELS[:1], repeats=2, runtimes=["torch"], **common)
        os.environ["TOPFIVE_TEST_LAYOUT_LOG"] = str(logs / "default.log")
        rows += bench.run_bench(MODELS[1:], repeats=1, **common)[1]
        os.environ["TOPFIVE_TEST_LAYOUT_LOG"] = str(logs / "channels_last.log")
        _, channels_last = bench.run_bench([RECORDER], repeats=1, channels_last=True, **common)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return environment, {r["model"]: r for r in rows}, lines, channels_last[0], logs


def test_each_model_and_repeat_runs_in_its_own_fresh_process(measured):
    _, rows, *_ = measured
    pids = [pid for r in rows.values() for pid in r["pids"]]
    assert os.getpid() not in pids
    assert len(set(pids)) == len(pids) == 7  # squeezenet twice, the five others once each
    _, _, _, channels_last, _ = measured
    assert channels_last["pids"][0] not in pids


def test_torchvision_model_has_every_figure_positive_and_is_marked_architecture_only(measured):
    environment, rows, *_ = measured
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
    _, rows, *_ = measured
    r = rows["python:bench_hook_models:big_buffer"]
    assert r["error"] == ""
    assert abs(r["rss_load_mib"] - BUFFER_MIB) < 0.10 * BUFFER_MIB, r["rss_load_mib"]
    # Running keeps the buffer and adds only tiny activations.
    assert abs(r["rss_run_mib"] - BUFFER_MIB) < 0.10 * BUFFER_MIB, r["rss_run_mib"]
    assert r["weight_bytes"] >= 200_000_000


def test_a_failing_model_gets_an_error_row_and_the_others_go_on(measured):
    _, rows, lines, *_ = measured
    r = rows["python:bench_hook_models:broken"]
    assert "deliberately broken" in r["error"]
    assert r.get("latency_ms_median") is None and r["throughput_img_s"] == {}
    assert list(rows) == MODELS  # the models after it were measured, in order
    assert rows[CARD]["error"] == ""
    assert len(lines) == 7 and "FAILED" in lines[2] and "[2/5]" in lines[2]  # + the channels_last run


def test_a_model_card_is_timed_on_its_own_runtime_and_params_are_unknown(measured):
    _, rows, *_ = measured
    r = rows[CARD]
    assert r["runtime"] == "litert" and r["weights"] == "real"
    assert r["params"] is None and r["gmacs"] is None and r["weight_bytes"] is None and r["gmacs_counter"] == ""
    assert r["latency_ms_median"] > 0 and r["throughput_img_s"]["2"] > 0 and r["end_to_end_img_s"] > 0
    assert r["dtype"] == "uint8"


def test_a_zoo_model_runs_on_the_torch_runtime_in_nchw_by_default(measured):
    _, rows, _, _, logs = measured
    assert rows["squeezenet1_1"]["runtime"] == "torch"
    r = rows[RECORDER]
    assert r["error"] == "" and r["runtime"] == "torch" and r["memory_format"] == "contiguous"
    assert set(layouts(logs / "default.log")) == {"contiguous"}


def test_channels_last_applies_to_the_timed_passes_and_to_end_to_end(measured):
    """Defect: end to end wrapped the module in a new NCHW runtime, so --channels-last timed the
    model in channels_last but the files -> top-5 path in NCHW."""
    *_, r, logs = measured
    assert r["error"] == "" and r["memory_format"] == "channels_last" and r["end_to_end_img_s"] > 0
    assert r["runs"][0]["environment"]["memory_format"] == "channels_last"
    seen = layouts(logs / "channels_last.log")
    end_to_end = 8 // SIZES[-1]  # quick: 8 photos end to end, in batches of the largest size, come last
    assert len(seen) > end_to_end
    assert seen[-end_to_end:] == ["channels_last"] * end_to_end
    assert set(seen) == {"channels_last"}


def test_a_bug_in_a_torch_model_build_is_the_row_error_not_a_card(measured):
    """Defect: a TypeError from build() was taken to mean "this is a model card", and the entry was
    timed through its load_backend instead of reporting the bug."""
    _, rows, *_ = measured
    r = rows["python:bench_hook_models:buggy_build"]
    assert r["error"].startswith("TypeError") and "no_such_argument" in r["error"]
    assert r.get("latency_ms_median") is None and r["throughput_img_s"] == {}


def test_result_files_follow_the_contract(measured, tmp_path):
    environment, rows, *_ = measured
    json_path, csv_path = bench.write_results(tmp_path, environment, list(rows.values()), SIZES)
    with open(csv_path) as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == [
            "model", "weights", "params", "gmacs", "gmacs_counter", "weight_bytes", "device", "dtype", "threads",
            "latency_ms_median", "latency_ms_p90", "latency_ms_min", "latency_ms_max", "latency_runs",
            "throughput_bs1", "throughput_bs2", "decode_ms", "preprocess_ms", "end_to_end_img_s",
            "rss_baseline_mib", "rss_load_mib", "rss_run_mib", "cuda_peak_mib", "spread_pct", "spread_note", "error",
            "runtime", "latency_ms_ci_low", "latency_ms_ci_high",
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
    single = bench.combine("m", [run(10.0, 100.0)])
    assert single["spread_note"] == "" and single["spread_pct"] is None
    noisy = bench.combine("m", [{**run(10.0, 100.0), "latency_ms_ci": [8.0, 12.5]}])
    assert noisy["latency_ms_ci_low"] == 8.0 and "wide interval" in noisy["spread_note"] and "±22 %" in noisy["spread_note"]
    steady = bench.combine("m", [{**run(10.0, 100.0), "latency_ms_ci": [9.9, 10.2]}])
    assert steady["spread_note"] == ""


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
