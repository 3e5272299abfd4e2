"""run_study: how the evaluate and bench stages are invoked and reused (the stages themselves are
replaced by stand-ins that write the fixture result files)."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import SHARED

from topfive.machine import fingerprint
from topfive.report import study
from topfive.report.defaults import (
    DEFAULT_DATA,
    DEFAULT_MODELS,
    comparison_runtimes,
    default_mirror,
    default_models,
    study_runs,
)
from topfive.report.readme import REPORT_START

FIX = Path(__file__).resolve().parent / "fixtures" / "report"


def stamp(folder: Path, fp: dict | None = None) -> None:
    """Records a machine fingerprint (default: this machine's) in a stage's result file, as
    evaluate and bench do; None removes it."""
    for name in ("evaluate.json", "bench.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text())
            data["fingerprint"] = fp if fp is not None else fingerprint()
            path.write_text(json.dumps(data))


class FakeStages:
    """Stands in for evaluate_stage, bench_stage and robustness_stage: records each call, writes the
    fixture files (robustness: empty tables) with this machine's fingerprint."""

    def __init__(self, problems=(), write=True):
        self.calls, self.problems, self.write = [], list(problems), write

    def evaluate(self, data, models, out, mirror=None, later=0.0):
        return self._run("evaluate", out, data=data, models=models, mirror=mirror)

    def bench(self, models, device, out, photos=None, quick=False, later=0.0):
        return self._run("bench", out, models=models, device=device, photos=photos, quick=quick)

    def robustness(self, data, models, out, mirror=None, later=0.0):
        self.calls.append(("robustness", {"out": out, "models": models}))
        if self.write:
            out.mkdir(parents=True, exist_ok=True)
            (out / "robustness.json").write_text(json.dumps({"fingerprint": fingerprint(), "models": []}))
            for name in ("robustness_summary.csv", "robustness.csv"):
                (out / name).write_text("model,runtime,kind,severity,file\n")
        return self.problems

    def _run(self, name, out, **kwargs):
        self.calls.append((name, {"out": out, **kwargs}))
        if self.write:
            shutil.copytree(FIX / ("eval" if name == "evaluate" else "bench"), out, dirs_exist_ok=True)
            stamp(out)
        return self.problems

    @property
    def names(self):
        return [name for name, _ in self.calls]


@pytest.fixture
def fake(monkeypatch):
    stages = FakeStages()
    monkeypatch.setattr(study, "evaluate_stage", stages.evaluate)
    monkeypatch.setattr(study, "bench_stage", stages.bench)
    monkeypatch.setattr(study, "robustness_stage", stages.robustness)
    # the robustness stage has tests of its own below; elsewhere a study of evaluate and bench
    monkeypatch.setattr(study, "robustness_models", lambda models: [])
    return stages


def test_stages_run_then_reused(fake, tmp_path):
    models = ["efficientnet_lite0", "resnet50"]
    study.run_stages("data.csv", models, "cpu", tmp_path, mirror=SHARED / "eval")
    assert fake.calls == [
        ("evaluate", {"out": tmp_path / "eval", "data": "data.csv", "models": models, "mirror": SHARED / "eval"}),
        ("bench", {"out": tmp_path / "bench", "models": models, "device": "cpu", "photos": SHARED / "eval",
                   "quick": False}),
    ]
    record = json.loads((tmp_path / "study.json").read_text())
    speeds = record.pop(study.SPEEDS)  # each stage's seconds per run here, for the time left next time
    assert set(speeds) == {"fingerprint", "evaluate", "bench"} and speeds["bench"] >= 0
    assert record == {  # the equivalent command lines
        "evaluate": ["evaluate", "--data", "data.csv", "--models", "efficientnet_lite0,resnet50",
                     "--out", str(tmp_path / "eval"), "--mirror", str(SHARED / "eval")],
        "bench": ["bench", "--models", "efficientnet_lite0,resnet50", "--device", "cpu", "--out",
                  str(tmp_path / "bench"), "--repeats", "1", "--photos", str(SHARED / "eval")],
    }
    study.run_stages("data.csv", models, "cpu", tmp_path, mirror=SHARED / "eval")
    assert len(fake.calls) == 2  # both reused
    study.run_stages("data.csv", models, "cuda", tmp_path, mirror=SHARED / "eval")
    assert fake.names[2:] == ["bench"]  # another device: only bench again
    assert (tmp_path / "bench.previous" / "bench.json").is_file()  # the cpu results, set aside
    study.run_stages("data.csv", models, "cuda", tmp_path, mirror=SHARED / "eval", reuse=False)
    assert fake.names[3:] == ["evaluate", "bench"]
    assert (tmp_path / "eval.previous" / "summary.csv").is_file()


def test_incomplete_results_resume_in_place(fake, tmp_path):
    """After a killed evaluate (rows written, no summary yet) the stage runs again in the same folder."""
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "predictions.csv").write_text("model,file\n")
    study.run_stages("d", ["m"], "cpu", tmp_path)
    assert fake.names == ["evaluate", "bench"]
    assert not (tmp_path / "eval.previous").exists()


