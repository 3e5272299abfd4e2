"""`auto` for zoo models: the fastest fp32 runtime measured here, cached per model, machine and
versions; $TOPFIVE_AUTO_RUNTIME pins it; `topfive tune` prints the table. And openvino-bf16.

conftest.py pins auto for the rest of the suite; the tests here unpin it. Budgets are tiny (tens of
ms per candidate): these tests check what is measured, cached and said, never how fast anything is.
"""

import json
import logging
import time

import pytest
import torch
from conftest import EVAL

from topfive import machine
from topfive.cli import main
from topfive.decode.images import load_image
from topfive.files import cache_dir
from topfive.models import resolve
from topfive.runtime import make_runtime, openvino, tune
from topfive.runtime.base import Runtime
from topfive.transforms import preprocess, stack

TINY = 0.04  # seconds per candidate


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # the ONNX export is made once for the module


@pytest.fixture(autouse=True)
def unpinned(shared_cache, monkeypatch):
    monkeypatch.setenv("TOPFIVE_CACHE", str(shared_cache))
    monkeypatch.delenv(tune.ENV, raising=False)
    monkeypatch.setattr(tune, "DEFAULT_SECONDS", TINY)
    for old in (shared_cache / "tune").glob("*.json"):
        old.unlink()
    tune.current_fingerprint.cache_clear()
    yield
    tune.current_fingerprint.cache_clear()


