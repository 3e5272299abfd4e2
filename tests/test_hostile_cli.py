"""`topfive classify` over the hostile corpus (tests/hostile_corpus.py), the whole corpus in one call:
every bad file is its typed per-file error, every good file is classified, the exit code is 1, the JSON
and CSV parse (no bare NaN), stderr holds no traceback, and the run fits an address-space limit."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_corpus import (
    FORGED,
    IGNORED,
    NOT_EMPTY,
    accepts,
    make_corpus,
    needs_naming,
    real_photos,
)

import topfive

SRC = str(Path(topfive.__file__).resolve().parents[1])
MODEL = "efficientnet_lite0"

# The address-space limit of the CLI process. torch and onnxruntime map far more virtual memory than
# they touch: `classify` on the corpus's good files peaks at ~4.6 GB of address space (VmPeak, ~1.3 GB
# resident) on the CI machine with --threads 2, an ONNX export into an empty cache included. 8 GiB
# leaves ~3.5 GB for what an input may legitimately cost, and is far below what the extreme aspect
# ratios of the corpus would ask for unbounded (a 1 x 60000 PNG: ~15 GB), so a decoder that lets the
# input size the work gets a MemoryError here instead of swapping the machine. --threads 2 keeps the
# figure the same on machines with more cores (each thread adds stacks and a malloc arena).
ADDRESS_SPACE = 8 << 30


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def classify(*args, timeout=600) -> subprocess.CompletedProcess:
    """`python -m topfive classify ARGS` under the address-space limit; stdout and stderr as str.

    stdout is written as a UTF-8 terminal would take it (strict: where the locale is C.UTF-8 Python
    would quietly write undecodable names through); the bytes are read back with surrogateescape so
    that a file name that is not UTF-8 compares equal to its path."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TOPFIVE_OFFLINE="1", PYTHONIOENCODING="utf-8:strict")
    out = subprocess.run([sys.executable, "-m", "topfive", "classify", *args, "-m", MODEL, "--threads", "2"],
                         check=False, capture_output=True, env=env, timeout=timeout, preexec_fn=limit_memory)
    return subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode("utf-8", "surrogateescape"),
                                       out.stderr.decode("utf-8", "surrogateescape"))


def no_constant(name):
    raise ValueError(f"invalid JSON constant {name}")


def key(source: str) -> str:
    return os.path.normpath(source)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    good, bad = make_corpus(folder)
    # The folder itself (discovery runs over every odd entry in it) plus what a scan does not pick up.
    args = [str(folder)] + [str(p) for p in [*good, *bad] if needs_naming(p, folder)]
    return folder, good, bad, args


def check_verdicts(entries: dict[str, list], good, bad, folder, problems: list[str] | None = None):
    """entries: source -> [("top", [probabilities]) or ("error", class name)]; fails listing every
    wrong verdict (and `problems` found before)."""
    problems = list(problems or [])
    for path in good:
        got = entries.pop(key(str(path)), [])
        if not got or any(kind != "top" for kind, _ in got):
            problems.append(f"{path.name!r}: expected a classification, got {got or 'nothing'}")
    for path, expected in bad.items():
        got = entries.pop(key(str(path)), [])
        if not got or any(kind != "error" or not accepts(expected, value) for kind, value in got):
            problems.append(f"{path.name!r}: expected {expected}, got {got or 'nothing'}")
    for name in IGNORED:
        if entries.pop(key(str(folder / name)), None):
            problems.append(f"{name!r} is a directory: a folder scan should skip it")
    problems += [f"unexpected entry {source!r}: {got}" for source, got in entries.items()]
    assert not problems, "\n".join(problems)


def check_run(result):
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    assert result.returncode == 1, result.stderr[-4000:]


def check_top(probabilities: list[float]) -> bool:
    return (len(probabilities) == 5 and all(math.isfinite(p) and 0 <= p <= 1 for p in probabilities)
            and probabilities == sorted(probabilities, reverse=True))