def test_existing_results_without_a_record_are_reused_on_the_same_machine(fake, tmp_path):
    shutil.copytree(FIX / "eval", tmp_path / "eval")
    shutil.copytree(FIX / "bench", tmp_path / "bench")
    stamp(tmp_path / "eval")
    stamp(tmp_path / "bench")
    study.run_stages("d", ["m"], "cpu", tmp_path)
    assert fake.calls == []


def test_stage_without_results_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(study, "evaluate_stage", FakeStages(write=False).evaluate)
    with pytest.raises(RuntimeError, match="evaluate wrote no results in"):
        study.run_stages("d", ["m"], "cpu", tmp_path)
    assert not (tmp_path / "study.json").exists()


def test_stage_with_failed_inputs_still_reports(monkeypatch, tmp_path, capsys):
    stages = FakeStages(problems=["2 of 569 photos unreadable"])
    monkeypatch.setattr(study, "evaluate_stage", stages.evaluate)
    monkeypatch.setattr(study, "bench_stage", stages.bench)
    data = SHARED / "eval" / "manifest.csv"
    path = study.run_study(data, ["m"], "cpu", tmp_path / "r", mirror=SHARED / "eval", readme=tmp_path / "README.md",
                           quick=True)
    err = capsys.readouterr().err
    assert "topfive report: evaluate: some inputs failed (2 of 569 photos unreadable); its results are used" in err
    assert "topfive report: running topfive evaluate --data " in err
    assert stages.calls[1][1]["quick"] is True
    text = path.read_text()
    assert "## Gallery of disagreements" in text and "> **Quick bench run**" in text
    assert (tmp_path / "r" / "gallery" / ".gitignore").is_file()
    readme = (tmp_path / "README.md").read_text()
    assert REPORT_START in readme and "](r/charts/throughput.png)" in readme and "](r/REPORT.md)" in readme


def test_the_stages_run_in_this_process(fake, tmp_path, monkeypatch):
    """evaluate and bench are library calls: nothing starts `python -m topfive`."""
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    study.run_study(SHARED / "eval" / "manifest.csv", ["m"], "cpu", tmp_path / "r")
    assert fake.names == ["evaluate", "bench"]


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("TOPFIVE_EVAL_DIR", raising=False)
    monkeypatch.delenv("TOPFIVE_MODELS_DIR", raising=False)
    assert default_models() == list(DEFAULT_MODELS) == [
        "alexnet", "googlenet", "resnet50", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
    ]
    assert default_mirror() is None and DEFAULT_DATA == "builtin:eval"
    cards = default_models(SHARED / "models")
    assert cards[:6] == list(DEFAULT_MODELS) and len(cards) == 13
    assert all(c.startswith(str(SHARED / "models")) and c.endswith(".json") for c in cards[6:])
    monkeypatch.setenv("TOPFIVE_EVAL_DIR", str(SHARED / "eval"))
    monkeypatch.setenv("TOPFIVE_MODELS_DIR", str(SHARED / "models"))
    assert default_mirror() == SHARED / "eval" and default_models() == cards
    with pytest.raises(ValueError, match="no such folder of model cards"):
        default_models(tmp_path / "nowhere")


