"""The report's rows: every row of evaluate's and bench's files is a (model, runtime), and this
module says under which name the report keys it and which rows the architecture tables compare.

A row's key is its model's name when the model appears on one runtime only, so a study of
architectures reads as before (and so do files from before the runtime column, whose rows name
none); it is `MODEL@RUNTIME` when the model appears on several, and `display` then writes the
runtime beside the name. The tables that compare architectures take one row per model: the one on
the runtime most models share, so that architectures are compared on the same runtime where they
can be; the Runtimes section shows a model across all of its runtimes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

PIN = "@"  # as on the command line (topfive.runtime.axis): `efficientnet_lite0@int8`
_RUNTIME_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")  # a card path's `name@x.json` is no runtime


def split_key(key: str) -> tuple[str, str]:
    """A row key -> (model, runtime); runtime "" for a model on one runtime only."""
    head, sep, tail = key.rpartition(PIN)
    if sep and head and _RUNTIME_WORD.fullmatch(tail):
        return head, tail
    return key, ""


@dataclass
class RowSet:
    """The rows under their keys. `summary`, `bench` and `models` are the compared rows (one per
    model); `all_summary` and `all_bench` every row; `groups` the keys of each model that appears
    on several runtimes, in the order the files list them."""

    models: list[str] = field(default_factory=list)
    summary: dict[str, dict] = field(default_factory=dict)
    bench: dict[str, dict] = field(default_factory=dict)
    all_summary: dict[str, dict] = field(default_factory=dict)
    all_bench: dict[str, dict] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)


def join_bench(json_rows: list[dict], csv_rows: list[dict]) -> list[dict]:
    """bench.csv's rows (the stable contract) with bench.json's extras (the per-batch-size dict,
    the canonical name), matched by (model, runtime); a CSV from before the runtime column matches
    by model. JSON rows without a CSV row are kept."""
    json_rows = list(json_rows)
    rows = []
    for r in csv_rows:
        match = next((j for j in json_rows if j.get("model") == r.get("model")
                      and (not r.get("runtime") or j.get("runtime") == r.get("runtime"))), None)
        if match is not None:
            json_rows.remove(match)
        rows.append({**r, **(match or {})})
    return rows + json_rows


def compared(keys: list[str], runtimes: dict[str, str] | None = None) -> list[str]:
    """One key per model, in the order of the models: its row on the runtime that most models
    have a row on; between equals a full-precision one (an int8 or bf16 row is no fair stand-in
    for an architecture), then the first listed. runtimes: each key's runtime, where the key does
    not say it (a model on one runtime)."""
    by_model: dict[str, list[tuple[str, str]]] = {}
    for key in keys:
        model, runtime = split_key(key)
        by_model.setdefault(model, []).append((key, runtime or (runtimes or {}).get(key, "")))
    shared = Counter(runtime for rows in by_model.values() for runtime in {r for _, r in rows})
    return [max(rows, key=lambda row: (shared[row[1]], not reduced(row[1])))[0] for rows in by_model.values()]


def reduced(runtime: str) -> bool:
    """A runtime that computes in less than fp32 (int8, openvino-bf16, ...)."""
    return runtime == "int8" or "bf16" in runtime


def unresolved(row: dict) -> bool:
    """A row of a model that failed on auto: auto never resolved, so the row is the model's on
    whichever runtime its other rows name (an unavailable model's accuracy row beside its
    architecture's speed row)."""
    failed = bool(row.get("error")) or str(row.get("weights", "")).startswith("not available")
    return row.get("runtime") == "auto" and failed


def key_rows(summary_rows: list[dict], bench_rows: list[dict], tables: list[list[dict]],
             mcnemar_rows: list[dict]) -> RowSet:
    """Keys every row; rewrites the `model` fields of `tables` (per label, calibration, severity,
    predictions) and the model_a/model_b of `mcnemar_rows` to the keys, in place."""
    seen: dict[str, set[str]] = {}
    pairs = [(r["model"], r.get("runtime") or "", unresolved(r)) for r in summary_rows]
    pairs += [(r.get("canonical") or r["model"], r.get("runtime") or "", unresolved(r)) for r in bench_rows]
    for model, runtime, open_ in pairs:
        seen.setdefault(model, set()).update(set() if open_ else {runtime} - {""})
    several = {m for m, runtimes in seen.items() if len(runtimes) > 1}

    def key(model: str, runtime: str | None) -> str:
        return f"{model}{PIN}{runtime}" if model in several and runtime else model

    out = RowSet()
    runtimes: dict[str, str] = {}
    for model, runtime, open_ in pairs:
        if runtime and not open_:
            runtimes.setdefault(key(model, runtime), runtime)
    out.all_summary = {key(r["model"], r.get("runtime")): r for r in summary_rows}
    # bench keeps the names as given ("alexnet"), evaluate writes canonical ones ("alexnet:IMAGENET1K_V1");
    # bench.json's "canonical" joins the two
    out.all_bench = {key(r.get("canonical") or r["model"], r.get("runtime")): r for r in bench_rows}
    for table in tables:
        for r in table:
            r["model"] = key(r["model"], r.get("runtime"))
    for r in mcnemar_rows:
        r["model_a"], r["model_b"] = key(r["model_a"], r.get("runtime_a")), key(r["model_b"], r.get("runtime_b"))
    keys = list(out.all_summary) + [k for k in out.all_bench if k not in out.all_summary]
    out.models = compared(keys, runtimes)
    out.summary = {k: out.all_summary[k] for k in out.models if k in out.all_summary}
    out.bench = {k: out.all_bench[k] for k in out.models if k in out.all_bench}
    for k in keys:
        model, runtime = split_key(k)
        if runtime:
            out.groups.setdefault(model, []).append(k)
    return out
