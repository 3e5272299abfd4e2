"""run_study: how the evaluate and bench stages are invoked and reused (the stages themselves are
replaced by a stand-in that writes the fixture result files)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import topfive
from conftest import SHARED
from topfive.report import study as report

FIX = Path(__file__).resolve().parent / "fixtures" / "report"


class FakeStages:
    """Stands in for `python -m topfive evaluate|bench`: records argv, writes the fixture files."""

    def __init__(self, rc=0, write=True):
        self.calls, self.rc, self.write = [], rc, write

    def __call__(self, argv):
        self.calls.append(argv)
        out = Path(argv[argv.index("--out") + 1])
        if self.write:
            shutil.copytree(FIX / ("eval" if argv[0] == "evaluate" else "bench"), out, dirs_exist_ok=True)
        return self.rc


@pytest.fixture
def fake(monkeypatch):
    stages = FakeStages()
    monkeypatch.setattr(report, "_topfive", stages)
    return stages


def test_stages_run_then_reused(fake, tmp_path):
    models = ["efficientnet_lite0", "resnet50"]
    report._run_stages("data.csv", models, "cpu", tmp_path, mirror=SHARED / "eval")
    assert fake.calls == [
        ["evaluate", "--data", "data.csv", "--models", "efficientnet_lite0,resnet50", "--out", str(tmp_path / "eval"),
         "--mirror", str(SHARED / "eval")],
        ["bench", "--models", "efficientnet_lite0,resnet50", "--device", "cpu", "--out", str(tmp_path / "bench"),
         "--photos", str(SHARED / "eval")],
    ]
    report._run_stages("data.csv", models, "cpu", tmp_path, mirror=SHARED / "eval")
    assert len(fake.calls) == 2  # both reused
    report._run_stages("data.csv", models, "cuda", tmp_path, mirror=SHARED / "eval")
    assert [c[0] for c in fake.calls[2:]] == ["bench"]  # another device: only bench again
    assert (tmp_path / "bench.previous" / "bench.json").is_file()  # the cpu results, set aside
    report._run_stages("data.csv", models, "cuda", tmp_path, mirror=SHARED / "eval", reuse=False)
    assert [c[0] for c in fake.calls[3:]] == ["evaluate", "bench"]
    assert (tmp_path / "eval.previous" / "summary.csv").is_file()


def test_incomplete_results_resume_in_place(fake, tmp_path):
    """After a killed evaluate (rows written, no summary yet) the stage runs again in the same folder."""
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "predictions.csv").write_text("model,file\n")
    report._run_stages("d", ["m"], "cpu", tmp_path)
    assert [c[0] for c in fake.calls] == ["evaluate", "bench"]
    assert not (tmp_path / "eval.previous").exists()


def test_existing_results_without_a_record_are_reused(fake, tmp_path):
    shutil.copytree(FIX / "eval", tmp_path / "eval")
    shutil.copytree(FIX / "bench", tmp_path / "bench")
    report._run_stages("d", ["m"], "cpu", tmp_path)
    assert fake.calls == []


def test_stage_without_results_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(report, "_topfive", FakeStages(rc=2, write=False))
    with pytest.raises(RuntimeError, match="topfive evaluate exited with status 2 and wrote no results"):
        report._run_stages("d", ["m"], "cpu", tmp_path)


def test_stage_with_failed_inputs_still_reports(monkeypatch, tmp_path, capsys):
    stages = FakeStages(rc=1)
    monkeypatch.setattr(report, "_topfive", stages)
    data = SHARED / "eval" / "manifest.csv"
    path = report.run_study(data, ["m"], "cpu", tmp_path / "r", mirror=SHARED / "eval", readme=tmp_path / "README.md",
                            quick=True)
    assert "some inputs failed" in capsys.readouterr().err
    assert stages.calls[1][-1] == "--quick"
    text = path.read_text()
    assert "## Gallery of disagreements" in text and "> **Quick bench run**" in text
    assert (tmp_path / "r" / "gallery" / ".gitignore").is_file()
    readme = (tmp_path / "README.md").read_text()
    assert report.REPORT_START in readme and "](r/charts/memory.png)" in readme


def test_subprocess_uses_this_package(monkeypatch):
    seen = {}

    def run(cmd, env):
        seen["cmd"], seen["env"] = cmd, env
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(report.subprocess, "run", run)
    assert report._topfive(["bench", "--models", "alexnet"]) == 0
    assert seen["cmd"] == [sys.executable, "-m", "topfive", "bench", "--models", "alexnet"]
    src = str(Path(topfive.__file__).resolve().parents[1])
    assert seen["env"]["PYTHONPATH"].split(":")[0] == src


def test_subprocess_really_runs_topfive(tmp_path):
    assert report._topfive(["--version"]) == 0


def test_defaults():
    assert report.default_models()[:6] == [
        "alexnet", "googlenet", "resnet50", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
    ]
    assert report.DEFAULT_DATA.name == "eval_manifest.csv"
    assert report.default_mirror() is not None and (report.default_mirror() / "manifest.csv").is_file()


def test_missing_photo_set_is_a_clear_error(fake, tmp_path):
    with pytest.raises(ValueError, match="nowhere.csv: no such photo set"):
        report.run_study(tmp_path / "nowhere.csv", ["m"], "cpu", tmp_path / "r")
    assert fake.calls == []  # nothing ran


def test_photo_folder_for_bench(tmp_path):
    assert report._photo_folder(tmp_path / "subset.csv", SHARED / "eval") == SHARED / "eval"
    assert report._photo_folder(tmp_path, None) is None  # no images there: bench gets no --photos
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "a.JPG").write_bytes(b"")
    assert report._photo_folder(tmp_path, None) == tmp_path
