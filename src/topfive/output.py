"""Render predictions and model listings as an aligned table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import unicodedata

from topfive.predict import Failure, Prediction
from topfive.tables import text_table as table

PREDICTION_COLUMNS = ["source", "model", "rank", "index", "wnid", "name", "probability", "error"]
MODEL_COLUMNS = ["name", "family", "params_m", "gmacs", "acc1", "acc5", "weights_mb", "input_size", "weights"]


# Unicode's bidirectional embeddings, overrides and isolates: they reorder the text shown after them.
BIDI_CONTROLS = set(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def escape_char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    return ch.encode("unicode_escape").decode("ascii")  # \n, \r, \t, \x1b, \u2028, ...


def shown(text: str) -> str:
    """`text` for the terminal table, with what would forge or break its lines escaped: control
    characters (a line break in a file name would start a line that looks like output, an escape
    sequence would drive the terminal), line and paragraph separators, bidirectional controls, and
    lone surrogates (the bytes of a name that is not UTF-8, which a UTF-8 stdout cannot write)."""
    text = str(text)
    if text.isprintable():  # the usual case: nothing to escape
        return text
    return "".join(escape_char(ch) if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in BIDI_CONTROLS
                   else ch for ch in text)


def writable(text: str) -> str:
    """`text` with its lone surrogates escaped, which no UTF-8 stream can hold, and nothing else."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join(escape_char(ch) if unicodedata.category(ch) == "Cs" else ch for ch in text)


def _csv(rows: list[list], header: list[str]) -> str:
    """CSV quotes line breaks itself (a reader gets the name back exactly); only lone surrogates,
    which no UTF-8 stream can hold, are escaped. Python's writer quotes a field holding "\n" but
    not one holding a lone "\r" (which readers take for a line end), so such a row is quoted whole."""
    buf = io.StringIO()
    plain = csv.writer(buf, lineterminator="\n")
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    plain.writerow(header)
    for row in rows:
        row = [writable(v) if isinstance(v, str) else v for v in row]
        (quoted if any(isinstance(v, str) and "\r" in v for v in row) else plain).writerow(row)
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
            blocks.append(f"{shown(r.source)}  [{shown(r.model)}]\n  FAILED: {shown(r.reason)}\n")
            continue
        body = [[c.rank, c.index, c.wnid, c.name, f"{c.probability:.4f}"] for c in r.top]
        text = table(body, ["rank", "index", "wnid", "name", "probability"], right={0, 1, 4})
        heading = f"{shown(r.source)}  [{shown(r.model)}]\n"
        blocks.append(heading + "".join("  " + line + "\n" for line in text.splitlines()))
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
    rows = [[shown(v) if isinstance(v, str) else v for v in row] for row in rows]
    return table(rows, header, right={2, 3, 4, 5, 6, 7})
