"""Reading the result files of `topfive evaluate` and `topfive bench` into one `Study`, and the
figures the report derives from them (memory growth, preprocessing share, ECE, frontier, ...).

Evaluate --out: summary.csv, predictions.csv, per_label.csv, mcnemar.csv, calibration.csv,
severity.csv, failures.csv, evaluate.json. Bench --out: bench.json, bench.csv.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from topfive.report.rows import RowSet, join_bench, key_rows, split_key

# --- reading ---------------------------------------------------------------


def num(value) -> float | None:
    if value is None or value == "" or (isinstance(value, str) and value.strip().lower() in {"nan", "none", "n/a"}):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def truthy(value) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "1.0"}


def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


@dataclass
class Published:
    acc1: float | None = None
    acc5: float | None = None
    params: int | None = None
    gmacs: float | None = None
    source: str = ""
    runtime: str = ""  # what runs the model in evaluate and bench
    quantised: bool = False  # the model file itself is integer (see quantised_card)


QUANTISED_WORDS = ("int8", "uint8", "quant", "qlinear")


def quantised_card(info) -> bool:
    """Whether a model card's file is an integer (int8/uint8) model. The rule: its input pixels are
    uint8 (a TFLite full-integer model takes them as they are), or its name or architecture says int8,
    uint8, quant or QLinear (an ONNX post-training int8 file keeps a float input, so the dtype alone
    misses it). Zoo models are float: they are int8 only on the `int8` runtime."""
    if info.family not in ("onnx", "tflite", "openvino"):
        return False
    text = f"{info.name} {info.architecture}".lower()
    return info.preprocess.dtype == "uint8" or any(word in text for word in QUANTISED_WORDS)


RUNTIME_NAMES = {  # the runtime vocabulary's words as the report writes them
    "torch": "PyTorch eager", "compile": "torch.compile", "onnxruntime": "ONNX Runtime", "int8": "ONNX Runtime int8",
    "openvino": "OpenVINO", "litert": "LiteRT",
}


def runtime_name(word: str | None) -> str:
    return RUNTIME_NAMES.get(word or "", word or "")


def published(name: str) -> Published:
    """Published ImageNet-1k figures of the model entry; empty when no entry knows the name."""
    name = split_key(name)[0]
    try:
        from topfive.models import resolve
        from topfive.runtime.registry import card_runtime

        info = resolve(name).info
    except Exception:  # unknown name, card not loadable here: no published figures, never guessed
        return Published()
    runtime = runtime_name(card_runtime(info.family) if not resolve(name).has_module else "torch")
    return Published(info.acc1, info.acc5, info.params, info.gmacs, info.published_source, runtime,
                     quantised_card(info))


@dataclass
class Study:
    """Everything the report shows, as read from the files (strings parsed where used)."""

    eval_dir: Path | None
    bench_dir: Path | None
    models: list[str]
    summary: dict[str, dict]
    bench: dict[str, dict]
    environment: dict
    dataset: dict
    model_status: list[dict]
    per_label: list[dict]
    mcnemar: list[dict]
    calibration: dict[str, list[dict]]
    severity: dict[str, list[tuple[int, int]]]
    predictions: list[dict]
    failures: list[dict]
    created: str
    published: dict[str, Published] = field(default_factory=dict)
    # the machines the results were measured on ({"evaluate": ..., "bench": ...}, topfive.machine's
    # fingerprint); a stage missing here recorded none (written by an older topfive)
    fingerprints: dict[str, dict] = field(default_factory=dict)
    # every (model, runtime) row; summary, bench and models above hold the compared ones (report.rows)
    rows: RowSet = field(default_factory=RowSet)

    def has_weights(self, model: str) -> bool:
        row = self.summary.get(model)
        return bool(row) and row.get("weights", "").strip() == "real" and num(row.get("top1")) is not None

    @property
    def real_models(self) -> list[str]:
        return [m for m in self.models if self.has_weights(m)]

    def batch_sizes(self) -> list[int]:
        sizes = set()
        for row in self.bench.values():
            sizes |= {int(k[len("throughput_bs"):]) for k in row if re.fullmatch(r"throughput_bs\d+", k)}
            sizes |= {int(k) for k in (row.get("throughput_img_s") or {})}
        return sorted(sizes)

    def throughput(self, model: str, bs: int) -> float | None:
        row = self.bench.get(model, {})
        value = num(row.get(f"throughput_bs{bs}"))
        return value if value is not None else num((row.get("throughput_img_s") or {}).get(str(bs)))


def load_study(eval_dir: Path | str | None, bench_dir: Path | str | None) -> Study:
    """Read evaluate's and bench's result files. Either folder may be missing: its sections then
    say so instead of showing numbers."""
    ed = Path(eval_dir) if eval_dir else None
    bd = Path(bench_dir) if bench_dir else None
    meta = read_json(ed / "evaluate.json") if ed else {}
    bench_json = read_json(bd / "bench.json") if bd else {}
    per_label, mcnemar, calibration_rows, severity_rows, predictions = (
        read_csv(ed / name) if ed else []
        for name in ("per_label.csv", "mcnemar.csv", "calibration.csv", "severity.csv", "predictions.csv"))
    rows = key_rows(read_csv(ed / "summary.csv") if ed else [],
                    join_bench(bench_json.get("results", []), read_csv(bd / "bench.csv") if bd else []),
                    [per_label, calibration_rows, severity_rows, predictions], mcnemar)
    calibration, severity = defaultdict(list), defaultdict(list)
    for r in calibration_rows:
        calibration[r["model"]].append(r)
    for r in severity_rows:
        severity[r["model"]].append((int(float(r["distance"])), int(float(r["count"]))))
    models = rows.models
    return Study(
        eval_dir=ed,
        bench_dir=bd,
        models=models,
        summary=rows.summary,
        bench=rows.bench,
        environment=bench_json.get("environment", {}),
        dataset=meta.get("dataset", {}),
        model_status=meta.get("models", []),
        per_label=per_label,
        mcnemar=[r for r in mcnemar if r["model_a"] in rows.summary and r["model_b"] in rows.summary],
        calibration=dict(calibration),
        severity=dict(severity),
        predictions=predictions,
        failures=read_csv(ed / "failures.csv") if ed else [],
        created=meta.get("created", ""),
        published={m: published(m) for m in [*models, *rows.all_summary, *rows.all_bench]},
        fingerprints={stage: fp for stage, fp in (("evaluate", meta.get("fingerprint")),
                                                  ("bench", bench_json.get("fingerprint"))) if fp},
        rows=rows,
    )


# --- figures derived from the files ---------------------------------------------------------


def display(name: str) -> str:
    """A row's name for tables: a card path becomes its file name (without `.json`); a model on
    several runtimes gets its runtime beside it."""
    name, runtime = split_key(name)
    if "/" in name or os.sep in name or name.endswith(".json"):
        name = Path(name).name.removesuffix(".json")
    return f"{name} ({runtime})" if runtime else name


def short(name: str) -> str:
    """A model's name for charts: `resnet50 V2`, a card path's file name."""
    return display(name).replace(":IMAGENET1K_", " ")


def calibration_bins(study: Study, model: str) -> list[tuple[float, float, int, float, float]]:
    bins = []
    for r in sorted(study.calibration.get(model, []), key=lambda r: int(float(r["bin"]))):
        conf, acc = num(r["mean_confidence"]) or 0.0, num(r["accuracy"]) or 0.0
        lower, upper = num(r["lower"]) or 0.0, num(r["upper"]) or 0.0
        if max(conf, acc, upper) > 1.0001:  # written in percent: bring to 0..1
            conf, acc, lower, upper = conf / 100, acc / 100, lower / 100, upper / 100
        bins.append((lower, upper, int(float(r["count"])), conf, acc))
    return bins


def ece_fraction(study: Study, model: str) -> float | None:
    """The summary's ECE as a fraction 0..1 (the bins decide whether it was written in percent)."""
    value = num(study.summary.get(model, {}).get("ece"))
    bins = calibration_bins(study, model)
    total = sum(b[2] for b in bins)
    from_bins = sum(b[2] / total * abs(b[3] - b[4]) for b in bins) if total else None
    if value is None:
        return from_bins
    if from_bins is not None:
        return value / 100 if abs(value / 100 - from_bins) < abs(value - from_bins) else value
    return value if value <= 1 else value / 100


