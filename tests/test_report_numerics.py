"""Results whose numerics depend on the CPU are flagged, and the Set-up names the machine: the report
rendered from the fixture result files with a recorded machine fingerprint injected."""

import json
import shutil

import pytest
from conftest import SHARED
from test_report_render import FIX, row_of, table_after

from topfive.models import resolve
from topfive.report import load_study
from topfive.report.numerics import caveat
from topfive.report.render import render
from topfive.report.results import Published, quantised_card

INT8 = "mobilenet_v1_0.25_128_quant"  # a TFLite uint8 card in the fixture
RECORDED = {  # another machine, as a result file records it
    "cpu": "Intel Xeon Gold 6230 (recorded)", "isa": ["avx2", "avx512f"], "logical_cpus": 4, "usable_cpus": 2,
    "threads": None, "memory_bytes": 16 * 2**30, "os": "Linux x86_64 glibc 2.36",
    "platform": "Linux-6.8.0-x86_64-with-glibc2.36", "python": "3.11.7",
    "packages": {"torch": "2.14.1", "onnxruntime": "1.23.2", "openvino": ""}, "gpu": "",
}
NO_VNNI = RECORDED
VNNI = dict(RECORDED, isa=["avx2", "avx512f", "avx512_vnni"])


def report_with(tmp_path, evaluate_fp, bench_fp=None):
    """REPORT.md's text from the fixtures with these fingerprints in evaluate.json / bench.json."""
    ev, bench = tmp_path / "eval", tmp_path / "bench"
    shutil.copytree(FIX / "eval", ev)
    shutil.copytree(FIX / "bench", bench)
    for path, fp in ((ev / "evaluate.json", evaluate_fp), (bench / "bench.json", bench_fp or evaluate_fp)):
        data = json.loads(path.read_text())
        data["fingerprint"] = fp
        path.write_text(json.dumps(data))
    return render(load_study(ev, bench), tmp_path, [], made={})


def section(text, heading):
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_int8_without_vnni_is_flagged(tmp_path):
    text = report_with(tmp_path, NO_VNNI)
    table = table_after(text, "## Accuracy")
    assert row_of(table, INT8)[2].endswith(" †") and row_of(table, INT8)[3].endswith(" †")
    assert not row_of(table, "efficientnet_lite0")[2].endswith("†")  # fp32: not flagged
    accuracy = section(text, "## Accuracy")
    assert (f"† Depends on the CPU: {INT8} (int8 on a CPU without VNNI). Evaluate ran on Intel Xeon Gold 6230 "
            "(recorded) (ISA features: avx2, avx512f; no VNNI).") in accuracy
    assert f"**Depends on the CPU**: the accuracy of {INT8} (int8 on a CPU without VNNI)" in text
    method = section(text, "## Method")
    assert "quantised (int8) accuracy can differ between CPUs" in method
    assert f"(ISA features: avx2, avx512f; no VNNI); its int8 top-1: {INT8} 46.7 %, marked †" in method


def test_int8_with_vnni_is_not_flagged(tmp_path):
    text = report_with(tmp_path, VNNI)
    assert "†" not in section(text, "## Accuracy") and "Depends on the CPU" not in text
    method = section(text, "## Method")  # still said, with this run's figures and flags
    assert "quantised (int8) accuracy can differ between CPUs" in method
    assert f"(ISA features: avx2, avx512f, avx512_vnni; VNNI); its int8 top-1: {INT8} 46.7 %." in method


def test_results_without_a_fingerprint_say_the_cpu_is_unknown(tmp_path):
    text = render(load_study(FIX / "eval", FIX / "bench"), tmp_path, [], made={})
    assert row_of(table_after(text, "## Accuracy"), INT8)[2].endswith(" †")
    assert f"{INT8} (int8; the CPU's ISA features were not recorded)" in text
    assert "No machine fingerprint was recorded with these results" in section(text, "## Set-up")


def test_setup_names_the_machine(tmp_path):
    text = report_with(tmp_path, NO_VNNI, dict(NO_VNNI, threads=2))  # bench's thread setting: the same machine
    rows = {r[0]: r[1:] for r in table_after(text, "## Set-up")}
    assert rows["CPU"] == ["Intel Xeon Gold 6230 (recorded)"] and rows["ISA features"] == ["avx2, avx512f"]
    assert rows["cores"] == ["4 logical CPUs, 2 usable"] and rows["memory"] == ["16.0 GiB"]
    assert rows["OS"] == ["Linux x86_64 glibc 2.36 (Linux-6.8.0-x86_64-with-glibc2.36)"]
    assert rows["Python"] == ["3.11.7"] and rows["GPU"] == ["none"]
    assert rows["runtime versions"] == ["torch 2.14.1, onnxruntime 1.23.2; not installed: openvino"]
    assert rows["threads"] == ["2"] and rows["device"] == ["cpu"]  # bench's settings
    assert "different machines" not in text


def test_setup_shows_two_machines_when_evaluate_and_bench_differ(tmp_path):
    text = report_with(tmp_path, NO_VNNI, VNNI)
    table = table_after(text, "## Set-up")
    assert table[0] == ["", "evaluate ran on", "bench ran on"]
    assert row_of(table, "ISA features")[1:] == ["avx2, avx512f", "avx2, avx512f, avx512_vnni"]
    assert row_of(table, "device")[1:] == ["—", "cpu"]
    assert ("Evaluate and bench ran on different machines: isa: ['avx2', 'avx512f'] -> "
            "['avx2', 'avx512f', 'avx512_vnni'].") in text


@pytest.mark.parametrize("row, published, fp, expected", [
    ({"runtime": "int8"}, Published(), NO_VNNI, "int8 on a CPU without VNNI"),  # a zoo model quantised by topfive
    ({"runtime": "int8"}, Published(), VNNI, ""),
    ({}, Published(quantised=True), dict(NO_VNNI, isa=["avx2", "avx_vnni"]), ""),  # VNNI in its AVX2 form
    ({}, Published(quantised=True), dict(NO_VNNI, os="Linux aarch64 glibc 2.36", isa=[]), ""),  # not x86
    ({"precision": "bf16 autocast"}, Published(), VNNI, "computed in bf16"),
    ({"runtime": "openvino-bf16"}, Published(), dict(VNNI, isa=["avx512f", "avx512_bf16"]), "computed in bf16"),
    # OpenVINO with its precision set to f32, even where the CPU could run bf16
    ({"runtime": "openvino"}, Published(runtime="OpenVINO"), dict(VNNI, isa=["avx512f", "avx512_bf16"]), ""),
    ({"runtime": "onnxruntime"}, Published(), NO_VNNI, ""),  # fp32 differs only in the last digits
])
def test_which_results_are_flagged(row, published, fp, expected):
    assert caveat(row, published, fp) == expected


def test_which_cards_are_quantised():
    assert quantised_card(resolve(INT8).info)  # uint8 pixels in
    onnx_int8 = resolve(str(SHARED / "models" / "mobilenetv2-12-int8.onnx.json")).info
    assert onnx_int8.preprocess.dtype == "float32" and quantised_card(onnx_int8)  # float in, int8 graph
    assert not quantised_card(resolve(str(SHARED / "models" / "squeezenet1.1-fp16.xml.json")).info)
    assert not quantised_card(resolve("efficientnet_lite0").info)
