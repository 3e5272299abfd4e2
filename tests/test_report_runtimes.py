"""The report with a model on several runtimes, from small hand-made result files written here: the
Runtimes section's agreement and McNemar computed from predictions.csv, the architecture tables on
one shared runtime, and the runtime beside the name of a model that ran on several."""

import csv
import json

import pytest
from conftest import SHARED

from topfive.eval.evaluate import PREDICTION_COLUMNS
from topfive.eval.metrics import mcnemar, wilson_interval
from topfive.eval.summaries import MCNEMAR_COLUMNS, SUMMARY_COLUMNS
from topfive.report import load_study, write_report
from topfive.report.defaults import RUNTIME_COMPARISON, RUNTIME_MODEL, comparison_runtimes, study_runs
from topfive.report.rows import compared, join_bench, split_key

N = 10
DOG = 207  # golden retriever: the label's one accepted class in these files
WRONG = 409  # analog clock
# top-1 right (True) or not, per photo and run; onnxruntime misses one photo torch gets, int8 seven
HITS = {
    ("efficientnet_lite0", "torch"): [True] * N,
    ("efficientnet_lite0", "onnxruntime"): [True] * 9 + [False],
    ("efficientnet_lite0", "int8"): [True] * 3 + [False] * 7,
    ("efficientnet_lite1", "onnxruntime"): [True] * 8 + [False] * 2,
}


def write_csv(path, header, rows):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    ev, be = root / "eval", root / "bench"
    ev.mkdir()
    be.mkdir()
    predictions, summary = [], []
    for (model, runtime), hits in HITS.items():
        for i, hit in enumerate(hits):
            top = [DOG if hit else WRONG, 1, 2, 3, 4]
            predictions.append(dict(model=model, runtime=runtime, file=f"images/dog/p{i}.jpg", label="dog",
                                    n_accepted=1, top5_indices=" ".join(map(str, top)), top5_names="a|b|c|d|e",
                                    top5_probs="0.6 0.1 0.1 0.1 0.1", hit1=int(hit), hit5=1))
        k = sum(hits)
        lo, hi = wilson_interval(k, N)
        summary.append(dict(model=model, runtime=runtime, top1=f"{100 * k / N:.3f}", top1_low=f"{100 * lo:.3f}",
                            top1_high=f"{100 * hi:.3f}", top5="100.000", top5_low="72.2", top5_high="100.000",
                            n=N, ece="0.1", weights="real", img_size=224))
    write_csv(ev / "predictions.csv", PREDICTION_COLUMNS, predictions)
    write_csv(ev / "summary.csv", SUMMARY_COLUMNS, summary)
    pairs = [("efficientnet_lite0", "onnxruntime", "efficientnet_lite1", "onnxruntime"),  # compared
             ("efficientnet_lite0", "torch", "efficientnet_lite1", "onnxruntime")]  # across runtimes: not shown there
    write_csv(ev / "mcnemar.csv", MCNEMAR_COLUMNS, [
        dict(model_a=a, runtime_a=ra, model_b=b, runtime_b=rb, n=N, both_right=8, a_only=1, b_only=0, both_wrong=1,
             p_value=1) for a, ra, b, rb in pairs])
    (ev / "evaluate.json").write_text(json.dumps({
        "dataset": {"path": "builtin:eval", "n_images": N, "n_failed": 0, "labels": {"dog": N},
                    "label_sets": {"dog": [DOG]}},
        "models": [{"name": m, "runtime": r, "status": "evaluated", "reason": ""} for m, r in HITS]}))
    bench = [dict(model=m, canonical=m, runtime=r, weights="real", precision="int8" if r == "int8" else "fp32",
                  latency_ms_median=10.0 + i, throughput_img_s={"1": 90.0, "16": 100.0 + i}, rss_run_mib=50.0,
                  rss_load_mib=40.0, rss_loaded_mib=45.0, error="") for i, (m, r) in enumerate(HITS)]
    (be / "bench.json").write_text(json.dumps({"environment": {"cpu": "test CPU", "threads": 2}, "results": bench}))
    return ev, be


