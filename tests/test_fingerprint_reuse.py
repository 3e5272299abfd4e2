"""The machine fingerprint in the result files, and `topfive report` reusing stored results only on
the machine (and with the packages) they were measured on. The stages are the stand-ins of
test_report_stages, which write the fixture result files with this machine's fingerprint."""

import json
import shutil

import pytest
from conftest import EVAL
from test_report_stages import FIX, fake, stamp  # noqa: F401  (fake: the stand-in stages fixture)

from topfive.bench.results import write_results
from topfive.eval.datasets import load_dataset
from topfive.eval.evaluate import evaluate
from topfive.machine import differences, fingerprint
from topfive.report import study

MODELS = ["efficientnet_lite0", "resnet50"]


def recorded(folder, name):
    return json.loads((folder / name).read_text())["fingerprint"]


def other_isa(fp: dict) -> list[str]:
    """ISA flags this machine does not have exactly: with or without VNNI, whichever it lacks."""
    return [f for f in fp["isa"] if f != "avx512_vnni"] if "avx512_vnni" in fp["isa"] else [*fp["isa"], "avx512_vnni"]


def test_bench_json_records_the_machine_beside_the_workers_environment(tmp_path):
    env = {"cpu": "the worker's words", "threads": 2, "device": "cpu"}
    json_path, _ = write_results(tmp_path, env, [], [1])
    data = json.loads(json_path.read_text())
    assert data["environment"] == env  # the worker's own record stays as it was
    fp = data["fingerprint"]
    assert fp["threads"] == 2 and fp["isa"] == fingerprint()["isa"]
    assert differences(fp, fingerprint(threads=2)) == []


def test_evaluate_json_records_the_machine(tmp_path):
    photos = tmp_path / "photos" / "dog"
    photos.mkdir(parents=True)
    shutil.copy(next((EVAL / "images" / "dog").glob("*.jpg")), photos / "a.jpg")
    # a model that cannot be had: evaluate.json is still written, without running anything
    result = evaluate(load_dataset(tmp_path / "photos"), ["no_such_model"], tmp_path / "out", log=lambda _: None)
    fp = recorded(tmp_path / "out", "evaluate.json")
    assert result["fingerprint"] == fp and result["models"][0]["status"] == "unavailable"
    assert fp["threads"] is None  # evaluate sets no thread count: each runtime's default
    assert differences(fp, fingerprint()) == []


def test_same_machine_reuses(fake, tmp_path, capsys):
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    assert fake.names == ["evaluate", "bench"]
    capsys.readouterr()
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    assert fake.names == ["evaluate", "bench"]  # nothing measured again
    err = capsys.readouterr().err
    assert "topfive report: reusing evaluate results in" in err and "reusing bench results in" in err
    assert "re-running" not in err


def test_other_isa_flags_re_measure_and_say_why(fake, tmp_path, capsys):
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    here = fingerprint()
    stamp(tmp_path / "bench", dict(recorded(tmp_path / "bench", "bench.json"), isa=other_isa(here)))
    capsys.readouterr()
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    assert fake.names == ["evaluate", "bench", "bench"]  # evaluate's machine still matches: reused
    err = capsys.readouterr().err
    assert f"topfive report: re-running bench: isa: {other_isa(here)} -> {here['isa']}\n" in err
    assert "reusing evaluate results" in err
    assert (tmp_path / "bench.previous" / "bench.json").is_file()  # the other machine's figures, set aside
    assert recorded(tmp_path / "bench", "bench.json")["isa"] == here["isa"]  # measured again here


def test_other_package_versions_re_measure(fake, tmp_path, capsys):
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    fp = recorded(tmp_path / "eval", "evaluate.json")
    stamp(tmp_path / "eval", dict(fp, packages=dict(fp["packages"], onnxruntime="0.0.1")))
    capsys.readouterr()
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    assert fake.names == ["evaluate", "bench", "evaluate"]
    now = fingerprint()["packages"]["onnxruntime"] or "-"
    assert f"re-running evaluate: onnxruntime: 0.0.1 -> {now}" in capsys.readouterr().err


def test_the_thread_setting_and_the_kernel_build_are_not_another_machine(fake, tmp_path):
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    fp = recorded(tmp_path / "bench", "bench.json")
    stamp(tmp_path / "bench", dict(fp, threads=7, platform="Linux-another-kernel-build"))
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    assert fake.names == ["evaluate", "bench"]


def test_results_without_a_fingerprint_are_re_measured(fake, tmp_path, capsys):
    """The committed report/ from an older topfive: right arguments, but no machine recorded."""
    shutil.copytree(FIX / "eval", tmp_path / "eval")
    shutil.copytree(FIX / "bench", tmp_path / "bench")
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    assert fake.names == ["evaluate", "bench"]
    err = capsys.readouterr().err
    assert "topfive report: re-running evaluate: no machine fingerprint recorded\n" in err
    assert "topfive report: re-running bench: no machine fingerprint recorded\n" in err


def test_other_arguments_say_which(fake, tmp_path, capsys):
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    capsys.readouterr()
    study.run_stages("d.csv", MODELS[:1], "cpu", tmp_path, quick=True)
    err = capsys.readouterr().err
    assert "re-running evaluate: other arguments: --models: efficientnet_lite0,resnet50 -> efficientnet_lite0\n" in err
    assert ("re-running bench: other arguments: --models: efficientnet_lite0,resnet50 -> efficientnet_lite0; "
            "--quick: - -> set\n") in err


def test_argv_changes():
    old = ["bench", "--models", "a", "--device", "cpu", "--quick"]
    assert study.argv_changes(old, ["bench", "--models", "a,b", "--device", "cpu"]) == [
        "--models: a -> a,b", "--quick: set -> -"]
    assert study.argv_changes(old, old) == []


def test_a_damaged_result_file_is_measured_again(fake, tmp_path, capsys):
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    (tmp_path / "bench" / "bench.json").write_text("{")
    study.run_stages("d.csv", MODELS, "cpu", tmp_path)
    assert fake.names == ["evaluate", "bench", "bench"]
    assert "re-running bench: bench.json unreadable" in capsys.readouterr().err