@pytest.fixture
def no_measuring(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("measured where a cached or pinned choice should have been used")

    monkeypatch.setattr(tune, "measure", refuse)


class Sleeper(Runtime):
    """A stand-in runtime taking `ms` per image, so which one is fastest is known."""

    precision = "fp32"

    def __init__(self, name, ms):
        self.name, self.ms = name, ms

    def probabilities(self, batch):
        time.sleep(self.ms * len(batch) / 1000)
        return torch.full((len(batch), 1000), 1e-3)


# --- measuring and choosing -----------------------------------------------------------------------


def test_the_most_images_per_second_at_batch_8_wins_and_a_failing_candidate_is_skipped():
    def build(name):
        if name == "openvino":
            raise RuntimeError("no CPU plugin\nsecond line")
        return Sleeper(name, {"onnxruntime": 1, "torch": 4}[name])

    tuning = tune.measure("m", build, (3, 8, 8), seconds=TINY)
    rows = {r.runtime: r for r in tuning.rows}
    assert tuning.choice == "onnxruntime" and tuning.runtime.name == "onnxruntime"
    assert rows["openvino"].skipped == "RuntimeError: no CPU plugin" and not rows["openvino"].timed
    assert rows["onnxruntime"].images_per_s > 2 * rows["torch"].images_per_s
    assert 1 <= rows["onnxruntime"].ms_batch1 < rows["torch"].ms_batch1
    assert "batch 8" in tuning.why and "x torch" in tuning.why
    assert "chosen" in tuning.table() and "no CPU plugin" in tuning.table()


def test_nothing_timed_falls_back_to_torch_and_is_not_cached():
    def build(name):
        raise RuntimeError(f"{name} broke")

    tuning = tune.tuned("m", build, (3, 8, 8), seconds=TINY)
    assert tuning.choice == "torch" and "no candidate could be timed" in tuning.why and "onnxruntime broke" in tuning.why
    assert tuning.path is None and not tune.cache_path("m").exists()


def test_the_key_changes_with_model_threads_versions_and_cpu(monkeypatch):
    real = machine.fingerprint
    base = tune.cache_key("m")
    assert tune.cache_key("m") == base and tune.cache_key("n") != base and tune.cache_key("m", 1) != base
    changes = [
        lambda fp: dict(fp, packages=dict(fp["packages"], onnxruntime="0.0.1")),
        lambda fp: dict(fp, packages=dict(fp["packages"], openvino="")),  # uninstalled
        lambda fp: dict(fp, isa=["avx2"]),
        lambda fp: dict(fp, cpu="another CPU"),
    ]
    for change in changes:
        monkeypatch.setattr(machine, "fingerprint", lambda threads=None, change=change: change(real(threads)))
        tune.current_fingerprint.cache_clear()
        assert tune.cache_key("m") != base


def test_a_cached_choice_is_reused_and_force_or_a_corrupt_file_measures_again():
    built = []

    def build(name):
        built.append(name)
        return Sleeper(name, {"onnxruntime": 2, "openvino": 1, "torch": 3}[name])

    first = tune.tuned("m", build, (3, 8, 8), seconds=TINY)
    assert first.choice == "openvino" and not first.cached and first.path == tune.cache_path("m")
    stored = json.loads(first.path.read_text())
    assert stored["choice"] == "openvino" and stored["fingerprint"]["packages"]["torch"]
    again = tune.tuned("m", build, (3, 8, 8), seconds=TINY)
    assert again.cached and again.choice == "openvino" and again.rows == first.rows and len(built) == 3
    tune.tuned("m", build, (3, 8, 8), seconds=TINY, force=True)
    assert len(built) == 6
    first.path.write_text("{ half a file")
    assert not tune.tuned("m", build, (3, 8, 8), seconds=TINY).cached and len(built) == 9


# --- auto, for real -------------------------------------------------------------------------------


def test_auto_measures_at_first_use_says_so_at_info_then_reads_the_cache(caplog, monkeypatch):
    # a CLI test in this process may have made the CLI show the notes itself (not through the root logger)
    monkeypatch.setattr(logging.getLogger("topfive"), "propagate", True)
    entry = resolve("efficientnet_lite0")
    with caplog.at_level(logging.INFO, logger="topfive"):
        runtime = make_runtime(entry, threads=1)
    stored = json.loads(tune.cache_path("efficientnet_lite0", 1).read_text())
    timed = {r["runtime"]: r["images_per_s"] for r in stored["rows"] if r["images_per_s"]}
    assert {"onnxruntime", "openvino", "torch"} <= set(timed)  # all three are installed here
    assert runtime.name == stored["choice"] == max(timed, key=timed.get) and runtime.precision == "fp32"
    # logged once: one record (a handler that Ray's client leaves on the way may show it twice)
    notes = list({id(r): r for r in caplog.records if "auto runs efficientnet_lite0 on" in r.getMessage()}.values())
    assert len(notes) == 1 and notes[0].levelno == logging.INFO  # below WARNING: silent in library use
    monkeypatch.setattr(tune, "measure", lambda *a, **k: pytest.fail("measured again"))
    assert make_runtime(entry, threads=1).name == runtime.name
    x = torch.zeros(2, 3, 224, 224)
    assert (runtime.probabilities(x) - make_runtime(entry, "torch").probabilities(x)).abs().max() < 1e-3


def test_a_candidate_whose_export_fails_is_skipped_with_its_reason(monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("unexportable")

    monkeypatch.setattr(torch.onnx, "export", failing)
    torch.manual_seed(0)
    module = resolve("mobilenet_v3_small").build(pretrained=False)
    runtime = make_runtime(resolve("mobilenet_v3_small"), module=module)
    assert runtime.name == "torch" and runtime.module is module
    stored = json.loads(next(cache_dir("tune").glob("mobilenet_v3_small*.json")).read_text())
    skipped = {r["runtime"]: r["skipped"] for r in stored["rows"]}
    assert "unexportable" in skipped["onnxruntime"] and "unexportable" in skipped["openvino"]


def test_the_environment_pins_auto_without_measuring(monkeypatch, no_measuring):
    monkeypatch.setenv(tune.ENV, "torch")
    assert make_runtime(resolve("efficientnet_lite0")).name == "torch"
    monkeypatch.setenv(tune.ENV, "int8")
    with pytest.raises(ValueError, match="TOPFIVE_AUTO_RUNTIME='int8': use one of onnxruntime, openvino, torch"):
        make_runtime(resolve("efficientnet_lite0"))


def test_cards_are_not_tuned(no_measuring):
    card = resolve(str(EVAL.parent / "models" / "mobilenetv2-12-int8.onnx.json"))
    assert make_runtime(card).name == "onnxruntime"


# --- the command ---------------------------------------------------------------------------------


def test_tune_command_prints_the_table_and_the_cache(capsys):
    card = str(EVAL.parent / "models" / "squeezenet1.1-fp16.xml.json")
    assert main(["tune", "efficientnet_lite0", card, "--seconds", str(TINY), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "img/s (batch 8)" in out and "ms (batch 1)" in out and "chosen" in out
    assert "auto: " in out and str(tune.cache_path("efficientnet_lite0", 1)) in out
    assert "a model card; auto runs it on openvino" in out
    assert main(["tune", "efficientnet_lite0", "--threads", "1"]) == 0
    assert "measured before; --force measures again" in capsys.readouterr().out
    assert main(["tune", "efficientnet_lite0", "--threads", "1", "--force", "--seconds", str(TINY)]) == 0
    assert "measured before" not in capsys.readouterr().out


def test_the_command_line_shows_the_choice_on_stderr(capsys):
    photo = str(min(EVAL.glob("images/*/*.jpg")))
    assert main(["classify", photo, "--threads", "1"]) == 0
    assert "topfive: auto runs efficientnet_lite0 on " in capsys.readouterr().err


# --- openvino-bf16 --------------------------------------------------------------------------------

NATIVE_BF16 = bool(set(openvino.BF16_FLAGS) & set(machine.isa_flags()))


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bf16")
def test_openvino_bf16_runs_in_bf16_under_its_own_name():
    entry = resolve("efficientnet_lite0")
    photos = sorted(EVAL.glob("images/*/*.jpg"))[::96][:6]
    batch = stack([preprocess(load_image(p), entry.info.preprocess) for p in photos], entry.info.preprocess)
    bf16, fp32 = make_runtime(entry, "openvino-bf16"), make_runtime(entry, "openvino")
    assert (bf16.name, bf16.precision, bf16.inference_precision) == ("openvino-bf16", "bf16", "bf16")
    a, b = bf16.probabilities(batch), fp32.probabilities(batch)
    assert (a - b).abs().max() > 1e-4  # really bf16: the fp32 runtimes agree within ~2e-6 on these photos
    assert (a - b).abs().max() < 0.1


def test_openvino_bf16_is_refused_where_the_cpu_lacks_it(monkeypatch):
    monkeypatch.setattr(openvino, "isa_flags", lambda: ("avx2", "avx512f"))
    with pytest.raises(openvino.Bf16Unsupported, match="needs a CPU with native bf16.*use the openvino runtime"):
        make_runtime(resolve("efficientnet_lite0"), "openvino-bf16")


def test_the_cli_shows_a_library_note_once_even_where_the_root_logger_has_a_handler(capsys):
    import logging

    from topfive.cli.tune import show_library_notes

    root = logging.getLogger()
    handler = logging.StreamHandler()  # as onnxruntime's quantiser's basicConfig leaves one
    root.addHandler(handler)
    try:
        show_library_notes()
        logging.getLogger("topfive.runtime.registry").info("auto runs m on openvino")
    finally:
        root.removeHandler(handler)
    assert capsys.readouterr().err.count("auto runs m on openvino") == 1
