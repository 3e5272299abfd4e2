"""The tensor decoder (decode="tensor") against the Pillow decoder (the reference) on the photo set.

Both come from `topfive.decode.make_decoder` and follow the one geometry in topfive.transforms.
For every photo: both decoders' uint8 batches (geometry done, before normalisation), their pixel
differences (uint8 levels), and the top-1 agreement of a model (default EfficientNet-Lite0 on
onnxruntime: the same top-1 as torch on all 569 photos, docs/performance.md) on the two. Then the
CPU decode + preprocess time per photo of both decoders at the model's own spec, timed
round-robin on one thread.

    PYTHONPATH=src python benchmarks/tensor_pipeline.py                  # all 569 photos
    PYTHONPATH=src python benchmarks/tensor_pipeline.py --photos 64 --timing-photos 16
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from _common import EVAL, accuracy, interleaved, machine, photo_set
from topfive import resolve
from topfive.decode import make_decoder
from topfive.machine import load_average
from topfive.runtime import make_runtime
from topfive.sampling import spread_evenly
from topfive.transforms import pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=None, help="use this many photos (default: all)")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--timing-photos", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    photos = photo_set(args.photos)
    paths, accepted = [p for p, _ in photos], [ok for _, ok in photos]
    entry = resolve(args.model)
    spec = entry.info.preprocess
    uint8 = dataclasses.replace(spec, dtype="uint8", channels="RGB", layout="NCHW")
    runtime = make_runtime(entry, args.runtime)
    print(f"{len(paths)} photos from {EVAL}; {args.model} ({spec.describe()}), runtime {runtime.name}, "
          f"batch {args.batch}; reference = the Pillow decoder\n")

    decoders = {name: make_decoder(name, uint8) for name in ("pillow", "tensor")}
    probs = {name: [] for name in decoders}
    total, differing, largest, count = 0.0, 0, 0, 0
    start = time.perf_counter()
    for i in range(0, len(paths), args.batch):
        chunk = paths[i : i + args.batch]
        batches = {}
        for name, decode in decoders.items():
            batch, errors = decode(chunk)
            assert not any(errors), [e for e in errors if e]
            batches[name] = batch
            probs[name].append(runtime.probabilities(pixels(batch, spec)))
        diff = (batches["tensor"].int() - batches["pillow"].int()).abs()
        total += float(diff.sum())
        differing += int((diff > 0).sum())
        largest = max(largest, int(diff.max()))
        count += diff.numel()
        print(f"  {min(i + args.batch, len(paths))}/{len(paths)} photos ({time.perf_counter() - start:.0f} s)",
              end="\r", flush=True)
    print()
    ref, ours = torch.cat(probs["pillow"]), torch.cat(probs["tensor"])
    agree = int((ours.argmax(-1) == ref.argmax(-1)).sum())
    verdict = "" if agree >= 0.99 * len(paths) else " **below 99 %**"
    print("| decoder (vs Pillow) | mean abs diff (levels) | pixels differing | max diff | top-1 agreement "
          "| top-1 accuracy (Pillow's) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| tensor | {total / count:.4f} | {differing / count:.3%} | {largest} | {agree / len(paths):.2%} "
          f"({agree}/{len(paths)}){verdict} | {accuracy(ours, accepted):.1%} ({accuracy(ref, accepted):.1%}) |")

    timing = spread_evenly(paths, args.timing_photos)
    torch.set_num_threads(1)
    chunks = [timing[i : i + args.batch] for i in range(0, len(timing), args.batch)]
    at_spec = {name: make_decoder(name, spec) for name in ("pillow", "tensor")}
    seconds = interleaved({name: (lambda d=d: [d(c) for c in chunks]) for name, d in at_spec.items()},
                          rounds=args.rounds, warmup=1)
    per = {k: v / len(timing) * 1e3 for k, v in seconds.items()}
    print(
        f"\nCPU decode + preprocess, one thread, {len(timing)} photos in batches of {args.batch}, "
        f"median of {args.rounds} round-robin rounds: Pillow decoder {per['pillow']:.1f} ms/photo, "
        f"tensor decoder {per['tensor']:.1f} ms/photo ({per['tensor'] / per['pillow']:.2f}x the Pillow time)"
    )
    print(f"at the end: {load_average()}")


if __name__ == "__main__":
    main()