@pytest.fixture(scope="module")
def text(files, tmp_path_factory):
    return write_report(*files, tmp_path_factory.mktemp("report")).read_text()


def table_after(text, heading):
    body = text.split(heading + "\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(body) if line.startswith("|"))
    table = []
    for line in body[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip("|").split(" | ")])
    return [table[0]] + table[2:]


def test_runtime_section_shows_agreement_and_mcnemar_against_torch(text):
    assert text.index("## Memory, size and compute") < text.index("## Runtimes") < text.index("## Calibration")
    table = table_after(text, "### efficientnet_lite0 across runtimes")
    head, rows = table[0], {r[0]: dict(zip(table[0], r)) for r in table[1:]}
    assert head[5] == "top-1 agreement with torch" and list(rows) == ["torch", "onnxruntime", "int8"]
    assert rows["torch"]["top-1 agreement with torch"] == "reference"
    ort, int8 = rows["onnxruntime"], rows["int8"]
    assert (ort["top-1 agreement with torch"], ort["only ref right"], ort["only this right"]) == ("90.0 %", "1", "0")
    assert ort["McNemar p"] == "1"
    expected = mcnemar(HITS[("efficientnet_lite0", "torch")], HITS[("efficientnet_lite0", "int8")])
    assert (expected.a_only, expected.b_only) == (7, 0)
    assert int8["top-1 agreement with torch"] == "30.0 %" and int8["only ref right"] == "7"
    assert int8["McNemar p"] == f"{expected.p_value:.3g} **(significant)**" and expected.p_value < 0.05
    assert int8["precision"] == "int8" and int8["img/s bs 16"] == "102.0" and int8["n"] == "10"
    assert int8["top-1 % [95 % CI]"].startswith("30.0 [") and int8["top-1 % [95 % CI]"].endswith("†")  # CPU-dependent
    assert "† Depends on the CPU: int8 (int8; " in text
    assert "On efficientnet_lite0, int8 departs most from torch: the same top-1 class on 30.0 % of 10 photos, " \
           "a significant difference in top-1 accuracy" in text


def test_architectures_are_compared_on_the_runtime_they_share(text):
    accuracy = [r[0] for r in table_after(text, "## Accuracy")[1:]]
    assert accuracy == ["efficientnet_lite0 (onnxruntime)", "efficientnet_lite1"]  # runtime shown where several
    speed = table_after(text, "## Speed")
    assert [(r[0], r[2]) for r in speed[1:]] == [("efficientnet_lite0 (onnxruntime)", "ONNX Runtime"),
                                                 ("efficientnet_lite1", "ONNX Runtime")]
    pairs = table_after(text, "### Pairwise McNemar tests")[1:]
    assert [(r[0], r[1]) for r in pairs] == [("efficientnet_lite0 (onnxruntime)", "efficientnet_lite1")]
    assert "efficientnet_lite0 on onnxruntime." in text.split("## Runtimes", 1)[1].split("###", 1)[0]


def test_rows_keep_every_runtime_and_older_files_read_as_before(files):
    study = load_study(*files)
    assert study.models == ["efficientnet_lite0@onnxruntime", "efficientnet_lite1"]
    assert list(study.rows.groups) == ["efficientnet_lite0"] and len(study.rows.all_summary) == 4
    assert {r["model"] for r in study.predictions} == {
        "efficientnet_lite0@torch", "efficientnet_lite0@onnxruntime", "efficientnet_lite0@int8", "efficientnet_lite1"}
    assert split_key("cards/x@y.json") == ("cards/x@y.json", "") and split_key("m@int8") == ("m", "int8")
    assert compared(["a@torch", "a@onnxruntime", "b@onnxruntime", "c"]) == ["a@onnxruntime", "b@onnxruntime", "c"]
    # a bench.csv from before the runtime column still finds its bench.json row
    assert join_bench([{"model": "m", "runtime": "torch", "canonical": "m:V1"}],
                      [{"model": "m", "latency_ms_median": "3"}])[0]["canonical"] == "m:V1"


