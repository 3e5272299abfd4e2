"""Files -> top-5 throughput against model-only throughput, on ~500 px photos and on 12 MP JPEGs.

End to end is `Classifier.iter_predict` over files (decode + preprocess in worker threads, one batch
ahead of the model, then top-5 objects); model-only is the same runtime on a ready batch. The two
are timed alternately in the same run, and the ratio is printed.

12 MP JPEGs: a few photos from ../shared/eval, centre-cropped to 4:3, upscaled to 4000x3000
(bicubic) and saved at quality 90 into a temporary folder that is deleted afterwards.

    PYTHONPATH=src python benchmarks/end_to_end.py                       # resnet50 arch, onnxruntime
    PYTHONPATH=src python benchmarks/end_to_end.py --model efficientnet_lite0 --runtime torch
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from _common import EVAL, machine, photo_set
from topfive import Classifier, resolve
from topfive.machine import load_average
from topfive.runtime import canonical_runtime, make_runtime

SPIN = ("always", "runs", "never")  # the onnxruntime runtime's spin option


def make_12mp(photos: list[str], folder: Path) -> list[str]:
    out = []
    for i, path in enumerate(photos):
        img = Image.open(path).convert("RGB")
        w, h = img.size
        cw, ch = (w, round(w * 3 / 4)) if w * 3 <= h * 4 else (round(h * 4 / 3), h)
        img = img.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
        target = folder / f"big{i:02d}.jpg"
        img.resize((4000, 3000), Image.BICUBIC).save(target, quality=90)
        out.append(str(target))
    return out


def runtime_for(name: str, kind: str, **options):
    """The runtime, with published weights where they are here, else the architecture with
    random weights (seed 0): speed does not depend on weight values."""
    entry = resolve(name)
    calibration = EVAL / "images" if kind == "int8" else None
    if entry.weights_status() in ("cached", "packaged", "local"):
        module, tag, weights = None, None, "published weights"
    else:
        torch.manual_seed(0)
        module, tag, weights = entry.build(pretrained=False), "random-seed0", "random weights"
    return make_runtime(entry, kind, module=module, tag=tag, calibration=calibration, **options), weights


def compare(clf: Classifier, files: list[str], rounds: int, label: str) -> torch.Tensor:
    """Prints the figures; returns the batch that model-only timed."""
    batch = clf.batch_size
    prep, tensors = timed_prepare(clf, files)
    x = torch.stack(tensors[:batch])
    list(clf.iter_predict(files[:batch]))  # warm-up (thread pool, first-call costs)
    clf.runtime.probabilities(x)
    model_s, e2e_s = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(max(1, len(files) // batch)):
            clf.runtime.probabilities(x)
        model_s.append(max(1, len(files) // batch) * len(x) / (time.perf_counter() - start))
        start = time.perf_counter()
        n = sum(1 for _ in clf.iter_predict(files))
        e2e_s.append(n / (time.perf_counter() - start))
    model, e2e = statistics.median(model_s), statistics.median(e2e_s)
    print(
        f"{label:48s} model-only {model:7.1f} img/s   end-to-end {e2e:7.1f} img/s   "
        f"ratio {e2e / model:4.2f}   bound {cpu_bound(model, prep):4.2f}   "
        f"(prep {prep * 1000:.1f} CPU ms/photo; rounds {rounds}; e2e {min(e2e_s):.1f}-{max(e2e_s):.1f})",
        flush=True,
    )
    return x


def spin_model_only(runtimes: dict, x: torch.Tensor, rounds: int = 7) -> None:
    """Model-only time of each spin mode, round-robin, at the batch of `x` and at batch 1, relative
    to ONNX Runtime's default: what stopping the spinning costs the model itself. Each timing starts
    after a pause: a session's threads that spin on after its run would otherwise slow the next one."""
    for batch in (x[:1], x):
        calls = max(1, 16 // len(batch))  # about 16 images a timing, so batch 1 is not all noise
        times: dict[str, list[float]] = {spin: [] for spin in runtimes}
        for _ in range(rounds):
            for spin, runtime in runtimes.items():
                runtime.probabilities(batch)  # warm
                time.sleep(0.2)
                start = time.perf_counter()
                for _ in range(calls):
                    runtime.probabilities(batch)
                times[spin].append(time.perf_counter() - start)
        base = statistics.median(times["always"])
        print(f"model only, batch {len(batch)}, time vs spin=always: "
              + ", ".join(f"{spin} {statistics.median(t) / base:.2f}x" for spin, t in times.items()), flush=True)


def spin_label(runtime) -> str:
    return f", ORT spin={runtime.spin}" if getattr(runtime, "spin", None) else ""


def timed_prepare(clf: Classifier, files: list[str]) -> tuple[float, list[torch.Tensor]]:
    """(one core's seconds to decode + preprocess a photo, the tensors), timed serially before the model runs.
    torch runs single-threaded meanwhile: with more threads its OpenMP pool spin-waits after each
    operation, CPU time that process_time() would count (+4.5 ms a photo here) but that measured
    no cost to end-to-end throughput (docs/performance.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.process_time()
        tensors = [clf.prepare(f) for f in files]
        return (time.process_time() - start) / len(files), tensors
    finally:
        torch.set_num_threads(threads)


def cpu_bound(model_speed: float, prep_seconds: float) -> float:
    """The end-to-end / model-only ratio these cores allow when the model keeps all of them busy:
    each photo costs cores / model_speed CPU seconds of model plus `prep_seconds` of decoding, so
    end to end runs at most cores / (cores / model_speed + prep_seconds)."""
    cores = len(os.sched_getaffinity(0))
    return 1 / (1 + prep_seconds * model_speed / cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--runtime", "--backend", dest="runtime", default="onnxruntime",
                        help="torch, compile, onnxruntime or int8 (--backend and its old names still work)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--photos", type=int, default=96, help="~500 px photos per round")
    parser.add_argument("--big", type=int, default=16, help="12 MP JPEGs per round (0: none)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kind = canonical_runtime(args.runtime)
    print(f"machine: {machine()}")
    runtime, weights = runtime_for(args.model, kind)
    print(f"model {args.model} ({weights}), runtime {kind}, batch {args.batch}")
    photos = [p for p, _ in photo_set(args.photos)]
    sizes = [Image.open(p).size for p in photos]
    print(f"~500 px set: {len(photos)} photos from the eval set, median {statistics.median(w for w, _ in sizes):.0f}x"
          f"{statistics.median(h for _, h in sizes):.0f}")
    full = Classifier(args.model, runtime=runtime, batch_size=args.batch)
    draft = Classifier(args.model, runtime=runtime, batch_size=args.batch, draft=True)
    x = compare(full, photos, args.rounds, f"~500 px JPEGs, full decode{spin_label(runtime)}")
    if kind in ("onnxruntime", "int8"):
        # ONNX Runtime's threads busy-wait for work, by default also between runs, when the decode
        # threads want the cores
        modes = {spin: runtime if spin == runtime.spin else runtime_for(args.model, kind, spin=spin)[0]
                 for spin in SPIN}
        for spin, other in modes.items():
            if other is not runtime:
                compare(Classifier(args.model, runtime=other, batch_size=args.batch), photos, args.rounds,
                        f"~500 px JPEGs, full decode, ORT spin={spin}")
        spin_model_only(modes, x)
    compare(draft, photos, args.rounds, "~500 px JPEGs, --draft")
    if args.big == 0:
        print(f"at the end: {load_average()}")
        return
    with tempfile.TemporaryDirectory(prefix="topfive-12mp-") as tmp:
        big = make_12mp([p for p, _ in photo_set(args.big)], Path(tmp))
        print(f"12 MP set: {len(big)} JPEGs 4000x3000 q90, {sum(Path(b).stat().st_size for b in big) / len(big) / 1e6:.1f} MB each")
        compare(full, big, args.rounds, "12 MP JPEGs, full decode")
        compare(draft, big, args.rounds, "12 MP JPEGs, --draft (DCT scaling)")
    print(f"at the end: {load_average()}")


if __name__ == "__main__":
    main()
