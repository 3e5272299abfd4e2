"""Accuracy on corrupted copies of the photos (`topfive evaluate --corruptions`): ImageNet-C's
protocol (topfive.eval.corruptions) on a labelled photo set, nothing written into the set.

The route through the public API, per model: its decoder with the model's own PreprocessSpec made
uint8 RGB (`crop_spec`: the same resize and crop, no normalising) gives the square the model sees;
that square is corrupted and handed as a PIL image to `Classifier.around` the loaded runtime with
`identity_spec`, whose geometry leaves an image of exactly that size as it is, and which then
normalises as the model wants. So each model sees its own geometry, corrupted as ImageNet-C
corrupts its 224 x 224 crops, and its clean copy (kind `clean`, severity 0) is what
`Classifier.predict` gives for the photo's file (tested).

OUT/robustness.csv gets one row per (model, runtime, kind, severity, photo) as soon as it exists:
model,runtime,kind,severity,file,label,top1_index,top1_prob,hit1,hit5 (hit1/hit5 on the photo's
accepted set, 0/1). A rerun skips the rows there. OUT/.robustness-setup records the set, the photos,
the seed and the corruption parameters: a rerun with another of these refuses (ResumeError) rather
than mix rows. robustness_summary.csv and robustness.json are derived from the rows at the end
(columns: robustness_tables.py; robustness.json also carries the machine fingerprint).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from topfive.eval import metrics
from topfive.eval.corruptions import DEFAULT_SEED, CorruptionPlan, corrupt, parameters, seed_for
from topfive.eval.datasets import Dataset, Item
from topfive.eval.evaluate import load_classifier
from topfive.eval.predictions import ResumeError, RowWriter, complete_lines
from topfive.eval.robustness_tables import SUMMARY_COLUMNS, model_figures, summary_rows, tally
from topfive.eval.summaries import write_csv
from topfive.files import atomic_write
from topfive.machine import fingerprint as machine_fingerprint
from topfive.runtime.axis import pairs
from topfive.sampling import spread_evenly

COLUMNS = ["model", "runtime", "kind", "severity", "file", "label", "top1_index", "top1_prob", "hit1", "hit5"]
ROWS_FILE, SUMMARY_FILE, JSON_FILE, SETUP_FILE = ("robustness.csv", "robustness_summary.csv", "robustness.json",
                                                  ".robustness-setup")


def crop_spec(spec):
    """The model's geometry with the pixels left uint8 RGB in NCHW: the square before normalising."""
    return replace(spec, channels="RGB", dtype="uint8", layout="NCHW")


def identity_spec(spec):
    """The model's pixels with a geometry that leaves a spec.size square unchanged (a resize of the
    shorter side to its own length and a crop of all of it are skipped: transforms.geometry)."""
    return replace(spec, rule="shorter_side", resize=spec.size, fraction=None)


def choose_photos(dataset: Dataset, n: int | None) -> list[Item]:
    """`n` readable photos, label-stratified: each label the same share where it has the photos
    (labels in order, the first ones one more when n does not divide), spread evenly over its files
    in name order; all photos when n is None or not smaller. Fixed by the set: no seed needed."""
    items = sorted(dataset.readable, key=lambda i: (i.label, i.file))
    if n is None or n >= len(items):
        return items
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.label, []).append(item)
    quota = dict.fromkeys(groups, 0)
    left = max(n, 0)
    while left:
        for label, group in groups.items():
            if left and quota[label] < len(group):
                quota[label] += 1
                left -= 1
    return [item for label, group in groups.items() for item in spread_evenly(group, quota[label])]


def read_rows(path: Path) -> list[dict]:
    """robustness.csv's rows; a trailing partial line (a killed write) is cut off the file first."""
    data = complete_lines(path)
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline=""))
    header = next(reader, None)
    if header is None:
        return []
    if header != COLUMNS:
        raise ResumeError(f"{path}: not a topfive robustness file (header {header}); use another --out")
    rows = []
    for values in reader:
        if len(values) != len(COLUMNS) or values[8] not in ("0", "1") or not values[3].isdigit():
            raise ResumeError(f"{path}, line {reader.line_num}: a damaged row {values!r}; remove it or use another --out")
        rows.append(dict(zip(COLUMNS, values)))
    return rows


