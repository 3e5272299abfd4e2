"""topfive.runtime: one constructor for every runtime, zoo models and model cards alike.

Real models only: the model cards in ../shared/models and torchvision architectures (random
weights where the published ones would need a download). Nothing here compiles.
"""

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EVAL, SHARED

from topfive.models import resolve
from topfive.models.cards import CardError
from topfive.runtime import (
    RUNTIMES,
    RuntimeMissing,
    canonical_runtime,
    export,
    make_runtime,
    quantize,
    registry,
)
from topfive.runtime.base import GraphRuntime
from topfive.runtime.request import RuntimeRequest
from topfive.sampling import spread_evenly

MODELS = SHARED / "models"
ONNX_CARD = MODELS / "mobilenetv2-12-int8.onnx.json"
IR_CARD = MODELS / "squeezenet1.1-fp16.xml.json"
TFLITE_CARD = MODELS / "mobilenet_v1_0.25_128_quant.tflite.json"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPFIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TOPFIVE_TFLITE_RUNTIME", raising=False)


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def random_module(arch: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return resolve(arch).build(pretrained=False)


# --- the vocabulary ----------------------------------------------------------------------------


def test_vocabulary():
    assert RUNTIMES == ("torch", "compile", "onnxruntime", "int8", "openvino", "openvino-bf16", "litert", "auto")
    assert set(registry.REGISTRY) == set(RUNTIMES) - {"auto"}
    for name in RUNTIMES:
        assert canonical_runtime(name) == name


def test_deprecated_spellings_map_and_warn_once(monkeypatch):
    monkeypatch.setattr(registry, "_warned", set())
    for old, new in {"eager": "torch", "onnx": "onnxruntime", "tflite": "litert"}.items():
        with pytest.warns(DeprecationWarning, match=f"runtime '{old}' is deprecated; use '{new}'"):
            assert canonical_runtime(old) == new
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert canonical_runtime(old) == new  # the second time: no warning


def test_unknown_runtime():
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'; choose from torch, compile, .*, auto"):
        canonical_runtime("tensorrt")


def test_naming_the_vocabulary_loads_no_runtime_package():
    code = (
        "import sys; from topfive.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'openvino', 'ai_edge_litert') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_models_never_import_the_runtimes():
    code = (
        "import sys; from topfive.models import resolve; resolve('efficientnet_lite0'); "
        f"resolve({str(ONNX_CARD)!r}).info; print([m for m in sys.modules if m.startswith('topfive.runtime')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- cards: auto, the runtimes they can use, the graph check ------------------------------------


@pytest.mark.parametrize(
    "card, name", [(ONNX_CARD, "onnxruntime"), (IR_CARD, "openvino"), (TFLITE_CARD, "litert")]
)
def test_auto_runs_a_card_on_its_formats_runtime(card, name):
    runtime = make_runtime(resolve(str(card)))
    assert runtime.name == name and isinstance(runtime, GraphRuntime)
    # every graph runtime reports its graph the same way (what the card check reads)
    assert runtime.input_name and len(runtime.input_shape) == 4 and runtime.input_dtype in ("float32", "uint8")
    assert runtime.output_names


def test_tflite_runtime_from_the_environment(monkeypatch):
    monkeypatch.setenv("TOPFIVE_TFLITE_RUNTIME", "openvino")
    assert make_runtime(resolve(str(TFLITE_CARD))).name == "openvino"
    monkeypatch.setenv("TOPFIVE_TFLITE_RUNTIME", "tensorflow")
    with pytest.raises(ValueError, match="TOPFIVE_TFLITE_RUNTIME='tensorflow'"):
        make_runtime(resolve(str(TFLITE_CARD)))


@pytest.mark.parametrize(
    "card, kind, usable",
    [
        (ONNX_CARD, "torch", "onnxruntime, auto"),
        (ONNX_CARD, "litert", "onnxruntime, auto"),
        (TFLITE_CARD, "int8", "openvino, litert, auto"),
        (IR_CARD, "onnxruntime", "openvino, auto"),
    ],
)
def test_a_card_asked_for_a_runtime_it_cannot_use(card, kind, usable):
    entry = resolve(str(card))
    with pytest.raises(ValueError) as e:
        make_runtime(entry, kind)
    message = str(e.value)
    assert entry.info.name in message and f"runtime {kind!r} cannot run it" in message and usable in message


def test_a_zoo_model_asked_for_litert():
    with pytest.raises(ValueError, match="efficientnet_lite0 is a PyTorch model; runtime 'litert' cannot run it"):
        make_runtime(resolve("efficientnet_lite0"), "litert")


def test_a_card_takes_no_weights_file():
    with pytest.raises(ValueError, match="names its own files"):
        make_runtime(resolve(str(TFLITE_CARD)), weights_file="w.pt")


def test_a_card_explicit_runtime():
    assert make_runtime(resolve(str(TFLITE_CARD)), "openvino").name == "openvino"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert make_runtime(resolve(str(TFLITE_CARD)), "tflite").name == "litert"  # the former spelling


@pytest.mark.parametrize("card, kind", [(ONNX_CARD, "onnxruntime"), (IR_CARD, "openvino"),
                                        (TFLITE_CARD, "litert"), (TFLITE_CARD, "openvino")])
def test_every_graph_runtime_checks_the_card(tmp_path, card, kind):
    data = json.loads(card.read_text())
    data["input"]["name"] = "not_the_input"
    folder = tmp_path / "m"
    folder.mkdir()
    path = folder / card.name
    path.write_text(json.dumps(data))
    for name in [data["file"]] + ([data["weights_file"]["file"]] if "weights_file" in data else []):
        (folder / name).symlink_to(MODELS / name)
    with pytest.raises(CardError, match=r"field `input.name`: 'not_the_input', but the model's input is"):
        make_runtime(resolve(str(path)), kind)


def test_missing_runtime_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(RuntimeMissing, match=r"pip install 'topfive\[onnx\]'"):
        make_runtime(resolve(str(ONNX_CARD)))


# --- defect: threads are applied by every runtime, under auto too ------------------------------


def test_threads_reach_onnxruntime_for_a_card_under_auto():
    runtime = make_runtime(resolve(str(ONNX_CARD)), threads=1)
    assert runtime.session.get_session_options().intra_op_num_threads == 1


def test_threads_reach_openvino():
    assert make_runtime(resolve(str(IR_CARD)), threads=1).compiled.get_property("INFERENCE_NUM_THREADS") == 1
    runtime = make_runtime(resolve(str(TFLITE_CARD)), "openvino", threads=2)
    assert runtime.compiled.get_property("INFERENCE_NUM_THREADS") == 2


def test_threads_reach_litert(monkeypatch):
    from topfive.runtime import litert

    interpreter = litert.interpreter_class()
    given = []

    def recording(**kwargs):
        given.append(kwargs["num_threads"])
        return interpreter(**kwargs)

    monkeypatch.setattr(litert, "interpreter_class", lambda: recording)
    assert make_runtime(resolve(str(TFLITE_CARD)), threads=1).threads == 1
    assert given == [1]


def test_threads_reach_a_classifier_with_the_default_runtime():
    from topfive.predict import Classifier

    clf = Classifier(str(ONNX_CARD), threads=1)
    assert clf.runtime.session.get_session_options().intra_op_num_threads == 1


def test_threads_reach_torch_only_when_asked(torch_threads):
    module = random_module("mobilenet_v3_small", 0)
    torch.set_num_threads(2)
    make_runtime(resolve("mobilenet_v3_small"), "torch", module=module)
    assert torch.get_num_threads() == 2
    make_runtime(resolve("mobilenet_v3_small"), "torch", module=module, threads=1)
    assert torch.get_num_threads() == 1


# --- OpenVINO precision -------------------------------------------------------------------------


def test_openvino_runs_in_f32_whatever_the_cpu():
    # Without the hint OpenVINO picks bf16 on CPUs with avx512_bf16 / AMX (this CI machine has them).
    runtime = make_runtime(resolve(str(IR_CARD)))
    assert runtime.precision == "fp32" and runtime.inference_precision == "f32"


# --- defect: the export cache key ---------------------------------------------------------------


@pytest.fixture
def fake_exporter(monkeypatch):
    """torch.onnx.export writing a stand-in file, for tests of the cache key alone."""
    calls = []

    def export(model, args, path, **kwargs):
        calls.append(kwargs["opset_version"])
        Path(path).write_bytes(b"onnx")

    monkeypatch.setattr(torch.onnx, "export", export)
    return calls


def test_the_opset_is_in_the_cache_key(fake_exporter):
    module = random_module("mobilenet_v3_small", 0)
    a = export.export_onnx(module, "m", 224, "t", opset=17)
    b = export.export_onnx(module, "m", 224, "t", opset=13)
    assert a != b and "opset17" in a.name and "opset13" in b.name and fake_exporter == [17, 13]
    assert export.export_onnx(module, "m", 224, "t", opset=13) == b and fake_exporter == [17, 13]


def test_an_interrupted_export_leaves_nothing(monkeypatch, tmp_path):
    def failing(model, args, path, **kwargs):
        Path(path).write_bytes(b"half")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(torch.onnx, "export", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        export.export_onnx(random_module("mobilenet_v3_small", 0), "m", 224, "t")
    assert list((tmp_path / "cache" / "onnx").iterdir()) == []


def test_a_module_without_a_tag_is_named_by_its_weights(fake_exporter):
    entry = resolve("mobilenet_v3_small")
    zero, one, zero_again = (random_module("mobilenet_v3_small", s) for s in (0, 1, 0))
    path = lambda m, tag=None: RuntimeRequest(entry, "onnxruntime", module=m, tag=tag).onnx_export()
    assert path(zero) != path(one)
    assert path(zero) == path(zero_again)  # same weights, same file
    assert "random-seed0" in path(zero, "random-seed0").name


def test_different_untagged_modules_run_their_own_weights():
    entry = resolve("mobilenet_v3_small")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for seed in (0, 1):
        module = random_module("mobilenet_v3_small", seed)
        expected = make_runtime(entry, "torch", module=module, channels_last=False).probabilities(x)
        got = make_runtime(entry, "onnxruntime", module=module).probabilities(x)
        assert (got - expected).abs().max() < 1e-4, f"seed {seed} ran another module's export"


# --- defect: the int8 calibration fingerprint ---------------------------------------------------


def test_calibration_photos_are_spread_evenly():
    photos = sorted(str(p) for p in (EVAL / "images").rglob("*.jpg"))
    assert quantize.calibration_files(EVAL / "images", 64) == spread_evenly(photos, 64)


def test_calibration_fingerprint_reads_the_contents(tmp_path):
    source = sorted((EVAL / "images").rglob("*.jpg"))[:2]
    sets = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        sets.append([str(shutil.copy(p, tmp_path / name / p.name)) for p in source])
    changed = Path(sets[1][1])
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same name, same size, other pixels
    changed.write_bytes(bytes(data))
    fp32 = tmp_path / "m.onnx"
    assert quantize.int8_path(fp32, sets[0]) != quantize.int8_path(fp32, sets[1])
    assert quantize.int8_path(fp32, sets[0]) == quantize.int8_path(fp32, list(sets[0]))


# --- auto and options for zoo models ------------------------------------------------------------


def test_auto_for_a_zoo_model_falls_back_to_torch_when_the_export_fails(monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("unexportable")

    monkeypatch.setattr(torch.onnx, "export", failing)
    module = random_module("mobilenet_v3_small", 0)
    with pytest.warns(UserWarning, match="ONNX export/run failed .*unexportable.*running eager torch"):
        runtime = make_runtime(resolve("mobilenet_v3_small"), module=module)
    assert runtime.name == "torch" and runtime.module is module


def test_torch_options(torch_threads):
    module = random_module("mobilenet_v3_small", 0)
    runtime = make_runtime(resolve("mobilenet_v3_small"), "torch", module=module, amp=torch.bfloat16)
    assert runtime.precision == "bf16 autocast" and runtime.torch_device == torch.device("cpu")
    assert runtime.device == "cpu" and runtime.module is module
    probs = runtime.probabilities(torch.zeros(1, 3, 224, 224))
    assert probs.dtype == torch.float32 and probs.shape == (1, 1000)
    assert np.isclose(probs.sum().item(), 1, atol=1e-3)
    with pytest.raises(ValueError, match="need an explicit runtime"):
        make_runtime(resolve("mobilenet_v3_small"), module=module, channels_last=False)
