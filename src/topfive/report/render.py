"""The report from the result files alone: `write_report` reads evaluate's and bench's folders,
draws the charts and writes OUT/REPORT.md; `render` puts the sections together."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from topfive.files import atomic_write
from topfive.report import charts
from topfive.report.defaults import DEFAULT_OUT
from topfive.report.findings import conclusions
from topfive.report.format import shown_path
from topfive.report.gallery import section_gallery
from topfive.report.results import (
    Published,
    Study,
    calibration_bins,
    ece_fraction,
    load_study,
    memory_growth,
    num,
    short,
    weights_mib,
)
from topfive.report.section_accuracy import section_accuracy, section_calibration
from topfive.report.section_method import section_method
from topfive.report.section_robustness import draw_robustness, load_robustness, section_robustness
from topfive.report.section_runtimes import section_runtimes
from topfive.report.section_setup import section_setup
from topfive.report.section_speed import section_memory, section_speed


def class_names() -> list[str]:
    from topfive.imagenet import classes

    return [c.name for c in classes()]


def draw_charts(study: Study, out_dir: Path) -> dict[str, str]:
    """Draws the charts there is data for; returns {kind: path relative to out_dir}."""
    colour = charts.colours([short(m) for m in study.models])
    made: dict[str, str] = {}
    folder = out_dir / "charts"
    points = []
    for m in study.models:
        row = study.summary.get(m, {})
        real = study.has_weights(m)
        points.append({
            "label": short(m),
            "latency_ms": num(study.bench.get(m, {}).get("latency_ms_median")),
            "top1": num(row.get("top1")) if real else None,
            "low": num(row.get("top1_low")) if real else None,
            "high": num(row.get("top1_high")) if real else None,
            "published": (study.published.get(m) or Published()).acc1,
        })
    if any(p["latency_ms"] is not None and (p["top1"] is not None or p["published"] is not None) for p in points):
        charts.accuracy_vs_latency(points, folder / "accuracy_vs_latency.png", colour, study.dataset.get("n_images"))
        made["accuracy"] = "charts/accuracy_vs_latency.png"
    if study.bench:
        rows = []
        for m, r in study.bench.items():
            load, run, _ = memory_growth(r)
            rows.append({"label": short(m), "weights_mib": weights_mib(study, m), "load_mib": load, "run_mib": run,
                         "cuda_mib": num(r.get("cuda_peak_mib"))})
        charts.memory(rows, folder / "memory.png")
        made["memory"] = "charts/memory.png"
        sizes = study.batch_sizes()
        rows = [{"label": short(m), "throughput": {bs: study.throughput(m, bs) for bs in sizes},
                 "end_to_end": num(r.get("end_to_end_img_s"))} for m, r in study.bench.items()]
        charts.throughput(rows, sizes, folder / "throughput.png")
        made["throughput"] = "charts/throughput.png"
    curves = [{"label": short(m), "ece": ece_fraction(study, m), "bins": calibration_bins(study, m)}
              for m in study.real_models if study.calibration.get(m)]
    if curves:
        charts.reliability(curves, folder / "reliability.png", colour)
        made["reliability"] = "charts/reliability.png"
    robustness_chart = draw_robustness(load_robustness(study.eval_dir, out_dir), folder, colour, study.models)
    if robustness_chart:
        made["robustness"] = robustness_chart
    return made


def _header(study: Study, command: str, notes: list[str]) -> list[str]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        "# Comparative study: " + ", ".join(short(m) for m in study.models), "",
        f"Generated {now} by `topfive report`" + (f" (`{command}`)" if command else "")
        + ". Every figure below is computed from the result files of `topfive evaluate`"
        + (f" (`{shown_path(study.eval_dir)}`)" if study.eval_dir else "")
        + (f", written {study.created}," if study.created else "")
        + " and `topfive bench`" + (f" (`{shown_path(study.bench_dir)}`)" if study.bench_dir else "") + ".", "",
        *[line for note in notes for line in (f"> {note}", "")],
    ]


def render(study: Study, out_dir: Path, image_roots: list[Path], made: dict[str, str], command: str = "",
           notes: list[str] | None = None) -> str:
    """REPORT.md's text. made: the charts drawn ({kind: path}); the gallery's thumbnails are
    written into out_dir/gallery on the way."""
    names = class_names()
    lines = [
        *_header(study, command, notes or []),
        "## Conclusions", "",
        *conclusions(study),
        *section_setup(study, names),
        *section_accuracy(study, made.get("accuracy")),
        *section_speed(study, made.get("throughput")),
        *section_memory(study, made.get("memory")),
        *section_runtimes(study),
        *section_calibration(study, made.get("reliability")),
        *section_robustness(load_robustness(study.eval_dir, out_dir), made.get("robustness")),
        *section_gallery(study, out_dir, image_roots, names),
        *section_method(study),
    ]
    return "\n".join(lines).rstrip() + "\n"


def write_report(
    eval_dir: Path | str | None,
    bench_dir: Path | str | None,
    out_dir: Path | str = DEFAULT_OUT,
    image_roots: list[Path | str] | None = None,
    command: str = "",
    notes: list[str] | None = None,
) -> Path:
    """Render out_dir/REPORT.md, out_dir/charts/*.png and out_dir/gallery/*.jpg from the result
    files alone. image_roots: folders in which the photos' relative paths are looked up for the
    gallery (e.g. the --mirror folder)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study = load_study(eval_dir, bench_dir)
    roots = [Path(r) for r in image_roots or []]
    ds_path = study.dataset.get("path")
    if ds_path and not str(ds_path).startswith("builtin:"):
        p = Path(ds_path)
        roots.append(p if p.is_dir() else p.parent)
    made = draw_charts(study, out)
    return atomic_write(out / "REPORT.md", render(study, out, roots, made, command, notes))
