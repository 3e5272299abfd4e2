"""PNG charts for the study report, drawn with matplotlib's object API on the Agg canvas (no pyplot
global state, no display needed). Each function takes plain data and a path and writes one file."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from topfive.files import atomic_path

DPI = 120
FEW = 10  # a reliability bin with fewer photos than this is drawn light
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    # then darker tones (from tab20b/tab20c), for studies of more than ten models
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363",
]


def colours(names: list[str]) -> dict[str, str]:
    """One colour per model, the same in every chart; all dark enough for text on white."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _place_labels(fig: Figure, ax, items: list[tuple[float, float, str, object]], obstacles: list) -> None:
    """Annotate points (x, y, text, colour) without overlapping each other or the obstacles
    (display-space boxes): try a few offsets per label, take the first free one."""
    renderer = fig.canvas.get_renderer()
    taken = list(obstacles)
    offsets = [(7, 4), (7, -11), (-7, 4), (-7, -11), (7, 14), (-7, 14), (7, -21), (-7, -21),
               (10, 26), (-10, 26), (10, -32), (-10, -32), (12, 38), (-12, 38), (12, -44), (-12, -44)]
    for x, y, text, colour in items:
        best = None
        for dx, dy in offsets:
            far = abs(dy) > 22  # far from its point: draw a thin leader line
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=7.5, color=colour,
                              ha="left" if dx >= 0 else "right", va="center",
                              arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.5} if far else None)
            box = ann.get_window_extent(renderer).expanded(1.02, 1.1)
            frame = ax.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(t) for t in taken):
                best = (ann, box)
                break
            ann.remove()
        if best is None:  # crowded: first offset with a thin leader line
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(14, 16), fontsize=7.5, color=colour,
                              arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.6})
            best = (ann, ann.get_window_extent(renderer))
        taken.append(best[1])


def save_chart(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


def accuracy_vs_latency(points: list[dict], path: Path, colour: dict[str, str], n_images: int | None) -> Path:
    """points: {label, latency_ms, top1, low, high, published} (top1/low/high None without weights)."""
    fig = Figure(figsize=(7.5, 4.8) if len(points) <= 8 else (9.5, 6.2))  # room for the labels
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
            )
            shown_own = True
        if p["published"] is not None:
            ax.plot(
                p["latency_ms"], p["published"], marker="D", markersize=6, markerfacecolor="none",
                markeredgecolor=c, linestyle="none",
            )
            shown_pub = True
    lat = [p["latency_ms"] for p in points if p["latency_ms"]]
    if lat and max(lat) / min(lat) > 8:
        from matplotlib.ticker import LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")  # 0.5, 1, 2, 5, 10 … rather than 10^x
        ax.xaxis.set_minor_formatter(NullFormatter())
    if lat:
        lo, hi = min(lat), max(lat)
        ax.set_xlim(lo / 1.4 if ax.get_xscale() == "log" else 0, hi * 2.5 if ax.get_xscale() == "log" else hi * 1.3)
    ys = [v for p in points for v in (p["low"], p["high"], p["published"]) if v is not None]
    if ys:
        ax.set_ylim(max(0, min(ys) - 5), min(100, max(ys) + 4))
    labelled = [p for p in points if p["latency_ms"] is not None and (p["top1"] is not None or p["published"] is not None)]
    # markers and interval bars are obstacles for the labels
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import Bbox

    FigureCanvasAgg(fig)  # a renderer to measure the labels with
    obstacles = []
    for p in labelled:
        for lo_, hi_ in ((p["low"], p["high"]), (p["published"], p["published"])):
            if lo_ is None:
                continue
            (x0, y0), (x1, y1) = ax.transData.transform([(p["latency_ms"], lo_), (p["latency_ms"], hi_)])
            obstacles.append(Bbox([[x0 - 6, y0 - 6], [x1 + 6, y1 + 6]]))
    _place_labels(fig, ax, [
        (p["latency_ms"], p["top1"] if p["top1"] is not None else p["published"],
         p["label"] + ("" if p["top1"] is not None else " (weights n/a)"), colour[p["label"]])
        for p in sorted(labelled, key=lambda p: -(p["top1"] if p["top1"] is not None else p["published"]))
    ], obstacles)
    ax.set_xlabel("batch-1 latency, median (ms)  — lower is faster")
    ax.set_ylabel("top-1 accuracy (%)")
    title = "Accuracy vs latency"
    ax.set_title(title + (f" (photo set n = {n_images})" if n_images else ""))
    ax.grid(True, alpha=0.3, which="both")
    from matplotlib.lines import Line2D

    handles = []
    if shown_own:
        handles.append(Line2D([], [], color="black", marker="o", linestyle="-", markersize=6,
                              label="top-1 on this photo set, 95 % Wilson interval"))
    if shown_pub:
        handles.append(Line2D([], [], color="black", marker="D", markerfacecolor="none", linestyle="none",
                              markersize=6, label="published ImageNet-1k Acc@1 (another test set)"))
    if handles:  # below the axes: inside, it would hide interval bars
        from matplotlib.transforms import offset_copy

        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=2, fontsize=8, frameon=False,
                  bbox_transform=offset_copy(ax.transAxes, fig=fig, y=-34, units="points"))
    return save_chart(fig, path)


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
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(0, top * 1.15)
    ax.grid(True, axis="x", alpha=0.3)
    # below the axes and the x label, at a fixed distance, so that it never hides a bar
    from matplotlib.transforms import offset_copy

    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=2, frameon=False,
              bbox_transform=offset_copy(ax.transAxes, fig=ax.figure, y=-34, units="points"))