def memory_growth(row: dict) -> tuple[float | None, float | None, float | None]:
    """(load, run, activations) in MiB: bench's peak RSS growth over the process baseline while
    loading and while running, and the run peak over the RSS once loaded (`rss_loaded_mib`, in
    bench.json only): what running adds on top of the loaded model."""
    load, run, loaded = (num(row.get(k)) for k in ("rss_load_mib", "rss_run_mib", "rss_loaded_mib"))
    return load, run, (run - loaded if run is not None and loaded is not None else None)


def weights_mib(study: Study, model: str) -> float | None:
    b = num(study.bench.get(model, {}).get("weight_bytes"))
    return b / 2**20 if b is not None else None


def params_m(study: Study, model: str) -> float | None:
    b = num(study.bench.get(model, {}).get("params"))
    if b is not None:
        return b / 1e6
    p = study.published.get(model) or Published()
    if p.params:
        return p.params / 1e6
    return num(study.summary.get(model, {}).get("param_count"))  # already millions (timm's column)


def gmacs(study: Study, model: str) -> tuple[float | None, str]:
    row = study.bench.get(model, {})
    g = num(row.get("gmacs"))
    if g is not None:
        return g, row.get("gmacs_counter", "")
    p = study.published.get(model) or Published()
    return p.gmacs, ("published" if p.gmacs is not None else "")


def pre_share(row: dict) -> float | None:
    """Share of end-to-end time per image spent decoding and preprocessing, percent."""
    dec, pre, e2e = num(row.get("decode_ms")), num(row.get("preprocess_ms")), num(row.get("end_to_end_img_s"))
    if dec is None or pre is None or not e2e:
        return None
    return min(100.0, 100 * (dec + pre) / (1000 / e2e))


def pareto_front(study: Study) -> list[str]:
    """Models with weights that no other model beats on both top-1 and batch-1 latency, fastest first."""
    pts = []
    for m in study.real_models:
        lat = num(study.bench.get(m, {}).get("latency_ms_median"))
        if lat is not None:
            pts.append((lat, num(study.summary[m]["top1"]), m))
    front = [
        m for lat, acc, m in pts
        if not any(l2 <= lat and a2 >= acc and (l2, a2) != (lat, acc) for l2, a2, _ in pts)
    ]
    return sorted(front, key=lambda m: num(study.bench[m]["latency_ms_median"]))


def mcnemar_p(study: Study, a: str, b: str) -> tuple[float | None, dict | None]:
    for r in study.mcnemar:
        if {r["model_a"], r["model_b"]} == {a, b}:
            return num(r["p_value"]), r
    return None, None
