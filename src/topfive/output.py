"""Render predictions and model listings as an aligned table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json

from topfive.predict import Failure, Prediction
from topfive.tables import text_table as table

PREDICTION_COLUMNS = ["source", "model", "rank", "index", "wnid", "name", "probability", "error"]
MODEL_COLUMNS = ["name", "family", "params_m", "gmacs", "acc1", "acc5", "weights_mb", "input_size", "weights"]


def _csv(rows: list[list], header: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def render_predictions(results: list[Prediction | Failure], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r.to_dict() for r in results], indent=2) + "\n"
    rows = []
    for r in results:
        if isinstance(r, Failure):
            rows.append([r.source, r.model, "", "", "", "", "", f"{r.error}: {r.reason}"])
        else:
            rows += [[r.source, r.model, c.rank, c.index, c.wnid, c.name, f"{c.probability:.6f}", ""] for c in r.top]
    if fmt == "csv":
        return _csv(rows, PREDICTION_COLUMNS)
    blocks = []
    for r in results:
        if isinstance(r, Failure):
            blocks.append(f"{r.source}  [{r.model}]\n  FAILED: {r.reason}\n")
            continue
        body = [[c.rank, c.index, c.wnid, c.name, f"{c.probability:.4f}"] for c in r.top]
        text = table(body, ["rank", "index", "wnid", "name", "probability"], right={0, 1, 4})
        blocks.append(f"{r.source}  [{r.model}]\n" + "".join("  " + line + "\n" for line in text.splitlines()))
    return "\n".join(blocks)


def model_row(entry) -> list:
    info = entry.info
    fmt = lambda v, spec: "" if v is None else format(v, spec)  # noqa: E731
    return [
        info.name,
        info.family,
        fmt(info.params / 1e6 if info.params else None, ".2f"),
        fmt(info.gmacs, ".3f"),
        fmt(info.acc1, ".2f"),
        fmt(info.acc5, ".2f"),
        fmt(info.weights_mb, ".1f"),
        info.input_size,
        entry.weights_status(),
    ]


def render_models(entries, fmt: str) -> str:
    rows = [model_row(e) for e in entries]
    if fmt == "json":
        return json.dumps([dict(zip(MODEL_COLUMNS, r)) for r in rows], indent=2) + "\n"
    if fmt == "csv":
        return _csv(rows, MODEL_COLUMNS)
    header = ["model", "family", "params (M)", "GMACs", "acc@1", "acc@5", "weights MB", "input", "weights"]
    return table(rows, header, right={2, 3, 4, 5, 6, 7})
