"""Robustness to corrupted photos (`topfive evaluate --corruptions`): the corruptions themselves,
the route through the public API, the mCE arithmetic, resuming, the CLI end to end on real photos
with EfficientNet-Lite0, and the report's section drawn from those files."""

import colorsys
import csv
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import EVAL, SHARED
from PIL import Image
from torchvision.transforms.v2 import functional as F

from topfive import Classifier
from topfive.decode import make_decoder
from topfive.eval.corruptions import KINDS, corrupt, parse_corruptions, seed_for
from topfive.eval.datasets import load_dataset
from topfive.eval.predictions import ResumeError
from topfive.eval.robustness import ROWS_FILE, choose_photos, crop_spec, identity_spec, read_rows, robustness
from topfive.eval.robustness_tables import Score, corruption_errors, model_figures

CARD = str(SHARED / "models" / "mobilenet_v1_0.25_128_quant.tflite.json")  # small, TF-slim crop, NHWC uint8


def manifest_rows():
    return read(EVAL / "manifest.csv")


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_manifest(path, rows):
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def one_per_label(n):
    seen, out = set(), []
    for r in manifest_rows():
        if r["label"] not in seen:
            seen.add(r["label"])
            out.append(r)
    return out[:n]


@pytest.fixture(scope="module")
def square():
    """A real photo as EfficientNet-Lite0's 224 x 224 uint8 square."""
    from topfive.models import resolve

    batch, errors = make_decoder("pillow", crop_spec(resolve("efficientnet_lite0").info.preprocess))(
        [EVAL / manifest_rows()[0]["file"]])
    assert errors == [None]
    return batch[0]


def test_corruptions_are_seeded_uint8_same_size_and_grow_with_severity(square):
    assert square.shape == (3, 224, 224) and square.dtype == torch.uint8
    for kind in KINDS:
        distances = []
        for severity in (1, 3, 5):
            a = corrupt(square, kind, severity, seed=seed_for(0, "x.jpg", kind, severity))
            b = corrupt(square, kind, severity, seed=seed_for(0, "x.jpg", kind, severity))
            assert a.dtype == torch.uint8 and a.shape == square.shape
            assert torch.equal(a, b), kind  # deterministic for a seed
            distances.append((a.float() - square.float()).abs().mean().item())
        assert 0 < distances[0] < distances[1] < distances[2], (kind, distances)
    assert torch.equal(corrupt(square, "blur", 0), square)
    other = corrupt(square, "noise", 3, seed=seed_for(0, "y.jpg", "noise", 3))
    assert not torch.equal(other, corrupt(square, "noise", 3, seed=seed_for(0, "x.jpg", "noise", 3)))
    with pytest.raises(ValueError, match="uint8 RGB"):
        corrupt(square.float(), "blur", 1)


def test_brightness_and_contrast_follow_imagenet_c_and_blur_is_torchvisions_kernel(square):
    x = square[:, :16, :16]
    level = KINDS["brightness"].level(3)
    got = corrupt(x, "brightness", 3).permute(1, 2, 0).reshape(-1, 3).numpy()
    for pixel, out in zip(x.permute(1, 2, 0).reshape(-1, 3).numpy() / 255, got):  # ImageNet-C: V in HSV + c
        h, s, v = colorsys.rgb_to_hsv(*pixel)
        want = np.array(colorsys.hsv_to_rgb(h, s, min(1.0, v + level))) * 255
        assert np.abs(out - want).max() <= 0.5001
    xf = square.numpy() / 255  # ImageNet-C: (x - per-channel mean) * c + mean, clipped
    means = xf.mean(axis=(1, 2), keepdims=True)
    want = np.clip((xf - means) * KINDS["contrast"].level(2) + means, 0, 1) * 255
    assert np.abs(corrupt(square, "contrast", 2).numpy() - want).max() <= 0.5001
    full = F.gaussian_blur(square.float() / 255, kernel_size=[25, 25], sigma=[3.0, 3.0])  # 2-D, radius 12
    assert (corrupt(square, "blur", 3).float() - (full * 255).round()).abs().max() <= 1