def test_default_study_takes_cards_and_mirror_from_options_or_environment(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("TOPFIVE_EVAL_DIR", raising=False)
    monkeypatch.delenv("TOPFIVE_MODELS_DIR", raising=False)
    path = study.run_study(out=tmp_path / "a", mirror=SHARED / "eval", cards=SHARED / "models")
    (_, evaluate), (_, bench) = fake.calls
    assert evaluate["data"] == "builtin:eval" and evaluate["mirror"] == SHARED / "eval"
    # 13 models, EfficientNet-Lite0 on four runtimes (int8 calibrated on the mirror's photos; five with
    # openvino-bf16 on a CPU with native bf16)
    assert len(evaluate["models"]) == 12 + len(comparison_runtimes()) and bench["photos"] == SHARED / "eval"
    assert [m for m in evaluate["models"] if m.startswith("efficientnet_lite0")] == [
        f"efficientnet_lite0@{r}" for r in comparison_runtimes()]
    assert "(`topfive report --mirror " in path.read_text()
    monkeypatch.setenv("TOPFIVE_EVAL_DIR", str(SHARED / "eval"))
    monkeypatch.setenv("TOPFIVE_MODELS_DIR", str(SHARED / "models"))
    study.run_study(out=tmp_path / "b")
    assert fake.calls[2][1]["models"] == evaluate["models"] and fake.calls[2][1]["mirror"] == SHARED / "eval"
    monkeypatch.delenv("TOPFIVE_MODELS_DIR")
    study.run_study(out=tmp_path / "c")
    assert fake.calls[4][1]["models"] == study_runs(list(DEFAULT_MODELS), comparison=True)


def test_report_names_its_inputs_relative_to_the_working_folder(fake, tmp_path, monkeypatch):
    (tmp_path / "shared").symlink_to(SHARED)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    path = study.run_study(out=tmp_path / "work" / "report", mirror=tmp_path / "shared" / "eval",
                           cards=Path("../shared/models"))
    header = path.read_text().split("\n## ", 1)[0]
    assert "(`topfive report --mirror ../shared/eval --cards ../shared/models`)" in header
    assert "(`report/eval`)" in header and str(tmp_path) not in header


def test_missing_photo_set_is_a_clear_error(fake, tmp_path):
    with pytest.raises(ValueError, match="nowhere.csv: no such photo set"):
        study.run_study(tmp_path / "nowhere.csv", ["m"], "cpu", tmp_path / "r")
    assert fake.calls == []  # nothing ran


def test_photo_folder_for_bench(tmp_path):
    assert study.photo_folder(tmp_path / "subset.csv", SHARED / "eval") == SHARED / "eval"
    assert study.photo_folder(tmp_path, None) is None  # no images there: bench gets no --photos
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "a.JPG").write_bytes(b"")
    assert study.photo_folder(tmp_path, None) == tmp_path


def test_robustness_is_a_stage_run_reused_and_set_aside_like_the_others(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(study, "robustness_models", lambda models: [m for m in models if m != "resnet50"])
    models = ["efficientnet_lite0", "resnet50"]
    study.run_stages("data.csv", models, "cpu", tmp_path, mirror=SHARED / "eval")
    assert fake.names == ["evaluate", "bench", "robustness"] and fake.calls[2][1]["models"] == ["efficientnet_lite0"]
    record = json.loads((tmp_path / "study.json").read_text())
    assert record["robustness"][:6] == ["evaluate", "--data", "data.csv", "--models", "efficientnet_lite0", "--out"]
    assert "--corruptions" in record["robustness"] and "robustness" in record[study.SPEEDS]
    study.run_stages("data.csv", models, "cpu", tmp_path, mirror=SHARED / "eval")
    assert len(fake.calls) == 3  # all reused
    stamp_robustness = tmp_path / "robustness" / "robustness.json"
    other = dict(fingerprint(), cpu="Another CPU")
    stamp_robustness.write_text(json.dumps({"fingerprint": other, "models": []}))
    study.run_stages("data.csv", models, "cpu", tmp_path, mirror=SHARED / "eval")
    assert fake.names[3:] == ["robustness"]  # measured on another machine: run again, the rest reused
    monkeypatch.setattr(study, "robustness_models", lambda models: [])
    study.run_stages("data.csv", models, "cpu", tmp_path, mirror=SHARED / "eval")
    assert not (tmp_path / "robustness").exists()  # no model for it now: the old results are set aside
    assert (tmp_path / "robustness.previous" / "robustness.json").is_file()


def test_each_stage_is_told_the_time_expected_after_it(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(study, "robustness_models", lambda models: models)
    told = {}
    for name in ("evaluate", "bench", "robustness"):
        stand_in = getattr(fake, name)

        def record(*args, _name=name, _run=stand_in, later=0.0, **kwargs):
            told[_name] = later
            return _run(*args, **kwargs)

        monkeypatch.setattr(study, f"{name}_stage", record)
    (tmp_path / "study.json").write_text(json.dumps({study.SPEEDS: {
        "fingerprint": study.fingerprint_key(fingerprint()), "bench": 7.0, "robustness": 3.0}}))
    study.run_stages("data.csv", ["a", "b"], "cpu", tmp_path)
    # this machine's recorded pace: bench 2 runs x 7 s and robustness 2 x 3 s after evaluate
    assert told == {"evaluate": 20.0, "bench": 6.0, "robustness": 0.0}
