"""Top-1 agreement of every fast path with the reference (torch runtime fp32, NCHW, full decode) on the photo set.

Paths that change numerics: the torch runtime in channels_last (its default), compile, onnxruntime
fp32, int8. Paths that change pixels: draft JPEG decoding, measured twice: on the photos as they are
(only those larger than twice the resize size are decoded differently) and on 12-megapixel versions
of every photo (centre 4:3 crop upscaled to 4000x3000, JPEG quality 90, in memory), where the
reference is the full decode of the same 12 MP file. Accuracy is top-1 against the manifest's
accepted classes. Needs real weights: EfficientNet-Lite0/1/2.

    PYTHONPATH=src python benchmarks/agreement.py                 # everything (long on 2 cores)
    PYTHONPATH=src python benchmarks/agreement.py --photos 100 --no-compile --big 0
"""

from __future__ import annotations

import argparse
import io
import time

import torch
from PIL import Image

from _common import EVAL, accuracy, machine, photo_set, run_all
from topfive import Classifier, load_image, resolve
from topfive.machine import load_average
from topfive.runtime import make_runtime
from topfive.transforms import preprocess

MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def big_jpeg(path: str) -> bytes:
    img = Image.open(path).convert("RGB")
    w, h = img.size
    cw, ch = (w, round(w * 3 / 4)) if w * 3 <= h * 4 else (round(h * 4 / 3), h)
    img = img.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    out = io.BytesIO()
    img.resize((4000, 3000), Image.BICUBIC).save(out, format="JPEG", quality=90)
    return out.getvalue()


def line(path: str, ref: torch.Tensor, probs: torch.Tensor, accepted, n_changed: int | None = None) -> str:
    agree = (ref.argmax(-1) == probs.argmax(-1)).float().mean().item()
    acc_ref, acc = accuracy(ref, accepted), accuracy(probs, accepted)
    changed = f"  ({n_changed} photos decoded differently)" if n_changed is not None else ""
    verdict = "ok" if agree >= 0.99 else "BELOW 99 %"
    return (
        f"  {path:34s} agreement {agree:7.2%} ({round(agree * len(ref))}/{len(ref)})  "
        f"top-1 {acc:6.1%} vs {acc_ref:6.1%} ({100 * (acc - acc_ref):+.1f}pp)  {verdict}{changed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=None, help="use this many photos (default: all)")
    parser.add_argument("--big", type=int, default=None, help="12 MP versions of this many photos (default: all; 0: none)")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--only-big", action="store_true", help="skip the per-path section; 12 MP draft check only")
    parser.add_argument(
        "--only-draft", action="store_true",
        help="draft decode of the photos as they are, only (through onnxruntime; photos the draft "
        "does not touch count as agreeing, as they decode to identical pixels)",
    )
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    print(f"machine: {machine()}")
    photos = photo_set(args.photos)
    paths = [p for p, _ in photos]
    accepted = [ok for _, ok in photos]
    big_count = len(photos) if args.big is None else args.big
    print(f"{len(photos)} photos from {EVAL}; reference = torch runtime fp32 NCHW, full decode\n")
    models = args.models.split(",")
    classifiers = {}
    for name in models:
        start = time.perf_counter()
        entry = resolve(name)
        reference = make_runtime(entry, "torch", channels_last=False)
        clf = Classifier(name, runtime=reference)  # .prepare gives the full decode
        drafting = Classifier(name, runtime=reference, draft=True)
        classifiers[name] = (clf, drafting)
        if args.only_draft:
            fast = make_runtime(entry, "onnxruntime")
            touched = [i for i, p in enumerate(paths) if min(Image.open(p).size) > 2 * drafting.draft_size()]
            full = torch.stack([clf.prepare(paths[i]) for i in touched])
            draft = torch.stack([drafting.prepare(paths[i]) for i in touched])
            flips = int((run_all(fast, full).argmax(-1) != run_all(fast, draft).argmax(-1)).sum())
            print(
                f"{name}: draft decode (photos as they are)  agreement {1 - flips / len(paths):7.2%} "
                f"({len(paths) - flips}/{len(paths)}; {len(touched)} photos decoded differently, {flips} flipped; "
                "onnxruntime)",
                flush=True,
            )
            continue
        if args.only_big:
            continue
        full = torch.stack([clf.prepare(p) for p in paths])
        ref = run_all(reference, full)
        print(f"{name}: reference top-1 {accuracy(ref, accepted):.1%}")
        paths_to_check = {
            "torch channels_last": make_runtime(entry, "torch"),
            "onnxruntime (fp32)": make_runtime(entry, "onnxruntime"),
            "int8 (ORT static QDQ)": make_runtime(entry, "int8", calibration=EVAL / "images"),
        }
        if not args.no_compile:
            paths_to_check["compile (inductor)"] = make_runtime(entry, "compile")
        for label, runtime in paths_to_check.items():
            print(line(label, ref, run_all(runtime, full), accepted), flush=True)
        draft_tensors, changed = [], 0
        for p in paths:
            with Image.open(p) as img:
                big = min(img.size) > 2 * drafting.draft_size()
            changed += big
            draft_tensors.append(drafting.prepare(p) if big else None)
        draft = torch.stack([d if d is not None else f for d, f in zip(draft_tensors, full)])
        print(line("draft decode (photos as they are)", ref, run_all(reference, draft), accepted, changed))
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)

    if big_count:
        print(
            f"\n12 MP versions of {big_count} photos (4000x3000, q90); reference = full decode of the same file. "
            "Both decodes go through onnxruntime here (fp32, same top-1 as torch on all 569 photos "
            "above, and ~10x faster on this CPU), so only the pixels differ."
        )
        fast = {name: make_runtime(resolve(name), "onnxruntime") for name in models}
        start = time.perf_counter()
        big_photos = photos[:: max(1, len(photos) // big_count)][:big_count]
        big_accepted = [ok for _, ok in big_photos]
        results = {name: ([], []) for name in models}
        for i in range(0, len(big_photos), 16):
            blobs = [big_jpeg(p) for p, _ in big_photos[i : i + 16]]
            for name in models:
                clf, drafting = classifiers[name]
                full = torch.stack([preprocess(load_image(b), clf.spec) for b in blobs])
                draft = torch.stack([drafting.prepare(b) for b in blobs])
                results[name][0].append(fast[name].probabilities(full))
                results[name][1].append(fast[name].probabilities(draft))
        for name in models:
            ref, draft = (torch.cat(r) for r in results[name])
            print(f"{name}:")
            print(line("draft decode (12 MP JPEG)", ref, draft, big_accepted))
        print(f"  ({time.perf_counter() - start:.0f} s)")
    print(f"\nat the end: {load_average()}")


if __name__ == "__main__":
    main()