def test_parse_corruptions():
    assert parse_corruptions("blur:1,3").kinds == (("blur", (1, 3)),)
    assert parse_corruptions("noise,blur:1,3,jpeg").kinds == (
        ("noise", (1, 2, 3, 4, 5)), ("blur", (1, 3)), ("jpeg", (1, 2, 3, 4, 5)))
    assert parse_corruptions("gaussian_noise:2").kinds == (("noise", (2,)),)
    plan = parse_corruptions("all:1,3,5")
    assert [k for k, _ in plan.kinds] == list(KINDS) and all(s == (1, 3, 5) for _, s in plan.kinds)
    assert plan.cells()[0] == ("clean", 0) and len(plan.cells()) == 16
    for bad, message in [("fog", "unknown corruption 'fog'"), ("blur:6", "not one of 1-5"), ("1,blur", "before any"),
                         ("blur,,jpeg", "empty item")]:
        with pytest.raises(ValueError, match=message):
            parse_corruptions(bad)


def test_mce_on_a_hand_made_table():
    model = {("clean", 0): Score(9, 10), ("noise", 1): Score(8, 10), ("noise", 2): Score(6, 10),
             ("blur", 1): Score(5, 10), ("blur", 2): Score(5, 10)}
    base = {("clean", 0): Score(10, 10), ("noise", 1): Score(9, 10), ("noise", 2): Score(7, 10),
            ("blur", 1): Score(5, 10), ("blur", 2): Score(5, 10)}
    ce, mce = corruption_errors(model, base)
    assert ce == pytest.approx({"noise": 100 * (0.2 + 0.4) / (0.1 + 0.3), "blur": 100.0})  # 150, 100
    assert mce == pytest.approx(125.0)
    assert corruption_errors(base, base) == ({"noise": 100.0, "blur": 100.0}, 100.0)
    figures = model_figures(model, base)
    assert figures["clean_top1"] == 0.9 and figures["corrupted_top1"] == pytest.approx(0.6)
    assert figures["drop"] == pytest.approx(0.3) and figures["kinds"]["noise"]["drop"] == pytest.approx(0.2)
    perfect = {**base, ("blur", 1): Score(10, 10), ("blur", 2): Score(10, 10)}
    ce, mce = corruption_errors(model, perfect)  # a baseline without errors on a kind: no CE there, no mCE
    assert ce["blur"] is None and mce is None


def test_a_clean_square_through_identity_spec_is_the_classifiers_own_prediction(lite0):
    files = [EVAL / r["file"] for r in one_per_label(4)]
    for clf in (lite0, Classifier(CARD)):
        batch, _ = make_decoder("pillow", crop_spec(clf.spec))(files)
        squares = Classifier.around(clf.runtime, clf.name, identity_spec(clf.spec), entry=clf.entry)
        got = squares.predict([F.to_pil_image(b) for b in batch])
        for want, have in zip(clf.predict(files), got):
            assert [(c.index, c.probability) for c in have.top] == [(c.index, c.probability) for c in want.top]


def test_stratified_subset():
    dataset = load_dataset(EVAL / "manifest.csv", download=False)
    chosen = choose_photos(dataset, 30)
    counts = {}
    for item in chosen:
        counts[item.label] = counts.get(item.label, 0) + 1
    assert len(chosen) == 30 and len(counts) == len(dataset.labels) and set(counts.values()) == {1, 2}
    assert [i.file for i in choose_photos(dataset, 30)] == [i.file for i in chosen]


