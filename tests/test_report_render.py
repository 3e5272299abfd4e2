"""The report rendered from hand-made result files (tests/fixtures/report): sections, numbers, charts."""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import SHARED
from PIL import Image

from topfive.cli import main
from topfive.report import gallery, load_study, write_report
from topfive.report.defaults import NOT_AVAILABLE
from topfive.report.findings import conclusions
from topfive.report.render import render
from topfive.report.results import pareto_front
from topfive.report.section_setup import fact

FIX = Path(__file__).resolve().parent / "fixtures" / "report"
SECTIONS = [
    "## Conclusions", "## Set-up", "### Photo set", "## Accuracy", "### Per-label accuracy",
    "### Pairwise McNemar tests", "## Speed", "## Memory, size and compute", "## Calibration and mistake severity",
    "## Gallery of disagreements", "## Method",
]
CHARTS = ["accuracy_vs_latency.png", "memory.png", "throughput.png", "reliability.png"]
REAL = ["efficientnet_lite0", "efficientnet_lite1", "mobilenet_v1_0.25_128_quant"]
NO_WEIGHTS = "resnet50:IMAGENET1K_V2"


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    path = write_report(FIX / "eval", FIX / "bench", out, image_roots=[SHARED / "eval"])
    return out, path.read_text()


def table_after(text: str, heading: str) -> list[list[str]]:
    """The first Markdown table after a heading, as rows of cells (header included)."""
    body = text.split(heading + "\n", 1)[1]
    lines = [ln for ln in body.splitlines() if ln.startswith("|")]
    start = body.splitlines().index(lines[0])
    table = []
    for ln in body.splitlines()[start:]:
        if not ln.startswith("|"):
            break
        table.append([c.strip() for c in ln.strip("|").split(" | ")])
    return [table[0]] + table[2:]


def row_of(table, model):
    return next(r for r in table if r[0] == model)


def test_every_section_present_in_order(rendered):
    _, text = rendered
    positions = [text.find(s + "\n") for s in SECTIONS]
    assert all(p >= 0 for p in positions), [s for s, p in zip(SECTIONS, positions) if p < 0]
    assert positions == sorted(positions)


def test_accuracy_table_matches_summary(rendered):
    _, text = rendered
    table = table_after(text, "## Accuracy")
    for s in rows(FIX / "eval" / "summary.csv"):
        if s["weights"] != "real":
            continue
        r = row_of(table, s["model"])
        top1 = f"{float(s['top1']):.1f} [{float(s['top1_low']):.1f}–{float(s['top1_high']):.1f}]"
        top5 = f"{float(s['top5']):.1f} [{float(s['top5_low']):.1f}–{float(s['top5_high']):.1f}]"
        # the fixture records no machine: the int8 card's figures carry the CPU-dependence mark
        mark = " †" if s["model"] == "mobilenet_v1_0.25_128_quant" else ""
        assert r[1:4] == [s["n"], top1 + mark, top5 + mark]
    lite0 = row_of(table, "efficientnet_lite0")
    assert lite0[4:6] == ["74.8", "92.2"]  # published, from the model entry
    assert row_of(table, "mobilenet_v1_0.25_128_quant")[4] == "—"  # unknown to the zoo: no figure invented


def test_model_without_weights_shows_no_own_accuracy(rendered):
    _, text = rendered
    r = row_of(table_after(text, "## Accuracy"), NO_WEIGHTS)
    assert r[1:4] == ["—", NOT_AVAILABLE, NOT_AVAILABLE]
    assert r[4:6] == ["80.9", "95.4"]  # published Acc@1/Acc@5 still shown
    assert r[6] == "25.56" and r[7] == "4.089"  # architecture figures from bench
    assert NO_WEIGHTS not in table_after(text, "### Per-label accuracy")[0]
    assert NO_WEIGHTS not in "".join(sum(table_after(text, "## Calibration and mistake severity"), []))


def test_numbers_from_random_weights_never_shown(tmp_path):
    """Even if a writer left accuracy figures in an unavailable model's row, the report ignores them."""
    ev = tmp_path / "eval"
    shutil.copytree(FIX / "eval", ev)
    lines = (ev / "summary.csv").read_text().splitlines()
    lines = [ln.replace(f"{NO_WEIGHTS},,,,,", f"{NO_WEIGHTS},0.123,99.877,0.456,99.544,") for ln in lines]
    (ev / "summary.csv").write_text("\n".join(lines) + "\n")
    text = render(load_study(ev, FIX / "bench"), tmp_path, [], made={})  # no charts: faster
    r = row_of(table_after(text, "## Accuracy"), NO_WEIGHTS)
    assert NOT_AVAILABLE in r
    assert "0.1" not in r[1:4] and "0.123" not in text and "0.456" not in text


