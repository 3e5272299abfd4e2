"""The tensor decode pipeline (decode="tensor") against the Pillow reference path, on the photo set.

For every photo: the reference tensor (Pillow decode + `preprocess.preprocess`), the shipped tensor
pipeline (`tensor_pipeline.prepare_batch`: torchvision decode + batched Pillow-exact resampling), and
for comparison two `torchvision.ops.roi_align` variants of the same crop (bilinear samples averaged
over each output pixel's bin: adaptive sampling_ratio = ceil(bin size), and 2), computed on the same
torchvision-decoded pixels. Printed: pixel differences (uint8 levels) and top-1 agreement with the
reference through EfficientNet-Lite0 on the `onnx` backend (same top-1 as eager on all 569 photos,
docs/performance.md), and the CPU decode + preprocess time per photo of both paths, timed
round-robin on one thread.

    PYTHONPATH=src python benchmarks/tensor_pipeline.py                  # all 569 photos
    PYTHONPATH=src python benchmarks/tensor_pipeline.py --photos 64 --timing-photos 16
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as nnf
from torchvision.ops import roi_align

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import EVAL, accuracy, interleaved, load, machine, photo_set  # noqa: E402

from topfive.runtime.backends import make_backend  # noqa: E402
from topfive.decode.images import load_image  # noqa: E402
from topfive.transforms import PreprocessSpec, pixels, preprocess, stack  # noqa: E402
from topfive.decode.tensor import _decode_one, plan, prepare_batch  # noqa: E402
from topfive.models.zoo import resolve  # noqa: E402


def roi_align_batch(paths: list[str], spec: PreprocessSpec, sampling_ratio: int) -> torch.Tensor:
    """The crop box of each photo in source coordinates, resampled by one roi_align call over the
    edge-padded batch, rounded to uint8 (the eval photos carry no EXIF rotation)."""
    images = [_decode_one(open(p, "rb").read(), "cpu") for p in paths]
    height, width = max(i.shape[-2] for i in images), max(i.shape[-1] for i in images)
    batch = torch.stack(
        [nnf.pad(i.float()[None], (0, width - i.shape[-1], 0, height - i.shape[-2]), mode="replicate")[0] for i in images]
    )
    boxes = []
    for n, img in enumerate(images):
        x, y = plan(img.shape[-1], img.shape[-2], spec)
        box = []
        for axis in (x, y):
            scale = axis.length / axis.resized  # source pixels per resized pixel
            box.append((axis.start + axis.offset * scale, axis.start + (axis.offset + spec.size) * scale))
        boxes.append([n, box[0][0], box[1][0], box[0][1], box[1][1]])
    out = roi_align(batch, torch.tensor(boxes, dtype=torch.float32), (spec.size, spec.size), 1.0, sampling_ratio, aligned=True)
    return torch.floor(out + 0.5).clamp(0, 255).to(torch.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=None, help="use this many photos (default: all)")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--timing-photos", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    photos = photo_set(args.photos)
    paths, accepted = [p for p, _ in photos], [ok for _, ok in photos]
    entry = resolve(args.model)
    spec = entry.info.preprocess
    uint8 = PreprocessSpec(**{**spec.__dict__, "dtype": "uint8", "channels": "RGB", "layout": "NCHW"})
    backend = make_backend(entry, "onnx")
    print(f"{len(paths)} photos from {EVAL}; {args.model} ({spec.describe()}), onnx backend, batch {args.batch}")
    print("reference = Pillow decode + preprocess.preprocess (the default path)\n")

    variants = {
        "tensor pipeline (shipped)": lambda chunk: prepare_batch(chunk, uint8)[0],
        "roi_align, sampling_ratio adaptive": lambda chunk: roi_align_batch(chunk, uint8, -1),
        "roi_align, sampling_ratio 2": lambda chunk: roi_align_batch(chunk, uint8, 2),
    }
    probs = {name: [] for name in ["reference", *variants]}
    stats = {name: [0.0, 0, 0, 0] for name in variants}  # sum |diff|, pixels differing, max, pixel count
    start = time.perf_counter()
    for i in range(0, len(paths), args.batch):
        chunk = paths[i : i + args.batch]
        ref = stack([preprocess(load_image(p), uint8) for p in chunk], uint8)
        probs["reference"].append(backend.probabilities(pixels(ref, spec)))
        for name, fn in variants.items():
            ours = fn(chunk)
            diff = (ours.int() - ref.int()).abs()
            s = stats[name]
            s[0] += float(diff.sum()); s[1] += int((diff > 0).sum()); s[2] = max(s[2], int(diff.max())); s[3] += diff.numel()
            probs[name].append(backend.probabilities(pixels(ours, spec)))
        print(f"  {min(i + args.batch, len(paths))}/{len(paths)} photos ({time.perf_counter() - start:.0f} s)", end="\r", flush=True)
    print()
    ref = torch.cat(probs["reference"])
    print(f"reference top-1 {accuracy(ref, accepted):.1%}\n")
    print("| path (vs Pillow reference) | mean abs diff (levels) | pixels differing | max diff | top-1 agreement | top-1 accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in variants:
        p = torch.cat(probs[name])
        agree = int((p.argmax(-1) == ref.argmax(-1)).sum())
        s = stats[name]
        verdict = "" if agree >= 0.99 * len(paths) else " **below 99 %**"
        print(
            f"| {name} | {s[0] / s[3]:.4f} | {s[1] / s[3]:.3%} | {s[2]} | {agree / len(paths):.2%} "
            f"({agree}/{len(paths)}){verdict} | {accuracy(p, accepted):.1%} |"
        )

    timing = paths[:: max(1, len(paths) // args.timing_photos)][: args.timing_photos]
    torch.set_num_threads(1)
    chunks = [timing[i : i + args.batch] for i in range(0, len(timing), args.batch)]
    seconds = interleaved(
        {
            "pillow": lambda: [stack([preprocess(load_image(p), spec) for p in c], spec) for c in chunks],
            "tensor": lambda: [prepare_batch(c, spec) for c in chunks],
        },
        rounds=args.rounds,
        warmup=1,
    )
    per = {k: v / len(timing) * 1e3 for k, v in seconds.items()}
    print(
        f"\nCPU decode + preprocess, one thread, {len(timing)} photos in batches of {args.batch}, "
        f"median of {args.rounds} round-robin rounds: Pillow path {per['pillow']:.1f} ms/photo, "
        f"tensor pipeline {per['tensor']:.1f} ms/photo ({per['tensor'] / per['pillow']:.2f}x the Pillow time)"
    )
    print(f"at the end: {load()}")


if __name__ == "__main__":
    main()