def setup_record(dataset: Dataset, photos: list[Item], seed: int) -> dict:
    return {"dataset": dataset.fingerprint(), "photos": [i.file for i in photos], "seed": seed,
            "parameters": parameters()}


def check_setup(out: Path, setup: dict, has_rows: bool) -> None:
    """Refuses to add rows made with another setup to rows already there; records the setup."""
    marker = out / SETUP_FILE
    if has_rows:
        try:
            recorded = json.loads(marker.read_text())
        except (OSError, ValueError):
            raise ResumeError(f"{out / ROWS_FILE} exists but {SETUP_FILE} is missing or unreadable; "
                              "use a new --out") from None
        changed = [k for k in setup if recorded.get(k) != setup[k]]
        if changed:
            raise ResumeError(f"{out / ROWS_FILE} was made with other {', '.join(changed)} (photo set, "
                              "--corruption-photos, seed or corruption parameters); use a new --out, or remove "
                              f"{ROWS_FILE} to start over")
    atomic_write(marker, json.dumps(setup) + "\n")


def _corrupted_copies(clf, item: Item, cells: list[tuple[str, int]], seed: int):
    """The PIL images of the photo's square, corrupted as each cell says; an ImageError if unreadable."""
    import torch
    from torchvision.transforms.v2.functional import to_pil_image

    from topfive.decode import make_decoder

    batch, errors = make_decoder("pillow", crop_spec(clf.spec), draft=clf.draft)([item.path])
    if errors[0] is not None:
        return errors[0]
    square = batch[0]
    # One thread: on images this small torch's threads only wait on each other, and on a busy 2-core
    # machine 15 copies of a 224 square took 2.4 s with 2 threads against 0.09 s with one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [to_pil_image(corrupt(square, kind, severity, seed_for(seed, item.file, kind, severity)))
                for kind, severity in cells]
    finally:
        torch.set_num_threads(threads)


def _run_model(name, runtime, photos, cells, done, writer, failures, options, log) -> dict:
    """Rows for every (photo, cell) not yet done of one model on one runtime; its status."""
    from topfive.models import resolve
    from topfive.predict import Classifier, Failure

    try:
        model, label = resolve(name).info.name, runtime
        todo = [(i, [c for c in cells if (i.file, *c) not in done.get((model, label), set())]) for i in photos]
        if runtime == "auto" or any(t for _, t in todo):
            clf = load_classifier(name, options["device"], options["batch_size"], runtime)
            label = getattr(clf.runtime, "name", runtime)
            todo = [(i, [c for c in cells if (i.file, *c) not in done.get((model, label), set())]) for i in photos]
    except Exception as e:  # unknown model, weights unavailable, missing runtime: as evaluate
        reason = str(e).strip() or type(e).__name__
        log(f"{name} ({runtime}): not run on corrupted photos: {reason}")
        return {"name": name, "runtime": runtime, "status": "unavailable", "reason": reason}
    todo = [(i, t) for i, t in todo if t]
    if todo:
        squares = Classifier.around(clf.runtime, clf.name, identity_spec(clf.spec), entry=clf.entry,
                                    batch_size=options["batch_size"])
    for item, item_cells in todo:
        images = _corrupted_copies(clf, item, item_cells, options["seed"])
        if not isinstance(images, list):
            failures.setdefault(item.file, (type(images).__name__, images.reason))
            continue
        lines = []
        for (kind, severity), result in zip(item_cells, squares.predict(images, errors="collect")):
            if isinstance(result, Failure):
                failures.setdefault(item.file, (result.error, result.reason))
                continue
            top = [c.index for c in result.top]
            lines.append([model, label, kind, severity, item.file, item.label, top[0], f"{result.top[0].probability:.6f}",
                          int(metrics.topk_hit(top, item.accepted, 1)), int(metrics.topk_hit(top, item.accepted, 5))])
            done.setdefault((model, label), set()).add((item.file, kind, severity))
        writer.write(*lines)
    n_new = sum(len(t) for _, t in todo)
    log(f"{model} ({label}): {len(photos) * len(cells) - n_new} corrupted copies from an earlier run, {n_new} now")
    return {"name": model, "runtime": label, "status": "evaluated", "reason": ""}


