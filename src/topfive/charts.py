"""PNG charts for the study report, drawn with matplotlib's object API on the Agg canvas (no pyplot
global state, no display needed). Each function takes plain data and a path and writes one file."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

DPI = 120
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]


def colours(names: list[str]) -> dict[str, str]:
    """One colour per model, the same in every chart."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


def accuracy_vs_latency(points: list[dict], path: Path, colour: dict[str, str], n_images: int | None) -> Path:
    """points: {label, latency_ms, top1, low, high, published} (top1/low/high None without weights)."""
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    shown_own = shown_pub = False
    for p in points:
        if p["latency_ms"] is None:
            continue
        c = colour[p["label"]]
        if p["top1"] is not None:
            ax.errorbar(
                p["latency_ms"], p["top1"], yerr=[[p["top1"] - p["low"]], [p["high"] - p["top1"]]],
                fmt="o", color=c, ecolor=c, elinewidth=1.5, capsize=4, markersize=7,
                label=None if shown_own else "top-1 on this photo set (95 % Wilson interval)",
            )
            shown_own = True
        if p["published"] is not None:
            ax.plot(
                p["latency_ms"], p["published"], marker="D", markersize=6, markerfacecolor="none",
                markeredgecolor=c, linestyle="none",
                label=None if shown_pub else "published ImageNet-1k Acc@1",
            )
            shown_pub = True
        y = p["top1"] if p["top1"] is not None else p["published"]
        if y is not None:
            note = p["label"] + ("" if p["top1"] is not None else " (weights n/a)")
            ax.annotate(note, (p["latency_ms"], y), textcoords="offset points", xytext=(7, 5), fontsize=8, color=c)
    lat = [p["latency_ms"] for p in points if p["latency_ms"]]
    if lat and max(lat) / min(lat) > 8:
        ax.set_xscale("log")
    if lat:
        lo, hi = min(lat), max(lat)
        ax.set_xlim(lo / 1.4 if ax.get_xscale() == "log" else 0, hi * 1.6)
    ax.set_xlabel("batch-1 latency, median (ms)  — lower is faster")
    ax.set_ylabel("top-1 accuracy (%)")
    title = "Accuracy vs latency"
    ax.set_title(title + (f" (photo set n = {n_images})" if n_images else ""))
    ax.grid(True, alpha=0.3, which="both")
    if shown_own or shown_pub:
        ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _hbars(ax, labels: list[str], series: list[tuple[str, list[float | None], str]]) -> None:
    """Grouped horizontal bars: one group per label, one bar per series (name, values, colour)."""
    k = len(series)
    height = 0.8 / max(k, 1)
    top = max((v for _, vals, _ in series for v in vals if v is not None), default=1.0)
    for j, (name, values, colour) in enumerate(series):
        ys = [i + (j - (k - 1) / 2) * height for i in range(len(labels))]
        vals = [v if v is not None else 0 for v in values]
        bars = ax.barh(ys, vals, height=height * 0.95, color=colour, label=name)
        for bar, v in zip(bars, values):
            text = "n/a" if v is None else (f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}")
            ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, text,
                    va="center", fontsize=7)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.15)
    ax.grid(True, axis="x", alpha=0.3)
    # below the axes, so that it never hides a bar
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)


def memory(rows: list[dict], path: Path) -> Path:
    """rows: {label, weights_mib, load_mib, run_mib, cuda_mib}."""
    labels = [r["label"] for r in rows]
    series = [
        ("weight file (MiB)", [r["weights_mib"] for r in rows], "#4c72b0"),
        ("peak RSS growth while loading (MiB)", [r["load_mib"] for r in rows], "#dd8452"),
        ("peak RSS growth while running (MiB)", [r["run_mib"] for r in rows], "#55a868"),
    ]
    if any(r["cuda_mib"] is not None for r in rows):
        series.append(("CUDA peak allocated (MiB)", [r["cuda_mib"] for r in rows], "#c44e52"))
    fig = Figure(figsize=(7.5, 1.2 + 0.28 * len(labels) * len(series)))
    ax = fig.add_subplot()
    _hbars(ax, labels, series)
    ax.set_xlabel("MiB (measured in a fresh process per model)")
    ax.set_title("Memory per model")
    return _save(fig, path)


def throughput(rows: list[dict], batch_sizes: list[int], path: Path) -> Path:
    """rows: {label, throughput: {bs: img/s}, end_to_end}."""
    labels = [r["label"] for r in rows]
    blues = ["#9ecae1", "#4292c6", "#08519c", "#08306b"]
    series = [(f"model only, batch {bs}", [r["throughput"].get(bs) for r in rows], blues[i % len(blues)])
              for i, bs in enumerate(batch_sizes)]
    series.append(("end to end from files (decode + preprocess + model)", [r["end_to_end"] for r in rows], "#e6550d"))
    fig = Figure(figsize=(7.5, 1.2 + 0.28 * len(labels) * len(series)))
    ax = fig.add_subplot()
    _hbars(ax, labels, series)
    ax.set_xlabel("images per second — higher is faster")
    ax.set_title("Throughput per model")
    return _save(fig, path)


def reliability(curves: list[dict], path: Path, colour: dict[str, str]) -> Path:
    """curves: {label, ece, bins: [(lower, upper, count, mean_confidence, accuracy)]}."""
    fig = Figure(figsize=(7.5, 6.2))
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    k = max(len(curves), 1)
    for j, c in enumerate(curves):
        col = colour[c["label"]]
        used = [b for b in c["bins"] if b[2] > 0]
        ax.plot([b[3] for b in used], [b[4] for b in used], marker="o", markersize=4, color=col,
                label=f"{c['label']} (ECE {100 * c['ece']:.1f} %)" if c["ece"] is not None else c["label"])
        total = sum(b[2] for b in c["bins"]) or 1
        width = (c["bins"][0][1] - c["bins"][0][0]) / (k + 1) if c["bins"] else 0.05
        hist.bar([b[0] + width * (j + 0.5) for b in c["bins"]], [b[2] / total for b in c["bins"]],
                 width=width, color=col, align="edge")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy of top-1 in the bin")
    ax.set_title("Reliability diagram (top-1 probability, 15 bins)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    hist.set_xlabel("top-1 probability (confidence)")
    hist.set_ylabel("share of photos")
    hist.grid(True, alpha=0.3)
    return _save(fig, path)
