"""The Robustness section: top-1 on corrupted copies of the photos, from robustness_summary.csv and
robustness.json alone (written by `topfive evaluate --corruptions`, or the study's robustness stage).

They are looked for in evaluate's folder (`evaluate --corruptions` writes them beside its own files)
and then in the report folder's robustness/ (the study's stage)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from topfive.report.chart_robustness import MEAN, accuracy_vs_severity
from topfive.report.defaults import ROBUSTNESS_FOLDER
from topfive.report.format import fmt, shown_text
from topfive.report.results import display, num, read_csv, read_json, short
from topfive.report.rows import split_key
from topfive.tables import markdown_table

SUMMARY, META = "robustness_summary.csv", "robustness.json"
CLEAN, ALL = "clean", "all"  # robustness_summary.csv's words (topfive.eval.robustness_tables)


@dataclass
class Robustness:
    folder: Path
    rows: list[dict]  # robustness_summary.csv
    meta: dict  # robustness.json

    def models(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys((r["model"], r["runtime"]) for r in self.rows))

    def label(self, key: tuple[str, str]) -> str:
        several = sum(m == key[0] for m, _ in self.models()) > 1
        return short(f"{key[0]}@{key[1]}") if several else short(key[0])

    def row(self, key: tuple[str, str], kind: str, severity: str) -> dict:
        return next((r for r in self.rows if (r["model"], r["runtime"]) == key and r["kind"] == kind
                     and r["severity"] == severity), {})

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(r["kind"] for r in self.rows if r["kind"] not in (CLEAN, ALL)))

    def severities(self) -> list[int]:
        return sorted({int(r["severity"]) for r in self.rows if r["severity"].isdigit() and r["kind"] != CLEAN})


def load_robustness(eval_dir: Path | None, out_dir: Path | None) -> Robustness | None:
    for folder in (eval_dir, Path(out_dir) / ROBUSTNESS_FOLDER if out_dir else None):
        if folder and (Path(folder) / SUMMARY).is_file() and (Path(folder) / META).is_file():
            folder = Path(folder)
            return Robustness(folder, read_csv(folder / SUMMARY), read_json(folder / META))
    return None


def chart_lines(rob: Robustness) -> list[dict]:
    """Per model: {label, points: {MEAN or kind: [(severity, top-1 %)]}}, the clean photo at 0."""
    lines = []
    for key in rob.models():
        clean = num(rob.row(key, CLEAN, "0").get("top1"))
        points: dict[str, list] = {}
        for kind in rob.kinds():
            cells = [(int(r["severity"]), num(r["top1"])) for r in rob.rows if (r["model"], r["runtime"]) == key
                     and r["kind"] == kind and r["severity"].isdigit()]
            points[kind] = [(0, clean)] * (clean is not None) + [c for c in cells if c[1] is not None]
        for s in rob.severities():
            values = [a for kind in rob.kinds() for sev, a in points[kind] if sev == s]
            if values:
                points.setdefault(MEAN, [(0, clean)] * (clean is not None)).append((s, sum(values) / len(values)))
        lines.append({"label": rob.label(key), "points": points})
    return lines


def draw_robustness(rob: Robustness | None, folder: Path, colour: dict[str, str], study_models: list[str]) -> str | None:
    """Draws charts/robustness.png where there are results; returns its path relative to the report."""
    if rob is None or not rob.rows:
        return None
    by_model = {split_key(m)[0]: colour.get(short(m)) for m in reversed(study_models)}
    colours = {line["label"]: colour.get(line["label"]) or by_model.get(key[0])
               for line, key in zip(chart_lines(rob), rob.models())}
    accuracy_vs_severity(chart_lines(rob), rob.kinds(), folder / "robustness.png",
                         {k: v for k, v in colours.items() if v})
    return "charts/robustness.png"


def _ci(row: dict) -> str:
    v, lo, hi = num(row.get("top1")), num(row.get("top1_low")), num(row.get("top1_high"))
    return fmt(v) if lo is None or hi is None else f"{v:.1f} [{lo:.1f}–{hi:.1f}]"


def _method(rob: Robustness) -> str:
    meta, params = rob.meta, rob.meta.get("parameters", {})
    ds = meta.get("dataset", {})
    n, total = ds.get("n_photos"), ds.get("n_images")
    base = meta.get("baseline", {})
    kinds = "; ".join(f"{k} ({p.get('imagenet_c')}: {p.get('parameter')} {', '.join(map(str, p.get('levels', [])))} "
                      f"at severities 1-5; {p.get('implementation')})" for k, p in params.items() if k in rob.kinds())
    copies = 1 + sum(len(s) for s in meta.get("corruptions", {}).values())
    subset = (f"{n} of the set's {total} photos (label-stratified: the same number from each label where it has "
              f"them, spread over its files; fixed, so every model sees the same photos; a subset because each photo "
              f"is scored {copies} times per model, which over the whole set would take {total / n:.0f} times as "
              "long)" if n and total and n < total else f"all {n} readable photos")
    return (f"Method: ImageNet-C's protocol (Hendrycks & Dietterich 2019) on {subset}, each corrupted in memory "
            f"(seed {meta.get('seed')}, per photo, kind and severity: every model sees the same noise where their "
            "input sizes agree) after the model's own resize and crop, as ImageNet-C corrupts its 224 x 224 crops, "
            f"then normalised for the model. Kinds: {kinds}. Top-1 is on each photo's accepted class set, with "
            "95 % Wilson intervals per kind and severity in robustness_summary.csv. Drop: clean top-1 minus the mean "
            "top-1 over the corrupted copies, in points. CE of a kind: the model's top-1 errors summed over the "
            "severities run, divided by the baseline's, x 100; mCE: their mean over the kinds. The baseline is "
            f"{display(base.get('model') or '—')}"
            + (f" on {base.get('runtime')}" if base.get("runtime") else "")
            + " (ImageNet-C's is AlexNet, which has no weights here), so these mCEs do not compare with the paper's.")


def _finding(rob: Robustness, keys: list[tuple[str, str]]) -> str:
    drops = [(num(rob.row(k, ALL, ALL).get("drop")), k) for k in keys]
    drops = [(d, k) for d, k in drops if d is not None]
    if len(drops) < 2:
        return ""
    (lo, best), (hi, worst) = min(drops), max(drops)
    return (f"Smallest drop under corruption: {rob.label(best)} ({lo:.1f} points from clean); largest: "
            f"{rob.label(worst)} ({hi:.1f} points). With {rob.meta.get('dataset', {}).get('n_photos')} photos, "
            "differences of a few points are within the intervals.")


def section_robustness(rob: Robustness | None, chart: str | None) -> list[str]:
    if rob is None:
        return []
    keys, kinds, severities = rob.models(), rob.kinds(), rob.severities()
    lines = ["## Robustness to corrupted photos", ""]
    table = []
    for key in keys:
        overall = rob.row(key, ALL, ALL)
        table.append([rob.label(key), key[1], rob.row(key, CLEAN, "0").get("n", "—"), _ci(rob.row(key, CLEAN, "0")),
                      fmt(num(overall.get("top1"))), fmt(num(overall.get("drop"))), fmt(num(overall.get("ce"))),
                      *[fmt(num(rob.row(key, k, ALL).get("ce"))) for k in kinds]])
    if table:
        lines += markdown_table(["model", "runtime", "n", "clean top-1 % [95 % CI]", "corrupted top-1 % (mean)",
                                 "drop (points)", "mCE", *[f"CE {k}" for k in kinds]], table, right_from=2)
    if chart:
        lines += [f"![Top-1 against corruption severity]({chart})", ""]
    if severities and keys:
        rows = [[rob.label(key), fmt(num(rob.row(key, CLEAN, "0").get("top1"))),
                 *[fmt(_severity_mean(rob, key, s)) for s in severities]] for key in keys]
        lines += ["Top-1 % at each severity, the mean over the kinds:", ""]
        lines += markdown_table(["model", "clean", *[f"severity {s}" for s in severities]], rows)
    missing = [m for m in rob.meta.get("models", []) if m.get("status") != "evaluated"]
    if missing:
        lines += ["Not run on corrupted photos: " + "; ".join(f"{display(m['name'])} ({shown_text(m.get('reason', ''))})"
                                                               for m in missing) + ".", ""]
    finding = _finding(rob, keys)
    lines += [finding, ""] if finding else []
    return lines + [_method(rob), ""]


def _severity_mean(rob: Robustness, key: tuple[str, str], severity: int) -> float | None:
    values = [num(rob.row(key, k, str(severity)).get("top1")) for k in rob.kinds()]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None