def robustness(
    dataset: Dataset,
    models: list[str],
    out: str | os.PathLike,
    plan: CorruptionPlan,
    photos: int | None = None,
    baseline: str | None = None,
    seed: int = DEFAULT_SEED,
    runtimes: list[str] | tuple[str, ...] = ("auto",),
    device: str = "cpu",
    batch_size: int = 16,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Score each of `models` on each of `runtimes` on the corrupted copies of `photos` photos of
    `dataset` (all when None); write robustness.csv, robustness_summary.csv and robustness.json into
    `out`, return robustness.json's data. `baseline`: the model the corruption errors are relative
    to (default the first of `models`)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = choose_photos(dataset, photos)
    rows = read_rows(out / ROWS_FILE)
    check_setup(out, setup_record(dataset, chosen, seed), bool(rows))
    done: dict[tuple[str, str], set] = {}
    for r in rows:
        done.setdefault((r["model"], r["runtime"]), set()).add((r["file"], r["kind"], int(r["severity"])))
    cells, failures, statuses = plan.cells(), {}, []
    writer = RowWriter(out / ROWS_FILE, COLUMNS)
    try:
        options = {"device": device, "batch_size": batch_size, "seed": seed}
        for name, runtime in pairs(models, runtimes):
            status = _run_model(name, runtime, chosen, cells, done, writer, failures, options, log)
            if (status["name"], status["runtime"]) not in {(s["name"], s["runtime"]) for s in statuses}:
                statuses.append(status)
    finally:
        writer.close()
    return write_results(out, dataset, chosen, plan, statuses, baseline, seed, failures)


def _baseline_key(statuses: list[dict], baseline: str | None) -> tuple[str, str] | None:
    """The (model, runtime) the corruption errors are relative to: the first evaluated row of the
    model named (its resolved name or the name as given), else of the first model."""
    from topfive.models import resolve
    from topfive.runtime.axis import split_pin

    evaluated = [s for s in statuses if s["status"] == "evaluated"]
    if baseline is None:
        return (evaluated[0]["name"], evaluated[0]["runtime"]) if evaluated and statuses[0] in evaluated else None
    name, pin = split_pin(baseline)
    try:
        name = resolve(name).info.name
    except Exception:  # a name nothing resolves to: it matches no row
        pass
    return next(((s["name"], s["runtime"]) for s in evaluated if s["name"] == name and pin in (None, s["runtime"])), None)


def write_results(out: Path, dataset: Dataset, photos: list[Item], plan: CorruptionPlan, statuses: list[dict],
                  baseline: str | None, seed: int, failures: dict) -> dict:
    rows = read_rows(out / ROWS_FILE)
    files = {i.file for i in photos}
    cells = plan.cells()
    scores = {(s["name"], s["runtime"]): tally(rows, (s["name"], s["runtime"]), cells, files)
              for s in statuses if s["status"] == "evaluated"}
    base = _baseline_key(statuses, baseline)
    table, models = [], []
    for s in statuses:
        key = (s["name"], s["runtime"])
        entry = dict(s)
        if key in scores:
            figures = model_figures(scores[key], scores.get(base))
            table += summary_rows(key, scores[key], figures)
            entry.update(figures)
        models.append(entry)
    write_csv(out / SUMMARY_FILE, SUMMARY_COLUMNS, table)
    report = {
        "dataset": {"path": dataset.path, "n_images": len(dataset.items), "n_photos": len(photos),
                    "labels": dict(sorted(Counter(i.label for i in photos).items()))},
        "corruptions": dict(plan.kinds), "seed": seed, "parameters": parameters(),
        "baseline": {"asked": baseline, "model": base[0] if base else None, "runtime": base[1] if base else None},
        "models": models,
        "failures": [{"file": f, "error": e, "reason": r} for f, (e, r) in sorted(failures.items())],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": machine_fingerprint(),
    }
    atomic_write(out / JSON_FILE, json.dumps(report, indent=2) + "\n", fsync=True)
    return report
