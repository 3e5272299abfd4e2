"""Which runtime for TFLite files: LiteRT (ai-edge-litert) or OpenVINO? Prints, per TFLite card in a
folder: load time, batch-1 latency (median of interleaved runs), and how far OpenVINO's quantized
outputs are from LiteRT's reference kernels on two real photos.

    PYTHONPATH=src python benchmarks/cards_tflite_runtimes.py [--models-dir ../shared/models] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from _common import MODELS_DIR
from topfive import resolve
from topfive.runtime import make_runtime
from topfive.transforms import preprocess, stack

RUNTIMES = ("litert", "openvino")


def tflite_cards(folder: Path) -> list:
    """The entries of the TFLite model cards (`*.json` beside their files) in `folder`."""
    entries = [resolve(str(path)) for path in sorted(folder.glob("*.json"))]
    return [e for e in entries if not e.has_module and e.card.format == "tflite"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    photos = [Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())]
    print(f"threads={args.threads}, repeats={args.repeats} (interleaved), batch 1, CPU")
    header = f"{'model':34s} {'runtime':9s} {'load s':>7s} {'median ms':>9s} {'p90 ms':>7s}"
    print(header + "  top-1 (cat, coffee)  max |OV-LiteRT| in 1/256 steps")
    for entry in tflite_cards(args.models_dir):
        card = entry.card
        runtimes, loads = {}, {}
        for name in RUNTIMES:
            t = time.perf_counter()
            runtimes[name] = make_runtime(entry, name, threads=args.threads)
            loads[name] = time.perf_counter() - t
        batch = stack([preprocess(p, card.preprocess) for p in photos], card.preprocess).numpy()
        # raw: the graph's own (quantized) outputs, before dequantization and the softmax
        raw = {n: r.raw(batch).astype(np.int32) for n, r in runtimes.items()}
        top = {n: tuple(int(i) - card.label_offset for i in r.argmax(1)) for n, r in raw.items()}
        diff = int(np.abs(raw["litert"] - raw["openvino"]).max())
        one = batch[:1]
        times = {n: [] for n in runtimes}
        for _ in range(5):
            for r in runtimes.values():
                r.raw(one)
        for _ in range(args.repeats):
            for n, r in runtimes.items():
                t = time.perf_counter()
                r.raw(one)
                times[n].append((time.perf_counter() - t) * 1e3)
        for n in runtimes:
            ts = sorted(times[n])
            print(
                f"{entry.info.name:34s} {n:9s} {loads[n]:7.2f} {statistics.median(ts):9.2f} "
                f"{ts[int(0.9 * len(ts))]:7.2f}  "
                f"{str(top[n]):19s}  {diff if n == 'openvino' else ''}"
            )


if __name__ == "__main__":
    main()