@pytest.mark.slow
def test_json_over_the_hostile_corpus(corpus):
    folder, good, bad, args = corpus
    result = classify(*args, "--format", "json")
    check_run(result)
    entries: dict[str, list] = {}
    problems: list[str] = []
    for item in json.loads(result.stdout, parse_constant=no_constant):
        assert item["model"] == MODEL
        if "error" in item:
            assert item["reason"], item
            if os.path.basename(item["source"]) in NOT_EMPTY and "0 bytes" in item["reason"]:
                problems.append(f"{item['source']!r} is not a regular file, not empty: {item['reason']!r}")
            verdict = ("error", item["error"])
        else:
            probabilities = [c["probability"] for c in item["top"]]
            assert check_top(probabilities), item
            verdict = ("top", probabilities)
        entries.setdefault(key(item["source"]), []).append(verdict)
    check_verdicts(entries, good, bad, folder, problems)


@pytest.mark.slow
def test_csv_over_the_hostile_corpus_with_the_tensor_decoder(corpus):
    folder, good, bad, args = corpus
    result = classify(*args, "--format", "csv", "--decode", "tensor")
    check_run(result)
    header, *records = list(csv.reader(io.StringIO(result.stdout, newline="")))
    torn = [r for r in records if len(r) != len(header)]
    assert not torn, f"rows that are not {len(header)} fields (a file name broke out of its field): {torn[:5]}"
    rows = [dict(zip(header, r)) for r in records]
    per_source: dict[str, list[dict]] = {}
    for row in rows:
        assert row["model"] == MODEL
        per_source.setdefault(key(row["source"]), []).append(row)
    entries: dict[str, list] = {}
    for source, items in per_source.items():
        for row in items:
            if row["error"]:
                cls, _, reason = row["error"].partition(": ")
                assert reason and not row["probability"], row
                entries.setdefault(source, []).append(("error", cls))
        probabilities = [float(row["probability"]) for row in items if not row["error"]]
        if probabilities:
            assert check_top(probabilities), (source, probabilities)
            entries.setdefault(source, []).append(("top", probabilities))
    check_verdicts(entries, good, bad, folder)


@pytest.mark.slow
def test_table_names_cannot_forge_lines(tmp_path):
    """A line break (\\n or \\r) in a file name is shown escaped: it starts no line of the table."""
    photo = real_photos(1)[0].read_bytes()
    names = [f"ok\n{FORGED}.jpg", f"ok\r{FORGED}.jpg", f"broken\n{FORGED}.jpg"]
    for name in names:
        (tmp_path / name).write_bytes(photo if name.startswith("ok") else b"not an image")
    result = classify(*(str(tmp_path / n) for n in names))
    check_run(result)
    assert result.stdout.count("probability") == 2, result.stdout  # both photos classified
    forged = [line for line in result.stdout.splitlines() if line.lstrip().startswith(FORGED)]
    assert not forged, result.stdout
    forged_errors = [line for line in result.stderr.splitlines() if line.lstrip().startswith(FORGED)]
    assert not forged_errors, result.stderr  # the error line of the broken file is escaped too


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8(tmp_path):
    """A name the file system holds as bytes (Latin-1 here) is read by both decoders and printed without
    an encoding error (JSON escapes it; the table and CSV must write it some way a UTF-8 stdout takes)."""
    path = tmp_path / os.fsdecode(b"latin1_\xe9t\xe9.jpg")
    path.write_bytes(real_photos(1)[0].read_bytes())
    for fmt, decode in (("table", "tensor"), ("csv", "pillow")):
        result = classify(str(path), "--format", fmt, "--decode", decode)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (fmt, decode, result.stderr[-3000:])
        assert "latin1_" in result.stdout, (fmt, result.stdout)
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(result.stdout)))
            assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"] and not any(r["error"] for r in rows)
        else:
            assert sum(line.split()[:1] == ["1"] for line in result.stdout.splitlines()) == 1, result.stdout
