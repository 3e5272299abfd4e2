"""The seven shared models, run through their cards: real predictions, the 1001-class offset, batching."""

import csv

import numpy as np
import pytest
import torch
from conftest import SHARED
from PIL import Image
from skimage import data

from topfive.predict import Classifier
from topfive.runtime.base import to_probabilities

MODELS = SHARED / "models"
CARDS = sorted(p.name for p in MODELS.glob("*.json"))
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module", autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photos():
    return Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())


@pytest.fixture(scope="module")
def eval_subset():
    """The first two photos of each of 12 categories of ../shared/eval, with their accepted classes."""
    rows = list(csv.DictReader(open(SHARED / "eval" / "manifest.csv", newline="")))
    by_label: dict[str, list] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r)
    labels = [label for label, rs in by_label.items() if len(rs) >= 2][:12]
    picked = [
        (SHARED / "eval" / r["file"], {int(i) for i in r["accepted_imagenet_indices"].split()})
        for label in labels
        for r in by_label[label][:2]
    ]
    assert len(picked) == 24
    return picked


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TOPFIVE_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.delenv("TOPFIVE_TFLITE_RUNTIME", raising=False)
    yield {card: Classifier(str(MODELS / card), batch_size=8, workers=1) for card in CARDS}
    mp.undo()


def test_all_seven_cards_are_there():
    assert len(CARDS) == 7


@pytest.mark.parametrize("card", CARDS)
def test_cat_first_and_espresso_in_top3(card, classifiers, photos):
    cat, coffee = classifiers[card].predict(list(photos), top_k=3)
    assert cat.top[0].index in CATS, cat.top
    assert ESPRESSO in [c.index for c in coffee.top], coffee.top
    assert abs(sum(c.probability for c in cat.top) - 1) < 1 and cat.top[0].probability > 0.3


@pytest.mark.parametrize("card", CARDS)
def test_sane_top5_on_eval_photos(card, classifiers, eval_subset):
    results = classifiers[card].predict([p for p, _ in eval_subset], top_k=5)
    hits = sum(any(c.index in ok for c in r.top) for r, (_, ok) in zip(results, eval_subset))
    # chance is ~0.5 % per photo; the weakest of these models (MobileNetV1 0.25) gets ~75 % top-5
    assert hits >= 15, f"{card}: top-5 on {hits}/24 photos"


@pytest.mark.parametrize("card", [c for c in CARDS if c.endswith(".tflite.json")])
def test_1001_class_offset(card, classifiers, photos):
    """The class the model scores highest is raw position p; topfive must report ImageNet index p - 1."""
    clf = classifiers[card]
    batch = torch.stack([clf.prepare(p) for p in photos]).permute(0, 2, 3, 1).contiguous().numpy()
    raw = clf.runtime.raw(batch)
    assert raw.shape == (2, 1001)
    preds = clf.predict(list(photos), top_k=1)
    for row, pred in zip(raw, preds):
        assert pred.top[0].index == int(np.argmax(row)) - 1
    assert preds[1].top[0].index == ESPRESSO  # would be 968 (cup) with no offset


def test_to_probabilities_drops_the_background_class():
    scores = np.zeros((1, 1001), dtype=np.float32)
    scores[0, 0], scores[0, 286] = 0.5, 0.25  # background, then raw 286 == ImageNet 285
    probs = to_probabilities(scores, "probabilities", label_offset=1)
    assert probs.shape == (1, 1000) and int(probs.argmax()) == 285 and float(probs.sum()) == pytest.approx(1)


def test_quantized_output_dequantized_with_its_own_scale(classifiers, photos):
    runtime = classifiers["mobilenet_v2_1.0_224_quant.tflite.json"].runtime
    scale, zero_point = runtime.quantization
    assert scale == pytest.approx(1 / 256) and zero_point == 0
    clf = classifiers["mobilenet_v2_1.0_224_quant.tflite.json"]
    batch = clf.prepare(photos[0]).permute(1, 2, 0).unsqueeze(0).contiguous().numpy()
    raw, scores = runtime.raw(batch), runtime.scores(batch)
    assert raw.dtype == np.uint8 and np.allclose(scores, raw.astype(np.float32) / 256)
    assert 0.9 < scores.sum() < 1.1  # a dequantized softmax sums to about 1


@pytest.mark.parametrize("card", ["squeezenet1.1-fp16.xml.json", "mobilenet_v1_0.25_128_quant.tflite.json"])
def test_batches_equal_single_images(card, classifiers, photos):
    """Fixed batch-1 files: a reshaped dynamic batch (IR) or a loop (TFLite) gives the same numbers."""
    clf = classifiers[card]
    tensors = [clf.prepare(p) for p in photos * 2]
    together = clf.runtime.probabilities(_stack(clf, tensors))
    alone = torch.cat([clf.runtime.probabilities(_stack(clf, [t])) for t in tensors])
    assert together.shape == (4, 1000)
    assert torch.allclose(together, alone, atol=1e-4)


def _stack(clf, tensors):
    from topfive.transforms import stack

    return stack(tensors, clf.spec)


def test_model_info_from_the_graph(classifiers):
    sq = classifiers["squeezenet1.1-fp16.xml.json"].info
    assert sq.family == "openvino" and sq.params == 1_235_496  # torchvision's squeezenet1_1 count exactly
    v3 = classifiers["mobilenet_v3_small_224_1.0_uint8.tflite.json"].info
    assert 2.4e6 < v3.params < 2.6e6 and 0.05 < v3.gmacs < 0.06  # paper: 2.5 M params, 56 M MACs
    onnx = classifiers["mobilenetv2-12-int8.onnx.json"].info
    assert 3.4e6 < onnx.params < 3.55e6 and 0.29 < onnx.gmacs < 0.31  # torchvision: 3.50 M, 0.30 GMACs
    assert onnx.acc1 is None and onnx.acc5 is None  # the card states none: never guessed


def test_tflite_in_openvino_agrees_with_litert(classifiers, photos, monkeypatch):
    """The other TFLite runtime: same scale and zero point (read from OpenVINO's FakeQuantize), same answers."""
    card = "mobilenet_v2_1.0_224_quant.tflite.json"
    monkeypatch.setenv("TOPFIVE_TFLITE_RUNTIME", "openvino")
    ov = Classifier(str(MODELS / card), workers=1)
    lite = classifiers[card]
    assert (ov.runtime.name, lite.runtime.name) == ("openvino", "litert")
    assert ov.runtime.quantization == pytest.approx(lite.runtime.quantization)
    for a, b in zip(ov.predict(list(photos), top_k=1), lite.predict(list(photos), top_k=1)):
        assert a.top[0].index == b.top[0].index and abs(a.top[0].probability - b.top[0].probability) < 0.1
