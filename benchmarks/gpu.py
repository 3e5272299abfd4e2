"""GPU throughput in one short run: a model on a CUDA device, model only and files -> top-5.

(a) Model only: `runtime.probabilities(batch)` on a batch already on the device, for the runtimes as
    the library ships them: torch (fp32, channels_last; and fp16 / bf16 autocast, its amp option)
    and compile (inductor, fp16 autocast on CUDA; default mode and "reduce-overhead", CUDA graphs).
    ResNet-50 by default, random weights (seed 0) where the published ones are not here: speed does
    not depend on them.
(b) End to end: `Classifier.iter_predict` on the fastest runtime of (a), with decode="tensor" (nvjpeg
    and the batched resize on the device) and decode="pillow" (Pillow in worker threads); on ~500 px
    JPEG versions of the photos (longer side 500 px, q90, bytes in memory) and on the photos as they
    are (file reads); each list repeated to fill whole batches.
(c) Check: the tensor decoder's pixels on the device against the Pillow decoder's (uint8, geometry
    done), on up to 128 photos.

The device takes 64 MiB of files: here, `--prepare-carry` writes .gpu-eval (the photos that fit,
smallest first, with their manifest; git-ignored); carry it and run, on the GPU machine:

    PYTHONUNBUFFERED=1 PYTHONPATH=src python benchmarks/gpu.py --photos .gpu-eval

The logic runs on a CPU with tiny counts and no compile:

    PYTHONPATH=src python benchmarks/gpu.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import shutil
import statistics
import time
import traceback
from pathlib import Path

import torch

from _common import EVAL, ROOT, machine, small_jpeg
from topfive import Classifier, resolve
from topfive.decode import make_decoder
from topfive.runtime import make_runtime

T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {message}", flush=True)


def gpu_facts(device: torch.device) -> str:
    if device.type != "cuda":
        return f"device: CPU only ({torch.get_num_threads()} intra-op threads)"
    p = torch.cuda.get_device_properties(device)
    return (f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, compute capability "
            f"{p.major}.{p.minor}; CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")


def manifest_photos(folder: Path) -> list[str]:
    with open(folder / "manifest.csv", newline="") as f:
        return [str(folder / row["file"]) for row in csv.DictReader(f)]



def repeat(items: list, total: int) -> list:
    return (items * (total // len(items) + 1))[:total]


def rate(fn, images: int, seconds: float, windows: int) -> tuple[float, str]:
    """img/s: median over timed windows of back-to-back calls after a warm-up call (each returns
    its result on the CPU, so the device is done); and the range."""
    fn()
    start = time.perf_counter()
    fn()
    calls = max(1, int(seconds / windows / max(time.perf_counter() - start, 1e-6)))
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(calls * images / (time.perf_counter() - start))
    return statistics.median(rates), f"{min(rates):,.0f}-{max(rates):,.0f}"


def contenders(device: torch.device, quick: bool, compile_too: bool) -> list[tuple[str, str, dict]]:
    rows = [("torch fp32 channels_last", "torch", {})]
    if device.type == "cuda":
        rows += [("torch fp16 autocast", "torch", {"amp": torch.float16}),
                 ("torch bf16 autocast", "torch", {"amp": torch.bfloat16})]
    if compile_too and not quick:
        rows.append(("compile (fp16 autocast on CUDA)", "compile", {}))
        if device.type == "cuda":
            rows.append(("compile mode=reduce-overhead", "compile", {"mode": "reduce-overhead"}))
    return rows


def pixel_check(paths: list[str], spec, device: torch.device) -> str:
    uint8 = dataclasses.replace(spec, dtype="uint8", channels="RGB", layout="NCHW")
    ours, _ = make_decoder("tensor", uint8, device=device)(paths)
    reference, _ = make_decoder("pillow", uint8)(paths)
    diff = (ours.cpu().int() - reference.int()).abs()
    return (f"{len(paths)} photos: tensor decoder on {device.type} vs Pillow decoder: mean abs diff "
            f"{diff.float().mean():.3f} levels, {(diff > 0).float().mean():.2%} of values differ, "
            f"max {int(diff.max())}")


def prepare_carry(photos_dir: Path, budget: float) -> None:
    """Here, before a device run: .gpu-eval, the photos up to `budget` bytes (smallest first) and a
    manifest of those, git-ignored, to be carried."""
    with open(photos_dir / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    size = {r["file"]: (photos_dir / r["file"]).stat().st_size for r in rows}
    kept, total = set(), 0
    for name in sorted(size, key=size.get):
        if total + size[name] > budget:
            break
        kept.add(name)
        total += size[name]
    out = ROOT / ".gpu-eval"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["file"] in kept)
    for name in kept:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(photos_dir / name, out / name)
    exclude = ROOT / ".git" / "info" / "exclude"
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    if "/.gpu-eval/" not in lines:
        exclude.write_text("\n".join(lines + ["/.gpu-eval/"]) + "\n")
    print(f"{len(kept)} of {len(rows)} photos ({total / 1e6:.1f} MB) in {out}; carry it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--photos", type=Path, default=EVAL)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per model-only figure")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny counts, no compile: proves the logic on a CPU")
    parser.add_argument("--prepare-carry", action="store_true", help="here: write .gpu-eval to carry, then stop")
    parser.add_argument("--carry-budget", type=float, default=55e6, help="bytes of photos --prepare-carry keeps")
    args = parser.parse_args()
    if args.prepare_carry:
        return prepare_carry(args.photos, args.carry_budget)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolutions
    batch, seconds, windows = (2, 0.0, 2) if args.quick else (args.batch, args.seconds, 5)
    rows: list[tuple[str, str, str]] = []  # what, img/s, range
    notes = [machine(), gpu_facts(device)]
    say(notes[-1])

    def attempt(label: str, fn):
        try:
            return fn()
        except Exception as e:  # one failing step must not lose the others' figures
            traceback.print_exc()
            rows.append((label, "failed", f"{type(e).__name__}: {str(e)[:120]}"))
            return None

    entry = resolve(args.model)
    spec = entry.info.preprocess
    torch.manual_seed(0)
    real = entry.weights_status() in ("cached", "packaged", "local")
    module = entry.build(pretrained=real)
    say(f"{entry.info.name} ({'published' if real else 'random'} weights), batch {batch}")

    # (a) model only
    best = (None, 0.0, "")
    for label, kind, options in contenders(device, args.quick, not args.no_compile):
        say(f"model only: {label} ...")
        runtime = attempt(label, lambda: make_runtime(entry, kind, device=str(device), module=copy.deepcopy(module),
                                                      **options))
        if runtime is None:
            continue
        x = torch.randn(batch, 3, spec.size, spec.size, device=device).contiguous(memory_format=runtime.memory_format)
        result = attempt(label, lambda: rate(lambda: runtime.probabilities(x), batch, seconds, windows))
        if result:
            rows.append((f"(a) model only, {label}, batch {batch}", f"{result[0]:,.0f}", result[1]))
            say(f"  {result[0]:,.0f} img/s")
            if result[0] > best[1]:
                best = (runtime, result[0], label)

    # (b) end to end
    paths = manifest_photos(args.photos)[: 4 if args.quick else None]
    say(f"{len(paths)} photos from {args.photos}; making ~500 px versions ...")
    total = batch * (2 if args.quick else max(16, -(-4 * len(paths) // batch)))
    sets = {"~500 px JPEGs, bytes in memory": repeat([small_jpeg(p) for p in paths], total),
            "photos as they are, file reads": repeat(paths, total)}
    runtime = best[0]
    for label, sources in sets.items() if runtime is not None else ():
        for decode in ("tensor", "pillow"):
            what = f"(b) files -> top-5, {best[2]}, decode={decode}, {label}"
            say(f"{what} ({len(sources)} images) ...")
            clf = Classifier.around(runtime, entry.info.name, spec, entry=entry, batch_size=batch, decode=decode)
            result = attempt(what, lambda: rate(lambda: sum(1 for _ in clf.iter_predict(sources)), len(sources),
                                                0.0, 1 if args.quick else 3))
            if result:
                rows.append((what, f"{result[0]:,.0f}", result[1]))
                say(f"  {result[0]:,.0f} img/s")

    # (c) check
    check = attempt("pixel check", lambda: pixel_check(paths[:128], spec, device))
    if check:
        notes.append(check)

    print()
    print("| what | img/s | range |")
    print("|---|---:|---|")
    for what, value, spread in rows:
        print(f"| {what} | {value} | {spread} |")
    print()
    for line in notes:
        print(f"- {line}")
    print(f"- total run {time.perf_counter() - T0:.0f} s")


if __name__ == "__main__":
    main()
