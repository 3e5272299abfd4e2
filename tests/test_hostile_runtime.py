"""Hostile inputs at the runtime (issue 16): runtimes shared between threads (4), a card whose class
count is not the model's (6), non-finite outputs (7).

Real models and photos throughout: EfficientNet-Lite0 (torch and its ONNX export), the shared
SqueezeNet IR and MobileNetV1 TFLite cards, a torchvision ResNet-18 architecture for the NaN weights.
"""

import json
import threading
import warnings

import numpy as np
import pytest
import torch
import torchvision
from conftest import EVAL, SHARED

from topfive.decode.images import load_image
from topfive.files import sha256_file
from topfive.models import resolve
from topfive.models.cards import CardError
from topfive.predict import Classifier
from topfive.runtime import make_runtime
from topfive.runtime.base import CLASSES, NonFiniteOutput, OutputSizeError, to_probabilities
from topfive.transforms import preprocess, stack

MODELS = SHARED / "models"
IR_CARD = MODELS / "squeezenet1.1-fp16.xml.json"
TFLITE_CARD = MODELS / "mobilenet_v1_0.25_128_quant.tflite.json"  # outputs 1001 scores, background first
PHOTOS = sorted(EVAL.glob("images/*/*.jpg"))[::71][:6]
THREADS, ROUNDS = 4, 3


@pytest.fixture(scope="module", autouse=True)
def _gentle(tmp_path_factory):
    """One intra-op thread (the CI machine's cores are shared) and a cache of this module's own."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TOPFIVE_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.delenv("TOPFIVE_TFLITE_RUNTIME", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    mp.undo()


def hammer(call, inputs):
    """`call` on every input, ROUNDS times, from THREADS threads released together, each starting
    at another input: (the answers for each input, the exceptions raised)."""
    barrier = threading.Barrier(THREADS)
    answers, errors = [[] for _ in inputs], []

    def work(t):
        barrier.wait()
        try:
            for r in range(ROUNDS):
                for k in range(len(inputs)):
                    i = (k + t + r) % len(inputs)
                    answers[i].append(call(inputs[i]))
        except Exception as e:  # noqa: BLE001  (the test reports every thread's failure)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, errors


# --- defect 4: every runtime is safe to share between threads -----------------------------------

SHARED_RUNTIMES = {
    "torch": ("efficientnet_lite0", "torch"),
    "onnxruntime": ("efficientnet_lite0", "onnxruntime"),
    "openvino-ir": (str(IR_CARD), "openvino"),
    "openvino-tflite": (str(TFLITE_CARD), "openvino"),
    "litert": (str(TFLITE_CARD), "litert"),
}


@pytest.mark.parametrize("which", list(SHARED_RUNTIMES))
def test_a_runtime_shared_by_four_threads_gives_the_single_threaded_answers(which):
    model, kind = SHARED_RUNTIMES[which]
    entry = resolve(model)
    runtime = make_runtime(entry, kind, threads=1)
    spec = entry.info.preprocess
    photos = [preprocess(load_image(p), spec) for p in PHOTOS]
    # batches of 1, 2 and 3: LiteRT resizes its interpreter between them, a shared state to race on
    batches = [stack(photos[a:b], spec) for a, b in ((0, 1), (1, 3), (3, 6))]
    expected = [runtime.probabilities(b) for b in batches]
    answers, errors = hammer(runtime.probabilities, batches)
    assert errors == []
    for want, got in zip(expected, answers):
        assert len(got) == THREADS * ROUNDS
        assert all(torch.equal(g, want) for g in got), f"{which}: a thread got other probabilities"


def test_one_classifier_shared_by_four_threads():
    """The issue's case: four threads on one Classifier (LiteRT gave 3 RuntimeErrors and a wrong top-5)."""
    clf = Classifier(str(TFLITE_CARD), batch_size=2, workers=1, threads=1)
    images = [load_image(p) for p in PHOTOS]  # decoded once, so that the threads meet in the runtime
    sets = [images[:1], images[1:3], images[3:]]
    top = lambda paths: [p.top for p in clf.predict(paths)]  # noqa: E731
    expected = [top(s) for s in sets]
    answers, errors = hammer(top, sets)
    assert errors == []
    assert all(got == want for want, gots in zip(expected, answers) for got in gots)


# --- defect 6: a card's class count is checked against the model's output ------------------------


def card_copy(tmp_path, card, **output):
    """`card` beside links to its model files in tmp_path, with its `output` fields replaced."""
    data = json.loads(card.read_text())
    data["output"].update(output)
    for name in [data["file"]] + ([data["weights_file"]["file"]] if data.get("weights_file") else []):
        (tmp_path / name).symlink_to(card.parent / name)
    path = tmp_path / card.name
    path.write_text(json.dumps(data))
    return path


def assert_names_the_class_count(error: CardError, card):
    assert error.value.field == "output.num_classes" and error.value.card == str(card)
    assert "outputs" in str(error.value)


@pytest.mark.parametrize("kind", ["litert", "openvino"])
def test_a_card_without_the_background_class_its_model_outputs_is_refused(tmp_path, kind):
    # 1001 scores read as 1000 classes: every label one class off, and -k 1001 an IndexError
    card = card_copy(tmp_path, TFLITE_CARD, num_classes=1000, label_offset=0)
    with pytest.raises(CardError) as error:
        make_runtime(resolve(str(card)), kind, threads=1)
    assert_names_the_class_count(error, card)
    assert "1001 scores" in str(error.value)


def test_a_card_with_a_background_class_its_model_lacks_is_refused(tmp_path):
    card = card_copy(tmp_path, IR_CARD, num_classes=1001, label_offset=1)
    with pytest.raises(CardError) as error:
        Classifier(str(card), threads=1)
    assert_names_the_class_count(error, card)


