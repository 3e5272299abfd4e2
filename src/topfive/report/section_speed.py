"""The sections on what running the models costs: Speed, and Memory, size and compute."""

from __future__ import annotations

from topfive.report.findings import wide
from topfive.report.format import fmt, shown_text
from topfive.report.results import (
    Published,
    Study,
    display,
    gmacs,
    memory_growth,
    num,
    params_m,
    pre_share,
    runtime_name,
    weights_mib,
)
from topfive.tables import markdown_table


def runtime_of(study: Study, model: str) -> str:
    """The runtime bench measured, else the one the model entry names."""
    measured = runtime_name(study.bench.get(model, {}).get("runtime"))
    return measured or (study.published.get(model) or Published()).runtime or "—"


def section_speed(study: Study, chart: str | None) -> list[str]:
    lines = ["## Speed", ""]
    if not study.bench:
        return lines + ["Not measured (no bench results).", ""]
    sizes = study.batch_sizes()
    rows = []
    for m, r in study.bench.items():
        lo, hi = num(r.get("latency_ms_ci_low")), num(r.get("latency_ms_ci_high"))
        spread = num(r.get("spread_pct"))
        rows.append([
            display(m), r.get("weights", ""), runtime_of(study, m),
            fmt(num(r.get("latency_ms_median")), 2), fmt(num(r.get("latency_ms_p90")), 2),
            f"{fmt(lo, 2)}–{fmt(hi, 2)}" if lo is not None else "—", r.get("latency_runs", ""),
            *[fmt(study.throughput(m, bs)) for bs in sizes],
            fmt(num(r.get("decode_ms")), 2), fmt(num(r.get("preprocess_ms")), 2),
            fmt(num(r.get("end_to_end_img_s"))), fmt(pre_share(r), 0, " %"),
            (fmt(spread, 1, " %") + (" (wide)" if wide(r) else "")) if spread is not None else "—",
        ])
    env = study.environment
    lines += [
        f"On {env.get('device', '?')} ({env.get('cpu', '?')}), {env.get('threads', '?')} threads, "
        f"{env.get('dtype', '?')}; each model in its own fresh process, on the runtime named in the table. "
        "Latency: batch 1 after warm-up; throughput: model only; end to end: decode + preprocess + model from "
        "the photo files.", "",
    ]
    lines += markdown_table(["model", "weights", "runtime", "latency median (ms)", "p90 (ms)", "median 95 % CI (ms)",
                             "runs", *[f"img/s bs {bs}" for bs in sizes], "decode (ms)", "preprocess (ms)",
                             "end to end (img/s)", "decode+preprocess share", "spread over repeats"],
                            rows, right_from=3)
    notes = [f"- {display(m)}: {r['spread_note']}" for m, r in study.bench.items() if r.get("spread_note")]
    errors = [f"- {display(m)}: {shown_text(r['error'])}" for m, r in study.bench.items() if r.get("error")]
    lines += notes + errors + ([""] if notes or errors else [])
    if chart:
        lines += [f"![Throughput per model]({chart})", ""]
    return lines


def section_memory(study: Study, chart: str | None) -> list[str]:
    lines = ["## Memory, size and compute", ""]
    if not study.bench:
        return lines + ["Not measured (no bench results).", ""]
    cuda = any(num(r.get("cuda_peak_mib")) is not None for r in study.bench.values())
    rows = []
    for m, r in study.bench.items():
        load, run, over_loaded = memory_growth(r)
        g, counter = gmacs(study, m)
        row = [display(m), fmt(params_m(study, m), 2), fmt(g, 3), counter or "—", fmt(weights_mib(study, m)),
               fmt(load), fmt(run), fmt(over_loaded)]
        if cuda:
            row.append(fmt(num(r.get("cuda_peak_mib"))))
        rows.append(row)
    lines += [
        "Weights: bytes of the model's parameters and buffers as loaded (empty where the runtime is not torch). Peak RSS growth: in a fresh process per model, the peak resident "
        "memory while loading, and while running (every batch size, so the largest batch dominates), minus "
        "the process's baseline after imports; \"run over loaded\": the running peak minus the resident memory "
        "once the model was loaded (what inference adds)."
        + (" CUDA peak: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`." if cuda else ""), "",
    ]
    lines += markdown_table(["model", "params (M)", "GMACs", "GMACs counter", "weights (MiB)", "RSS growth load (MiB)",
                             "RSS growth run (MiB)", "run over loaded (MiB)", *(["CUDA peak (MiB)"] if cuda else [])],
                            rows, left=(3,))
    if chart:
        lines += [f"![Memory per model]({chart})", ""]
    return lines