def test_per_label_and_mcnemar_match(rendered):
    _, text = rendered
    table = table_after(text, "### Per-label accuracy")
    assert table[0] == ["label", "n", *REAL]
    for p in rows(FIX / "eval" / "per_label.csv"):
        r = row_of(table, p["label"])
        assert r[1] == p["n"]
        assert r[2 + REAL.index(p["model"])] == f"{float(p['top1']):.0f} / {float(p['top5']):.0f}"
    mc = table_after(text, "### Pairwise McNemar tests")
    for m in rows(FIX / "eval" / "mcnemar.csv"):
        r = next(r for r in mc if r[:2] == [m["model_a"], m["model_b"]])
        p = float(m["p_value"])
        assert r[3:6] == [m["a_only"], m["b_only"], f"{p:.3g}"]
        assert r[6] == ("**yes**" if p < 0.05 else "no")
    assert sum(r[6] == "**yes**" for r in mc[1:]) == 2  # the fixtures have two significant pairs


def test_speed_and_memory_tables_match_bench(rendered):
    _, text = rendered
    speed = table_after(text, "## Speed")
    memory = table_after(text, "## Memory, size and compute")
    assert "img/s bs 1" in speed[0] and "img/s bs 16" in speed[0]
    assert "CUDA peak (MiB)" not in memory[0]  # a CPU run
    bench_json = json.loads((FIX / "bench" / "bench.json").read_text())
    for b in rows(FIX / "bench" / "bench.csv"):
        s = row_of(speed, b["model"])
        assert s[1] == b["weights"]
        col = speed[0].index
        assert s[col("latency median (ms)")] == f"{float(b['latency_ms_median']):.2f}"
        assert s[col("p90 (ms)")] == f"{float(b['latency_ms_p90']):.2f}"
        assert s[col("runtime")] in ("PyTorch eager", "LiteRT", "ONNX Runtime", "OpenVINO", "—")
        assert s[speed[0].index("img/s bs 16")] == f"{float(b['throughput_bs16']):.1f}"
        share = 100 * (float(b["decode_ms"]) + float(b["preprocess_ms"])) * float(b["end_to_end_img_s"]) / 1000
        assert s[speed[0].index("decode+preprocess share")] == f"{share:.0f} %"
        m = row_of(memory, b["model"])
        load, run = float(b["rss_load_mib"]), float(b["rss_run_mib"])  # growths over the baseline
        loaded = next(r["rss_loaded_mib"] for r in bench_json["results"] if r["model"] == b["model"])
        assert m[4] == f"{int(b['weight_bytes']) / 2**20:.1f}"
        assert m[5:8] == [f"{load:.1f}", f"{run:.1f}", f"{run - loaded:.1f}"]
        assert m[1] == f"{int(b['params']) / 1e6:.2f}"
    assert "(wide)" in row_of(speed, "mobilenet_v1_0.25_128_quant")[-1]


def test_calibration_and_setup(rendered):
    _, text = rendered
    cal = table_after(text, "## Calibration and mistake severity")
    for s in rows(FIX / "eval" / "summary.csv"):
        if s["weights"] == "real":
            r = row_of(cal, s["model"])
            assert r[1] == f"{100 * float(s['ece']):.1f}" and r[3] == f"{float(s['severity_mean']):.2f}"
    meta = json.loads((FIX / "eval" / "evaluate.json").read_text())
    setup = table_after(text, "### Photo set")
    for label, n in meta["dataset"]["labels"].items():
        assert row_of(setup, label)[1] == str(n)
    assert "118 classes, indices 151–268" in row_of(setup, "dog")[2]
    assert row_of(setup, "horse")[2] == "sorrel (339)"
    assert "fixture_broken.jpg" in text and "CC BY-SA 4.0" in text and "AMD EPYC (fixture)" in text


def test_conclusions_are_computed(rendered):
    _, text = rendered
    concl = text.split("## Conclusions\n", 1)[1].split("\n## ", 1)[0]
    assert "**efficientnet_lite1**" in concl  # highest top-1 in summary.csv
    assert "not** significant over efficientnet_lite0" in concl
    assert "significant (McNemar's exact test, p < 0.05) over mobilenet_v1_0.25_128_quant" in concl
    assert "**Fastest at batch 1**: mobilenet_v1_0.25_128_quant, 1.4 ms" in concl
    assert "**Smallest**: mobilenet_v1_0.25_128_quant" in concl