@pytest.fixture(scope="module")
def dynamic_output_card(tmp_path_factory):
    """A real ONNX graph (1001 scores: background first) whose output shape leaves the class count
    dynamic, under a card that claims 1000 classes: only its first run can tell."""
    folder = tmp_path_factory.mktemp("dynamic")
    torch.manual_seed(0)
    # the output size follows the input's height and width, which the graph leaves open: 1001 at 32 x 32
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 1001, 32, stride=32), torch.nn.Flatten()).eval()
    model = folder / "dynamic.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.zeros(1, 3, 32, 32),), str(model), dynamo=False, input_names=["input"],
            output_names=["logits"], dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 1: "k"}},
        )
    card = {
        "card_version": 1, "architecture": "a test graph", "licence": "test", "format": "onnx",
        "file": model.name, "sha256": sha256_file(model),
        "input": {"name": "input", "layout": "NCHW", "dtype": "float32"},
        "preprocess": {"crop": {"rule": "shorter_side", "resize": 32, "size": 32}, "pixels": {"channels": "RGB"}},
        "output": {"name": "logits", "kind": "logits", "num_classes": 1000},
    }
    path = folder / "dynamic.onnx.json"
    path.write_text(json.dumps(card))
    return path


def test_a_dynamic_output_size_is_checked_at_the_first_run(dynamic_output_card):
    runtime = make_runtime(resolve(str(dynamic_output_card)), "onnxruntime", threads=1)
    assert runtime.output_size is None  # nothing to check at load
    with pytest.raises(CardError) as error:
        runtime.probabilities(torch.zeros(2, 3, 32, 32))
    assert_names_the_class_count(error, dynamic_output_card)


def test_a_zoo_model_with_another_class_count_is_refused():
    runtime = make_runtime(resolve("resnet18"), "torch", module=torchvision.models.resnet18(num_classes=1001))
    with pytest.raises(OutputSizeError, match="resnet18.* outputs 1001 scores") as error:
        runtime.probabilities(torch.zeros(1, 3, 224, 224))
    assert (error.value.got, error.value.expected) == (1001, CLASSES) and "resnet18" in error.value.model


def test_to_probabilities_returns_exactly_the_1000_classes():
    with pytest.raises(OutputSizeError):
        to_probabilities(np.zeros((1, 1001), np.float32), "logits", label_offset=0)
    with pytest.raises(OutputSizeError):
        to_probabilities(np.zeros((1, 1000), np.float32), "probabilities", label_offset=1)
    assert to_probabilities(np.zeros((2, 1001), np.float32), "logits", label_offset=1).shape == (2, CLASSES)


def test_top_k_above_the_class_count_gives_every_class():
    clf = Classifier(str(TFLITE_CARD), threads=1, workers=1)
    top = clf.predict(load_image(PHOTOS[0]), top_k=5000).top
    assert len(top) == CLASSES and sorted(c.index for c in top) == list(range(CLASSES))


# --- defect 7: non-finite outputs are an error, not an answer ------------------------------------


@pytest.fixture(scope="module")
def nan_resnet18():
    """torchvision's ResNet-18 architecture, random weights, its first convolution all NaN."""
    module = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        module.conv1.weight.fill_(float("nan"))
    return module.eval()


@pytest.mark.parametrize("kind", ["torch", "onnxruntime"])
def test_nan_weights_raise_non_finite_output(nan_resnet18, kind):
    entry = resolve("resnet18")
    runtime = make_runtime(entry, kind, module=nan_resnet18, threads=1, tag="nan-conv1")
    spec = entry.info.preprocess
    batch = stack([preprocess(load_image(p), spec) for p in PHOTOS[:2]], spec)
    with pytest.raises(NonFiniteOutput, match="resnet18") as error:
        runtime.probabilities(batch)
    e = error.value
    assert (e.model, e.rows, e.batch_size) == (entry.info.name, (0, 1), 2)
    assert e.probabilities.shape == (2, CLASSES) and "not finite" in e.reason


@pytest.mark.parametrize("kind", ["logits", "probabilities"])
def test_non_finite_rows_are_named_and_the_others_kept(kind):
    scores = np.full((4, 1000), 0.001, np.float32)
    scores[1, 7] = np.nan
    scores[3, 0] = np.inf
    with pytest.raises(NonFiniteOutput) as error:
        to_probabilities(scores, kind)
    e = error.value
    assert e.rows == (1, 3) and e.batch_size == 4
    good = e.probabilities[[0, 2]]
    assert torch.isfinite(good).all() and torch.allclose(good.sum(-1), torch.ones(2))


def test_a_nan_answer_is_that_images_failure_and_json_stays_valid(tmp_path):
    """NaN weights: every image becomes a NonFiniteOutput Failure (the batch goes on), and the
    JSON rendering has no bare NaN."""
    import json

    import torchvision

    from topfive.models import resolve
    from topfive.output import render_predictions
    from topfive.predict import Classifier, Failure
    from topfive.runtime import make_runtime

    entry = resolve("resnet18")
    module = torchvision.models.resnet18()
    with torch.no_grad():
        module.conv1.weight.fill_(float("nan"))
    runtime = make_runtime(entry, "torch", module=module)
    clf = Classifier.around(runtime, entry.info.name, entry.info.preprocess, entry=entry, batch_size=2)
    photos = sorted((SHARED / "eval" / "images" / "cat").glob("*.jpg"))[:3]
    results = clf.predict([str(p) for p in photos], errors="collect")
    assert [type(r) for r in results] == [Failure] * 3
    assert {r.error for r in results} == {"NonFiniteOutput"}
    json.loads(render_predictions(results, "json"), parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    with pytest.raises(NonFiniteOutput):
        clf.predict(str(photos[0]))
