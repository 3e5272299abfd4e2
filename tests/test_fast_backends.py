"""Fast backends agree with the eager reference on real photos (EfficientNet-Lite0, real weights).

Exports and quantisation happen once per module, into a temporary cache; speed is not tested here
(benchmarks/backends.py prints it).
"""

import csv

import numpy as np
import pytest
import torch

from conftest import EVAL
from topfive.runtime.backends import CompiledBackend, TorchBackend, make_backend
from topfive.predict import Classifier
from topfive.runtime.runtimes import SPIN, OnnxRuntimeBackend
from topfive.decode.images import load_image
from topfive.transforms import preprocess, stack
from topfive.models.zoo import resolve

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
    return TorchBackend(entry.build()).probabilities(batch)


@pytest.fixture(scope="module")
def onnx(entry, cache):
    return make_backend(entry, "onnx")


def test_reference_is_right_on_these_photos(reference):
    # guards the rest: agreeing with a model that is wrong everywhere would prove little
    accepted = {
        row["file"]: {int(i) for i in row["accepted_imagenet_indices"].split()}
        for row in csv.DictReader(open(EVAL / "manifest.csv"))
    }
    top5 = reference.topk(5, dim=-1).indices.tolist()
    hits = sum(bool(set(t) & accepted[str(p.relative_to(EVAL))]) for t, p in zip(top5, PHOTOS))
    assert hits >= 9, f"reference top-5 right on only {hits} of {len(PHOTOS)}"
    assert torch.allclose(reference.sum(-1), torch.ones(len(PHOTOS)), atol=1e-5)


def test_channels_last_eager_matches(entry, batch, reference):
    probs = TorchBackend(entry.build(), channels_last=True).probabilities(batch)
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    assert (probs - reference).abs().max() < 1e-4


def test_onnx_matches_eager(onnx, batch, reference):
    probs = onnx.probabilities(batch)
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    assert (probs - reference).abs().max() < 1e-3


@pytest.mark.parametrize("spin", SPIN)
def test_onnx_spin_modes_set_the_session_and_keep_its_numbers(onnx, batch, spin):
    other = OnnxRuntimeBackend(onnx.path, spin=spin)
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
        OnnxRuntimeBackend(onnx.path, spin="sometimes")


def test_onnx_export_is_cached_and_reused(entry, onnx, cache, monkeypatch):
    assert onnx.path.parent == cache / "onnx" and onnx.path.is_file()
    assert "efficientnet_lite0" in onnx.path.name and "224px" in onnx.path.name
    assert torch.__version__.split("+")[0] in onnx.path.name
    mtime = onnx.path.stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cached file was there")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    again = make_backend(entry, "onnx")
    assert again.path == onnx.path and onnx.path.stat().st_mtime_ns == mtime


def test_onnx_cache_key_separates_weights(entry, onnx, cache, tmp_path):
    weights = tmp_path / "w.pt"
    model = entry.build()
    torch.save(model.state_dict(), weights)
    other = make_backend(entry, "onnx", weights_file=str(weights))
    assert other.path != onnx.path and other.path.is_file()


def test_int8_mostly_matches_eager(entry, cache, batch, reference):
    calibration = sorted(EVAL.glob("images/*/*.jpg"))[5::70]  # 9 photos, none of the test photos
    int8 = make_backend(entry, "int8", calibration=calibration)
    assert "int8" in int8.path.name and int8.path.parent == cache / "onnx"
    probs = int8.probabilities(batch)
    agree = (probs.argmax(-1) == reference.argmax(-1)).float().mean().item()
    assert agree >= 9 / 12, f"int8 top-1 agrees on only {agree:.0%} of {len(PHOTOS)} photos"
    assert int8.path.stat().st_size < 0.5 * make_backend(entry, "onnx").path.stat().st_size


def test_int8_needs_calibration(entry, cache):
    with pytest.raises(ValueError, match="calibration"):
        make_backend(entry, "int8")


def test_unknown_backend_is_a_clear_error(entry):
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        make_backend(entry, "tensorrt")


def test_classifier_takes_a_backend_name(entry, cache, batch, reference):
    clf = Classifier("efficientnet_lite0", backend="onnx", batch_size=4)
    assert clf.backend.name == "onnx" and clf.backend.path.parent == cache / "onnx"
    results = clf.predict([str(p) for p in PHOTOS[:4]])
    assert [r.top[0].index for r in results] == reference[:4].argmax(-1).tolist()


def test_auto_is_onnx_on_cpu(entry, cache):
    assert make_backend(entry, "auto").name == "onnx"  # onnxruntime is installed here


def test_compiled_matches_eager(entry, batch, reference):
    torch.manual_seed(0)
    compiled = CompiledBackend(entry.build())
    probs = compiled.probabilities(batch)
    assert torch.equal(probs.argmax(-1), reference.argmax(-1))
    assert np.abs((probs - reference).numpy()).max() < 1e-3


def test_cli_backend_option(entry, cache, reference, capsys):
    import json

    from topfive.cli import main

    photos = [str(p) for p in PHOTOS[:2]]
    assert main(["classify", *photos, "--backend", "onnx", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["top"][0]["index"] for r in out] == reference[:2].argmax(-1).tolist()
    assert main(["classify", photos[0], "--backend", "int8"]) == 2  # no --calibration: a clear error
    assert "calibration" in capsys.readouterr().err
