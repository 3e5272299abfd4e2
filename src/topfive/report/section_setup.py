"""The Set-up section: the machine, the photo set (labels, accepted classes, sources, licences),
unreadable photos and models that could not be evaluated."""

from __future__ import annotations

import re

from topfive.machine import differences
from topfive.report.format import shown_path, shown_text
from topfive.report.numerics import isa_text
from topfive.report.results import Study, display
from topfive.tables import markdown_table

# what bench.json's environment says, for results written before the machine fingerprint
ENVIRONMENT = [("cpu", "CPU"), ("threads", "threads"), ("device", "device"), ("dtype", "dtype"),
               ("memory_format", "memory format"), ("torch", "torch"), ("torchvision", "torchvision"),
               ("python", "Python"), ("platform", "platform")]
BENCH_SETTINGS = [("threads", "threads"), ("device", "device"), ("dtype", "dtype"), ("memory_format", "memory format")]
FAILURES_SHOWN = 20


def ranges(indices: list[int]) -> str:
    """`151–268, 300` for a list of indices."""
    idx, out, i = sorted(indices), [], 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        out.append(str(idx[i]) if i == j else f"{idx[i]}–{idx[j]}")
        i = j + 1
    return ", ".join(out)


def label_mapping(indices: list[int], names: list[str], limit: int = 4) -> str:
    shown = ", ".join(f"{names[i]} ({i})" for i in sorted(indices)[:limit])
    if len(indices) <= limit:
        return shown
    return f"{len(indices)} classes, indices {ranges(indices)}: {shown}, …"


def fact(key, value) -> str:
    """One source or licence entry of evaluate.json, whatever its shape: a count, a text, a record."""
    if value in ("", None):
        return str(key)
    if isinstance(value, dict) and "n" in value:  # evaluate's {repo@commit: {repo, commit, dataset, n}}
        commit = str(value.get("commit", ""))
        commit = commit[:7] if re.fullmatch(r"[0-9a-f]{7,40}", commit) else ""
        where = (value.get("repo") or "") + (f"@{commit}" if commit else "")
        name = value.get("dataset") or key
        return f"{name} ({value['n']}" + (f"; {where}" if where and where not in str(name) else "") + ")"
    if isinstance(value, dict):
        return f"{key} (" + ", ".join(f"{k}: {v}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return f"{key} ({len(value)})"
    if isinstance(value, (int, float)):
        return f"{key} ({value})"
    return f"{key}: {shown_path(value) if key == 'local' else value}"  # a local set: its folder


def _photo_set(study: Study, names: list[str]) -> list[str]:
    ds = study.dataset
    if not ds:
        return ["Accuracy was not measured (no evaluate results).", ""]
    failed = ds.get("n_failed") or 0
    lines = [
        f"`{shown_path(ds.get('path', '?'))}`: {ds.get('n_images', '?')} photos read"
        + (f", {failed} unreadable (listed below, excluded from n)." if failed else ", none unreadable."),
        "",
    ]
    sets = ds.get("label_sets", {})
    rows = [[label, count, label_mapping(sets[label], names) if sets.get(label) else "—"]
            for label, count in ds.get("labels", {}).items()]
    lines += ["Photos per label and the ImageNet-1k classes each label accepts (a prediction is right at top-k "
              "if any of its k classes is in the set):", ""]
    lines += markdown_table(["label", "n", "accepted ImageNet-1k classes"], rows, left=(2,))
    for key, title in (("sources", "Sources"), ("licences", "Licences")):
        value = ds.get(key)
        if value:
            items = value.items() if isinstance(value, dict) else ((v, "") for v in value)
            lines += [f"{title}: " + "; ".join(fact(k, v) for k, v in items) + ".", ""]
    return lines


def machine_rows(fp: dict) -> list[tuple[str, str]]:
    """A machine fingerprint (topfive.machine.fingerprint) as (label, value) rows."""
    memory = fp.get("memory_bytes")
    packages = fp.get("packages") or {}
    installed = ", ".join(f"{name} {v}" for name, v in packages.items() if v)
    missing = [name for name, v in packages.items() if not v]
    return [
        ("CPU", fp.get("cpu") or "—"),
        ("ISA features", isa_text(fp)),
        ("cores", f"{fp.get('logical_cpus', '?')} logical CPUs, {fp.get('usable_cpus', '?')} usable"),
        ("memory", f"{memory / 2**30:.1f} GiB" if memory else "—"),
        ("OS", f"{fp.get('os') or '—'} ({fp.get('platform') or '?'})"),
        ("Python", fp.get("python") or "—"),
        ("runtime versions", installed + (f"; not installed: {', '.join(missing)}" if missing else "")),
        ("GPU", fp.get("gpu") or "none"),
    ]


def _machine(study: Study) -> list[str]:
    """The machine table: one column per machine the results were measured on, then bench's settings."""
    env, fps = study.environment, study.fingerprints
    if not fps:
        rows = [[label, env.get(key, "—")] for key, label in ENVIRONMENT] if env else []
        note = ("No machine fingerprint was recorded with these results (an older topfive wrote them): the "
                "CPU's ISA features behind them, and so whether int8 results would hold on another CPU, are unknown.")
        return (markdown_table(["", ""], rows, right_from=99) if rows else []) + [note, ""]
    # threads are a setting of each stage (shown below), not a difference of machine
    changed = (differences(fps["evaluate"], dict(fps["bench"], threads=fps["evaluate"].get("threads")))
               if len(fps) == 2 else [])
    same = not changed
    stages = [next(iter(fps))] if same else list(fps)
    columns = [dict(machine_rows(fps[s])) for s in stages]
    rows = [[label, *(c[label] for c in columns)] for label, _ in machine_rows(fps[stages[0]])]
    if env:
        rows += [[label, *(env.get(key, "—") if s == "bench" or same else "—" for s in stages)]
                 for key, label in BENCH_SETTINGS]
    header = ["", *([""] if same else [f"{s} ran on" for s in stages])]
    lines = markdown_table(header, rows, right_from=99)
    if changed:
        lines += ["Evaluate and bench ran on different machines: " + "; ".join(changed) + ".", ""]
    return lines


def section_setup(study: Study, names: list[str]) -> list[str]:
    """names: the ImageNet-1k class names, by index."""
    lines = ["## Set-up", "", *_machine(study)]
    if not study.environment:
        lines += ["Speed and memory were not measured (no bench results).", ""]
    lines += ["### Photo set", "", *_photo_set(study, names)]
    if study.failures:
        lines += [f"Unreadable photos ({len(study.failures)}):", ""]
        lines += [f"- `{f.get('file')}`: {f.get('error', '')} — {shown_text(f.get('reason', ''))}"
                  for f in study.failures[:FAILURES_SHOWN]]
        if len(study.failures) > FAILURES_SHOWN:
            lines.append(f"- … and {len(study.failures) - FAILURES_SHOWN} more (see failures.csv)")
        lines.append("")
    status = [s for s in study.model_status if s.get("reason")]
    if status:
        lines += ["Models that could not be evaluated:", ""]
        lines += [f"- {display(s['name'])}" + (f" on {s['runtime']}" if s.get("runtime") else "")
                  + f": {s.get('status', '')} — {shown_text(s['reason'])}" for s in status]
        lines.append("")
    return lines