def test_resume_skips_done_rows_and_refuses_another_setup(tmp_path):
    data = write_manifest(tmp_path / "set.csv", one_per_label(3))
    dataset = load_dataset(data, mirror=EVAL, download=False)
    out, plan, lines = tmp_path / "out", parse_corruptions("noise:2,contrast:4"), []
    robustness(dataset, [CARD], out, plan, log=lines.append)
    rows = read_rows(out / ROWS_FILE)
    assert len(rows) == 3 * 3 and "0 corrupted copies from an earlier run, 9 now" in lines[-1]
    text = (out / ROWS_FILE).read_text()
    (out / ROWS_FILE).write_text(text[: text.rfind("\n", 0, len(text) - 1) + 1] + text.splitlines()[-1][:7])
    robustness(dataset, [CARD], out, plan, log=lines.append)  # a kill mid-line: the cut row is made again
    assert "8 corrupted copies from an earlier run, 1 now" in lines[-1]
    assert (out / ROWS_FILE).read_text() == text  # the same noise, the same answers
    robustness(dataset, [CARD], out, plan, log=lines.append)
    assert "9 corrupted copies from an earlier run, 0 now" in lines[-1]
    with pytest.raises(ResumeError, match="other photos"):
        robustness(dataset, [CARD], out, plan, photos=2, log=lines.append)
    with pytest.raises(ResumeError, match="other seed"):
        robustness(dataset, [CARD], out, plan, seed=1, log=lines.append)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, lite0):
    """`topfive evaluate --corruptions blur:1,5 --corruption-photos 8` on 8 photos Lite0 gets right
    clean (so that a heavy blur has something to take away)."""
    from topfive.cli import main

    tmp = tmp_path_factory.mktemp("robust")
    pool = one_per_label(20)
    right = [r for r, p in zip(pool, lite0.predict([EVAL / r["file"] for r in pool]))
             if p.top[0].index in {int(i) for i in r["accepted_imagenet_indices"].split()}]
    assert len(right) >= 8
    data = write_manifest(tmp / "set.csv", right[:10])
    out = tmp / "out"
    code = main(["evaluate", "--data", str(data), "--mirror", str(EVAL), "--no-download", "--models",
                 "efficientnet_lite0", "--out", str(out), "--corruptions", "blur:1,5", "--corruption-photos", "8"])
    assert code == 0
    return out


def test_cli_writes_the_files_and_blur_takes_accuracy_away(cli_run):
    out = cli_run
    summary = {(r["kind"], r["severity"]): r for r in read(out / "robustness_summary.csv")}
    rows = read_rows(out / ROWS_FILE)
    assert len(rows) == 8 * 3 and {r["runtime"] for r in rows} == {"onnxruntime"}
    clean, mild, heavy = (float(summary[c]["top1"]) for c in (("clean", "0"), ("blur", "1"), ("blur", "5")))
    assert clean == 100.0 and heavy < clean and heavy <= mild
    assert float(summary[("blur", "5")]["top1_low"]) <= heavy <= float(summary[("blur", "5")]["top1_high"])
    assert float(summary[("all", "all")]["ce"]) == 100.0  # the baseline against itself
    predictions = {r["file"]: r for r in read(out / "predictions.csv")}
    for r in rows:  # the clean copies are evaluate's own answers for the photo
        if r["kind"] == "clean":
            assert r["top1_index"] == predictions[r["file"]]["top5_indices"].split()[0]
    meta = json.loads((out / "robustness.json").read_text())
    assert meta["fingerprint"]["isa"] and meta["dataset"]["n_photos"] == 8 and meta["corruptions"] == {"blur": [1, 5]}
    assert meta["baseline"]["model"] == "efficientnet_lite0" and meta["models"][0]["mce"] == 100.0


def test_report_section_and_chart_from_the_files(cli_run, tmp_path):
    from topfive.report import write_report

    shutil.copytree(cli_run, tmp_path / "eval")
    text = write_report(tmp_path / "eval", None, tmp_path / "report").read_text()
    section = text[text.index("## Robustness to corrupted photos"):]
    section = section[: section.index("\n## ")]
    summary = {(r["kind"], r["severity"]): r for r in read(cli_run / "robustness_summary.csv")}
    assert f"| efficientnet_lite0 | onnxruntime | 8 | {float(summary[('clean', '0')]['top1']):.1f} [" in section
    assert f"| {float(summary[('blur', '5')]['top1']):.1f} |" in section and "8 of the set's 10 photos" in section
    assert "charts/robustness.png" in section and "Hendrycks & Dietterich" in section
    with Image.open(tmp_path / "report" / "charts" / "robustness.png") as img:
        assert img.format == "PNG" and img.width > 500


def test_the_study_stage_takes_each_model_with_weights_once():
    from topfive.report import stage_robustness as stage

    assert stage.robustness_models(["efficientnet_lite0@torch", "efficientnet_lite0@int8", "alexnet", CARD]) == [
        "efficientnet_lite0", CARD]  # once each, and alexnet's weights would need a download

