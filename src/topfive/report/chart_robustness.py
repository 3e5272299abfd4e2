"""The robustness chart: top-1 against corruption severity, one line per model, a panel for the
mean over the kinds and one per kind (matplotlib's object API, as report/charts.py)."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from topfive.report.charts import PALETTE, save_chart

MEAN = "mean over the kinds"


def accuracy_vs_severity(lines: list[dict], kinds: list[str], path: Path, colour: dict[str, str]) -> Path:
    """lines: {label, points: {panel: [(severity, top-1 %)]}} with panel MEAN or a kind; severity 0
    is the clean photo. One panel per entry of [MEAN, *kinds] that some line has points for."""
    panels = [p for p in [MEAN, *kinds] if any(line["points"].get(p) for line in lines)]
    cols = min(3, max(len(panels), 1))
    rows = math.ceil(len(panels) / cols) if panels else 1
    fig = Figure(figsize=(3.3 * cols + 2.4, 2.9 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for i, line in enumerate(lines):
        c = colour.get(line["label"], PALETTE[i % len(PALETTE)])
        for ax, panel in zip(axes.flat, panels):
            points = sorted(line["points"].get(panel, []))
            if points:
                ax.plot([s for s, _ in points], [a for _, a in points], marker="o", markersize=3.5, linewidth=1.4,
                        color=c, label=line["label"] if panel == panels[0] else None)
    for ax, panel in zip(axes.flat, panels):
        ax.set_title(panel, fontsize=9)
        ax.set_xticks(range(6))
        ax.set_xticklabels(["clean", "1", "2", "3", "4", "5"], fontsize=7)
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("severity (ImageNet-C)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 %", fontsize=8)
    fig.suptitle("Top-1 on corrupted copies of the photos, by severity", fontsize=10)
    fig.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7.5, frameon=False)
    fig.tight_layout()
    save_chart(fig, path)
    return path
