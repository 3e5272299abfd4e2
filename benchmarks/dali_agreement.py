"""Top-1 agreement of decode="dali" with the Pillow reference, EfficientNet-Lite0/1/2, on the photo set.

Each model is loaded once on one runtime (onnxruntime by default) and classifies every photo through
Classifier(decode="pillow") and Classifier(decode="dali") around that same runtime, so the pixels are
the only difference. Also printed: how far the preprocessed tensors are apart (in 0..255 levels
and in the model's normalised units), from the two decoders on the same photos. DALI runs on the
device given (`--device cpu`: its CPU operators; on CUDA the mixed decoder and GPU resize).
The bar: >= 99 % agreement for dali to be the default decoder on GPU.

    PYTHONPATH=src python benchmarks/dali_agreement.py                  # all photos, Lite0/1/2
    PYTHONPATH=src python benchmarks/dali_agreement.py --photos 48 --models efficientnet_lite0
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from _common import machine, photo_set
from topfive import Classifier, resolve
from topfive.decode import make_decoder
from topfive.runtime import make_runtime

MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def top1(clf: Classifier, paths: list[str]) -> list[int]:
    return [p.top[0].index for p in clf.predict(paths, top_k=1, errors="raise")]


def correct(top: list[int], accepted: list[set[int]]) -> float:
    return sum(t in ok for t, ok in zip(top, accepted)) / len(top)


def pixel_gap(spec, paths: list[str], device: str, chunk: int = 32) -> dict[str, float]:
    """Max and mean |dali - pillow| over the preprocessed tensors, in levels (uint8 geometry only) and
    in the model's normalised values; and the share of uint8 values that differ."""
    uint8 = dataclasses.replace(spec, dtype="uint8", channels="RGB", layout="NCHW")
    out = {"max_levels": 0.0, "sum_levels": 0.0, "differ": 0.0, "max_normalised": 0.0, "values": 0}
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        for s, key in ((uint8, "levels"), (spec, "normalised")):
            ours, _ = make_decoder("dali", s, device=device)(part)
            ref, _ = make_decoder("pillow", s)(part)
            diff = (ours.cpu().double() - ref.double()).abs()
            out[f"max_{key}"] = max(out[f"max_{key}"], float(diff.max()))
            if key == "levels":
                out["sum_levels"] += float(diff.sum())
                out["differ"] += float((diff > 0).sum())
                out["values"] += diff.numel()
    return {"max_levels": out["max_levels"], "mean_levels": out["sum_levels"] / out["values"],
            "share_differing": out["differ"] / out["values"], "max_normalised": out["max_normalised"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=None, help="this many photos, spread over the set (default: all)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--device", default="cpu", help="where DALI decodes (the runtime runs on the CPU)")
    args = parser.parse_args()
    photos = photo_set(args.photos)
    paths, accepted = [p for p, _ in photos], [a for _, a in photos]
    print(machine())
    print(f"{len(paths)} photos; runtime {args.runtime}; DALI on {args.device}")
    verdicts = []
    for name in args.models.split(","):
        start = time.perf_counter()
        entry = resolve(name)
        spec = entry.info.preprocess
        runtime = make_runtime(entry, args.runtime)
        ref = top1(Classifier.around(runtime, entry.info.name, spec, entry=entry, decode="pillow"), paths)
        dali = Classifier.around(runtime, entry.info.name, spec, entry=entry, decode="dali")
        # DALI on --device while the runtime stays on the CPU (Classifier would decode on the runtime's device)
        dali.decoder = lambda pool=None: make_decoder("dali", spec, device=args.device, pool=pool, workers=dali.workers)
        ours = top1(dali, paths)
        agree = sum(a == b for a, b in zip(ref, ours)) / len(paths)
        gap = pixel_gap(spec, paths, args.device)
        verdicts.append(agree >= 0.99)
        print(f"{name}: top-1 agreement {agree:.2%} ({round(agree * len(paths))}/{len(paths)}); top-1 accuracy "
              f"dali {correct(ours, accepted):.1%} vs pillow {correct(ref, accepted):.1%}; pixels (uint8, geometry "
              f"done): max |diff| {gap['max_levels']:.0f} levels, mean {gap['mean_levels']:.3f}, "
              f"{gap['share_differing']:.1%} of values differ; normalised: max |diff| {gap['max_normalised']:.4f}; "
              f"{time.perf_counter() - start:.0f} s")
    print(f"bar >= 99 % on every model: {'met' if all(verdicts) else 'NOT met'}")


if __name__ == "__main__":
    main()
