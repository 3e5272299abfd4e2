"""The fast runtimes agree with the eager NCHW reference on real photos (EfficientNet-Lite0, real weights).

Exports and quantisation happen once per module, into a temporary cache; speed is not tested here.
Only test_compiled_matches_eager compiles (about a minute on a small CPU).
"""

import csv

import numpy as np
import pytest
import torch
from conftest import EVAL

from topfive.decode.images import load_image
from topfive.models import resolve
from topfive.predict import Classifier
from topfive.runtime import make_runtime
from topfive.runtime.compiled import CompiledRuntime
from topfive.runtime.onnxruntime import SPIN, OnnxRuntime
from topfive.runtime.torch_eager import TorchRuntime
from topfive.transforms import preprocess, stack

PHOTOS = sorted(EVAL.glob("images/*/*.jpg"))[::48][:12]  # 12 photos spread over the categories


@pytest.fixture(scope="module")
def cache(tmp_path_factory, monkeypatch_module):
    path = tmp_path_factory.mktemp("topfive-cache")
    monkeypatch_module.setenv("TOPFIVE_CACHE", str(path))
    return path


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def entry():
    return resolve("efficientnet_lite0")


@pytest.fixture(scope="module")
def batch(entry):
    return stack([preprocess(load_image(p), entry.info.preprocess) for p in PHOTOS], entry.info.preprocess)


@pytest.fixture(scope="module")
def reference(entry, batch):
    return TorchRuntime(entry.build(), channels_last=False).probabilities(batch)


@pytest.fixture(scope="module")
def onnx(entry, cache):
    return make_runtime(entry, "onnxruntime")


def test_reference_is_right_on_these_photos(reference):
    # guards the rest: agreeing with a model that is wrong everywhere would prove little
    accepted = {
        row["file"]: {int(i) for i in row["accepted_imagenet_indices"].split()}
        for row in csv.DictReader((EVAL / "manifest.csv").open())
    }
    top5 = reference.topk(5, dim=-1).indices.tolist()
    hits = sum(bool(set(t) & accepted[str(p.relative_to(EVAL))]) for t, p in zip(top5, PHOTOS))
    assert hits >= 9, f"reference top-5 right on only {hits} of {len(PHOTOS)}"
    assert torch.allclose(reference.sum(-1), torch.ones(len(PHOTOS)), atol=1e-5)


def test_channels_last_torch_matches(entry, batch, reference):
    runtime = make_runtime(entry, "torch")
    assert (runtime.name, runtime.precision, runtime.channels_last) == ("torch", "fp32", True)
    probs = runtime.probabilities(batch)
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    assert (probs - reference).abs().max() < 1e-4


def test_onnx_matches_eager(onnx, batch, reference):
    assert (onnx.name, onnx.precision) == ("onnxruntime", "fp32")
    probs = onnx.probabilities(batch)
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    assert (probs - reference).abs().max() < 1e-3


@pytest.mark.parametrize("spin", SPIN)
def test_onnx_spin_modes_set_the_session_and_keep_its_numbers(onnx, batch, spin):
    other = OnnxRuntime(onnx.path, spin=spin)
    config = other.session.get_session_options().get_session_config_entry
    entries = {"runs": ("session.force_spinning_stop", "1"), "never": ("session.intra_op.allow_spinning", "0")}
    for mode, (key, value) in entries.items():
        if mode == spin:
            assert config(key) == value
        else:  # ONNX Runtime's default: the key is not set
            with pytest.raises(RuntimeError, match="does not have configuration"):
                config(key)
    assert (other.probabilities(batch) - onnx.probabilities(batch)).abs().max() < 1e-6


def test_unknown_spin_mode_is_a_clear_error(onnx):
    with pytest.raises(ValueError, match="spin must be one of always, runs, never"):
        OnnxRuntime(onnx.path, spin="sometimes")


