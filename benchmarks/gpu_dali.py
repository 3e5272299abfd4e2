"""GPU end to end with DALI (issue 20): files -> top-5 at batch 256, against model-only and the tensor path.

Rows, each timed for about --seconds after a warm-up, on ~500 px JPEG versions of the photos (longer
side 500 px, q90), repeated to fill whole batches:
  model only          runtime.probabilities on a batch already on the device (compiled bf16 ResNet-50,
                      mode reduce-overhead: topfive's `compile` runtime with amp=bfloat16)
  tensor, from memory / from files    Classifier.iter_predict, decode="tensor" (nvjpeg + batched resize)
  dali, from memory / from files      Classifier.iter_predict, decode="dali" (mixed decode, GPU resize)
  dali reader (upper bound)           DALI alone reading the files (fn.readers.file), decoding and
                      resizing with its own prefetch, no per-file checks, DALI's own resize_shorter
                      geometry: what DALI gives when nothing of topfive's stands in its way
Stage times (median ms per batch): the decoders' read / DALI run / whole call, and the model.
Prints a table and one JSON document (also to --json).

On the GPU machine (DALI must be installed there; the photos carried, see benchmarks/gpu.py --prepare-carry):
    PYTHONUNBUFFERED=1 PYTHONPATH=src python benchmarks/gpu_dali.py --photos .gpu-eval
The logic, on a CPU, with tiny counts and the torch runtime instead of compile:
    PYTHONPATH=src python benchmarks/gpu_dali.py --device cpu --smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import torch

from _common import EVAL, machine, small_jpeg
from topfive import Classifier, resolve
from topfive.runtime import make_runtime
from topfive.sampling import spread_evenly

T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {message}", flush=True)



def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(fn, images: int, seconds: float) -> dict:
    """img/s over back-to-back calls for about `seconds` after one warm-up call (one call when
    `seconds` is 0 or the warm-up alone took longer: that bounds a slow row)."""
    start = time.perf_counter()
    fn()
    enough = 1 if time.perf_counter() - start > seconds else 2
    times = []
    while len(times) < enough or sum(times) < seconds:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"img_per_s": images * len(times) / sum(times), "calls": len(times),
            "range": f"{images / max(times):,.0f}-{images / min(times):,.0f}"}


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def classifier(runtime, entry, batch: int, decode: str, workers: int) -> Classifier:
    return Classifier.around(runtime, entry.info.name, entry.info.preprocess, entry=entry, batch_size=batch,
                             decode=decode, workers=workers)


def dali_reader_rate(files: list[str], spec, device: torch.device, batch: int, threads: int, seconds: float) -> dict:
    """DALI on its own: fn.readers.file -> decode -> resize_shorter -> crop_mirror_normalize, prefetch 2."""
    from nvidia.dali import Pipeline, fn, types
    from nvidia.dali.plugin.pytorch import feed_ndarray

    gpu = device.type == "cuda"
    pipe = Pipeline(batch_size=batch, num_threads=threads, device_id=device.index if gpu else None, prefetch_queue_depth=2)
    with pipe:
        data, _ = fn.readers.file(files=files, name="reader")
        image = fn.decoders.image(data, device="mixed" if gpu else "cpu", jpeg_fancy_upsampling=gpu)
        image = fn.resize(image, resize_shorter=spec.resize, interp_type=types.INTERP_CUBIC if spec.interpolation == "bicubic"
                          else types.INTERP_LINEAR, antialias=True)
        pipe.set_outputs(fn.crop_mirror_normalize(image, crop=(spec.size, spec.size), dtype=types.FLOAT, output_layout="CHW",
                                                  mean=[m * 255 for m in spec.mean], std=[s * 255 for s in spec.std]))
    pipe.build()
    out = torch.empty((batch, 3, spec.size, spec.size), device=device)

    def one():
        (images,) = pipe.run()
        feed_ndarray(images.as_tensor(), out, cuda_stream=torch.cuda.current_stream(device) if gpu else None)
        sync(device)

    return rate(one, batch, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--photos", type=Path, default=EVAL, help="a folder of JPEGs (searched recursively)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10.0, help="timing per row")
    parser.add_argument("--workers", type=int, default=8, help="reader threads and DALI threads")
    parser.add_argument("--model", help="default resnet50; mobilenet_v3_small with --smoke")
    parser.add_argument("--smoke", action="store_true", help="tiny counts, a small model, torch runtime: the logic on a CPU")
    parser.add_argument("--json", type=Path, help="also write the JSON document here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    batch, seconds, workers = (2, 0.0, 2) if args.smoke else (args.batch, args.seconds, args.workers)
    repeats = 1 if args.smoke else 3
    torch.backends.cudnn.benchmark = True
    rows, stages, notes = [], {}, [machine()]
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        notes.append(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}")
    try:
        import nvidia.dali

        notes.append(f"DALI {nvidia.dali.__version__}")
    except ImportError:
        notes.append("DALI is not installed here: its rows fail")

    def attempt(what: str, fn):
        try:
            return fn()
        except Exception as e:  # one failing row must not lose the others
            traceback.print_exc()
            rows.append({"what": what, "img_per_s": 0.0, "range": f"failed: {type(e).__name__}: {str(e)[:160]}"})
            return None

    def row(what: str, fn):
        say(f"{what} ...")
        result = attempt(what, fn)
        if result:
            rows.append({"what": what, **result})
            say(f"  {result['img_per_s']:,.0f} img/s")

    entry = resolve(args.model or ("mobilenet_v3_small" if args.smoke else "resnet50"))
    spec = entry.info.preprocess
    torch.manual_seed(0)
    module = entry.build(pretrained=entry.weights_status() in ("cached", "packaged", "local"))
    kind, options = ("torch", {}) if args.smoke else ("compile", {"amp": torch.bfloat16, "mode": "reduce-overhead"})
    runtime = make_runtime(entry, kind, device=str(device), module=module, threads=1 if args.smoke else None, **options)
    amp = f", amp {options['amp']}, mode {options['mode']}" if options else ""
    notes.append(f"{entry.info.name}, runtime {kind}{amp}, batch {batch}, {workers} workers")
    x = torch.randn(batch, 3, spec.size, spec.size, device=device)
    row("model only", lambda: rate(lambda: runtime.probabilities(x), batch, seconds))
    stages["model, probabilities"] = attempt("model stage", lambda: median_ms(lambda: runtime.probabilities(x), repeats))

    found = sorted(str(p) for p in args.photos.rglob("*.jpg"))
    found = spread_evenly(found, 4) if args.smoke else found
    say(f"{len(found)} photos from {args.photos}; making ~500 px versions ...")
    memory = [small_jpeg(p) for p in found]
    total = batch * (2 if args.smoke else max(16, -(-4 * len(memory) // batch)))
    memory = (memory * (total // len(memory) + 1))[:total]
    with tempfile.TemporaryDirectory(prefix="gpu_dali_") as scratch:  # the files rows read; removed after
        folder = Path(scratch)
        files = []
        for k, data in enumerate(memory[: len(found)]):
            (folder / f"{k:05d}.jpg").write_bytes(data)
            files.append(str(folder / f"{k:05d}.jpg"))
        files = (files * (total // len(files) + 1))[:total]

        for decode in ("tensor", "dali"):
            clf = attempt(f"{decode} classifier", lambda: classifier(runtime, entry, batch, decode, workers))
            if clf is None:
                continue
            for label, sources in (("from memory", memory), ("from files", files)):
                row(f"{decode}, {label}", lambda: rate(lambda: sum(1 for _ in clf.iter_predict(sources)), len(sources), seconds))
            decoder = attempt(f"{decode} decoder", lambda: clf.decoder())
            if decoder is None:
                continue
            for label, sources in (("from memory", memory[:batch]), ("from files", files[:batch])):
                stages[f"{decode} {label}: read"] = attempt("stage", lambda: median_ms(lambda: decoder.read(sources), repeats))
                stages[f"{decode} {label}: whole decoder call"] = attempt("stage", lambda: median_ms(lambda: decoder(sources), repeats))
            if decode == "dali":
                from topfive.decode.dali import jpegs_of

                read = decoder.read(memory[:batch])
                jpegs = jpegs_of(read, spec)
                stages["dali: planning the geometry"] = attempt("stage", lambda: median_ms(lambda: jpegs_of(read, spec), repeats))
                stages["dali: pipeline run (decode, resize, crop, copy out as uint8)"] = attempt(
                    "stage", lambda: median_ms(lambda: decoder.pipeline.run(jpegs), repeats))
        row("dali reader (upper bound)", lambda: dali_reader_rate(files, spec, device, batch, workers, seconds))

    print("\n| what | img/s | range (per call) |\n|---|---:|---|")
    for r in rows:
        print(f"| {r['what']} | {r['img_per_s']:,.0f} | {r['range']} |")
    print("\nstage times, median ms per batch of", batch)
    for name, ms in stages.items():
        print(f"- {name}: {'failed' if ms is None else f'{ms:.1f}'}")
    for line in notes:
        print(f"- {line}")
    print(f"- total run {time.perf_counter() - T0:.0f} s")
    document = {"rows": rows, "stages_ms": stages, "notes": notes, "batch": batch, "device": str(device)}
    print(json.dumps(document))
    if args.json:
        args.json.write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
