"""evaluate on several runtimes: a row per (model, runtime) in every table, auto named by what it ran,
resuming per runtime, and a predictions.csv from before the runtime column still resumed."""

import csv
import json
import warnings
from pathlib import Path

import pytest
from conftest import EVAL

from topfive.cli import main
from topfive.eval import evaluate as evaluate_module
from topfive.eval.datasets import load_dataset
from topfive.eval.evaluate import LEGACY_RUNTIME, PREDICTION_COLUMNS, evaluate
from topfive.eval.metrics import mcnemar
from topfive.eval.predictions import LEGACY_COLUMNS
from topfive.runtime.axis import pairs, split_pin

MODEL = "efficientnet_lite0"
LABELS = 6  # one photo of each of the first six labels: enough rows to compare, quick on two cores


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rows, seen = [], set()
    for r in read(EVAL / "manifest.csv"):
        if r["label"] not in seen and len(seen) < LABELS:
            seen.add(r["label"])
            rows.append(r)
    path = tmp_path_factory.mktemp("set") / "subset.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return load_dataset(path, mirror=EVAL, download=False)


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("eval") / "out"
    messages = []
    # auto is pinned to onnxruntime in the tests (conftest): it resolves to a runtime also asked for by name
    report = evaluate(dataset, [MODEL], out, runtimes=["torch", "auto", "onnxruntime"], log=messages.append)
    return out, report, messages


def test_model_x_runtime_pairs_and_pins():
    assert pairs(["a", "b@int8", "c"], ["torch", "auto"]) == [
        ("a", "torch"), ("a", "auto"), ("b", "int8"), ("c", "torch"), ("c", "auto")]
    assert pairs(["a", "a@torch"], ["torch"]) == [("a", "torch")]
    assert split_pin("cards/odd@name.json") == ("cards/odd@name.json", None)  # not a runtime word: a path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert split_pin("efficientnet_lite0@eager") == ("efficientnet_lite0", "torch")  # the deprecated spelling


def test_every_row_names_its_runtime_and_auto_is_named_by_what_it_ran(run, dataset):
    out, report, messages = run
    rows = read(out / "predictions.csv")
    assert list(rows[0]) == PREDICTION_COLUMNS and PREDICTION_COLUMNS[-1] == "runtime"
    assert sorted((r["runtime"], r["file"]) for r in rows) == sorted(
        (rt, i.file) for rt in ("torch", "onnxruntime") for i in dataset.readable)
    summary = read(out / "summary.csv")
    assert [(s["model"], s["runtime"]) for s in summary] == [(MODEL, "torch"), (MODEL, "onnxruntime")]
    for s in summary:
        mine = [r for r in rows if r["runtime"] == s["runtime"]]
        assert int(s["n"]) == LABELS and float(s["top1"]) == pytest.approx(
            100 * sum(r["hit1"] == "1" for r in mine) / LABELS, abs=1e-3)
    assert [(m["name"], m["runtime"], m["status"]) for m in report["models"]] == [
        (MODEL, "torch", "evaluated"), (MODEL, "onnxruntime", "evaluated")]
    assert json.loads((out / "evaluate.json").read_text())["models"][1]["runtime"] == "onnxruntime"
    assert messages[0] == f"{MODEL} (torch): 0 photos from an earlier run, {LABELS} now"
    for name in ("per_label.csv", "calibration.csv", "severity.csv"):
        assert {r["runtime"] for r in read(out / name)} == {"torch", "onnxruntime"}, name


def test_mcnemar_compares_the_runtimes_of_one_model(run):
    out, _, _ = run
    (row,) = read(out / "mcnemar.csv")
    assert (row["model_a"], row["runtime_a"], row["model_b"], row["runtime_b"]) == (MODEL, "torch", MODEL, "onnxruntime")
    rows = read(out / "predictions.csv")
    hits = {rt: {r["file"]: r["hit1"] == "1" for r in rows if r["runtime"] == rt} for rt in ("torch", "onnxruntime")}
    files = sorted(hits["torch"])
    t = mcnemar([hits["torch"][f] for f in files], [hits["onnxruntime"][f] for f in files])
    assert (int(row["n"]), int(row["a_only"]), int(row["b_only"])) == (t.n, t.a_only, t.b_only) and t.n == LABELS