def test_onnx_export_is_cached_and_reused(entry, onnx, cache, monkeypatch):
    assert onnx.path.parent == cache / "onnx" and onnx.path.is_file()
    assert "efficientnet_lite0" in onnx.path.name and "224px" in onnx.path.name
    assert torch.__version__.split("+")[0] in onnx.path.name and "opset17" in onnx.path.name
    mtime = onnx.path.stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cached file was there")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    again = make_runtime(entry, "onnxruntime")
    assert again.path == onnx.path and onnx.path.stat().st_mtime_ns == mtime


def test_onnx_cache_key_separates_weights(entry, onnx, cache, tmp_path):
    weights = tmp_path / "w.pt"
    model = entry.build()
    torch.save(model.state_dict(), weights)
    other = make_runtime(entry, "onnxruntime", weights_file=str(weights))
    assert other.path != onnx.path and other.path.is_file()


def test_int8_mostly_matches_eager(entry, cache, batch, reference):
    calibration = sorted(EVAL.glob("images/*/*.jpg"))[5::70]  # 9 photos, none of the test photos
    int8 = make_runtime(entry, "int8", calibration=calibration)
    assert (int8.name, int8.precision) == ("int8", "int8")
    assert "int8" in int8.path.name and int8.path.parent == cache / "onnx"
    assert sorted(p.name for p in int8.path.parent.iterdir() if p.name.startswith(".")) == []  # no scratch left
    probs = int8.probabilities(batch)
    agree = (probs.argmax(-1) == reference.argmax(-1)).float().mean().item()
    assert agree >= 9 / 12, f"int8 top-1 agrees on only {agree:.0%} of {len(PHOTOS)} photos"
    assert int8.path.stat().st_size < 0.5 * make_runtime(entry, "onnxruntime").path.stat().st_size


def test_int8_needs_calibration(entry, cache):
    with pytest.raises(ValueError, match="calibration"):
        make_runtime(entry, "int8")


def test_unknown_runtime_is_a_clear_error(entry):
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'; choose from torch, compile, onnxruntime"):
        make_runtime(entry, "tensorrt")


def test_openvino_runs_the_onnx_export_in_fp32(entry, onnx, batch, reference):
    runtime = make_runtime(entry, "openvino")
    assert runtime.path == onnx.path  # the same cached export, read by OpenVINO
    assert (runtime.name, runtime.precision, runtime.inference_precision) == ("openvino", "fp32", "f32")
    probs = runtime.probabilities(batch)
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    assert (probs - reference).abs().max() < 1e-3


def test_classifier_takes_a_runtime_name(entry, cache, batch, reference):
    clf = Classifier("efficientnet_lite0", runtime="onnxruntime", batch_size=4)
    assert clf.runtime.name == "onnxruntime" and clf.runtime.path.parent == cache / "onnx"
    results = clf.predict([str(p) for p in PHOTOS[:4]])
    assert [r.top[0].index for r in results] == reference[:4].argmax(-1).tolist()


def test_compiled_matches_eager(entry, batch, reference):
    torch.manual_seed(0)
    compiled = make_runtime(entry, "compile")
    assert isinstance(compiled, CompiledRuntime) and (compiled.name, compiled.precision) == ("compile", "fp32")
    probs = compiled.probabilities(batch)
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    assert np.abs((probs - reference).numpy()).max() < 1e-3


def test_cli_runtime_option(entry, cache, reference, capsys):
    import json

    from topfive.cli import main

    photos = [str(p) for p in PHOTOS[:2]]
    assert main(["classify", *photos, "--runtime", "onnxruntime", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert [r["top"][0]["index"] for r in json.loads(captured.out)] == reference[:2].argmax(-1).tolist()
    assert "deprecated" not in captured.err
    assert main(["classify", photos[0], "--runtime", "int8"]) == 2  # no --calibration: a clear error
    assert "calibration" in capsys.readouterr().err


def test_cli_backend_is_the_deprecated_spelling(entry, cache, reference, capsys):
    import json

    from topfive.cli import main

    photos = [str(p) for p in PHOTOS[:2]]
    assert main(["classify", *photos, "--backend", "onnx", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert [r["top"][0]["index"] for r in json.loads(captured.out)] == reference[:2].argmax(-1).tolist()
    assert captured.err == "topfive: --backend is deprecated; use --runtime onnxruntime\n"
