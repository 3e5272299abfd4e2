"""Which runtime for TFLite files: LiteRT (ai-edge-litert) or OpenVINO? Prints, per model in a folder
of cards: load time, batch-1 latency (median of interleaved runs), and how far OpenVINO's quantized
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

from topfive.models.cards import cards_in
from topfive.transforms import preprocess, stack
from topfive.runtime.runtimes import LiteRtBackend, OpenVinoBackend


def main() -> None:
    default_dir = Path(__file__).resolve().parents[2] / "shared" / "models"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, default=default_dir)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    photos = [Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())]
    print(f"threads={args.threads}, repeats={args.repeats} (interleaved), batch 1, CPU")
    header = f"{'model':34s} {'runtime':9s} {'load s':>7s} {'median ms':>9s} {'p90 ms':>7s}"
    print(header + "  top-1 (cat, coffee)  max |OV-LiteRT| in 1/256 steps")
    for card in cards_in(args.models_dir):
        if card.format != "tflite":
            continue
        path = args.models_dir / card.model.file
        runtimes, loads = {}, {}
        for name, cls in (("litert", LiteRtBackend), ("openvino", OpenVinoBackend)):
            t = time.perf_counter()
            runtimes[name] = cls(path, card.output_kind, card.label_offset, threads=args.threads)
            loads[name] = time.perf_counter() - t
        batch = stack([preprocess(p, card.preprocess) for p in photos], card.preprocess).numpy()
        raw = {n: b.raw(batch).astype(np.int32) for n, b in runtimes.items()}
        top = {n: tuple(int(i) - card.label_offset for i in r.argmax(1)) for n, r in raw.items()}
        diff = int(np.abs(raw["litert"] - raw["openvino"]).max())
        one = batch[:1]
        times = {n: [] for n in runtimes}
        for _ in range(5):
            for b in runtimes.values():
                b.raw(one)
        for _ in range(args.repeats):
            for n, b in runtimes.items():
                t = time.perf_counter()
                b.raw(one)
                times[n].append((time.perf_counter() - t) * 1e3)
        for n in runtimes:
            ts = sorted(times[n])
            print(
                f"{card.name:34s} {n:9s} {loads[n]:7.2f} {statistics.median(ts):9.2f} {ts[int(0.9 * len(ts))]:7.2f}  "
                f"{str(top[n]):19s}  {diff if n == 'openvino' else ''}"
            )


if __name__ == "__main__":
    main()
