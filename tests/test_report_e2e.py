"""End-to-end: `run_study` on a small subset of ../shared/eval with EfficientNet-Lite0 and one
architecture-only model, through the real evaluate and bench stages (bench in its --quick mode:
the machinery, not figures)."""

import csv
import json

import pytest
from conftest import SHARED
from PIL import Image
from test_report_render import CHARTS, SECTIONS, row_of, rows, table_after

from topfive.machine import fingerprint
from topfive.models import resolve
from topfive.report import run_study
from topfive.report.defaults import NOT_AVAILABLE
from topfive.report.numerics import isa_text

LABELS = ("dog", "horse", "pizza")


@pytest.mark.slow
def test_report_end_to_end(tmp_path):
    with open(SHARED / "eval" / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        header, manifest = reader.fieldnames, list(reader)
    subset = [r for label in LABELS for r in [x for x in manifest if x["label"] == label][:2]]
    data = tmp_path / "subset.csv"
    with data.open("w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        w.writerows(subset)

    arch_only = "alexnet"
    assert resolve(arch_only).weights_status() == "download", "alexnet weights are cached here: pick another model"
    out = tmp_path / "report"
    text = run_study(data, ["efficientnet_lite0", arch_only], "cpu", out, mirror=SHARED / "eval",
                            quick=True).read_text()

    assert all(s + "\n" in text for s in SECTIONS)
    summary = {r["model"]: r for r in rows(out / "eval" / "summary.csv")}
    acc = table_after(text, "## Accuracy")
    lite0 = summary["efficientnet_lite0"]
    assert row_of(acc, "efficientnet_lite0")[2].startswith(f"{float(lite0['top1']):.1f} [")
    assert int(lite0["n"]) == len(subset)
    alex = next(r for r in acc[1:] if r[0].startswith("alexnet"))
    assert alex[2] == NOT_AVAILABLE and alex[4] == "56.5"  # published Acc@1, never an own-set figure
    speed = table_after(text, "## Speed")
    bench = json.loads((out / "bench" / "bench.json").read_text())["results"]
    for b in bench:  # the JSON has full precision; its "canonical" is the name the report uses
        assert row_of(speed, b.get("canonical") or b["model"])[speed[0].index("latency median (ms)")] == (
            f"{float(b['latency_ms_median']):.2f}"
        )
    assert row_of(speed, alex[0])[1] == "architecture only"
    for name in CHARTS:
        path = out / "charts" / name
        assert path.stat().st_size > 10_000
        with Image.open(path) as img:
            assert img.format == "PNG" and 500 <= img.width <= 2000 and 300 <= img.height <= 2000
    # the real stages record this machine, and the report names it
    for path in (out / "eval" / "evaluate.json", out / "bench" / "bench.json"):
        assert json.loads(path.read_text())["fingerprint"]["isa"] == fingerprint()["isa"]
    assert row_of(table_after(text, "## Set-up"), "ISA features")[1] == isa_text(fingerprint())
    # a second run reuses both stages' result files
    before = {p: p.stat().st_mtime for p in (out / "eval" / "summary.csv", out / "bench" / "bench.csv")}
    run_study(data, ["efficientnet_lite0", arch_only], "cpu", out, mirror=SHARED / "eval", quick=True)
    assert {p: p.stat().st_mtime for p in before} == before
