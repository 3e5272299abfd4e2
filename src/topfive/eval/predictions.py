"""predictions.csv, the one file evaluate appends to (its columns: topfive.eval.evaluate): reading it
back (a killed write cut off, a damaged row refused before any model runs), rewriting a file of an
older topfive with the runtime column, and appending whole rows. The cut and the appending serve
every resumable CSV of evaluate (robustness.csv too)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from topfive.files import atomic_write

LEGACY_COLUMNS = ["model", "file", "label", "n_accepted", "top5_indices", "top5_names", "top5_probs", "hit1", "hit5"]
PREDICTION_COLUMNS = [*LEGACY_COLUMNS, "runtime"]
LEGACY_RUNTIME = "auto"  # the runtime of the rows of a file written before the runtime column


class ResumeError(RuntimeError):
    """`out` holds results that cannot be continued (another set, another file format)."""


def csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def complete_lines(path: Path) -> bytes:
    """The file's bytes up to its last newline; a trailing partial line (a killed write) is cut off
    the file first, so that rows appended next start on a line of their own."""
    if not path.is_file():
        return b""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        data = data[:cut]
    return data


def read_predictions(path: Path) -> list[dict]:
    """Rows of predictions.csv; a trailing partial line (a killed write) is cut off the file first."""
    data = complete_lines(path)
    if not data:
        return []
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        header = next(reader, None)
        if header not in (PREDICTION_COLUMNS, LEGACY_COLUMNS):
            raise ResumeError(f"{path}: not a topfive predictions file (header {header}); use another --out")
        rows = []
        for values in reader:
            if header == LEGACY_COLUMNS and len(values) == len(LEGACY_COLUMNS):
                values = [*values, LEGACY_RUNTIME]
            problem = damage(values)
            if problem:
                raise ResumeError(f"{path}, line {reader.line_num}: a damaged row ({problem}): {values!r}; "
                                  "remove it or use another --out")
            rows.append(dict(zip(PREDICTION_COLUMNS, values)))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ResumeError(f"{path}: not a readable predictions file ({e}); use another --out") from None
    return rows


def damage(values: list[str]) -> str:
    """What makes a complete row unusable ('' if nothing): every later table parses these fields,
    so a bad one is caught here, before any model runs, not in the summaries after them."""
    if len(values) != len(PREDICTION_COLUMNS):
        return f"{len(values)} fields, not {len(PREDICTION_COLUMNS)}"
    row = dict(zip(PREDICTION_COLUMNS, values))
    if not row["model"] or not row["file"] or not row["runtime"]:
        return "no model, file or runtime"
    if row["hit1"] not in ("0", "1") or row["hit5"] not in ("0", "1"):
        return "hit1 and hit5 must be 0 or 1"
    try:
        indices = [int(i) for i in row["top5_indices"].split()]
        probs = [float(p) for p in row["top5_probs"].split()]
        int(row["n_accepted"])
    except ValueError as e:
        return f"not a number: {e}"
    if not indices or len(indices) != len(probs) or not all(0 <= i < 1000 for i in indices):
        return "top5_indices must be indices 0..999, one per probability in top5_probs"
    if not all(0.0 <= p <= 1.0 for p in probs):  # also refuses nan
        return "top5_probs must be probabilities 0..1"
    return ""


class RowWriter:
    """Appends whole rows to a CSV (its header first when the file is new), each write flushed and
    fsynced before the next, so that a killed run loses at most the row being written."""

    def __init__(self, path: Path, columns: list[str]):
        new = not path.is_file() or path.stat().st_size == 0
        self.f = open(path, "a", newline="", encoding="utf-8")
        if new:
            self.write(columns)

    def write(self, *rows: list) -> None:
        self.f.write("".join(csv_line(values) for values in rows))  # rows given together: one write
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


class PredictionWriter(RowWriter):
    """Appends whole rows to predictions.csv."""

    def __init__(self, path: Path):
        super().__init__(path, PREDICTION_COLUMNS)


def migrate(path: Path, rows: list[dict]) -> None:
    """Rewrites a predictions.csv of an older topfive with the runtime column (read_predictions has
    marked its rows), so that the rows appended now have the same columns."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8", newline="") as f:
        if next(csv.reader([f.readline()]), None) != LEGACY_COLUMNS:
            return
    lines = [PREDICTION_COLUMNS] + [[r[c] for c in PREDICTION_COLUMNS] for r in rows]
    atomic_write(path, "".join(csv_line(values) for values in lines), fsync=True)