def _bar_chart(labels: list[str], series, xlabel: str, title: str, path: Path) -> Path:
    """Grouped horizontal bars, one group per model, saved to `path`."""
    fig = Figure(figsize=(7.5, _bars_height(len(labels), len(series))))
    ax = fig.add_subplot()
    _hbars(ax, labels, series)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return save_chart(fig, path)


def _bars_height(n_labels: int, n_series: int) -> float:
    return 1.6 + n_labels * (0.2 * n_series + 0.12)


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
    return _bar_chart(labels, series, "MiB (measured in a fresh process per model)", "Memory per model", path)


def throughput(rows: list[dict], batch_sizes: list[int], path: Path) -> Path:
    """rows: {label, throughput: {bs: img/s}, end_to_end}."""
    labels = [r["label"] for r in rows]
    blues = ["#9ecae1", "#4292c6", "#08519c", "#08306b"]
    series = [(f"model only, batch {bs}", [r["throughput"].get(bs) for r in rows], blues[i % len(blues)])
              for i, bs in enumerate(batch_sizes)]
    series.append(("end to end from files (decode + preprocess + model)", [r["end_to_end"] for r in rows], "#e6550d"))
    return _bar_chart(labels, series, "images per second — higher is faster", "Throughput per model", path)


def reliability(curves: list[dict], path: Path, colour: dict[str, str]) -> Path:
    """curves: {label, ece, bins: [(lower, upper, count, mean_confidence, accuracy)]}: one panel per
    model (overlaid curves of many models are unreadable); bars are the hit rate per confidence bin,
    light where the bin holds few photos, the black dots its mean confidence."""
    import math

    n = max(len(curves), 1)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    pw, ph = (4.8, 4.0) if n == 1 else (2.9, 2.7)  # a lone panel gets more room
    fig = Figure(figsize=(pw * cols + 0.6, ph * rows + 0.9))
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat[len(curves):]:
        ax.set_visible(False)
    for ax, c in zip(axes.flat, curves):
        col = colour[c["label"]]
        for lower, upper, count, conf, acc in c["bins"]:
            if count == 0:
                continue
            ax.bar(lower, acc, width=upper - lower, align="edge", color=col, edgecolor="white", linewidth=0.5,
                   alpha=1.0 if count >= FEW else 0.35)
            ax.plot(conf, conf, marker="o", markersize=2.5, color="black")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        total = sum(b[2] for b in c["bins"])
        ece = f"ECE {100 * c['ece']:.1f} %" if c["ece"] is not None else "ECE n/a"
        ax.set_title(f"{c['label']}\n{ece}, n = {total}", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("top-1 probability", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("hit rate in bin", fontsize=8)
    import textwrap

    title = (f"Reliability diagrams (15 bins; light bars: fewer than {FEW} photos in the bin; "
             "dots: mean probability; dashed: perfect calibration)")
    fig.suptitle("\n".join(textwrap.wrap(title, 50 * cols)), fontsize=8.5)
    fig.tight_layout()
    return save_chart(fig, path)