def test_the_default_study_runs_lite0_across_runtimes():
    models = ["alexnet", RUNTIME_MODEL, "cards/x.json"]
    assert study_runs(models, comparison=True) == ["alexnet"] + [
        f"{RUNTIME_MODEL}@{r}" for r in comparison_runtimes()] + ["cards/x.json"]
    assert f"{RUNTIME_MODEL}@int8" not in study_runs(models, comparison=True, calibration=False)
    assert study_runs(models) == models  # asked for models: each on auto, which needs no pin
    # --runtime: each model on those it can run; a card that runs none of them stays on its own
    card = str(SHARED / "models" / "mobilenet_v1_0.25_128_quant.tflite.json")
    assert study_runs(["alexnet", card], ["torch", "openvino"]) == [
        "alexnet@torch", "alexnet@openvino", f"{card}@openvino"]
    assert study_runs([card], ["torch"]) == [card]


def test_the_default_study_adds_bf16_only_on_a_cpu_that_runs_it_natively(monkeypatch):
    import topfive.machine

    monkeypatch.setattr(topfive.machine, "isa_flags", lambda: ("avx2", "avx512f"))
    assert comparison_runtimes() == list(RUNTIME_COMPARISON)
    monkeypatch.setattr(topfive.machine, "isa_flags", lambda: ("avx2", "avx512f", "avx512_bf16"))
    assert comparison_runtimes() == [*RUNTIME_COMPARISON, "openvino-bf16"]
    assert comparison_runtimes(calibration=False) == ["torch", "onnxruntime", "openvino", "openvino-bf16"]


def test_an_architecture_is_compared_in_full_precision_where_no_runtime_is_shared():
    # Lite0 on int8 and torch, Lite1 on onnxruntime only: no runtime shared, so not Lite0's int8 row
    assert compared(["a@int8", "a@torch", "b@onnxruntime"]) == ["a@torch", "b@onnxruntime"]
    assert compared(["a@openvino-bf16", "a@openvino"]) == ["a@openvino"]


def test_the_conclusions_say_which_runtime_departs_from_torch(text):
    conclusions = text.split("## Conclusions", 1)[1].split("\n## ", 1)[0]
    assert "- **Across runtimes**: On efficientnet_lite0, int8 departs most from torch: the same top-1 class on " \
           "30.0 % of 10 photos, a significant difference in top-1 accuracy (McNemar p = 0.0156)." in conclusions


def test_cli_report_passes_the_runtimes(monkeypatch, tmp_path, capsys):
    import topfive.report as report
    from topfive.cli import main

    seen = {}
    monkeypatch.setattr(report, "run_study", lambda *a, **k: seen.update(k) or tmp_path / "REPORT.md")
    assert main(["report", "--runtime", "torch,openvino", "--out", str(tmp_path)]) == 0
    assert seen["runtimes"] == ["torch", "openvino"]
    assert main(["report", "--out", str(tmp_path)]) == 0 and seen["runtimes"] is None  # the default study


def test_a_model_that_failed_on_auto_joins_its_rows_on_the_runtime_auto_ran():
    from topfive.report.rows import key_rows

    rows = key_rows([{"model": "alexnet", "runtime": "auto", "weights": "not available: offline"},
                     {"model": "lite0", "runtime": "auto", "weights": "real"}],  # an older run's rows: a runtime
                    [{"model": "alexnet", "runtime": "onnxruntime", "weights": "architecture only"},
                     {"model": "lite0", "runtime": "torch"}], [], [])
    assert rows.models == ["alexnet", "lite0@auto"] and list(rows.bench) == ["alexnet"]
    assert list(rows.groups) == ["lite0"]