def test_charts_are_sensible_pngs(rendered):
    out, text = rendered
    for name in CHARTS:
        path = out / "charts" / name
        assert f"](charts/{name})" in text
        assert path.stat().st_size > 10_000, name
        with Image.open(path) as img:
            assert img.format == "PNG"
            assert 500 <= img.width <= 2000 and 300 <= img.height <= 2000, (name, img.size)
            img.verify()


def test_gallery_thumbnails(rendered):
    out, text = rendered
    links = re.findall(r"\]\((gallery/[^)]+\.jpg)\)", text)
    assert 4 <= len(links) <= gallery.GALLERY_SIZE
    for link in links:
        with Image.open(out / link) as img:
            assert img.format == "JPEG" and max(img.size) <= gallery.THUMB_PX
    assert (out / "gallery" / ".gitignore").read_text().strip().endswith("*")
    section = text.split("## Gallery of disagreements", 1)[1].split("\n## ", 1)[0]
    assert "✓" in section and "right" in section and "wrong" in section


def test_missing_bench_still_renders_every_section(tmp_path):
    study = load_study(FIX / "eval", None)
    text = render(study, tmp_path, [], made={})
    assert all(s + "\n" in text for s in SECTIONS)
    assert "Not measured (no bench results)." in text
    assert "**Fastest" not in text and "## Speed\n\nNot measured" in text


def test_cli_from_results(tmp_path, capsys):
    rc = main(["report", "--from-results", str(FIX / "eval"), str(FIX / "bench"), "--out", str(tmp_path / "r")])
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / "REPORT.md")
    text = (tmp_path / "r" / "REPORT.md").read_text()
    assert "## Method" in text
    assert "no thumbnail: photo not found" in text  # no --mirror given: the gallery says so, per photo


def test_accuracy_latency_frontier():
    study = load_study(FIX / "eval", FIX / "bench")
    assert pareto_front(study) == REAL[::-1][:1] + REAL[:2]  # mobilenet (fast), lite0, lite1 (accurate)
    study.bench["efficientnet_lite1"] = {**study.bench["efficientnet_lite1"], "latency_ms_median": "5"}
    assert pareto_front(study) == ["mobilenet_v1_0.25_128_quant", "efficientnet_lite1"]
    concl = "".join(conclusions(study))
    assert "efficientnet_lite0 is both slower and less accurate" in concl


def test_gpu_run_and_card_paths(tmp_path):
    """A CUDA bench adds the CUDA peak column and conclusion; card paths show as file names."""
    card = "/somewhere/models/mobilenet_v1_0.25_128_quant.tflite.json"
    for sub in ("eval", "bench"):
        shutil.copytree(FIX / sub, tmp_path / sub)
        for f in (tmp_path / sub).iterdir():
            f.write_text(f.read_text().replace("mobilenet_v1_0.25_128_quant", card))
    bench = json.loads((tmp_path / "bench" / "bench.json").read_text())
    bench["environment"]["device"] = "cuda"
    for i, r in enumerate(bench["results"]):
        r["cuda_peak_mib"] = 100 + i
    (tmp_path / "bench" / "bench.json").write_text(json.dumps(bench))
    study = load_study(tmp_path / "eval", tmp_path / "bench")
    text = render(study, tmp_path, [], made={})
    memory = table_after(text, "## Memory, size and compute")
    assert memory[0][-1] == "CUDA peak (MiB)" and row_of(memory, "efficientnet_lite0")[-1] == "100.0"
    assert "**Least GPU memory**: efficientnet_lite0, CUDA peak 100 MiB." in text
    assert card not in text and row_of(memory, "mobilenet_v1_0.25_128_quant.tflite")


def test_sources_of_any_shape():
    assert fact("Animals-10", 18) == "Animals-10 (18)"
    assert fact("CC BY 4.0", "") == "CC BY 4.0"
    assert fact("x", {"a": 1}) == "x (a: 1)"
    record = {"repo": "o/r", "commit": "f116512649d4", "dataset": "Animals-10", "n": 10}
    assert fact("o/r@f116512649d4", record) == "Animals-10 (10; o/r@f116512)"
    wheel = {"repo": "scikit-image (wheel)", "commit": "n/a (wheel)", "n": 2}
    assert fact("skimage", wheel) == "skimage (2; scikit-image (wheel))"
    assert fact("licence", "unstated") == "licence: unstated"