def test_resume_is_per_runtime(run, dataset, monkeypatch):
    out, _, _ = run
    loaded = []
    real = evaluate_module.load_classifier
    monkeypatch.setattr(evaluate_module, "load_classifier", lambda *a, **k: loaded.append(a[3]) or real(*a, **k))
    messages = []
    evaluate(dataset, [f"{MODEL}@onnxruntime", f"{MODEL}@torch"], out, log=messages.append)
    assert loaded == []  # both runtimes' rows are there: nothing is loaded again
    assert messages == [f"{MODEL} (onnxruntime): {LABELS} photos from an earlier run, 0 now",
                        f"{MODEL} (torch): {LABELS} photos from an earlier run, 0 now"]
    assert [s["runtime"] for s in read(out / "summary.csv")] == ["onnxruntime", "torch"]  # the order asked for
    assert len(read(out / "predictions.csv")) == 2 * LABELS


def write_legacy(source: Path, target: Path, keep: int) -> None:
    """target/predictions.csv as an older topfive wrote it: no runtime column, `keep` onnxruntime rows."""
    target.mkdir()
    (target / ".dataset-fingerprint").write_text((source / ".dataset-fingerprint").read_text())
    rows = [r for r in read(source / "predictions.csv") if r["runtime"] == "onnxruntime"][:keep]
    with (target / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(LEGACY_COLUMNS)
        writer.writerows([r[c] for c in LEGACY_COLUMNS] for r in rows)


def test_a_predictions_file_without_the_runtime_column_is_resumed_under_auto(run, dataset, tmp_path, monkeypatch):
    out, _, _ = run
    old = tmp_path / "old"
    write_legacy(out, old, LABELS)
    monkeypatch.setattr(evaluate_module, "load_classifier", lambda *a, **k: pytest.fail("nothing to load"))
    messages = []
    evaluate(dataset, [MODEL], old, log=messages.append)
    assert messages == [f"{MODEL} ({LEGACY_RUNTIME}): {LABELS} photos from an earlier run, 0 now"]
    with open(old / "predictions.csv", newline="") as f:
        assert next(csv.reader(f)) == PREDICTION_COLUMNS  # rewritten once with the column
    assert {r["runtime"] for r in read(old / "predictions.csv")} == {"auto"}
    assert [(s["runtime"], s["n"]) for s in read(old / "summary.csv")] == [("auto", str(LABELS))]


def test_a_killed_older_run_goes_on_under_auto_and_other_runtimes_get_their_own_rows(run, dataset, tmp_path):
    out, _, _ = run
    old = tmp_path / "old"
    write_legacy(out, old, LABELS - 2)
    messages = []
    evaluate(dataset, [MODEL], old, runtimes=["auto", "torch"], log=messages.append)
    assert messages == [f"{MODEL} (auto): {LABELS - 2} photos from an earlier run, 2 now",
                        f"{MODEL} (torch): 0 photos from an earlier run, {LABELS} now"]
    rows = read(old / "predictions.csv")
    assert sorted(r["runtime"] for r in rows) == ["auto"] * LABELS + ["torch"] * LABELS
    before = {r["file"]: r["top5_indices"] for r in read(out / "predictions.csv") if r["runtime"] == "onnxruntime"}
    assert all(before[r["file"]] == r["top5_indices"] for r in rows if r["runtime"] == "auto")


def test_cli_takes_several_runtimes_and_refuses_an_unknown_one(run, dataset, tmp_path, capsys):
    out, _, _ = run
    data = dataset.path
    assert main(["evaluate", "--data", str(data), "--mirror", str(EVAL), "--out", str(out),
                 "--runtime", "torch,onnxruntime"]) == 0
    table = capsys.readouterr().out
    assert " torch " in table and " onnxruntime " in table and "runtime" in table.splitlines()[0]
    with pytest.raises(SystemExit):
        main(["evaluate", "--data", str(data), "--out", str(tmp_path / "x"), "--runtime", "torch,warp"])
    assert "unknown runtime 'warp'" in capsys.readouterr().err
