"""End-to-end evaluation with real EfficientNet-Lite weights on a small subset of ../shared/eval."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from topfive.eval.datasets import load_dataset
from topfive.eval.evaluate import PREDICTION_COLUMNS, evaluate
from topfive.eval.metrics import mcnemar
from topfive.eval.summaries import SUMMARY_COLUMNS

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
MODELS = ["efficientnet_lite0", "efficientnet_lite1"]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def subset_manifest(target: Path, per_label: int) -> Path:
    rows, seen = [], {}
    for r in read(EVAL / "manifest.csv"):
        if seen.get(r["label"], 0) < per_label:
            seen[r["label"]] = seen.get(r["label"], 0) + 1
            rows.append(r)
    with target.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    tmp = tmp_path_factory.mktemp("eval")
    dataset = load_dataset(subset_manifest(tmp / "subset.csv", 1), mirror=EVAL, download=False)
    out = tmp / "out"
    report = evaluate(dataset, MODELS, out, log=lambda m: None)
    return dataset, out, report


def test_one_row_per_readable_image_and_model(run):
    dataset, out, report = run
    assert len(dataset.items) == 27 and len(dataset.readable) == 27
    rows = read(out / "predictions.csv")
    assert list(rows[0]) == PREDICTION_COLUMNS
    assert sorted((r["model"], r["file"]) for r in rows) == sorted((m, i.file) for m in MODELS for i in dataset.items)
    for r in rows:
        idx, probs = r["top5_indices"].split(), [float(p) for p in r["top5_probs"].split()]
        assert len(idx) == len(probs) == len(r["top5_names"].split("|")) == 5
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
        item = next(i for i in dataset.items if i.file == r["file"])
        assert int(r["hit1"]) == (int(idx[0]) in item.accepted)
        assert int(r["hit5"]) == any(int(i) in item.accepted for i in idx)
        assert int(r["n_accepted"]) == len(item.accepted)
    assert [m["status"] for m in report["models"]] == ["evaluated", "evaluated"]
    assert report["dataset"]["n_images"] == 27 and report["dataset"]["n_failed"] == 0
    assert report["dataset"]["label_sets"]["dog"] == list(range(151, 269))
    assert json.loads((out / "evaluate.json").read_text())["dataset"]["labels"]["horse"] == 1


def test_summary_invariants(run):
    _, out, _ = run
    summary = read(out / "summary.csv")
    assert list(summary[0]) == SUMMARY_COLUMNS and [s["model"] for s in summary] == MODELS
    for s in summary:
        top1, top5 = float(s["top1"]), float(s["top5"])
        assert int(s["n"]) == 27 and s["weights"] == "real"
        assert top5 >= top1 > 50  # real weights; random ones would give ~0
        assert float(s["top1_low"]) <= top1 <= float(s["top1_high"])
        assert float(s["top5_low"]) <= top5 <= float(s["top5_high"])
        assert float(s["top1_err"]) == pytest.approx(100 - top1, abs=1e-3)
        assert 0 <= float(s["ece"]) <= 1
    assert summary[0]["img_size"] == "224" and summary[0]["interpolation"] == "bicubic"
    assert float(summary[0]["param_count"]) == pytest.approx(4.65, abs=0.01)
    per_label = read(out / "per_label.csv")
    assert sum(int(r["n"]) for r in per_label if r["model"] == MODELS[0]) == 27
    cal = read(out / "calibration.csv")
    assert len(cal) == 30 and sum(int(r["count"]) for r in cal if r["model"] == MODELS[0]) == 27
    rows = read(out / "predictions.csv")
    wrong = sum(r["hit1"] == "0" for r in rows if r["model"] == MODELS[0])
    assert sum(int(r["count"]) for r in read(out / "severity.csv") if r["model"] == MODELS[0]) == wrong


def test_mcnemar_matches_predictions_and_is_symmetric(run):
    _, out, _ = run
    (row,) = read(out / "mcnemar.csv")
    assert (row["model_a"], row["model_b"]) == tuple(MODELS)
    rows = read(out / "predictions.csv")
    hits = {m: {r["file"]: r["hit1"] == "1" for r in rows if r["model"] == m} for m in MODELS}
    files = sorted(hits[MODELS[0]])
    ab = mcnemar([hits[MODELS[0]][f] for f in files], [hits[MODELS[1]][f] for f in files])
    ba = mcnemar([hits[MODELS[1]][f] for f in files], [hits[MODELS[0]][f] for f in files])
    assert (int(row["n"]), int(row["a_only"]), int(row["b_only"])) == (ab.n, ab.a_only, ab.b_only)
    assert float(row["p_value"]) == pytest.approx(ab.p_value, rel=1e-5)
    assert (ba.a_only, ba.b_only, ba.p_value) == (ab.b_only, ab.a_only, ab.p_value)
    assert ab.both_right + ab.a_only + ab.b_only + ab.both_wrong == 27


def test_resume_after_a_kill_mid_line(run, tmp_path):
    dataset, out, _ = run
    resumed = tmp_path / "out"
    shutil.copytree(out, resumed)
    pred = resumed / "predictions.csv"
    lines = pred.read_text().splitlines(keepends=True)
    keep = 1 + 27 + 20  # header, lite0's 27 rows, 20 of lite1's
    pred.write_text("".join(lines[:keep]) + lines[keep][: len(lines[keep]) // 2])  # a half-written row
    messages = []
    evaluate(dataset, MODELS, resumed, log=messages.append)
    assert messages == [f"{MODELS[0]} (onnxruntime): 27 photos from an earlier run, 0 now",
                        f"{MODELS[1]} (onnxruntime): 20 photos from an earlier run, 7 now"]
    key = lambda r: (r["model"], r["file"])  # noqa: E731
    again = read(pred)
    assert len(again) == 54 and len({key(r) for r in again}) == 54
    original = {key(r): r for r in read(out / "predictions.csv")}
    for r in again:
        assert r["top5_indices"] == original[key(r)]["top5_indices"] and r["hit1"] == original[key(r)]["hit1"]
    assert read(resumed / "summary.csv") == read(out / "summary.csv")
    assert read(resumed / "mcnemar.csv") == read(out / "mcnemar.csv")
    # a finished run resumes to nothing new
    messages.clear()
    evaluate(dataset, MODELS[:1], resumed, log=messages.append)
    assert messages == [f"{MODELS[0]} (onnxruntime): 27 photos from an earlier run, 0 now"]
    assert len(read(pred)) == 54 and [s["model"] for s in read(resumed / "summary.csv")] == MODELS[:1]