def test_bench_names_joined_to_canonical_names(tmp_path):
    """bench keeps the name it was given (`resnet50`); bench.json's `canonical` joins it to evaluate's."""
    shutil.copytree(FIX / "bench", tmp_path / "bench")
    (tmp_path / "bench" / "bench.csv").write_text(
        (FIX / "bench" / "bench.csv").read_text().replace(NO_WEIGHTS + ",", "resnet50,"))
    bench = json.loads((FIX / "bench" / "bench.json").read_text())
    for r in bench["results"]:
        r["canonical"] = r["model"]
        r["model"] = r["model"].partition(":")[0]
    (tmp_path / "bench" / "bench.json").write_text(json.dumps(bench))
    study = load_study(FIX / "eval", tmp_path / "bench")
    assert study.models == [r["model"] for r in rows(FIX / "eval" / "summary.csv")]
    assert study.bench[NO_WEIGHTS]["latency_ms_median"] == 61.0


def test_tie_for_most_accurate(tmp_path):
    ev = tmp_path / "eval"
    shutil.copytree(FIX / "eval", ev)
    summary = (ev / "summary.csv").read_text().replace("efficientnet_lite0,80.000,", "efficientnet_lite0,86.667,")
    (ev / "summary.csv").write_text(summary)
    concl = "".join(conclusions(load_study(ev, FIX / "bench")))
    assert "a tie between **efficientnet_lite0**, **efficientnet_lite1** at top-1 86.7" in concl
    assert "The lead of efficientnet_lite0 is significant" in concl and "not** significant over efficientnet_l" not in concl
    assert "any of 118 classes counts for `dog`" in concl


def _fixtures_copy(tmp_path, rename: tuple[str, str] | None = None) -> tuple[Path, Path]:
    """A copy of the fixture result files, with one model renamed in every file."""
    for sub in ("eval", "bench"):
        shutil.copytree(FIX / sub, tmp_path / sub)
        for f in (tmp_path / sub).iterdir():
            if rename:
                f.write_text(f.read_text().replace(*rename))
    return tmp_path / "eval", tmp_path / "bench"


def test_card_names_are_shortened_where_written_not_in_the_whole_text(tmp_path):
    """A card's path that also occurs inside other text (here: an unreadable photo's file name) is
    shortened only where it names the model; the rest of the report keeps its text."""
    ev, bench = _fixtures_copy(tmp_path, ("mobilenet_v1_0.25_128_quant", "m.json"))
    with (ev / "failures.csv").open("a") as f:
        f.write("images/cow/farm.json.jpg,ImageNotFound,not in the mirror\n")
    text = render(load_study(ev, bench), tmp_path, [], made={})
    assert "`images/cow/farm.json.jpg`" in text and "farm.jpg" not in text
    assert row_of(table_after(text, "## Accuracy"), "m") and row_of(table_after(text, "## Speed"), "m")
    assert "**Fastest at batch 1**: m, 1.4 ms" in text
    assert "m.json" not in text.replace("farm.json", "")


def test_no_absolute_path_of_the_machine(tmp_path, monkeypatch):
    """Paths in the report are relative to the working folder; messages quoting the home folder
    show it as ~ (URLs and $VARS are left alone)."""
    ev, bench = _fixtures_copy(tmp_path)
    meta = json.loads((ev / "evaluate.json").read_text())
    meta["dataset"]["path"] = str(tmp_path / "photos" / "manifest.csv")
    home = Path.home() / ".cache" / "torch" / "hub" / "resnet50.pth"
    meta["models"][-1]["reason"] = (f"not cached at {home}; fetch https://download.pytorch.org/models/resnet50.pth "
                                    "into $TORCH_HOME/hub")
    (ev / "evaluate.json").write_text(json.dumps(meta))
    monkeypatch.chdir(tmp_path)
    text = render(load_study(ev, bench), tmp_path, [], made={}, command="topfive report")
    assert "`photos/manifest.csv`: 30 photos read" in text
    assert f"(`{ev}`)" not in text and "(`eval`)" in text and "(`bench`)" in text
    assert "not cached at ~/.cache/torch/hub/resnet50.pth; fetch https://download.pytorch.org/models/resnet50.pth" \
        " into $TORCH_HOME/hub" in text
    assert str(tmp_path) not in text and str(Path.home()) + "/" not in text
